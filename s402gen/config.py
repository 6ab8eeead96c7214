"""Project settings: ``[tool.s402gen]`` in pyproject.toml.

Looked up from the current folder upwards (the first pyproject.toml found
wins, as black and ruff do). Keys: ``catalog`` (default ``catalog.yaml``),
``out`` (default ``generated``) and ``templates`` (a folder of templates
that override the packaged ones). Paths are relative to the pyproject.toml.
Unknown keys, non-string values and a ``templates`` folder that does not exist are
errors, reported as S402-E054 invalid-configuration findings at their line.
"""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

from .diagnostics import Finding, Location, Rules, did_you_mean

KNOWN_KEYS = ("catalog", "out", "templates")
PACKAGED_TEMPLATES = Path(__file__).parent / "templates"
SOURCE_TEMPLATES = Path(__file__).parent.parent / "templates"


def packaged_templates() -> Path:
    """The template folder shipped with s402gen: inside the wheel, or the source tree's."""
    return PACKAGED_TEMPLATES if PACKAGED_TEMPLATES.is_dir() else SOURCE_TEMPLATES


class ConfigError(Exception):
    """``[tool.s402gen]`` is malformed: ``finding`` says where and why."""

    def __init__(self, finding: Finding):
        self.finding = finding
        super().__init__(finding.format())


def _config_error(
    pyproject: Path, message: str, line: int = 1, hint: str | None = None
) -> ConfigError:
    where = Location(display_path(pyproject), line, 1)
    return ConfigError(Finding(Rules.INVALID_CONFIGURATION, message, where, hint))


def _line_of(text: str, key: str) -> int:
    """The line of ``key = ...`` in ``text`` (1 when not found)."""
    found = re.search(rf"^\s*{re.escape(key)}\s*=", text, re.MULTILINE)
    return text.count("\n", 0, found.start()) + 1 if found else 1


@dataclass(frozen=True)
class Settings:
    """Resolved paths; ``templates`` is ``None`` when only packaged templates are used."""

    catalog: Path
    out: Path
    templates: Path | None


def display_path(path: Path) -> str:
    """``path`` relative to the current folder when possible, for messages."""
    try:
        return os.path.relpath(path)
    except ValueError:  # another drive on Windows
        return str(path)


def find_pyproject(start: Path) -> Path | None:
    """The nearest pyproject.toml in ``start`` or its parents."""
    for folder in (start, *start.parents):
        candidate = folder / "pyproject.toml"
        if candidate.is_file():
            return candidate
    return None


def load_settings(start: Path | None = None) -> Settings:
    """Settings for a run in ``start`` (default: the current folder).

    Raises :class:`ConfigError` on unreadable TOML, unknown keys or non-string values.
    """
    start = (start or Path.cwd()).resolve()
    pyproject = find_pyproject(start)
    table: dict = {}
    base = start
    if pyproject is not None:
        try:
            text = pyproject.read_text(encoding="utf-8")
            data = tomllib.loads(text)
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            at = re.search(r"at line (\d+)", str(exc))
            line = int(at.group(1)) if at else 1
            raise _config_error(pyproject, f"cannot read: {exc}", line) from None
        table = data.get("tool", {}).get("s402gen", {})
        if table:
            base = pyproject.parent
    for key, value in table.items():
        assert pyproject is not None
        if key not in KNOWN_KEYS:
            message = f"unknown key '{key}' in [tool.s402gen]"
            hint = did_you_mean(key, KNOWN_KEYS)
            raise _config_error(pyproject, message, _line_of(text, key), hint)
        if not isinstance(value, str):
            message = f"'{key}' in [tool.s402gen] must be a string path"
            raise _config_error(pyproject, message, _line_of(text, key))
    templates = table.get("templates")
    if templates and not (base / templates).is_dir():
        assert pyproject is not None
        message = f"templates folder '{templates}' in [tool.s402gen] does not exist"
        if (base / templates).exists():
            message = f"templates '{templates}' in [tool.s402gen] is not a folder"
        hint = "the path is relative to the folder of pyproject.toml"
        raise _config_error(pyproject, message, _line_of(text, "templates"), hint)
    return Settings(
        catalog=base / table.get("catalog", "catalog.yaml"),
        out=base / table.get("out", "generated"),
        templates=base / templates if templates else None,
    )


def output_problem(out: Path, catalog: Path, templates: Path | None) -> str | None:
    """Why ``build`` and ``check`` refuse the output folder ``out``, or ``None``.

    Refused: a symbolic link (its target is not guessed: pass that folder), the
    file-system root, the home folder, and any folder that holds the catalog or the
    templates folder (its own folder or an ancestor: a build would take their files
    for foreign ones or, with ``--force``, overwrite them).
    """
    shown = display_path(out)
    if out.is_symlink():
        target = os.path.realpath(out)
        return f"output folder {shown} is a symbolic link (to {target}); pass that folder itself"
    resolved = out.resolve()
    if resolved.parent == resolved:
        return f"output folder {shown} is the root of the file system"
    try:
        home = Path.home().resolve()
    except (RuntimeError, KeyError):
        home = None
    if resolved == home:
        return f"output folder {shown} is the home folder"
    for what, path in (("catalog", catalog), ("templates folder", templates)):
        if path is not None:
            held = path.resolve()
            if resolved == held or resolved in held.parents:
                return f"output folder {shown} holds the {what} {display_path(path)}"
    return None
