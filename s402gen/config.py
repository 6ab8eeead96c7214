"""Project settings: ``[tool.s402gen]`` in pyproject.toml.

Looked up from the current folder upwards (the first pyproject.toml found
wins, as black and ruff do). Keys: ``catalog`` (default ``catalog.yaml``),
``out`` (default ``generated``) and ``templates`` (a folder of templates
that override the packaged ones). Paths are relative to the pyproject.toml.
Unknown keys are errors.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass
from pathlib import Path

from .diagnostics import did_you_mean

KNOWN_KEYS = ("catalog", "out", "templates")
PACKAGED_TEMPLATES = Path(__file__).parent / "templates"
SOURCE_TEMPLATES = Path(__file__).parent.parent / "templates"


def packaged_templates() -> Path:
    """The template folder shipped with s402gen: inside the wheel, or the source tree's."""
    return PACKAGED_TEMPLATES if PACKAGED_TEMPLATES.is_dir() else SOURCE_TEMPLATES


class ConfigError(Exception):
    """``[tool.s402gen]`` is malformed; the message says where and why."""


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
            data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"{pyproject}: cannot read: {exc}") from None
        table = data.get("tool", {}).get("s402gen", {})
        if table:
            base = pyproject.parent
    for key, value in table.items():
        if key not in KNOWN_KEYS:
            raise ConfigError(
                f"{pyproject}: [tool.s402gen]: unknown key '{key}'"
                + (f"; {hint}" if (hint := did_you_mean(key, KNOWN_KEYS)) else "")
            )
        if not isinstance(value, str):
            raise ConfigError(f"{pyproject}: [tool.s402gen]: '{key}' must be a string path")
    templates = table.get("templates")
    return Settings(
        catalog=base / table.get("catalog", "catalog.yaml"),
        out=base / table.get("out", "generated"),
        templates=base / templates if templates else None,
    )
