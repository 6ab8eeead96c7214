"""Write and check stages: the file map against the output folder.

``build`` writes only files whose bytes changed, deletes the files the
previous manifest recorded that this build no longer produces, and touches
nothing else; it applies the whole change or none of it, even when killed
(:mod:`s402gen.commit`), and never reads, writes or deletes through a
symbolic link (:mod:`s402gen.outdir`). Both commands hold the output
folder's lock, so two runs on one folder take turns. ``check``
compares the same file map with the disk and explains any drift as a
unified diff, bounded so that ``check`` answers within seconds at any
catalog size (see the ``DIFF_*`` limits, :mod:`s402gen.drift_diff`). The manifest
``manifest.json`` lists every generated file with its sha256.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import itertools
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Callable, Iterable, Iterator

import orjson

from .commit import (
    JOURNAL,
    STAGING_PREFIX,  # noqa: F401 - re-exported: where a build stages
    abandon,
    begin,
    commit,
    pending,
    recover,
)
from .drift_diff import (  # noqa: F401 - re-exported: the limits of check's diff
    DIFF_MAX_FILE_BYTES,
    DIFF_MAX_FILE_LINES,
    DIFF_MAX_TOTAL_BYTES,
    DIFF_MAX_TOTAL_INPUT_BYTES,
    bounded_diff,
)
from .outdir import OutputFolder, UnsafePath

MANIFEST = "manifest.json"


def sha256(text: str) -> str:
    """Hex sha256 of ``text`` encoded as UTF-8."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def text_of(chunks: Iterable[str] | Iterable[bytes]) -> str:
    """The whole text of a file's chunks (text, or UTF-8 bytes, which may split a character
    between two chunks). Raises ``UnicodeDecodeError`` for bytes that are not UTF-8."""
    parts = [c.encode("utf-8") if isinstance(c, str) else c for c in chunks]
    return b"".join(parts).decode("utf-8")


def manifest_bytes(digests: dict[str, str]) -> bytes:
    """The manifest of ``{path: sha256}`` (the manifest itself excluded), sorted by path:
    ``json.dumps(..., indent=2)``'s text and a newline, as the bytes written (ASCII: a
    path that is not is escaped)."""
    listed = {path: digests[path] for path in sorted(digests) if path != MANIFEST}
    document = {"generator": "s402gen", "files": listed}
    # orjson (C) writes the same text for ASCII, as bytes, at no cost in memory; json's
    # indenting encoder is Python, 150,000 pieces at 10,000 services before they are
    # joined, then a text to encode (3.5 MiB each)
    try:
        data = orjson.dumps(document, option=orjson.OPT_INDENT_2 | orjson.OPT_APPEND_NEWLINE)
    except TypeError:  # a lone surrogate: json escapes it
        data = None
    if data is None or not data.isascii() or b"\x7f" in data:  # json escapes DEL too
        data = (json.dumps(document, indent=2) + "\n").encode("ascii")
    return data


def manifest_text(digests: dict[str, str]) -> str:
    """:func:`manifest_bytes` as text."""
    return manifest_bytes(digests).decode("ascii")


def _manifest_bytes(out: Path | OutputFolder | None) -> bytes | None:
    """The bytes of ``out``'s manifest (a path is opened without following links)."""
    if not isinstance(out, Path):
        return _read_bytes(out, MANIFEST)
    try:
        folder = OutputFolder.open(out, create=False)
    except (UnsafePath, OSError):
        return None
    if folder is None:
        return None
    with folder:
        return _read_bytes(folder, MANIFEST)


def _parse_manifest(raw: bytes | None) -> dict | None:
    """The JSON of manifest bytes ``raw`` when s402gen wrote them, else ``None``."""
    try:
        data = json.loads(raw or b"")
    except ValueError:
        return None
    if not isinstance(data, dict) or data.get("generator") != "s402gen":
        return None
    return data if isinstance(data.get("files"), dict) else None


def _listed(data: dict | None) -> dict[str, str]:
    """``{path: sha256}`` of a parsed s402gen manifest (:func:`_parse_manifest`): its
    plain relative paths only; empty for ``None``."""
    if data is None:
        return {}
    return {str(k): str(v) for k, v in data["files"].items() if is_safe(str(k))}


def read_manifest(out: Path | OutputFolder | None) -> dict[str, str]:
    """``{path: sha256}`` of the s402gen manifest in ``out``; empty when there is none.

    A ``manifest.json`` that s402gen did not write is not trusted: nothing it
    lists is ever deleted. Neither is an entry that is not a plain relative path.
    """
    return _listed(_parse_manifest(_manifest_bytes(out)))


def is_safe(relative: str) -> bool:
    """Only plain relative paths inside the output folder (a manifest is input too): no
    empty, ``.`` or ``..`` part, no backslash or NUL."""
    parts = relative.split("/")
    return (
        bool(relative)
        and all(part not in ("", ".", "..") for part in parts)
        and "\\" not in relative
        and "\0" not in relative
    )


def _read_text(folder: OutputFolder | None, path: str) -> str | None:
    """The text of ``path`` for a diff (``None``: absent; unreadable bytes are marked)."""
    data = _read_bytes(folder, path)
    if data is None:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return "\0unreadable"


@dataclass(frozen=True)
class Unchanged:
    """In place of a file's text chunks: the caller knows that the file on disk already
    holds that text, whose sha256 is ``digest`` (see :mod:`s402gen.statcache`), so it is
    neither rendered nor read."""

    digest: str


Files = Iterable[tuple[str, "Iterable[str] | Iterable[bytes] | Unchanged"]]


def _consume(
    chunks: Iterable[str] | Iterable[bytes],
    current: BinaryIO | None,
    staged: Callable[[], BinaryIO] | None,
) -> tuple[str, bool]:
    """Hash ``chunks`` (text, or its UTF-8 bytes) and compare them with the file ``current``
    (open for reading at its start; ``None``: absent), a block at a time (:func:`_blocks`),
    so that neither text is ever held whole (catalog.json is 161 MiB at 10,000 services).

    Returns (hex sha256, equal to ``current``). When ``staged`` is given and
    the text differs, the whole text is written to the file it opens: the part
    already compared is copied from ``current``, so unchanged files cost no write.
    """
    digest = hashlib.sha256()
    same = current is not None
    sink: BinaryIO | None = None
    position = 0
    try:
        for data in _blocks(chunks):
            digest.update(data)
            if same and current.read(len(data)) != data:  # type: ignore[union-attr]
                same = False
            if not same and staged is not None:
                if sink is None:
                    sink = _start_staged(staged, current, position)
                sink.write(data)
            position += len(data)
        if same and current.read(1):  # type: ignore[union-attr]  # the file is longer
            same = False
            if staged is not None:
                _start_staged(staged, current, position).close()
    finally:
        if sink is not None:
            sink.close()
    return digest.hexdigest(), same


BLOCK = 1 << 16
"""Bytes :func:`_consume` hashes, compares and writes at once (small chunks joined)."""


def _blocks(chunks: Iterable[str] | Iterable[bytes]) -> Iterator[bytes]:
    """``chunks`` as UTF-8 bytes, those under :data:`BLOCK` joined until they reach it (a
    chunk of that size or more passes alone, not copied): an aggregate at 10,000 services
    is 80,000 chunks (a member, the key before it), and each costs a hash update, a read
    and a write of its own."""
    pending: list[bytes] = []
    size = 0
    for chunk in chunks:
        data = chunk if isinstance(chunk, bytes) else chunk.encode("utf-8")
        large = len(data) >= BLOCK
        if not large:
            pending.append(data)
            size += len(data)
        if pending and (large or size >= BLOCK):
            yield b"".join(pending)
            pending.clear()
            size = 0
        if large:
            yield data
    if pending:
        yield b"".join(pending)


def _start_staged(
    staged: Callable[[], BinaryIO], current: BinaryIO | None, length: int
) -> BinaryIO:
    """The staged file ``staged`` opens, holding the first ``length`` bytes of ``current``."""
    sink = staged()
    if current is not None and length:
        current.seek(0)
        while length:
            block = current.read(min(length, 1 << 20))
            if not block:
                break
            sink.write(block)
            length -= len(block)
    return sink


def _opened(folder: OutputFolder, path: str) -> tuple[BinaryIO | None, str | None]:
    """``path`` in ``folder`` open for reading at its start (``None``: absent), and the
    reason it cannot be read (``"<path> <reason>"``: a link, folder or special file, see
    :class:`UnsafePath`; then ``None`` for the file)."""
    try:
        return folder.open_read(path), None
    except UnsafePath as exc:
        return None, f"{exc.path} {exc.reason}"


def _sha256(handle: BinaryIO) -> str:
    """The sha256 of the whole file ``handle``, read in blocks from its start."""
    handle.seek(0)
    return hashlib.file_digest(handle, "sha256").hexdigest()


def _read_bytes(folder: OutputFolder | None, path: str) -> bytes | None:
    """The bytes of ``path``, ``None`` when absent or not a regular file s402gen could
    have written (a link, a folder, a FIFO: see :class:`UnsafePath`)."""
    if folder is None:
        return None
    try:
        return folder.read(path)
    except UnsafePath:
        return None


FOREIGN_LISTED = 20
"""At most this many foreign files are named when an output folder is refused."""


@dataclass
class BuildReport:
    """What a build did; paths are relative to the output folder.

    ``conflicts``: files in the way that s402gen did not write; ``edited``: generated
    files edited by hand since (their sha256 differs from the manifest's); ``unsafe``:
    ``path reason`` of links, folders or special files where a file goes; ``foreign``:
    files of an output folder without an s402gen manifest (at most
    :data:`FOREIGN_LISTED`). Any of them means nothing was written. ``manifest_sha256``
    is the hex sha256 of the manifest's bytes, ``files`` the ``{path: sha256}`` it lists.
    """

    written: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    kept_modified: list[str] = field(default_factory=list)
    conflicts: list[str] = field(default_factory=list)
    edited: list[str] = field(default_factory=list)
    unsafe: list[str] = field(default_factory=list)
    foreign: list[str] = field(default_factory=list)
    unchanged: int = 0
    manifest_sha256: str = ""
    files: dict[str, str] = field(default_factory=dict)

    @property
    def refused(self) -> bool:
        """True when the build wrote nothing because of what is in the output folder."""
        return bool(self.conflicts or self.edited or self.unsafe or self.foreign)


def open_locked(out: Path, *, create: bool, waiting: Callable[[], None] | None = None):
    """Open the output folder, take its lock (``waiting`` is called if another run holds
    it) and finish or discard what a killed build left there (:func:`commit.recover`).

    Returns ``(folder or None when absent and not create, recovered outcome or None)``.
    Raises :class:`UnsafePath` when ``out`` is a link or not a folder.
    """
    folder = OutputFolder.open(out, create=create)
    if folder is None:
        return None, None
    folder = folder.lock(waiting)
    try:
        return folder, recover(folder)
    except BaseException:
        folder.close()  # the lock with it: a caller that goes on must not wait on itself
        raise


def release(folder: OutputFolder | None) -> None:
    """Close ``folder`` (dropping its lock); a folder this run created and left empty is
    removed, so a failed first build leaves nothing behind."""
    if folder is None:
        return
    try:
        if folder.created and folder.is_empty():
            os.rmdir(folder.path)
    except OSError:
        pass
    folder.close()


def build(
    out: Path | OutputFolder,
    files: Files,
    *,
    force: bool = False,
    known: Callable[[str], str | None] | None = None,
) -> BuildReport:
    """Bring ``out`` in line with ``files`` (``(relative path, text chunks)``).

    ``out`` is a path (opened, locked and recovered here) or an :class:`OutputFolder`
    the caller has locked. Each file is streamed once: hashed, compared with the disk
    and, when it differs, written in full to the build's staging folder. Only when every
    file has rendered are the changes committed through the journal
    (:mod:`s402gen.commit`: old or new, never a mix): changed files moved into place,
    recorded orphans removed, the manifest last. An error while rendering leaves ``out``
    as it was. The build is refused, writing nothing, when a file in the way was not
    written by s402gen, was edited by hand since, or is a link or special file, and when
    the folder has files but no s402gen manifest (see :class:`BuildReport`); ``force``
    overrides all of these but links and special files. A recorded orphan edited since
    it was generated is kept and listed in ``kept_modified``. ``known(path)`` gives
    a file's sha256 when its stat vouches for it (as in :func:`matches_manifest`): a
    changed file it vouches for is not read again to tell whether it was edited by
    hand. Raises ``OSError`` when the disk refuses a write, and whatever ``files``
    raises.
    """
    if isinstance(out, OutputFolder):
        return _build(out, files, force, known)
    folder, _ = open_locked(out, create=True)
    try:
        return _build(folder, files, force, known)
    finally:
        release(folder)


def _build(
    folder: OutputFolder, files: Files, force: bool, known: Callable[[str], str | None] | None
) -> BuildReport:
    report = BuildReport()
    recorded_bytes = _read_bytes(folder, MANIFEST)  # read once: the folder is locked
    recorded = _parse_manifest(recorded_bytes)
    ours = recorded is not None  # written by s402gen: trusted
    previous = _listed(recorded)
    # all the rest needs of the manifest's bytes and JSON (10 MiB at 10,000 services)
    recorded_sha = None if recorded_bytes is None else hashlib.sha256(recorded_bytes).digest()
    del recorded_bytes, recorded
    if not ours and folder.kind(MANIFEST) is not None and not force:
        report.conflicts.append(MANIFEST)
    plan = begin(folder)
    committed = False
    try:
        digests: dict[str, str] = {}
        for path, chunks in files:
            if isinstance(chunks, Unchanged):  # reused: its bytes are known to be in place
                was = previous.get(path)  # the manifest's text of the same digest, held once
                digests[path] = was if was == chunks.digest else chunks.digest  # type: ignore
                report.unchanged += 1
                continue
            current, unsafe = _opened(folder, path)
            staged = functools.partial(folder.create, f"{plan.staging}/{path}")
            with current if current is not None else contextlib.nullcontext():
                digests[path], same = _consume(chunks, current, staged)
                edited = (
                    current is not None
                    and not same
                    and path in previous
                    and (known is None or known(path) != previous[path])
                    and _sha256(current) != previous[path]
                )
            if unsafe is not None:
                if unsafe not in report.unsafe:
                    report.unsafe.append(unsafe)
            elif same:
                report.unchanged += 1
            elif current is None or force:
                plan.moves.append(path)
            elif path not in previous:
                report.conflicts.append(path)
            elif edited:
                report.edited.append(path)
            else:
                plan.moves.append(path)
        if not ours and not force:
            report.foreign = _foreign(folder, digests, plan.staging)
        if report.refused:
            return report
        encoded = manifest_bytes(digests)
        made = hashlib.sha256(encoded)
        report.files, report.manifest_sha256 = digests, made.hexdigest()
        if recorded_sha != made.digest():
            folder.write(f"{plan.staging}/{MANIFEST}", encoded)
            plan.moves.append(MANIFEST)
        else:
            report.unchanged += 1
        del encoded
        plan.deletions = {p: d for p, d in previous.items() if p not in digests}
        if plan.moves or any(_exists(folder, p) for p in plan.deletions):
            committed = True  # from here on an interruption is rolled forward, not undone
            applied = commit(folder, plan, previous)
            report.written = list(plan.moves)
            report.removed, report.kept_modified = applied.removed, applied.kept
    finally:
        if not committed:
            abandon(folder, plan)
    return report


def _exists(folder: OutputFolder, path: str) -> bool:
    try:
        return folder.kind(path) is not None
    except UnsafePath:
        return False


def _foreign(folder: OutputFolder, digests: dict[str, str], staging: str) -> list[str]:
    """Files in ``folder`` that this build does not generate (at most FOREIGN_LISTED)."""
    ours = (JOURNAL, staging + "/")
    found = []
    for path in folder.files(10 * FOREIGN_LISTED):
        if path not in digests and path != MANIFEST and not path.startswith(ours):
            found.append(path)
            if len(found) == FOREIGN_LISTED:
                break
    return found


@dataclass
class Drift:
    """How ``out`` differs from a file map; ``diff`` is a unified diff of it, within the
    ``DIFF_*`` limits (a summary line stands for what is left out). ``manifest_sha256``
    is the hex sha256 of the file map's manifest, ``files`` the ``{path: sha256}`` it
    lists."""

    changed: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    orphans: list[str] = field(default_factory=list)
    diff: str = ""
    manifest_sha256: str = ""
    files: dict[str, str] = field(default_factory=dict)
    first_lines: dict[str, int] = field(default_factory=dict)
    """The first differing line (1-based, on disk) of each changed file the diff does not show."""

    @property
    def clean(self) -> bool:
        """True when the output folder is up to date."""
        return not (self.changed or self.missing or self.orphans)


def check(out: Path | OutputFolder | None, files: Callable[[], Files]) -> Drift:
    """Compare the files ``files()`` yields with ``out``, writing nothing.

    ``out`` is a path (opened and locked here; ``check`` then also finishes or discards
    what a killed build left, see :func:`open_locked`), an :class:`OutputFolder` the
    caller has locked, or ``None`` for an output folder that does not exist. A first
    pass streams every file, holding one chunk at a time; only when something drifted
    does a second call of ``files()`` render the drifted files in full for the unified
    diff. A link, folder or special file where a file goes is drift, named, not read.
    """
    if isinstance(out, Path):
        folder, _ = open_locked(out, create=False)
        try:
            return check(folder, files)
        finally:
            release(folder)
    drift = Drift()
    digests: dict[str, str] = {}
    unsafe: dict[str, str] = {}
    for path, chunks in files():
        if isinstance(chunks, Unchanged):
            digests[path] = chunks.digest
            continue
        current, reason = _opened(out, path) if out is not None else (None, None)
        if reason is not None:
            unsafe[path] = reason
        with current if current is not None else contextlib.nullcontext():
            digests[path], same = _consume(chunks, current, None)
        if not same:
            (drift.missing if current is None and path not in unsafe else drift.changed).append(
                path
            )
    manifest = manifest_bytes(digests)
    drift.files, drift.manifest_sha256 = digests, hashlib.sha256(manifest).hexdigest()
    current_manifest = _read_bytes(out, MANIFEST)
    if current_manifest != manifest:
        (drift.missing if current_manifest is None else drift.changed).append(MANIFEST)
    if out is not None:
        drift.orphans = [
            p
            for p in sorted(set(_listed(_parse_manifest(current_manifest))) - set(digests))
            if _exists(out, p)
        ]
    if drift.clean:
        return drift
    drifted = set(drift.changed + drift.missing) - set(unsafe)
    new_texts = {
        path: text_of(chunks)  # type: ignore[arg-type]  # a drifted file is never Unchanged
        for path, chunks in files()
        if path in drifted
    }
    new_texts[MANIFEST] = manifest.decode("ascii")
    pairs = itertools.chain(  # lazy: one file's old text in memory at a time
        ((p, _read_text(out, p), new_texts.pop(p)) for p in sorted(drifted)),
        ((p, _read_text(out, p), None) for p in drift.orphans),
    )
    chunks_out = [f"not compared: {unsafe[p]}\n" for p in sorted(unsafe)]
    chunks_out += bounded_diff(pairs, drift.first_lines)
    drift.diff = "".join(chunks_out)
    return drift


def matches_manifest(
    out: OutputFolder | None,
    manifest_sha256: str,
    lookup: Callable[[], Callable[[str], str | None] | None] | None = None,
) -> bool:
    """True when ``out`` holds the manifest whose text's sha256 (hex) is
    ``manifest_sha256``, every file it lists unchanged, and no killed build's journal is
    pending.

    ``lookup()`` is called once the manifest's sha256 matches, before the files it lists
    are read (so that what it loads, say the stat index, is never loaded for nothing, nor
    beside the parsed list): it gives ``known``, or ``None``. ``known(path)`` gives the
    sha256 of a file when it is known without reading it (its stat is unchanged since
    it was hashed, see :mod:`s402gen.statcache`), else ``None``.
    """
    raw = _read_bytes(out, MANIFEST)
    if raw is None or hashlib.sha256(raw).hexdigest() != manifest_sha256 or pending(out):
        return False
    known = lookup() if lookup is not None else None
    for path, digest in json.loads(raw)["files"].items():
        if known is not None and known(path) == digest:
            continue
        try:
            current = out.open_read(path)
        except UnsafePath:
            return False
        if current is None:
            return False
        with current:
            if _sha256(current) != digest:
                return False
    return True
