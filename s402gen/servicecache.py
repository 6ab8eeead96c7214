"""Per-service cache of the validate and derive stages: editing one service of 10,000
checks and derives that one service again.

A service's ``service``-scope findings (:mod:`s402gen.validate`: everything but
the checks across services) and its IR (:func:`s402gen.derive.derive`) are
a function of the service's own loaded data, its position, and the shared
sections it reads (defaults, providers, pricing policies, payment providers,
presets, categories: every top-level key of the catalog but ``services``).
Each service gets a key, the sha256 of

- the fingerprint: the code key (:func:`s402gen.cache.code_key`: s402gen's
  source, templates, the libraries that shape the text, Python), the versions
  of the other libraries the rules run (:data:`LIBRARIES`) and
  :data:`FORMAT`;
- the shared sections, canonically (orjson of the loaded tree, key order
  kept: it shapes the output);
- its index and its own loaded data, canonically.

An entry holds what a compile found under that key: the issues of the
``model`` and ``ir`` rules (message, path, hint; located again with this
compile's source map, so that a service moved down by an edit above it is
reported at its new line) and the IR. The ``catalog`` rules (unique ids,
routes, related services, legacy id prefixes, protocols) run every time.

The entries of a catalog live in one file in the cache folder
(:mod:`s402gen.cache`; ``S402GEN_CACHE_DIR=off`` disables it), beside the
input cache, named after the catalog's path, and are only ever a shortcut:
the file starts with the sha256 of the rest, and a file that is missing,
unreadable, of another format or fingerprint, or whose sha256 does not
match, is ignored, as is an entry that does not unpickle to what it should;
then the service is checked and derived as without a cache. (The file is
pickled, like black's cache: it is trusted as much as the user's own cache
folder.)
"""

from __future__ import annotations

import hashlib
import os
import pickle
import struct
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any, BinaryIO

import orjson

from . import ir, validate
from .incremental import ir_digest

FOLDER = "services"  # under the cache folder
#: The first line of a cache file; change it when what an entry holds changes.
FORMAT = b"s402gen-service-cache 1\n"
#: Libraries the rules run besides those of the code key (RE2 patterns, JSON Schema
#: formats and references, pydantic's core).
LIBRARIES = (
    "google-re2",
    "pydantic-core",
    "referencing",
    "jsonschema-specifications",
    "rfc3339-validator",
    "rfc3987",
    "fqdn",
    "idna",
    "jsonpointer",
    "uri-template",
    "webcolors",
    "isoduration",
)
_DIGEST = hashlib.sha256().digest_size


@dataclass(frozen=True)
class Cache:
    """The service cache of one catalog: its ``file`` and the ``code`` key it is valid for."""

    file: Path
    code: str


def cache_at(
    folder: Path | None, catalog: str | os.PathLike[str], code: str | None
) -> Cache | None:
    """The service cache of ``catalog`` in the cache ``folder``; ``None`` when there is no
    cache folder (``S402GEN_CACHE_DIR=off``) or no code key."""
    if folder is None or code is None:
        return None
    name = hashlib.sha256(str(Path(catalog).resolve()).encode()).hexdigest()[:32]
    return Cache(folder / FOLDER / f"{name}.pickle", code)


def fingerprint(code: str) -> bytes:
    """What every key of a cache made with the code key ``code`` starts with."""
    versions = []
    for library in LIBRARIES:
        try:
            versions.append(f"{library}={metadata.version(library)}")
        except metadata.PackageNotFoundError:
            versions.append(f"{library}=none")
    text = FORMAT.decode() + code + "\n" + "\n".join(versions)
    return hashlib.sha256(text.encode()).digest()


def _canonical(value: Any) -> bytes | None:
    """The loaded tree ``value`` as bytes that differ when it differs (key order kept);
    ``None`` when it holds what JSON cannot (the loader refuses it anyway)."""
    try:
        return orjson.dumps(value)
    except TypeError:
        return None


#: The end of a cache file: where its index starts, its length and its sha256.
_FOOTER = struct.Struct(">QQ32s")


class _Store:
    """A cache file open for reading: its index (``{key: (offset, length, sha256)}``)
    and its entries, read one at a time and checked against their sha256, never the
    whole file at once (at 10,000 services it holds 60 MiB).

    Layout: :data:`FORMAT`, the entries' pickles, the index's pickle (with the
    fingerprint), :data:`_FOOTER`. A file that is missing, unreadable, of another format
    or fingerprint, or whose index's sha256 does not match, has no entries.
    """

    def __init__(self, file: Path, expected: bytes):
        self.handle: BinaryIO | None = None
        self.index: dict[str, tuple[int, int, bytes]] = {}
        self.end = len(FORMAT)  # where the index starts: the entries lie before it
        try:
            handle = open(file, "rb")
        except OSError:
            return
        try:
            self.index, self.end = _index(handle, expected)
            self.handle = handle
        except Exception:  # noqa: BLE001 - any damage to the file is a miss
            handle.close()

    def blob(self, key: str) -> bytes | None:
        """The stored bytes of the entry ``key``; ``None`` when absent or damaged."""
        where = self.index.get(key)
        if where is None or self.handle is None:
            return None
        offset, length, digest = where
        try:
            self.handle.seek(offset)
            data = self.handle.read(length)
        except OSError:
            return None
        return data if hashlib.sha256(data).digest() == digest else None

    def close(self) -> None:
        """Close the file (the store has no entries then)."""
        if self.handle is not None:
            self.handle.close()
            self.handle = None


def _index(handle: BinaryIO, expected: bytes) -> tuple[dict[str, tuple[int, int, bytes]], int]:
    """The index of the cache file ``handle`` and where it starts; raises on anything
    that is not a cache file made with the fingerprint ``expected``."""
    size = handle.seek(0, os.SEEK_END)
    handle.seek(0)
    if size < len(FORMAT) + _FOOTER.size or handle.read(len(FORMAT)) != FORMAT:
        raise ValueError("not a service cache")
    handle.seek(size - _FOOTER.size)
    start, length, digest = _FOOTER.unpack(handle.read(_FOOTER.size))
    if start < len(FORMAT) or start + length > size - _FOOTER.size:
        raise ValueError("no index")
    handle.seek(start)
    raw = handle.read(length)
    if hashlib.sha256(raw).digest() != digest:
        raise ValueError("damaged index")
    stored = pickle.loads(raw)
    if stored["fingerprint"] != expected:
        raise ValueError("other code")
    index = {}
    for key, (offset, size_, sha) in stored["entries"].items():
        if not (isinstance(key, str) and len(FORMAT) <= offset and offset + size_ <= start):
            raise ValueError("entry out of bounds")
        index[key] = (int(offset), int(size_), bytes(sha))
    return index, start


def _write_index(out: BinaryIO, fp: bytes, index: dict[str, tuple[int, int, bytes]]) -> None:
    raw = pickle.dumps({"fingerprint": fp, "entries": index}, pickle.HIGHEST_PROTOCOL)
    start = out.tell()
    out.write(raw)
    out.write(_FOOTER.pack(start, len(raw), hashlib.sha256(raw).digest()))


@dataclass
class _Entry:
    """What one compile found for one service (``None``: not reached, e.g. a ``model``
    error elsewhere stopped the compile before derive); ``dirty``: not what is stored."""

    model: list[validate.Found] | None = None
    service: ir.Service | None = None
    ir: list[validate.Found] | None = None
    dirty: bool = True
    digest: bytes | None = None  # incremental.ir_digest(service)

    def dumps(self) -> bytes:
        """The entry as stored: rules by their code."""
        model, found = (
            None if part is None else [(rule.code, issue) for rule, issue in part]
            for part in (self.model, self.ir)
        )
        whole = (model, self.service, found, self.digest)
        return pickle.dumps(whole, pickle.HIGHEST_PROTOCOL)

    @classmethod
    def loads(cls, blob: bytes, index: int) -> _Entry | None:
        """The entry stored as ``blob`` for service ``index``; ``None`` when it is not one."""
        try:
            model, service, found, digest = pickle.loads(blob)
            entry = cls(_found(model), service, _found(found), False, digest)
        except Exception:  # noqa: BLE001 - a broken entry is a miss
            return None
        if service is not None and not (isinstance(service, ir.Service) and service.index == index):
            return None
        if not (digest is None if service is None else isinstance(digest, bytes)):
            return None
        return entry


def _found(stored: Any) -> list[validate.Found] | None:
    """Stored ``(rule code, issue)`` pairs as ``(rule, issue)``; raises on anything else."""
    if stored is None:
        return None
    rules = {r.code: r for r in validate.REGISTRY}
    found = []
    for code, issue in stored:
        if not isinstance(issue, validate.Issue):
            raise TypeError(issue)
        found.append((rules[code], issue))
    return found


class Session:
    """The service cache of one compile: what :func:`s402gen.validate.check_model`,
    :func:`s402gen.derive.derive` and :func:`s402gen.validate.check_catalog` may reuse
    (their ``reuse``), and what :meth:`save` keeps for the next compile.

    ``data`` is the loaded tree (a mapping with a ``services`` list, as the authoring
    model accepted it). :attr:`hits` counts the services taken whole from the cache.
    """

    def __init__(self, cache: Cache, data: dict[str, Any]):
        self.cache = cache
        self.fingerprint = fingerprint(cache.code)
        shared = _canonical({key: value for key, value in data.items() if key != "services"})
        self.keys: list[str | None] = []
        for index, svc in enumerate(data.get("services") or ()):
            own = _canonical(svc)
            if shared is None or own is None:
                self.keys.append(None)
                continue
            digest = hashlib.sha256(self.fingerprint)
            for part in (shared, str(index).encode(), own):
                digest.update(len(part).to_bytes(8, "big") + part)
            self.keys.append(digest.hexdigest())
        self._store = _Store(cache.file, self.fingerprint)
        self._entries: dict[int, _Entry] = {}

    def _entry(self, index: int) -> _Entry:
        found = self._entries.get(index)
        if found is None:
            found = self._entries[index] = self._load(index)
        return found

    def _load(self, index: int) -> _Entry:
        key = self.keys[index] if index < len(self.keys) else None
        blob = self._store.blob(key) if key is not None else None
        entry = _Entry.loads(blob, index) if blob is not None else None
        return _Entry() if entry is None else entry

    @property
    def hits(self) -> int:
        """Services whose IR and findings all came from the cache."""
        return sum(
            not e.dirty and e.service is not None and e.ir is not None
            for e in self._entries.values()
        )

    def issues(self, stage: validate.Stage, index: int) -> list[validate.Found] | None:
        """What the ``service`` rules found in service ``index`` at ``stage``, if kept."""
        entry = self._entry(index)
        found = entry.model if stage == "model" else entry.ir
        return None if found is None else list(found)

    def keep(self, stage: validate.Stage, index: int, found: list[validate.Found]) -> None:
        """Record what the ``service`` rules found in service ``index`` at ``stage``."""
        entry = self._entry(index)
        if stage == "model":
            entry.model = list(found)
        else:
            entry.ir = list(found)
        entry.dirty = True

    def service(self, index: int) -> ir.Service | None:
        """The IR of service ``index``, if kept."""
        return self._entry(index).service

    def keep_service(self, index: int, svc: ir.Service) -> None:
        """Record the IR of service ``index``."""
        entry = self._entry(index)
        entry.service = svc
        entry.digest = ir_digest(svc)
        entry.dirty = True

    def digests(self) -> list[bytes | None]:
        """The :func:`s402gen.incremental.ir_digest` of each service's IR, by position
        (``None`` where not known)."""
        return [
            self._entries[i].digest if i in self._entries else None for i in range(len(self.keys))
        ]

    def save(self) -> None:
        """Keep the entries of this compile's services (only theirs) for the next one,
        and close the cache file. New entries are appended to the file while at least
        half of it is still in use, else the file is written anew (one entry in memory
        at a time, either way). Never raises (a cache that cannot be written only costs
        time; a file cut short by a crash, or appended to by two builds at once, fails
        its checks next time and is a miss)."""
        store = self._store
        fresh: list[tuple[str, _Entry]] = []
        kept: dict[str, tuple[int, int, bytes]] = {}
        for index, key in enumerate(self.keys):
            entry = self._entries.get(index)
            if key is None:
                continue
            if entry is not None and entry.dirty:
                fresh.append((key, entry))
            elif key in store.index:
                kept[key] = store.index[key]
        try:
            if not fresh and len(kept) == len(store.index):
                return  # nothing new, nothing dropped
            live = sum(length for _, length, _ in kept.values())
            if store.handle is not None and 2 * live >= store.end - len(FORMAT):
                with open(self.cache.file, "r+b") as out:
                    out.seek(0, os.SEEK_END)
                    self._write(out, kept, fresh)
                return
            self.cache.file.parent.mkdir(parents=True, exist_ok=True)
            temp = self.cache.file.with_name(f".{self.cache.file.name}.{os.getpid()}.tmp")
            with open(temp, "wb") as out:
                out.write(FORMAT)
                copied = {}
                for key in kept:
                    blob = store.blob(key)
                    if blob is not None:
                        copied[key] = (out.tell(), len(blob), kept[key][2])
                        out.write(blob)
                self._write(out, copied, fresh)
            os.replace(temp, self.cache.file)
        except OSError:
            pass
        finally:
            store.close()

    def _write(self, out: BinaryIO, index: dict[str, tuple[int, int, bytes]], fresh: list) -> None:
        """Write the ``fresh`` entries at ``out``'s position, then the index of them and of
        those ``index`` already places in the file."""
        for key, entry in fresh:
            blob = entry.dumps()
            index[key] = (out.tell(), len(blob), hashlib.sha256(blob).digest())
            out.write(blob)
            entry.dirty = False
        _write_index(out, self.fingerprint, index)

    def close(self) -> None:
        """Close the cache file without saving."""
        self._store.close()
