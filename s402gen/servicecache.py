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
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

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


def _read(file: Path, expected: bytes) -> dict[str, bytes]:
    """The entries of ``file`` made with the fingerprint ``expected``; empty when the file
    is missing, unreadable, corrupt or made for other code."""
    try:
        data = file.read_bytes()
    except OSError:
        return {}
    head = len(FORMAT) + _DIGEST
    if not data.startswith(FORMAT) or len(data) < head:
        return {}
    payload = memoryview(data)[head:]
    if hashlib.sha256(payload).digest() != data[len(FORMAT) : head]:
        return {}
    try:
        stored = pickle.loads(payload)
    except Exception:  # noqa: BLE001 - any unpickling failure is a cache miss
        return {}
    if not isinstance(stored, dict) or stored.get("fingerprint") != expected:
        return {}
    entries = stored.get("entries")
    return entries if isinstance(entries, dict) else {}


def _write(file: Path, fp: bytes, entries: dict[str, bytes]) -> None:
    """Save ``entries``; never raises (a cache that cannot be written only costs time)."""
    payload = pickle.dumps({"fingerprint": fp, "entries": entries}, pickle.HIGHEST_PROTOCOL)
    try:
        file.parent.mkdir(parents=True, exist_ok=True)
        temp = file.with_name(f".{file.name}.{os.getpid()}.tmp")
        with open(temp, "wb") as out:
            out.write(FORMAT)
            out.write(hashlib.sha256(payload).digest())
            out.write(payload)
        os.replace(temp, file)
    except OSError:
        pass


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
        self._stored = _read(cache.file, self.fingerprint)
        self._entries: dict[int, _Entry] = {}

    def _entry(self, index: int) -> _Entry:
        found = self._entries.get(index)
        if found is None:
            found = self._entries[index] = self._load(index)
        return found

    def _load(self, index: int) -> _Entry:
        key = self.keys[index] if index < len(self.keys) else None
        blob = self._stored.get(key) if key is not None else None
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
        """Keep the entries of this compile's services (only theirs) for the next one."""
        entries: dict[str, bytes] = {}
        changed = False
        for index, key in enumerate(self.keys):
            if key is None:
                continue
            entry = self._entries.get(index)
            if entry is not None and entry.dirty:
                entries[key] = entry.dumps()
                changed = True
            elif key in self._stored:
                entries[key] = self._stored[key]
        if changed or len(entries) != len(self._stored):
            _write(self.cache.file, self.fingerprint, entries)
