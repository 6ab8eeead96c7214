"""Per-service cache of the validate and derive stages: editing one service of 10,000
checks and derives that one service again.

A service's ``service``-scope findings (:mod:`s402gen.validate`: everything but
the checks across services) and its IR (:func:`s402gen.derive.derive`) are
a function of the service's own loaded data, the shared sections it reads
(defaults, providers, pricing policies, payment providers, presets, categories:
every top-level key of the catalog but ``services``) and its position, which
only numbers it: the IR's ``index`` and the ``("services", index, ...)`` paths of
its findings. Each service gets a key, the sha256 of

- the fingerprint: the code key (:func:`s402gen.cache.code_key`: s402gen's
  source, templates, the libraries that shape the text, Python), the versions
  of the other libraries the rules run (:data:`LIBRARIES`) and
  :data:`FORMAT`;
- the shared sections, canonically (orjson of the loaded tree, key order
  kept: it shapes the output);
- its own loaded data, canonically.

The position is not in the key: a service inserted, removed or moved leaves the
others' entries valid. An entry holds what a compile found under that key: the
position it was found at, the issues of the ``model`` and ``ir`` rules (message,
path, hint) and the IR. Taken at another position, the IR is renumbered and the
paths under the old ``("services", index)`` are moved to the new one; every issue
is located again with this compile's source map, so that a service moved down
by an edit above it is reported at its new line. The ``catalog`` rules (unique ids,
routes, related services, legacy id prefixes, protocols) run every time.

The entries of a catalog live in one file in the cache folder
(:mod:`s402gen.cache`; ``S402GEN_CACHE_DIR=off`` disables it), beside the
input cache, named after the catalog's path: :data:`FORMAT`, batches of
entries (one pickle each: a cold build writes every entry in one, so that
the texts services share are stored and read back once; an edit appends a
batch of what it changed), an index (the fingerprint, each batch's place
and sha256, each entry's batch) and a footer (the index's place and
sha256). The file is only ever a shortcut: a file that is missing,
unreadable, of another format or fingerprint, or whose index does not match
its sha256, is ignored, as is a batch that does not match its sha256 (it is
checked before it is unpickled) and an entry that is not what it should be;
then the service is checked and derived as without a cache. (The file is
pickled, like black's cache: it is trusted as much as the user's own cache
folder.)
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import os
import pickle
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import orjson

from . import ir, validate
from .diagnostics import Rule
from .cache import library_versions, replaced
from .incremental import ir_digest

FOLDER = "services"  # under the cache folder
#: The first line of a cache file; change it when what an entry holds changes.
FORMAT = b"s402gen-service-cache 3\n"
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
    text = FORMAT.decode() + code + "\n" + "\n".join(library_versions(LIBRARIES))
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
_READ_SIZE = 1 << 20
#: Entries pickled together: what they share (the texts of the defaults) is stored and
#: read back once a batch, and unpickling one holds a memo of one batch's objects only.
BATCH = 500

Where = tuple[int, int, bytes]  # offset, length, sha256 of a batch in the file


class _Hashing:
    """A binary file being written, hashing what goes through (pickle writes frames)."""

    def __init__(self, out: BinaryIO):
        self.out = out
        self.digest = hashlib.sha256()
        self.length = 0

    def write(self, data: bytes) -> int:
        self.digest.update(data)
        self.length += len(data)
        return self.out.write(data)


def _index(handle: BinaryIO, expected: bytes) -> tuple[list[Where], dict[str, tuple[int, int]]]:
    """The batches of the cache file ``handle`` and its entries (``{key: (batch, position
    in it)}``); raises on anything that is not a cache file made with the fingerprint
    ``expected``."""
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
    batches = [(int(o), int(n), bytes(d)) for o, n, d in stored["batches"]]
    if any(o < len(FORMAT) or o + n > start for o, n, _ in batches):
        raise ValueError("batch out of bounds")
    entries = {str(k): (int(b), int(i)) for k, (b, i) in stored["entries"].items()}
    return batches, entries


def _batch(handle: BinaryIO, where: Where) -> list:
    """The entries of one batch, checked against its sha256 before unpickling (read twice,
    in chunks: never the whole batch as bytes). Raises when it does not match."""
    offset, length, digest = where
    handle.seek(offset)
    check = hashlib.sha256()
    left = length
    while left:
        chunk = handle.read(min(left, _READ_SIZE))
        if not chunk:
            raise ValueError("cut short")
        check.update(chunk)
        left -= len(chunk)
    if check.digest() != digest:
        raise ValueError("damaged batch")
    handle.seek(offset)
    found = pickle.load(handle)
    if handle.tell() != offset + length or not isinstance(found, list):
        raise ValueError("damaged batch")
    return found


def _write_batch(out: BinaryIO, entries: list) -> Where:
    """Pickle ``entries`` (one pickle: what they share is stored once) at the end of
    ``out``; where it is."""
    offset = out.seek(0, os.SEEK_END)
    hashing = _Hashing(out)
    pickle.dump(entries, hashing, pickle.HIGHEST_PROTOCOL)  # type: ignore[arg-type]
    return offset, hashing.length, hashing.digest.digest()


def _write_index(
    out: BinaryIO, fp: bytes, batches: list[Where], entries: dict[str, tuple[int, int]]
) -> None:
    raw = pickle.dumps(
        {"fingerprint": fp, "batches": batches, "entries": entries}, pickle.HIGHEST_PROTOCOL
    )
    start = out.seek(0, os.SEEK_END)
    out.write(raw)
    out.write(_FOOTER.pack(start, len(raw), hashlib.sha256(raw).digest()))


@dataclass
class _Entry:
    """What one compile found for service ``index`` (``None``: not reached, e.g. a
    ``model`` error elsewhere stopped the compile before derive); ``dirty``: not what is
    stored."""

    index: int
    model: list[validate.Found] | None = None
    service: ir.Service | None = None
    ir: list[validate.Found] | None = None
    dirty: bool = True
    digest: bytes | None = None  # incremental.ir_digest(service)

    def stored(self) -> tuple:
        """The entry as stored: rules by their code."""
        model, found = (
            None if part is None else [(rule.code, issue) for rule, issue in part]
            for part in (self.model, self.ir)
        )
        return self.index, model, self.service, found, self.digest

    @classmethod
    def restore(cls, stored: Any, index: int) -> _Entry | None:
        """The entry ``stored`` taken for service ``index`` (renumbered when it was found
        at another position); ``None`` when it is not one."""
        try:
            found_at, model, service, found, digest = stored
            entry = cls(found_at, _found(model), service, _found(found), False, digest)
        except Exception:  # noqa: BLE001 - a broken entry is a miss
            return None
        if not isinstance(found_at, int) or found_at < 0:
            return None
        if service is not None and not (
            isinstance(service, ir.Service) and service.index == found_at
        ):
            return None
        if not (digest is None if service is None else isinstance(digest, bytes)):
            return None
        if found_at != index:
            entry.index = index
            entry.model, entry.ir = (
                _moved(part, found_at, index) for part in (entry.model, entry.ir)
            )
            if service is not None:
                entry.service = dataclasses.replace(service, index=index)
        return entry


def _moved(found: list[validate.Found] | None, old: int, new: int) -> list[validate.Found] | None:
    """``found`` of a service at position ``old`` as found at ``new``: the paths under
    ``("services", old)`` moved under ``("services", new)``."""
    if found is None:
        return None
    here = ("services", old)
    return [
        (
            (rule, dataclasses.replace(issue, path=("services", new, *issue.path[2:])))
            if issue.path[:2] == here
            else (rule, issue)
        )
        for rule, issue in found
    ]


@functools.cache
def _rules() -> dict[str, Rule]:
    """The registered rules by code."""
    return {rule.code: rule for rule in validate.REGISTRY}


def _found(stored: Any) -> list[validate.Found] | None:
    """Stored ``(rule code, issue)`` pairs as ``(rule, issue)``; raises on anything else."""
    if stored is None:
        return None
    if not stored:
        return []
    rules = _rules()
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
    model accepted it).
    """

    def __init__(self, cache: Cache, data: dict[str, Any]):
        self.cache = cache
        self.fingerprint = fingerprint(cache.code)
        shared = _canonical({key: value for key, value in data.items() if key != "services"})
        self.keys: list[str | None] = []
        common = hashlib.sha256(self.fingerprint)  # what every key starts with, hashed once
        if shared is not None:
            common.update(len(shared).to_bytes(8, "big") + shared)
        for index, svc in enumerate(data.get("services") or ()):
            own = _canonical(svc)
            if shared is None or own is None:
                self.keys.append(None)
                continue
            digest = common.copy()
            digest.update(len(own).to_bytes(8, "big") + own)
            self.keys.append(digest.hexdigest())
        self._entries = [_Entry(index) for index in range(len(self.keys))]
        self._batches: list[Where] = []  # of the file
        self._placed: dict[str, tuple[int, int]] = {}  # key: (batch, position) of those read
        self._stored = 0  # entries the file holds, in use or not
        self._size = 0  # bytes of the file
        self._sizes: dict[int, int] = {}  # batch: entries it holds

    def read(self) -> None:
        """Take this compile's services' entries from the cache file, batch by batch (until
        then, every service is a miss). Called once the loaded tree is let go: the
        entries hold every service's IR."""
        try:
            handle = open(self.cache.file, "rb")
        except OSError:
            return
        with handle:
            try:
                batches, entries = _index(handle, self.fingerprint)
                self._size = handle.seek(0, os.SEEK_END)
            except Exception:  # noqa: BLE001 - any damage to the file is a miss
                return
            wanted: dict[int, list[tuple[int, int]]] = {}  # batch: [(position, service)]
            for index, key in enumerate(self.keys):
                placed = entries.get(key) if key is not None else None
                if placed is not None and 0 <= placed[0] < len(batches):
                    wanted.setdefault(placed[0], []).append((placed[1], index))
            for number, uses in sorted(wanted.items()):
                try:
                    stored = _batch(handle, batches[number])
                except Exception:  # noqa: BLE001 - a damaged batch is a miss
                    continue
                for position, index in uses:
                    ok = 0 <= position < len(stored)
                    entry = _Entry.restore(stored[position], index) if ok else None
                    if entry is not None:
                        self._entries[index] = entry
                        self._placed[self.keys[index]] = (number, position)  # type: ignore
        self._batches, self._stored = batches, len(entries)
        for number, _ in entries.values():
            self._sizes[number] = self._sizes.get(number, 0) + 1

    def _live(self, kept: dict[str, tuple[int, int]]) -> float:
        """About how many bytes of the file the entries ``kept`` take (a batch's bytes
        shared out among its entries)."""
        return sum(self._batches[b][1] / self._sizes[b] for b, _ in kept.values())

    def _entry(self, index: int) -> _Entry:
        return self._entries[index]

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
        return [entry.digest for entry in self._entries]

    def save(self) -> None:
        """Keep the entries of this compile's services (only theirs) for the next one. New
        entries are appended to the file while at least half of its bytes are still in use
        (each append also leaves the index before it behind), else the file is written
        anew. Never raises (a cache that cannot be
        written only costs time; a file cut short by a crash, or appended to by two builds
        at once, fails its checks next time and is a miss)."""
        fresh = [
            (index, key)
            for index, key in enumerate(self.keys)
            if key is not None and self._entries[index].dirty
        ]
        kept = {
            key: self._placed[key]
            for index, key in enumerate(self.keys)
            if key in self._placed and not self._entries[index].dirty
        }
        if not fresh and len(kept) == self._stored:
            return  # nothing new, nothing dropped
        file = self.cache.file
        try:
            if self._batches and 2 * self._live(kept) >= self._size:
                with open(file, "r+b") as out:
                    batches, entries = list(self._batches), dict(kept)
                    self._write(out, fresh, batches, entries)
            else:
                every = [
                    (index, key)
                    for index, key in enumerate(self.keys)
                    if key is not None and (key in kept or self._entries[index].dirty)
                ]
                with replaced(file) as out:
                    out.write(FORMAT)
                    self._write(out, every, [], {})
        except OSError:
            return
        for index, _ in fresh:
            self._entries[index].dirty = False

    def _write(
        self,
        out: BinaryIO,
        which: list[tuple[int, str]],
        batches: list[Where],
        entries: dict[str, tuple[int, int]],
    ) -> None:
        """Append the entries of ``which`` (``(service index, key)``) to ``out`` in batches
        of :data:`BATCH`, then the index of them and of ``batches`` and ``entries``."""
        for start in range(0, len(which), BATCH):
            part = which[start : start + BATCH]
            batches.append(_write_batch(out, [self._entries[i].stored() for i, _ in part]))
            for position, (_, key) in enumerate(part):
                entries[key] = (len(batches) - 1, position)
        _write_index(out, self.fingerprint, batches, entries)
