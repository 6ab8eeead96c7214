"""Diagnostics: the errors and warnings s402gen reports about a catalog.

Every finding is a :class:`Diagnostic` value with a stable rule id, a level
and a ``file:line:col`` location. Stages collect them and return them; only
the CLI edge turns them into text and an exit code. :class:`CatalogError` is
the single exception type that carries a list of them across a stage
boundary when a stage cannot produce its result.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from enum import Enum
from typing import Iterable


class Level(str, Enum):
    """Severity of a diagnostic: errors fail the command, warnings do not."""

    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True)
class Rule:
    """A diagnostic rule: ``code`` like ``S402-E012``, ``name`` like ``duplicate-legacy-id``."""

    code: str
    name: str

    @property
    def level(self) -> Level:
        """Errors have codes ``S402-E...``, warnings ``S402-W...``."""
        return Level.ERROR if self.code.startswith("S402-E") else Level.WARNING


class Rules:
    """Every rule s402gen reports, in one place (codes are stable: never reuse one)."""

    YAML_SYNTAX = Rule("S402-E001", "yaml-syntax")
    DUPLICATE_KEY = Rule("S402-E002", "duplicate-key")
    NON_STRING_KEY = Rule("S402-E003", "non-string-key")
    ALIAS_EXPANSION = Rule("S402-E004", "alias-expansion-limit")
    UNKNOWN_KEY = Rule("S402-E005", "unknown-key")
    MISSING_KEY = Rule("S402-E006", "missing-key")
    INVALID_VALUE = Rule("S402-E007", "invalid-value")
    UNKNOWN_REFERENCE = Rule("S402-E008", "unknown-reference")
    TEMPLATE_ERROR = Rule("S402-E009", "template-error")
    DUPLICATE_ID = Rule("S402-E011", "duplicate-id")
    DUPLICATE_LEGACY_ID = Rule("S402-E012", "duplicate-legacy-id")
    DUPLICATE_TOOL_NAME = Rule("S402-E013", "duplicate-tool-name")
    DUPLICATE_ENDPOINT = Rule("S402-E014", "duplicate-endpoint")
    INVALID_TOOL_NAME = Rule("S402-E015", "invalid-tool-name")
    UNKNOWN_PARAMETER = Rule("S402-E016", "unknown-required-parameter")
    UNKNOWN_RELATED_SERVICE = Rule("S402-E017", "unknown-related-service")
    INVALID_INPUT_SCHEMA = Rule("S402-E021", "invalid-input-schema")
    INVALID_OUTPUT_SCHEMA = Rule("S402-E022", "invalid-output-schema")
    INVALID_EXAMPLE_REQUEST = Rule("S402-E023", "invalid-example-request")
    INVALID_EXAMPLE_RESPONSE = Rule("S402-E024", "invalid-example-response")
    ERROR_EXAMPLE_ACCEPTED = Rule("S402-E025", "error-example-accepted")
    ERROR_EXAMPLE_MISMATCH = Rule("S402-W006", "error-example-mismatch")
    UPSTREAM_UNKNOWN_ACTION = Rule("S402-E031", "upstream-unknown-action")
    UPSTREAM_UNKNOWN_PARAMETER = Rule("S402-E032", "upstream-unknown-parameter")
    UPSTREAM_REQUIRED = Rule("S402-W031", "upstream-required-mismatch")
    UPSTREAM_TYPE = Rule("S402-W032", "upstream-type-mismatch")
    REPEATED_DESCRIPTION = Rule("S402-W001", "repeated-parameter-description")
    ARRAY_WITHOUT_ITEMS = Rule("S402-W002", "array-without-items")
    NO_GENERATED_AT = Rule("S402-W003", "no-generated-at")
    NO_CHINESE_TITLE = Rule("S402-W004", "no-chinese-title")
    DESCRIPTION_MISSES_REQUIRED = Rule("S402-W005", "description-misses-required-parameter")


@dataclass(frozen=True)
class Location:
    """A place in a source file; ``line`` and ``column`` are 1-based."""

    file: str
    line: int
    column: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"


@dataclass(frozen=True)
class Diagnostic:
    """One finding: a rule, a human message, and where it is."""

    rule: Rule
    message: str
    location: Location

    @property
    def level(self) -> Level:
        """The rule's level."""
        return self.rule.level

    def format(self) -> str:
        """``catalog.yaml:12:7: error: message [S402-E012 duplicate-legacy-id]``."""
        return (
            f"{self.location}: {self.level.value}: {self.message} "
            f"[{self.rule.code} {self.rule.name}]"
        )

    def format_github(self) -> str:
        """A GitHub Actions workflow command: ``::error file=...,line=...,col=...::message``."""
        command = "error" if self.level is Level.ERROR else "warning"
        title = f"{self.rule.code} {self.rule.name}"
        return github_command(command, self.location, title, self.message)

    def to_json(self) -> dict[str, object]:
        """The diagnostic as a JSON object (``--format json``)."""
        return {
            "rule": self.rule.code,
            "name": self.rule.name,
            "level": self.level.value,
            "message": self.message,
            "file": self.location.file,
            "line": self.location.line,
            "column": self.location.column,
        }


def github_command(command: str, location: Location, title: str, message: str) -> str:
    """``::command file=...,line=...,col=...,title=...::message``, escaped as GitHub wants."""

    def prop(text: str) -> str:
        return _escape(text).replace(":", "%3A").replace(",", "%2C")

    where = f"file={prop(location.file)},line={location.line},col={location.column}"
    return f"::{command} {where},title={prop(title)}::{_escape(message)}"


def _escape(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


class CatalogError(Exception):
    """Raised when a catalog cannot be compiled; ``diagnostics`` holds every reason."""

    def __init__(self, diagnostics: Iterable[Diagnostic]):
        self.diagnostics = sort_diagnostics(diagnostics)
        super().__init__("\n".join(d.format() for d in self.diagnostics))


def sort_diagnostics(diagnostics: Iterable[Diagnostic]) -> list[Diagnostic]:
    """Order by file, line, column, then rule code and message, for stable output."""
    return sorted(
        set(diagnostics),
        key=lambda d: (
            d.location.file,
            d.location.line,
            d.location.column,
            d.rule.code,
            d.message,
        ),
    )


def has_errors(diagnostics: Iterable[Diagnostic]) -> bool:
    """True when any diagnostic is an error."""
    return any(d.level is Level.ERROR for d in diagnostics)


def did_you_mean(word: str, candidates: Iterable[str]) -> str:
    """A ``; did you mean 'x'?`` suffix for the closest candidate, or ``""``."""
    close = difflib.get_close_matches(word, sorted(candidates), n=1, cutoff=0.6)
    return f"; did you mean '{close[0]}'?" if close else ""
