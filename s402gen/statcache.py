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
unreadable, of another layout (:data:`FORMAT`) or written for other code (``code``
key), everything is hashed and rendered as without it.
"""

from __future__ import annotations

import array
import base64
import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Callable, Iterable

import orjson

from .cache import replaced

Signature = tuple[int, int, int, int]  # size, mtime_ns, ctime_ns, inode


@dataclass
class Spans:
    """Where the members of one file lie: the ``i``-th tag at byte offset
    ``places[2 * i]``, ``places[2 * i + 1]`` bytes long. The tags are kept as one UTF-8
    text, each ended by a newline (a tag is a slot and a service id: never a newline):
    80,000 members at 10,000 services, whose tags as strings took 6 MiB more."""

    tags: bytearray = field(default_factory=bytearray)
    places: array.array = field(default_factory=lambda: array.array("q"))

    def add(self, tag: str, at: int, size: int) -> None:
        """Note that ``tag`` lies at byte ``at``, ``size`` bytes long. Raises ``ValueError``
        for a tag holding a newline (service ids cannot: ``model_base.ID_PATTERN``)."""
        if "\n" in tag:
            raise ValueError(f"a member's tag holds a newline: {tag!r}")
        self.tags += tag.encode("utf-8")
        self.tags += b"\n"
        self.places.append(at)
        self.places.append(size)

    def count(self) -> int:
        """How many members are noted."""
        return self.tags.count(b"\n")

    def lookup(self) -> dict[str, tuple[int, int]]:
        """``{tag: (byte offset, byte length)}``."""
        places = self.places
        tags = self.tags.decode("utf-8").split("\n")[:-1]
        return {tag: (places[2 * i], places[2 * i + 1]) for i, tag in enumerate(tags)}


FOLDER = "outputs"  # under the cache folder
#: The index's layout (its ``format`` key); an index of another one is ignored.
FORMAT = 2
_SHA = 32  # bytes of a sha256
_STAT = 4  # ints of a signature


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
    inode = st.st_ino  # unsigned 64 bits (FUSE file systems that hash inodes fill them all):
    if inode >= 1 << 63:  # as the signed 64 bits the index packs, one to one
        inode -= 1 << 64
    return (st.st_size, st.st_mtime_ns, st.st_ctime_ns, inode)


class Index:
    """The recorded state of the output folder ``out``, made with the
    :func:`s402gen.cache.code_key` ``code``: each file's stat signature and sha256 (kept
    packed, a row per file: 30,000 files at 10,000 services), each service's render key
    (``services``: ``{service id: render key}``), and where each service's part of a file
    every service feeds lies (:meth:`take_spans`, for :class:`s402gen.incremental.Splice`).

    :attr:`verified` collects the files :meth:`known` found in place. Raises
    ``ValueError`` when ``stats`` (four ints a path) or ``sha256`` (32 bytes a path) do
    not match ``paths``.
    """

    def __init__(
        self,
        out: Path,
        code: str,
        paths: list[str],
        stats: array.array,
        sha256: bytes,
        services: dict[str, str],
        members: dict[str, Spans],
    ):
        if len(stats) != _STAT * len(paths) or len(sha256) != _SHA * len(paths):
            raise ValueError("the rows do not match the paths")
        self.out = out
        self.code = code
        self._rows = {path: row for row, path in enumerate(paths)}
        self._stats = stats
        self._sha256 = sha256
        self.services = services
        self._members = members
        #: the files :meth:`known` found in place
        self.verified: set[str] = set()

    def paths(self) -> list[str]:
        """The files recorded, relative to :attr:`out`."""
        return list(self._rows)

    def recorded(self, relative: str) -> tuple[Signature, str] | None:
        """The signature and sha256 recorded for ``relative``; ``None`` when none is."""
        row = self._rows.get(relative)
        if row is None:
            return None
        at = _STAT * row
        sig: Signature = tuple(self._stats[at : at + _STAT])  # type: ignore[assignment]
        return sig, self._sha256[_SHA * row : _SHA * (row + 1)].hex()

    def known(self, relative: str) -> str | None:
        """The sha256 of ``relative`` when its stat is the recorded one, else ``None``."""
        recorded = self.recorded(relative)
        if recorded is None or signature(os.path.join(self.out, relative)) != recorded[0]:
            return None
        self.verified.add(relative)
        return recorded[1]

    def lends(self, relative: str) -> bool:
        """Whether where the members of ``relative`` lie was recorded."""
        return relative in self._members

    def take_spans(self, relative: str) -> dict[str, tuple[int, int]]:
        """``{tag: (byte offset, byte length)}`` of the members of ``relative`` (empty when
        none were recorded), let go from the index: a file is assembled once a run, and
        what a build holds at its peak is then one file's spans, not every file's."""
        found = self._members.pop(relative, None)
        return {} if found is None else found.lookup()


def index_file(folder: Path, out: Path) -> Path:
    """Where the index of the output folder ``out`` is kept under the cache ``folder``."""
    name = hashlib.sha256(str(out.resolve()).encode()).hexdigest()[:32]
    return folder / FOLDER / f"{name}.json"


def _packed(text: str) -> bytes:
    return base64.b64decode(text, validate=True)


def load(folder: Path | None, out: Path, code: str | None) -> Index | None:
    """The index of ``out`` made with ``code``; ``None`` when absent, unreadable, stale or
    of another :data:`FORMAT`."""
    if folder is None or code is None:
        return None
    try:
        data = orjson.loads(index_file(folder, out).read_bytes())
        if data.get("format") != FORMAT or data.get("code") != code:
            return None
        paths = [str(path) for path in data["paths"]]
        stats = array.array("q", _packed(data["stats"]))
        services = {str(k): str(v) for k, v in data["services"].items()}
        members = {}
        for path, (tags, packed) in data["members"].items():
            found = Spans(bytearray(tags.encode("utf-8")), array.array("q", _packed(packed)))
            if len(found.places) == 2 * found.count():
                members[str(path)] = found
        return Index(out, code, paths, stats, _packed(data["sha256"]), services, members)
    except (OSError, ValueError, KeyError, TypeError, IndexError, AttributeError):
        return None


def record(
    folder: Path | None,
    out: Path,
    code: str | None,
    digests: dict[str, str],
    services: dict[str, str],
    previous: Index | None = None,
    members: dict[str, Spans] | None = None,
) -> None:
    """Save the index of ``out``: ``digests`` (``{path: sha256}``, the manifest included) as
    they are on disk now, the services' render keys, and where the ``members`` of the files
    every service feeds lie (of files in ``digests`` only). A file the ``previous`` index
    (this run's) verified in place (:meth:`Index.known`) with the same sha256 keeps the
    stat it had then, unread (had it changed since, the next run would hash it: a miss,
    never a wrong hit). Never raises (a cache that cannot be written only costs time)."""
    if folder is None or code is None:
        return
    paths: list[str] = []
    stats = array.array("q")
    sha256 = bytearray()
    verified = previous.verified if previous is not None else set()
    for relative, digest in digests.items():
        seen = previous.recorded(relative) if relative in verified else None  # type: ignore
        sig = seen[0] if seen and seen[1] == digest else signature(os.path.join(out, relative))
        try:
            row, raw = array.array("q", sig or ()), bytes.fromhex(digest)
        except (ValueError, OverflowError):  # a value the row cannot hold: not recorded
            continue
        if len(row) == _STAT and len(raw) == _SHA:
            paths.append(relative)
            stats.extend(row)
            sha256 += raw
    kept = {path: found for path, found in (members or {}).items() if path in digests}
    # each value is made as JSON when it is written: the whole at once would be one more
    # copy of it all (the two blobs were four copies each: raw, base64, text, JSON)
    parts = (
        ("format", lambda: orjson.dumps(FORMAT)),
        ("code", lambda: orjson.dumps(code)),
        ("paths", lambda: orjson.dumps(paths)),
        ("stats", lambda: _base64(stats)),
        ("sha256", lambda: _base64(sha256)),
        ("services", lambda: orjson.dumps(services)),
    )
    spans = (
        (path, lambda f=found: b"[%s,%s]" % (orjson.dumps(f.tags.decode()), _base64(f.places)))
        for path, found in kept.items()
    )
    try:
        with replaced(index_file(folder, out)) as file:
            file.write(b"{")
            _write_pairs(file, parts)
            file.write(b',"members":{')
            _write_pairs(file, spans)
            file.write(b"}}")
    except OSError:
        pass


def _write_pairs(file: BinaryIO, pairs: Iterable[tuple[str, Callable[[], bytes]]]) -> None:
    """Write ``pairs`` (a key, and what makes its value's JSON) as the members of a JSON
    object (no braces), one value made and written at a time."""
    for number, (key, value) in enumerate(pairs):
        file.write((b"," if number else b"") + orjson.dumps(key) + b":")
        file.write(value())


def _base64(data: bytes | bytearray | array.array) -> bytes:
    """``data`` (any bytes-like object) as a JSON string of its base64."""
    return b'"' + base64.b64encode(data) + b'"'


def forget(folder: Path | None, out: Path) -> None:
    """Drop the index of ``out`` (before a build changes it: a build cut short must not
    leave an index that vouches for files it replaced). Never raises."""
    if folder is None:
        return
    try:
        index_file(folder, out).unlink(missing_ok=True)
    except OSError:
        pass
