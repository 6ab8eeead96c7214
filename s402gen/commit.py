"""Applying a build to the output folder: old or new, never a mix, even when killed.

A build stages the files it changes in a folder of its own inside the output
folder (``.s402gen-staging-<random id>``), and first records that folder in a
journal (``.s402gen-journal.json``, phase ``staging``). When every file has
rendered, the staged files are flushed to disk once, the journal is rewritten
(phase ``commit``) to list the moves and the deletions, and only then are the
files renamed into place (a staged folder whose place is free in one rename,
the others a file at a time), orphans deleted, ``manifest.json`` moved last, the
staging folder and the journal removed. Every run that takes the folder's
lock first calls :func:`recover`: a journal in phase ``commit`` is rolled
forward (the moves and deletions are idempotent), one in phase ``staging`` is
discarded with its staging folder, so a folder a build was killed in holds
the old build or, after the next command, the new one.

Nothing is removed that s402gen cannot show it wrote: a staging folder only
when the journal names it (or it holds nothing but s402gen's own pending
journal), a deleted orphan only when the manifest the build read under the
lock (on recovery: the one on disk) lists it and its bytes still match its
recorded sha256 (see :class:`Plan`). A user's folder
that merely starts with ``.s402gen-staging-`` is left alone.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from dataclasses import dataclass, field
from typing import Iterator

from .outdir import OutputFolder, UnsafePath

JOURNAL = ".s402gen-journal.json"
STAGING_PREFIX = ".s402gen-staging-"
PENDING = "journal.pending"
"""The journal's name inside the staging folder, before it is renamed into place."""


@dataclass
class Plan:
    """What a build changes, as the seam between deciding and applying.

    ``moves``: paths staged under ``staging/`` that replace the same path in the
    output folder (``manifest.json``, when it changes, comes last); ``deletions``:
    ``{path: sha256}`` of orphans the previous manifest recorded.
    """

    staging: str
    moves: list[str] = field(default_factory=list)
    deletions: dict[str, str] = field(default_factory=dict)


@dataclass
class Applied:
    """What :func:`apply` did: files moved into place, orphans removed, orphans kept
    because they were edited by hand (or are no longer regular files)."""

    moved: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)


def begin(folder: OutputFolder) -> Plan:
    """Make a new staging folder and record it in the journal (phase ``staging``)."""
    staging = STAGING_PREFIX + secrets.token_hex(8)
    _write_journal(folder, staging, {"phase": "staging", "staging": staging})
    return Plan(staging)


def abandon(folder: OutputFolder, plan: Plan) -> None:
    """Forget a build that will not commit: remove its staging folder, then its journal."""
    folder.remove_tree(plan.staging)
    _remove_journal(folder)


def commit(folder: OutputFolder, plan: Plan, recorded: dict[str, str] | None = None) -> Applied:
    """Make the staged files durable, journal ``plan`` (phase ``commit``), then apply it
    (``recorded``: as in :func:`apply`)."""
    folder.sync()
    document = {
        "phase": "commit",
        "staging": plan.staging,
        "moves": plan.moves,
        "deletions": plan.deletions,
    }
    _write_journal(folder, plan.staging, document)
    return apply(folder, plan, recorded)


def apply(folder: OutputFolder, plan: Plan, recorded: dict[str, str] | None = None) -> Applied:
    """Roll ``plan`` forward: move each staged file still in the staging folder into place
    (each staged folder whose place is free, whole: :func:`_free_folders`), delete each
    recorded orphan that still matches its digest, remove the staging folder and the
    journal. Safe to repeat after being cut short. ``recorded`` is the
    ``{path: sha256}`` of the folder's manifest when the build that made ``plan`` read it
    (default: read now; it is the previous one until the manifest moves, last)."""
    from .write import MANIFEST, read_manifest  # write imports this module

    applied = Applied()
    if recorded is None:
        recorded = read_manifest(folder)
    whole = {name for name in _free_folders(folder, plan) if _move_whole(folder, plan, name)}
    for path in plan.moves:
        if path == MANIFEST:
            continue
        if _within(path, whole) or _move(folder, plan.staging, path):
            applied.moved.append(path)
    for path, digest in sorted(plan.deletions.items()):
        if path in plan.moves or recorded.get(path) != digest:
            continue
        try:
            current = folder.read(path)
        except UnsafePath:
            applied.kept.append(path)
            continue
        if current is None:
            continue
        if hashlib.sha256(current).hexdigest() != digest:
            applied.kept.append(path)
            continue
        try:
            folder.unlink(path)
        except (FileNotFoundError, UnsafePath):
            continue
        folder.prune(path)
        applied.removed.append(path)
    if MANIFEST in plan.moves and _move(folder, plan.staging, MANIFEST):
        applied.moved.append(MANIFEST)
    abandon(folder, plan)
    return applied


def _free_folders(folder: OutputFolder, plan: Plan) -> list[str]:
    """The highest folders of the staged files whose place in the output folder is free:
    each is moved whole, one rename for all it holds (a first build into an empty folder
    renames six folders, not 30,000 files at 10,000 services). A staged folder holds the
    files of :attr:`Plan.moves` only (what a build stages it moves, or commits nothing)."""
    free: dict[str, bool] = {}
    found = []
    for path in plan.moves:
        for name in _folders_of(path):
            if name not in free:
                try:
                    free[name] = folder.kind(name) is None
                except UnsafePath:
                    free[name] = False
                if free[name]:
                    found.append(name)
            if free[name]:
                break
    return found


def _move_whole(folder: OutputFolder, plan: Plan, name: str) -> bool:
    """Move staged folder ``name`` into place whole; ``False`` when it cannot be (its files
    are then moved one by one, or left, as :func:`_move` does: never an error that
    would stop every later run's recovery)."""
    try:
        return folder.move_folder(f"{plan.staging}/{name}", name)
    except (UnsafePath, OSError):
        return False


def _folders_of(path: str) -> Iterator[str]:
    """The folders ``path`` lies in, outermost first (``a/b/c.json``: ``a``, ``a/b``)."""
    at = path.find("/")
    while at != -1:
        yield path[:at]
        at = path.find("/", at + 1)


def _within(path: str, folders: set[str]) -> bool:
    """Whether ``path`` lies in one of ``folders`` (at any depth)."""
    return bool(folders) and any(name in folders for name in _folders_of(path))


def _move(folder: OutputFolder, staging: str, path: str) -> bool:
    """Move one staged file into place; ``False`` when it is no longer staged (moved before
    the build was cut short) or its place changed since into something unsafe (a link, a
    folder: it is then left as it is rather than block every later run)."""
    try:
        folder.move(f"{staging}/{path}", path)
    except (FileNotFoundError, UnsafePath, IsADirectoryError, NotADirectoryError):
        return False
    return True


def recover(folder: OutputFolder) -> str | None:
    """Finish or discard what a killed build left (call with the folder's lock held).

    Returns ``"rolled forward"`` or ``"discarded"`` when there was such a build, else
    ``None``. A journal that s402gen did not write is ignored (and never deleted).
    """
    outcome = None
    plan, phase = _read_journal(folder)
    if plan is not None and phase == "commit":
        apply(folder, plan)
        outcome = "rolled forward"
    elif plan is not None:
        abandon(folder, plan)
        outcome = "discarded"
    for name in folder.names():  # killed between making a staging folder and journaling it
        if name.startswith(STAGING_PREFIX) and _only_pending(folder, name):
            folder.remove_tree(name)
            outcome = outcome or "discarded"
    return outcome


def pending(folder: OutputFolder) -> bool:
    """True when a killed build's journal is waiting for :func:`recover`."""
    return _read_journal(folder)[0] is not None


def _only_pending(folder: OutputFolder, name: str) -> bool:
    """True when staging folder ``name`` holds nothing, or only its own pending journal."""
    try:
        if folder.kind(name) != "is a folder":
            return False
        listed = folder.files(2, under=name)
    except (UnsafePath, OSError):
        return False
    if not listed:
        return True
    if listed != [f"{name}/{PENDING}"]:
        return False
    return _parse(folder, f"{name}/{PENDING}", name) is not None


def _write_journal(folder: OutputFolder, staging: str, document: dict) -> None:
    """Write the journal atomically: into the staging folder first, then renamed out."""
    text = json.dumps({"generator": "s402gen", **document}, indent=1, sort_keys=True)
    folder.write(f"{staging}/{PENDING}", text.encode("utf-8"))
    folder.move(f"{staging}/{PENDING}", JOURNAL)


def _remove_journal(folder: OutputFolder) -> None:
    try:
        if folder.kind(JOURNAL) == "file":
            folder.unlink(JOURNAL)
    except (UnsafePath, FileNotFoundError):
        pass


def _read_journal(folder: OutputFolder) -> tuple[Plan | None, str]:
    data = _parse(folder, JOURNAL, None)
    if data is None:
        return None, ""
    plan = Plan(data["staging"], list(data.get("moves", [])), dict(data.get("deletions", {})))
    return plan, data["phase"]


def _parse(folder: OutputFolder, path: str, staging: str | None) -> dict | None:
    """The journal at ``path`` when it is s402gen's and well formed (its staging folder a
    direct child named with the prefix, every path plain and relative), else ``None``."""
    from .write import is_safe

    try:
        raw = folder.read(path)
        data = json.loads(raw) if raw is not None else None
    except (UnsafePath, ValueError):
        return None
    if not isinstance(data, dict) or data.get("generator") != "s402gen":
        return None
    name = data.get("staging")
    moves = data.get("moves", [])
    deletions = data.get("deletions", {})
    well_formed = (
        data.get("phase") in ("staging", "commit")
        and isinstance(name, str)
        and name.startswith(STAGING_PREFIX)
        and "/" not in name
        and name not in (".", "..")
        and (staging is None or name == staging)
        and isinstance(moves, list)
        and all(isinstance(p, str) and is_safe(p) for p in moves)
        and isinstance(deletions, dict)
        and all(is_safe(str(p)) and isinstance(d, str) for p, d in deletions.items())
    )
    return data if well_formed else None
