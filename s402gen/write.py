"""Write and check stages: the file map against the output folder.

``build`` writes only files whose bytes changed (atomically, one file at a
time, the manifest last), deletes the files the previous manifest recorded
that this build no longer produces, and touches nothing else. ``check``
compares the same file map with the disk and explains any drift as a
unified diff, bounded so that ``check`` answers within seconds at any
catalog size (see the ``DIFF_*`` limits below). The manifest
``manifest.json`` lists every generated file with its sha256.
"""

from __future__ import annotations

import difflib
import hashlib
import itertools
import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Callable, Iterable

MANIFEST = "manifest.json"

# Limits of the drift diff ``check`` prints. A unified diff costs up to quadratic time in the
# lines of a file (difflib), so a large catalog that drifted everywhere took minutes; past these
# limits ``check`` prints a one-line summary instead, and still reports every drifted file as a
# finding. A small drift is printed in full, exactly as before.
DIFF_MAX_FILE_BYTES = 128 * 1024
"""A file whose old or new text is larger (UTF-8 bytes) is not diffed; one summary line gives
both sizes and sha256 digests instead."""
DIFF_MAX_FILE_LINES = 200
"""At most this many lines of diff per file (headers included), then ``... N more lines``."""
DIFF_MAX_TOTAL_BYTES = 128 * 1024
"""Once the printed diff reaches this size, the remaining drifted files are named, not diffed."""
DIFF_MAX_TOTAL_INPUT_BYTES = 4 * 1024 * 1024
"""Once the files diffed so far sum to this size (old and new text), the rest are named only:
this bounds the time spent in difflib whatever the diffs look like."""


def sha256(text: str) -> str:
    """Hex sha256 of ``text`` encoded as UTF-8."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def manifest_text(digests: dict[str, str]) -> str:
    """The manifest of ``{path: sha256}`` (the manifest itself excluded), sorted by path."""
    listed = {path: digests[path] for path in sorted(digests) if path != MANIFEST}
    return json.dumps({"generator": "s402gen", "files": listed}, indent=2) + "\n"


def _load_manifest(out: Path) -> dict | None:
    """The manifest's JSON when ``out`` holds an s402gen manifest, else ``None``."""
    try:
        data = json.loads((out / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("generator") != "s402gen":
        return None
    return data if isinstance(data.get("files"), dict) else None


def read_manifest(out: Path) -> dict[str, str]:
    """``{path: sha256}`` of the s402gen manifest in ``out``; empty when there is none.

    A ``manifest.json`` that s402gen did not write is not trusted: nothing it
    lists is ever deleted.
    """
    data = _load_manifest(out)
    if data is None:
        return {}
    return {str(k): str(v) for k, v in data["files"].items() if _is_safe(str(k))}


def _is_safe(relative: str) -> bool:
    """Only plain relative paths inside the output folder (a manifest is input too)."""
    parts = Path(relative).parts
    return bool(parts) and not Path(relative).is_absolute() and ".." not in parts


def _read(path: Path) -> str | None:
    try:
        return path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError):
        return "\0unreadable"


@dataclass(frozen=True)
class Unchanged:
    """In place of a file's text chunks: the caller knows that the file on disk already
    holds that text, whose sha256 is ``digest`` (see :mod:`s402gen.statcache`), so it is
    neither rendered nor read."""

    digest: str


Files = Iterable[tuple[str, "Iterable[str] | Unchanged"]]


def _consume(
    chunks: Iterable[str], current: BinaryIO | None, staged: Path | None
) -> tuple[str, bool]:
    """Hash ``chunks`` (UTF-8) and compare them with the file ``current`` (open for reading
    at its start; ``None``: absent), one chunk at a time, so that neither text is ever held
    whole (catalog.json is 161 MiB at 10,000 services).

    Returns (hex sha256, equal to ``current``). When ``staged`` is given and
    the text differs, the whole text is written there: the part already
    compared is copied from ``current``, so unchanged files cost no write.
    """
    digest = hashlib.sha256()
    same = current is not None
    sink: BinaryIO | None = None
    position = 0
    try:
        for chunk in chunks:
            data = chunk.encode("utf-8")
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


def _start_staged(staged: Path, current: BinaryIO | None, length: int) -> BinaryIO:
    """``staged`` open for writing, holding the first ``length`` bytes of ``current``."""
    staged.parent.mkdir(parents=True, exist_ok=True)
    sink = open(staged, "wb")
    if current is not None and length:
        current.seek(0)
        while length:
            block = current.read(min(length, 1 << 20))
            if not block:
                break
            sink.write(block)
            length -= len(block)
    return sink


def _open(path: Path) -> BinaryIO | None:
    """``path`` open for reading; ``None`` when it is absent or not a file."""
    try:
        return open(path, "rb")
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        return None


def _file_sha256(path: Path) -> str | None:
    """The sha256 of the file ``path``, read in blocks; ``None`` when it is absent."""
    current = _open(path)
    if current is None:
        return None
    with current:
        return hashlib.file_digest(current, "sha256").hexdigest()


@dataclass
class BuildReport:
    """What a build did; paths are relative to the output folder."""

    written: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    kept_modified: list[str] = field(default_factory=list)
    conflicts: list[str] = field(default_factory=list)
    unchanged: int = 0
    manifest: str = ""


STAGING_PREFIX = ".s402gen-staging-"


def build(out: Path, files: Files, *, force: bool = False) -> BuildReport:
    """Bring ``out`` in line with ``files`` (``(relative path, text chunks)``).

    Each file is streamed once: hashed, compared with the disk and, when it
    differs, written in full to a staging folder inside ``out``. Only when
    every file has rendered are the changed ones moved into place, orphans
    removed and the manifest written last: an error while rendering leaves
    ``out`` untouched. A file that exists, differs, and was not written by
    s402gen (not in the previous manifest) is a conflict: nothing is written
    and ``conflicts`` lists them, unless ``force``. A recorded orphan edited
    since it was generated is kept and listed in ``kept_modified``. Raises
    ``OSError`` when the disk refuses a write, and whatever ``files`` raises.
    """
    report = BuildReport()
    previous = read_manifest(out)
    original_manifest = _read(out / MANIFEST)
    created = not out.exists()
    out.mkdir(parents=True, exist_ok=True)
    for stale in stale_staging(out):  # left by a build that was killed
        shutil.rmtree(stale, ignore_errors=True)
    staging = Path(tempfile.mkdtemp(prefix=STAGING_PREFIX, dir=out))
    finished = False
    try:
        if (out / MANIFEST).exists() and _load_manifest(out) is None and not force:
            report.conflicts.append(MANIFEST)
        digests: dict[str, str] = {}
        changed: list[str] = []
        for path, chunks in files:
            if isinstance(chunks, Unchanged):
                digests[path] = chunks.digest
                report.unchanged += 1
                continue
            current = _open(out / path)
            try:
                digests[path], same = _consume(chunks, current, staging / path)
            finally:
                if current is not None:
                    current.close()
            if same:
                report.unchanged += 1
            elif current is not None and path not in previous and not force:
                report.conflicts.append(path)
            else:
                changed.append(path)
        finished = True
        if report.conflicts:
            return report
        manifest = report.manifest = manifest_text(digests)
        if changed:  # first record every file this build may leave, in case it is cut short
            interim = {**previous, **{path: digests[path] for path in changed}}
            _write(out / MANIFEST, manifest_text(interim), staging)
        for path in changed:
            _move(staging / path, out / path)
            report.written.append(path)
        for path in sorted(set(previous) - set(digests)):
            _remove_orphan(out, path, previous[path], report)
        if _read(out / MANIFEST) != manifest:
            _write(out / MANIFEST, manifest, staging)
        if original_manifest != manifest:
            report.written.append(MANIFEST)
        else:
            report.unchanged += 1
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        if created and not finished:
            shutil.rmtree(out, ignore_errors=True)  # it held only the staging folder
    return report


def stale_staging(out: Path) -> list[Path]:
    """Staging folders a killed build left in ``out``."""
    try:
        return sorted(p for p in out.iterdir() if p.name.startswith(STAGING_PREFIX) and p.is_dir())
    except OSError:
        return []


def _write(target: Path, text: str, staging: Path) -> None:
    staged = staging / target.name
    staged.write_bytes(text.encode("utf-8"))
    _move(staged, target)


def _move(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    os.replace(source, target)


def _remove_orphan(out: Path, path: str, digest: str, report: BuildReport) -> None:
    target = out / path
    current = _read(target)
    if current is None:
        return
    if sha256(current) != digest:
        report.kept_modified.append(path)
        return
    target.unlink()
    report.removed.append(path)
    _prune_empty_dirs(target.parent, out)


def _prune_empty_dirs(folder: Path, out: Path) -> None:
    out = out.resolve()
    folder = folder.resolve()
    while folder != out and out in folder.parents:
        try:
            folder.rmdir()
        except OSError:
            return
        folder = folder.parent


@dataclass
class Drift:
    """How ``out`` differs from a file map; ``diff`` is a unified diff of it, within the
    ``DIFF_*`` limits (a summary line stands for what is left out)."""

    changed: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    orphans: list[str] = field(default_factory=list)
    diff: str = ""
    manifest: str = ""
    first_lines: dict[str, int] = field(default_factory=dict)
    """The first differing line (1-based, on disk) of each changed file the diff does not show."""

    @property
    def clean(self) -> bool:
        """True when the output folder is up to date."""
        return not (self.changed or self.missing or self.orphans)


def check(out: Path, files: Callable[[], Files]) -> Drift:
    """Compare the files ``files()`` yields with ``out``, writing nothing.

    A first pass streams every file, holding one chunk at a time; only when
    something drifted does a second call of ``files()`` render the drifted
    files in full for the unified diff.
    """
    drift = Drift()
    digests: dict[str, str] = {}
    for path, chunks in files():
        if isinstance(chunks, Unchanged):
            digests[path] = chunks.digest
            continue
        current = _open(out / path)
        try:
            digests[path], same = _consume(chunks, current, None)
        finally:
            if current is not None:
                current.close()
        if not same:
            (drift.missing if current is None else drift.changed).append(path)
    manifest = drift.manifest = manifest_text(digests)
    current_manifest = _read(out / MANIFEST)
    if current_manifest != manifest:
        (drift.missing if current_manifest is None else drift.changed).append(MANIFEST)
    drift.orphans = [
        p for p in sorted(set(read_manifest(out)) - set(digests)) if (out / p).exists()
    ]
    drift.orphans += [f"{p.name}/" for p in stale_staging(out)]
    if drift.clean:
        return drift
    drifted = set(drift.changed + drift.missing)
    new_texts = {
        path: "".join(chunks)  # type: ignore[arg-type]  # a drifted file is never Unchanged
        for path, chunks in files()
        if path in drifted
    }
    new_texts[MANIFEST] = manifest
    pairs = itertools.chain(  # lazy: one file's old text in memory at a time
        ((p, _read(out / p), new_texts.pop(p)) for p in sorted(drifted)),
        ((p, _read(out / p), None) for p in drift.orphans if not p.endswith("/")),
    )
    chunks_out = _bounded_diff(pairs, drift.first_lines)
    drift.diff = "".join(chunks_out)
    return drift


def matches_manifest(
    out: Path, manifest: str, known: Callable[[str], str | None] | None = None
) -> bool:
    """True when ``out`` holds exactly ``manifest`` and every file it lists, unchanged.

    ``known(path)`` gives the sha256 of a file when it is known without reading it (its
    stat is unchanged since it was hashed, see :mod:`s402gen.statcache`), else ``None``.
    """
    if _read(out / MANIFEST) != manifest or stale_staging(out):
        return False
    for path, digest in json.loads(manifest)["files"].items():
        if known is not None and known(path) == digest:
            continue
        if _file_sha256(out / path) != digest:
            return False
    return True


def _bounded_diff(
    pairs: Iterable[tuple[str, str | None, str | None]], first_lines: dict[str, int]
) -> list[str]:
    """The diff chunks of ``(path, old, new)`` pairs (``None``: absent) within the ``DIFF_*``
    limits; ``first_lines`` receives the first differing line of each changed file that is not
    diffed in full."""
    chunks: list[str] = []
    printed = fed = 0
    left_out: list[str] = []
    for path, old, new in pairs:
        if not left_out and fed < DIFF_MAX_TOTAL_INPUT_BYTES:
            chunk, fed = _file_diff(path, old, new, fed, first_lines)
            if printed + len(chunk) <= DIFF_MAX_TOTAL_BYTES:
                chunks.append(chunk)
                printed += len(chunk)
                continue
        left_out.append(path)
        if old is not None and new is not None:
            first_lines[path] = _first_difference(old, new)
    if left_out:
        chunks.append(
            f"... diff limit reached ({DIFF_MAX_TOTAL_BYTES} bytes printed or "
            f"{DIFF_MAX_TOTAL_INPUT_BYTES} bytes compared): {len(left_out)} more drifted "
            "files not diffed:\n"
        )
        chunks.extend(f"... {path}\n" for path in left_out)
    return chunks


def _file_diff(
    path: str, old: str | None, new: str | None, fed: int, first_lines: dict[str, int]
) -> tuple[str, int]:
    """The diff chunk of one file and ``fed`` plus the bytes it compared: a one-line summary
    when the file is over ``DIFF_MAX_FILE_BYTES``."""
    old_bytes, new_bytes = _utf8(old), _utf8(new)
    if max(len(old_bytes or b""), len(new_bytes or b"")) > DIFF_MAX_FILE_BYTES:
        if old is not None and new is not None:
            first_lines[path] = _first_difference(old, new)
        sizes = f"{_describe(old_bytes)} -> {_describe(new_bytes)}"
        return f"file too large to diff: {path}: {sizes}\n", fed
    fed += len(old_bytes or b"") + len(new_bytes or b"")
    return _diff(old, new, path), fed


def _utf8(text: str | None) -> bytes | None:
    return None if text is None else text.encode("utf-8")


def _describe(data: bytes | None) -> str:
    """``N bytes, sha256 <hex>`` of ``data``, or ``absent``."""
    if data is None:
        return "absent"
    return f"{len(data)} bytes, sha256 {hashlib.sha256(data).hexdigest()}"


def _first_difference(old: str, new: str) -> int:
    """The 1-based line of ``old`` where ``new`` first differs (lines compared in order)."""
    line = 1
    for a, b in zip(old.splitlines(keepends=True), new.splitlines(keepends=True)):
        if a != b:
            break
        line += 1
    return line


def _diff(old: str | None, new: str | None, path: str) -> str:
    lines = difflib.unified_diff(
        (old or "").splitlines(keepends=True),
        (new or "").splitlines(keepends=True),
        fromfile="/dev/null" if old is None else f"a/{path}",
        tofile="/dev/null" if new is None else f"b/{path}",
    )
    out: list[str] = []
    for count, line in enumerate(lines):
        if count == DIFF_MAX_FILE_LINES:
            rest = sum(1 for _ in lines)
            out.append(f"... {rest + 1} more lines of this diff left out\n")
            break
        out.append(line if line.endswith("\n") else line + "\n")
    return "".join(out)
