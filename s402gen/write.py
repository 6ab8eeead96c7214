"""Write and check stages: the file map against the output folder.

``build`` writes only files whose bytes changed (atomically, one file at a
time, the manifest last), deletes the files the previous manifest recorded
that this build no longer produces, and touches nothing else. ``check``
compares the same file map with the disk and explains any drift as a
unified diff. The manifest ``manifest.json`` lists every generated file
with its sha256.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

MANIFEST = "manifest.json"


def sha256(text: str) -> str:
    """Hex sha256 of ``text`` encoded as UTF-8."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def manifest_text(files: dict[str, str]) -> str:
    """The manifest of a file map (the manifest itself excluded), sorted by path."""
    listed = {path: sha256(files[path]) for path in sorted(files) if path != MANIFEST}
    return json.dumps({"generator": "s402gen", "files": listed}, indent=2) + "\n"


def read_manifest(out: Path) -> dict[str, str]:
    """``{path: sha256}`` of the manifest in ``out``; empty when absent or unreadable."""
    try:
        data = json.loads((out / MANIFEST).read_text(encoding="utf-8"))
        files = data["files"]
    except (OSError, ValueError, KeyError, TypeError):
        return {}
    if not isinstance(files, dict):
        return {}
    return {str(k): str(v) for k, v in files.items() if _is_safe(str(k))}


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


@dataclass
class BuildReport:
    """What a build did; paths are relative to the output folder."""

    written: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    kept_modified: list[str] = field(default_factory=list)
    conflicts: list[str] = field(default_factory=list)


def build(out: Path, files: dict[str, str], *, force: bool = False) -> BuildReport:
    """Bring ``out`` in line with ``files``.

    A file that exists, differs, and was not written by s402gen (not in the
    previous manifest) is a conflict: nothing is written and ``conflicts``
    lists them, unless ``force``. A recorded orphan that was edited since it
    was generated is kept and listed in ``kept_modified``. Raises ``OSError``
    when the disk refuses a write.
    """
    report = BuildReport()
    previous = read_manifest(out)
    changed = []
    for path in sorted(files):
        current = _read(out / path)
        if current == files[path]:
            continue
        if current is not None and path != MANIFEST and path not in previous and not force:
            report.conflicts.append(path)
        changed.append(path)
    if report.conflicts:
        return report
    for path in changed:
        if path != MANIFEST:
            _write_atomic(out / path, files[path])
            report.written.append(path)
    for path in sorted(set(previous) - set(files)):
        target = out / path
        current = _read(target)
        if current is None:
            continue
        if sha256(current) != previous[path]:
            report.kept_modified.append(path)
            continue
        target.unlink()
        report.removed.append(path)
        _prune_empty_dirs(target.parent, out)
    if MANIFEST in changed:
        _write_atomic(out / MANIFEST, files[MANIFEST])
        report.written.append(MANIFEST)
    return report


def _write_atomic(target: Path, text: str) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(prefix=".s402gen-", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(text.encode("utf-8"))
        os.replace(temp, target)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


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
    """How ``out`` differs from a file map; ``diff`` is a unified diff of all of it."""

    changed: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    orphans: list[str] = field(default_factory=list)
    diff: str = ""

    @property
    def clean(self) -> bool:
        """True when the output folder is up to date."""
        return not (self.changed or self.missing or self.orphans)


def check(out: Path, files: dict[str, str]) -> Drift:
    """Compare ``files`` with ``out`` without writing anything."""
    drift = Drift()
    chunks: list[str] = []
    for path in sorted(files):
        current = _read(out / path)
        if current == files[path]:
            continue
        (drift.missing if current is None else drift.changed).append(path)
        chunks.append(_diff(current, files[path], path))
    for path in sorted(set(read_manifest(out)) - set(files)):
        current = _read(out / path)
        if current is not None:
            drift.orphans.append(path)
            chunks.append(_diff(current, None, path))
    drift.diff = "".join(chunks)
    return drift


def _diff(old: str | None, new: str | None, path: str) -> str:
    lines = difflib.unified_diff(
        (old or "").splitlines(keepends=True),
        (new or "").splitlines(keepends=True),
        fromfile="/dev/null" if old is None else f"a/{path}",
        tofile="/dev/null" if new is None else f"b/{path}",
    )
    return "".join(line if line.endswith("\n") else line + "\n" for line in lines)
