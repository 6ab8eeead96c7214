"""A catalog as it was in a git commit, for ``s402gen diff --against REF``.

The catalog file is read with ``git cat-file blob REF:path``. A catalog split
with ``include:`` needs the files its globs name as they were in that commit
too: they are listed with ``git ls-tree`` and read with ``git cat-file
--batch`` (one process for all of them), and written under a temporary folder
at their paths from the repository root, next to the catalog, so the loader
resolves the globs there as it would in a checkout of REF. What is written is
a superset: a glob is matched with ``fnmatch``, whose ``*`` also crosses
``/``, and again with each ``**/`` left out (which ``glob`` lets match no
folder); the loader's own glob picks the files. Only regular files are
written, never a link, and never outside the temporary folder.
"""

from __future__ import annotations

import contextlib
import fnmatch
import os
import posixpath
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

from .load import include_patterns

#: ``git ls-tree`` modes of the files written: regular and executable (no link, no submodule)
_FILE_MODES = (b"100644", b"100755")


class GitError(Exception):
    """git is missing, failed, or answered what cannot be read; ``message`` says which."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


def git(args: list[str], cwd: Path, stdin: bytes | None = None) -> bytes:
    """Run git in ``cwd`` (``stdin`` as its input); its stdout. Raises :class:`GitError`
    when git is missing or fails (the last line of its stderr)."""
    try:
        done = subprocess.run(
            ["git", *args], cwd=cwd, input=stdin, capture_output=True, check=False
        )
    except FileNotFoundError:
        raise GitError("git is not installed (needed to read a git ref)") from None
    except OSError as exc:
        raise GitError(f"cannot run git: {exc}") from None
    if done.returncode != 0:
        lines = done.stderr.decode("utf-8", "replace").strip().splitlines()
        raise GitError(lines[-1] if lines else f"git {args[0]} failed ({done.returncode})")
    return done.stdout


def repository_path(path: Path) -> str:
    """The path of ``path`` from the root of the repository it is in (``/``-separated).
    Raises :class:`GitError` outside a repository."""
    folder = path.resolve().parent
    root = Path(os.fsdecode(git(["rev-parse", "--show-toplevel"], folder)).strip())
    return os.path.relpath(path.resolve(), root.resolve()).replace(os.sep, "/")


def _spec_path(spec: str, folder: Path) -> str:
    """The path from the repository root that ``REF:path`` names, read from ``folder``
    (git reads ``./x`` and ``../x`` from the current folder, other paths from the root)."""
    named = spec.partition(":")[2]
    if named.startswith(("./", "../")):
        prefix = os.fsdecode(git(["rev-parse", "--show-prefix"], folder)).strip()
        named = posixpath.normpath(posixpath.join(prefix, named))
    return named


@contextlib.contextmanager
def catalog_at(spec: str, folder: Path) -> Iterator[Path]:
    """The catalog ``spec`` (``REF:path``) names, with the files its ``include:`` globs
    may name, written under a temporary folder for the duration of the block; its path.

    ``folder`` is where git runs (the new catalog's folder). Raises :class:`GitError` for
    a bad ref or path, or git missing.
    """
    blob = git(["cat-file", "blob", spec], folder)  # a folder or a link is no file
    relative = _spec_path(spec, folder)
    with tempfile.TemporaryDirectory(prefix="s402gen-diff-") as tmp:
        path = Path(tmp, *relative.split("/"))
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(blob)
        patterns = include_patterns(str(path))
        if patterns:
            _write_included(spec.partition(":")[0], relative, patterns, folder, Path(tmp))
        yield path


def _write_included(ref: str, relative: str, patterns: list[str], folder: Path, root: Path) -> None:
    """Write under ``root`` every regular file of ``ref`` that a glob of ``patterns``
    (relative to the catalog at ``relative``) may name."""
    base = posixpath.dirname(relative)
    wanted = set()
    for pattern in patterns:
        glob = posixpath.normpath(posixpath.join(base, pattern))
        wanted |= {glob, glob.replace("**/", "")}
    files: dict[str, bytes] = {}  # path from the root -> object id
    for record in git(["ls-tree", "-r", "-z", "--full-tree", ref], folder).split(b"\0"):
        meta, _, name = record.partition(b"\t")
        mode, _, oid = meta.partition(b" blob ")
        path = os.fsdecode(name)
        if mode in _FILE_MODES and path != relative and _plain(path):
            if any(fnmatch.fnmatchcase(path, glob) for glob in wanted):
                files[path] = oid
    if not files:
        return
    answer = git(["cat-file", "--batch"], folder, b"".join(o + b"\n" for o in files.values()))
    at = 0
    for path in files:  # one "<id> blob <size>\n<bytes>\n" per object, in order
        end = answer.find(b"\n", at)
        head = answer[at:end].split(b" ") if end >= 0 else []
        if len(head) != 3 or head[1] != b"blob" or not head[2].isdigit():
            raise GitError(f"cannot read {path} in {ref}")
        size = int(head[2])
        target = root.joinpath(*path.split("/"))
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(answer[end + 1 : end + 1 + size])
        at = end + 2 + size


def _plain(path: str) -> bool:
    """Whether ``path`` (from a tree) stays inside the folder it is written under: no
    empty, ``.``, ``..`` or ``.git`` part."""
    return all(part not in ("", ".", "..", ".git") for part in path.split("/"))
