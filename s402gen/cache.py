"""Input cache: skip compiling when nothing that shapes the output has changed.

Like black's or mypy's cache, it lives outside the project
(``$S402GEN_CACHE_DIR``, else ``$XDG_CACHE_HOME/s402gen``, else
``~/.cache/s402gen``; ``S402GEN_CACHE_DIR=off`` disables it). A key is the
sha256 of every input of a compile: the catalog's bytes (and its included files'), the templates
(user and packaged), s402gen's own source, the versions of the libraries
that shape the text, and ``SOURCE_DATE_EPOCH``. Its entry holds the
manifest that compile produced and the diagnostics it printed. When the key
is known and the output folder still matches that manifest byte for byte,
``check`` and ``build`` are done without rendering anything.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sys
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import BinaryIO, Iterator, Mapping

import orjson

from .config import packaged_templates
from .inputs import InputError, read_input
from .load import included_files
from .runtime.cachedir import cache_dir  # noqa: F401 - the cache's folder, s402gen.cache.cache_dir

PACKAGE = Path(__file__).parent
MAX_ENTRIES = 64
_LIBRARIES = ("jinja2", "orjson", "black", "pyyaml", "pydantic", "jsonschema")


@dataclass(frozen=True)
class Entry:
    """What a compile with a given key produced: the sha256 (hex) of its manifest's text
    (UTF-8), how many files the manifest lists, and its printed diagnostics (the
    manifest itself is the output folder's: :func:`s402gen.write.matches_manifest`)."""

    manifest_sha256: str
    files: int
    diagnostics: tuple[tuple[str, str], ...]  # (level, formatted line)


def _hash_folder(digest: "hashlib._Hash", folder: Path) -> None:
    for file in sorted(
        p for p in folder.rglob("*") if p.is_file() and "__pycache__" not in p.parts
    ):
        digest.update(file.relative_to(folder).as_posix().encode() + b"\0")
        digest.update(file.read_bytes() + b"\0")


def input_key(
    catalog: Path, templates: Path | None, environ: Mapping[str, str], code: str | None = None
) -> str | None:
    """The key of a compile of ``catalog``; ``None`` when an input cannot be read.
    ``code`` is :func:`code_key` when the caller has it already."""
    digest = hashlib.sha256(os.path.relpath(catalog).encode() + b"\0")  # names in diagnostics
    try:
        digest.update(read_input(catalog) + b"\0")
        for part in included_files(str(catalog)):  # a catalog split with include:
            digest.update(os.path.relpath(part).encode() + b"\0" + read_input(part) + b"\0")
    except OSError:
        return None
    code = code or code_key(templates, environ)
    if code is None:
        return None
    digest.update(code.encode())
    return digest.hexdigest()


def library_versions(names: tuple[str, ...]) -> list[str]:
    """``name=version`` of each installed distribution in ``names`` (``name=none`` when it is
    not installed), in that order: part of a cache key."""
    versions = []
    for name in names:
        try:
            versions.append(f"{name}={metadata.version(name)}")
        except metadata.PackageNotFoundError:
            versions.append(f"{name}=none")
    return versions


def code_key(templates: Path | None, environ: Mapping[str, str]) -> str | None:
    """The sha256 of everything but the catalog that shapes the output: the templates (user
    and packaged), s402gen's source, the versions of the libraries that shape the text,
    Python's and ``SOURCE_DATE_EPOCH``; ``None`` when a template cannot be read."""
    digest = hashlib.sha256()
    try:
        for folder in (templates, packaged_templates(), PACKAGE):
            if folder is not None:
                digest.update(str(folder == templates).encode())
                _hash_folder(digest, folder)
    except (OSError, InputError):
        return None
    versions = library_versions(_LIBRARIES)
    versions.append(f"python={sys.version_info[:2]}")
    versions.append(f"SOURCE_DATE_EPOCH={environ.get('SOURCE_DATE_EPOCH', '')}")
    digest.update("\n".join(versions).encode())
    return digest.hexdigest()


def lookup(folder: Path | None, key: str | None) -> Entry | None:
    """The entry stored under ``key``; ``None`` when absent, unreadable or disabled."""
    if folder is None or key is None:
        return None
    try:
        data = json.loads((folder / f"{key}.json").read_text(encoding="utf-8"))
        diagnostics = tuple((str(level), str(line)) for level, line in data["diagnostics"])
        return Entry(str(data["manifestSha256"]), int(data["files"]), diagnostics)
    except (OSError, ValueError, KeyError, TypeError):
        return None


def store(folder: Path | None, key: str | None, entry: Entry) -> None:
    """Save ``entry`` under ``key``, keeping the newest :data:`MAX_ENTRIES`; never raises."""
    if folder is None or key is None:
        return
    try:
        payload = {
            "manifestSha256": entry.manifest_sha256,
            "files": entry.files,
            "diagnostics": [list(d) for d in entry.diagnostics],
        }
        with replaced(folder / f"{key}.json") as file:
            file.write(orjson.dumps(payload))
        entries = sorted(folder.glob("*.json"), key=lambda p: p.stat().st_mtime, reverse=True)
        for old in entries[MAX_ENTRIES:]:
            old.unlink(missing_ok=True)
    except (OSError, orjson.JSONEncodeError):  # a text JSON cannot hold (a lone surrogate)
        pass  # a cache that cannot be written only costs time


@contextlib.contextmanager
def replaced(target: Path) -> Iterator[BinaryIO]:
    """A file open for writing (binary) that replaces ``target`` when the block ends: it is
    written beside it (``.<name>.<pid>.tmp``), then renamed over it, so a reader sees the
    old file or the new one, never a part; on an error the temporary file is removed and
    ``target`` is left as it was. Makes ``target``'s folder. Raises ``OSError``."""
    target.parent.mkdir(parents=True, exist_ok=True)
    temp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        with open(temp, "wb") as file:
            yield file
        os.replace(temp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            temp.unlink()
        raise
