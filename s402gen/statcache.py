"""Stat index of an output folder, like git's index: what each generated file looked like
on disk when s402gen last wrote or checked it, and what each service rendered from.

For every file of the manifest it records the file's stat signature (size,
``st_mtime_ns``, ``st_ctime_ns``, inode) and its sha256. A file whose stat
has not changed since is taken to hold those bytes without reading it: a
cached no-op ``check`` at 10,000 services stats 30,000 files instead of
hashing 600 MiB. Editing a file changes its mtime and ctime (and replacing
it, its inode), so an edited file is always read again; like git, the one
blind spot is a same-size rewrite within the file system's timestamp
granularity of the recording, which no editor does.

It also records the render key of every service (:mod:`s402gen.incremental`):
a service whose key is unchanged, and whose files' stat is unchanged, is not
rendered again. The index lives in the cache folder (:mod:`s402gen.cache`),
one file per output folder, and is only ever a shortcut: when it is missing,
unreadable, or written for other code (``code`` key), everything is hashed
and rendered as without it.
"""

from __future__ import annotations

import array
import base64
import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path

import orjson

from .cache import replaced

Signature = tuple[int, int, int, int]  # size, mtime_ns, ctime_ns, inode


@dataclass
class Spans:
    """Where the members of one file lie: the ``i``-th of ``tags`` at byte offset
    ``places[2 * i]``, ``places[2 * i + 1]`` bytes long (compact: 50,000 members at
    10,000 services)."""

    tags: list[str] = field(default_factory=list)
    places: array.array = field(default_factory=lambda: array.array("q"))

    def add(self, tag: str, at: int, size: int) -> None:
        """Note that ``tag`` lies at byte ``at``, ``size`` bytes long."""
        self.tags.append(tag)
        self.places.append(at)
        self.places.append(size)

    def lookup(self) -> dict[str, tuple[int, int]]:
        """``{tag: (byte offset, byte length)}``."""
        places = self.places
        return {tag: (places[2 * i], places[2 * i + 1]) for i, tag in enumerate(self.tags)}


FOLDER = "outputs"  # under the cache folder


def signature(path: str) -> Signature | None:
    """The stat signature of the regular file ``path``; ``None`` when it is not one."""
    try:
        st = os.stat(path, follow_symlinks=False)
    except OSError:
        return None
    return stat_signature(st)


def stat_signature(st: os.stat_result) -> Signature | None:
    """The signature of a file's ``stat`` result; ``None`` when it is no regular file."""
    if (st.st_mode & 0o170000) != 0o100000:  # a symlink, folder or device: never trusted
        return None
    return (st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)


@dataclass
class Index:
    """``files``: ``{relative path: (signature, sha256)}``; ``services``: ``{service id:
    render key}``; ``members``: ``{relative path: spans}``, where each service's part of a
    file every service feeds lies (:class:`s402gen.incremental.Splice`); ``code``: the
    :func:`s402gen.cache.code_key` they were made with."""

    out: Path
    code: str
    files: dict[str, tuple[Signature, str]] = field(default_factory=dict)
    services: dict[str, str] = field(default_factory=dict)
    members: dict[str, Spans] = field(default_factory=dict)
    #: what :meth:`known` found in place: ``{relative path: (signature, sha256)}``
    verified: dict[str, tuple[Signature, str]] = field(default_factory=dict)

    def known(self, relative: str) -> str | None:
        """The sha256 of ``relative`` when its stat is the recorded one, else ``None``."""
        recorded = self.files.get(relative)
        if recorded is None:
            return None
        if signature(os.path.join(self.out, relative)) != recorded[0]:
            return None
        self.verified[relative] = recorded
        return recorded[1]


def index_file(folder: Path, out: Path) -> Path:
    """Where the index of the output folder ``out`` is kept under the cache ``folder``."""
    name = hashlib.sha256(str(out.resolve()).encode()).hexdigest()[:32]
    return folder / FOLDER / f"{name}.json"


def load(folder: Path | None, out: Path, code: str | None) -> Index | None:
    """The index of ``out`` made with ``code``; ``None`` when absent, unreadable or stale."""
    if folder is None or code is None:
        return None
    try:
        data = orjson.loads(index_file(folder, out).read_bytes())
        if data.get("code") != code:
            return None
        files = {str(k): (tuple(v[0]), str(v[1])) for k, v in data["files"].items()}
        services = {str(k): str(v) for k, v in data["services"].items()}
        members = {}
        for path, (tags, packed) in data.get("members", {}).items():
            places = array.array("q", base64.b64decode(packed, validate=True))
            if len(places) == 2 * len(tags):
                members[str(path)] = Spans([str(tag) for tag in tags], places)
        return Index(out, code, files, services, members)
    except (OSError, ValueError, KeyError, TypeError, IndexError, AttributeError):
        return None


def record(
    folder: Path | None,
    out: Path,
    code: str | None,
    digests: dict[str, str],
    services: dict[str, str],
    verified: dict[str, tuple[Signature, str]] | None = None,
    members: dict[str, Spans] | None = None,
) -> None:
    """Save the index of ``out``: ``digests`` (``{path: sha256}``, the manifest included) as
    they are on disk now, the services' render keys, and where the ``members`` of the files
    every service feeds lie (of files in ``digests`` only). A file ``verified`` (what
    :meth:`Index.known` found in place this run) with the same sha256 keeps the stat it had
    then, unread (had it changed since, the next run would hash it: a miss, never a wrong
    hit). Never raises (a cache that cannot be written only costs time)."""
    if folder is None or code is None:
        return
    files = {}
    verified = verified or {}
    for relative, digest in digests.items():
        seen = verified.get(relative)
        sig = seen[0] if seen and seen[1] == digest else signature(os.path.join(out, relative))
        if sig is not None:
            files[relative] = [list(sig), digest]
    target = index_file(folder, out)
    try:
        spans = {  # the places packed (base64 of the machine's int64s): 10 MiB fewer ints
            path: [found.tags, base64.b64encode(found.places.tobytes()).decode("ascii")]
            for path, found in (members or {}).items()
            if path in files
        }
        payload = {"code": code, "files": files, "services": services, "members": spans}
        with replaced(target) as file:
            file.write(orjson.dumps(payload))
    except OSError:
        pass


def forget(folder: Path | None, out: Path) -> None:
    """Drop the index of ``out`` (before a build changes it: a build cut short must not
    leave an index that vouches for files it replaced). Never raises."""
    if folder is None:
        return
    try:
        index_file(folder, out).unlink(missing_ok=True)
    except OSError:
        pass
