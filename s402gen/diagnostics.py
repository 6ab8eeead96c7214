"""Findings: every error, warning and change s402gen reports, and how they print.

Every finding is a :class:`Finding` with a stable rule (code, name, level),
a human message, a ``file:line:col`` location, an optional fix hint and the
services it concerns. Stages collect findings and return them; only the
command-line edge prints them, through :func:`format_findings`, in one of
:data:`FORMATS`. :class:`CatalogError` is the single exception type that
carries findings across a stage boundary when a stage cannot produce its
result. Every rule is listed once, in :class:`Rules`.
"""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass
from enum import Enum
from typing import Any, Iterable

#: The output formats of every command that reports findings (``--format``).
FORMATS = ("text", "json", "github")


class Level(str, Enum):
    """Severity of a finding.

    ``error`` and ``warning`` are about one catalog (errors fail the
    command); ``breaking``, ``dangerous`` and ``safe`` are about a change
    between two catalogs (``s402gen diff``: breaking ones fail it).
    """

    ERROR = "error"
    BREAKING = "breaking"
    WARNING = "warning"
    DANGEROUS = "dangerous"
    SAFE = "safe"

    @property
    def rank(self) -> int:
        """0 for what fails a command, 1 for what needs a look, 2 for the rest."""
        return _RANKS[self]

    @property
    def github(self) -> str:
        """The GitHub Actions workflow command: ``error``, ``warning`` or ``notice``."""
        return ("error", "warning", "notice")[self.rank]


_RANKS = {
    Level.ERROR: 0,
    Level.BREAKING: 0,
    Level.WARNING: 1,
    Level.DANGEROUS: 1,
    Level.SAFE: 2,
}


@dataclass(frozen=True)
class Rule:
    """A rule: ``code`` like ``S402-E012`` (stable), ``name`` like ``duplicate-legacy-id``
    (says what it reports), and its ``level``."""

    code: str
    name: str
    level: Level


_E, _W = Level.ERROR, Level.WARNING
_B, _D, _S = Level.BREAKING, Level.DANGEROUS, Level.SAFE


class Rules:
    """Every rule s402gen reports, in one place.

    Codes are stable: never reuse one, not even a retired one (S402-E010,
    S402-E018 to E020, S402-E026 and S402-W006, now the error S402-E094, were never
    or are no longer used); a new rule gets a new code.
    """

    # loading and structure (s402gen/load.py, the authoring model)
    YAML_SYNTAX = Rule("S402-E001", "yaml-syntax", _E)
    DUPLICATE_KEY = Rule("S402-E002", "duplicate-key", _E)
    NON_STRING_KEY = Rule("S402-E003", "non-string-key", _E)
    ALIAS_EXPANSION = Rule("S402-E004", "alias-expansion-limit", _E)
    UNKNOWN_KEY = Rule("S402-E005", "unknown-key", _E)
    MISSING_KEY = Rule("S402-E006", "missing-key", _E)
    INVALID_VALUE = Rule("S402-E007", "invalid-value", _E)
    YAML_11_NUMBER = Rule("S402-E081", "yaml-1.1-number", _E)
    NESTING_TOO_DEEP = Rule("S402-E090", "nesting-too-deep", _E)
    SCALAR_TOO_LONG = Rule("S402-E091", "scalar-too-long", _E)
    EXPANSION_TOO_LARGE = Rule("S402-E092", "expanded-size-limit", _E)
    RECURSIVE_ALIAS = Rule("S402-E093", "recursive-alias", _E)
    CATALOG_NOT_FOUND = Rule("S402-E040", "catalog-not-found", _E)
    UNREADABLE_CATALOG = Rule("S402-E041", "unreadable-catalog", _E)
    INVALID_CONFIGURATION = Rule("S402-E054", "invalid-configuration", _E)
    # references between sections (checked on the authoring model, before derive)
    UNKNOWN_REFERENCE = Rule("S402-E008", "unknown-reference", _E)
    UNKNOWN_PARAMETER = Rule("S402-E016", "unknown-required-parameter", _E)
    INCLUDE_MATCHES_NOTHING = Rule("S402-E070", "include-matches-nothing", _E)
    DUPLICATE_DEFINITION = Rule("S402-E071", "duplicate-definition", _E)
    # rendering
    TEMPLATE_ERROR = Rule("S402-E009", "template-error", _E)
    # across services (checked on the IR)
    DUPLICATE_ID = Rule("S402-E011", "duplicate-id", _E)
    DUPLICATE_LEGACY_ID = Rule("S402-E012", "duplicate-legacy-id", _E)
    DUPLICATE_TOOL_NAME = Rule("S402-E013", "duplicate-tool-name", _E)
    DUPLICATE_ENDPOINT = Rule("S402-E014", "duplicate-endpoint", _E)
    INVALID_TOOL_NAME = Rule("S402-E015", "invalid-tool-name", _E)
    RESERVED_TOOL_NAME = Rule("S402-E042", "reserved-tool-name", _E)
    PYTHON_KEYWORD_ID = Rule("S402-E044", "python-keyword-id", _E)
    INVALID_DERIVED_LEGACY_ID = Rule("S402-E080", "invalid-derived-legacy-id", _E)
    UNKNOWN_RELATED_SERVICE = Rule("S402-E017", "unknown-related-service", _E)
    REDUNDANT_RELATED_SERVICE = Rule("S402-E043", "redundant-related-service", _E)
    INVALID_INPUT_SCHEMA = Rule("S402-E021", "invalid-input-schema", _E)
    INVALID_OUTPUT_SCHEMA = Rule("S402-E022", "invalid-output-schema", _E)
    INVALID_EXAMPLE_REQUEST = Rule("S402-E023", "invalid-example-request", _E)
    EXAMPLE_PRIVATE_HOST = Rule("S402-E120", "example-request-private-host", _E)
    INVALID_EXAMPLE_RESPONSE = Rule("S402-E024", "invalid-example-response", _E)
    ERROR_EXAMPLE_ACCEPTED = Rule("S402-E025", "error-example-accepted", _E)
    ERROR_EXAMPLE_WRONG_ANSWER = Rule("S402-E094", "error-example-wrong-answer", _E)
    UNKNOWN_EXAMPLE_PARAMETER = Rule("S402-E095", "unknown-example-parameter", _E)
    UNSATISFIABLE_SCHEMA = Rule("S402-E096", "unsatisfiable-schema", _E)
    UNSAFE_PATTERN = Rule("S402-E097", "unsafe-pattern", _E)
    FILE_NAME_TOO_LONG = Rule("S402-E098", "file-name-too-long", _E)
    CONTROL_CHARACTER = Rule("S402-E099", "control-character", _E)
    # validate --upstream (s402gen/upstream_check.py)
    UPSTREAM_UNKNOWN_ACTION = Rule("S402-E031", "upstream-unknown-action", _E)
    UPSTREAM_UNKNOWN_PARAMETER = Rule("S402-E032", "upstream-unknown-parameter", _E)
    UPSTREAM_REQUIRED = Rule("S402-W031", "upstream-required-mismatch", _W)
    UPSTREAM_TYPE = Rule("S402-W032", "upstream-type-mismatch", _W)
    UPSTREAM_WIRE = Rule("S402-E033", "upstream-wire-mismatch", _E)
    UPSTREAM_NOT_COMPARED = Rule("S402-W033", "upstream-not-compared", _W)
    # upstream protocols (s402gen/runtime/upstreams)
    PROTOCOL_NOT_INSTALLED = Rule("S402-E060", "protocol-not-installed", _E)
    UNKNOWN_WIRE_STYLE = Rule("S402-E061", "unknown-wire-style", _E)
    # lint warnings
    REPEATED_DESCRIPTION = Rule("S402-W001", "repeated-parameter-description", _W)
    ARRAY_WITHOUT_ITEMS = Rule("S402-W002", "array-without-items", _W)
    NO_GENERATED_AT = Rule("S402-W003", "no-generated-at", _W)
    NO_CHINESE_TITLE = Rule("S402-W004", "no-chinese-title", _W)
    DESCRIPTION_MISSES_REQUIRED = Rule("S402-W005", "description-misses-required-parameter", _W)
    PRIVATE_HOSTS_WITHOUT_URL = Rule("S402-W120", "private-hosts-without-url", _W)
    # check: the output folder against the catalog
    GENERATED_FILE_CHANGED = Rule("S402-E045", "generated-file-changed", _E)
    GENERATED_FILE_MISSING = Rule("S402-E046", "generated-file-missing", _E)
    GENERATED_FILE_ORPHANED = Rule("S402-E047", "generated-file-orphaned", _E)
    # the output folder and the inputs (s402gen/write.py, outdir.py, commit.py, inputs.py)
    UNSAFE_OUTPUT_FOLDER = Rule("S402-E100", "unsafe-output-folder", _E)
    UNSAFE_OUTPUT_PATH = Rule("S402-E101", "unsafe-output-path", _E)
    FILE_NOT_WRITTEN_BY_S402GEN = Rule("S402-E102", "file-not-written-by-s402gen", _E)
    GENERATED_FILE_EDITED = Rule("S402-E103", "generated-file-edited", _E)
    FOREIGN_OUTPUT_FOLDER = Rule("S402-E104", "foreign-output-folder", _E)
    INPUT_NOT_A_FILE = Rule("S402-E105", "input-not-a-regular-file", _E)
    INPUT_TOO_LARGE = Rule("S402-E106", "input-too-large", _E)
    # import
    INVALID_IMPORT_INPUT = Rule("S402-E050", "invalid-import-input", _E)
    IMPORT_NOT_COMPILABLE = Rule("S402-E051", "imported-catalog-does-not-compile", _E)
    IMPORT_OUTPUT_FAILED = Rule("S402-E052", "import-output-not-written", _E)
    IMPORT_NOT_REPRODUCED = Rule("S402-W050", "import-field-not-reproduced", _W)
    # diff: changes between two catalogs
    UNREADABLE_REF = Rule("S402-E053", "unreadable-ref", _E)
    SERVICE_REMOVED = Rule("S402-B001", "service-removed", _B)
    LEGACY_ID_CHANGED = Rule("S402-B002", "legacy-id-changed", _B)
    ENDPOINT_CHANGED = Rule("S402-B003", "endpoint-changed", _B)
    PARAMETER_REMOVED = Rule("S402-B004", "parameter-removed", _B)
    PARAMETER_RENAMED = Rule("S402-B005", "parameter-renamed", _B)
    PARAMETER_MADE_REQUIRED = Rule("S402-B006", "parameter-made-required", _B)
    REQUIRED_PARAMETER_ADDED = Rule("S402-B007", "required-parameter-added", _B)
    PARAMETER_TYPE_NARROWED = Rule("S402-B008", "parameter-type-narrowed", _B)
    OUTPUT_FIELD_REMOVED = Rule("S402-B009", "output-field-removed", _B)
    TOOL_NAME_CHANGED = Rule("S402-B010", "tool-name-changed", _B)
    OUTPUT_FIELD_MADE_OPTIONAL = Rule("S402-B011", "output-field-made-optional", _B)
    PRICE_RAISED = Rule("S402-D001", "price-raised", _D)
    MAX_CALLS_LOWERED = Rule("S402-D002", "max-calls-lowered", _D)
    SLA_WEAKENED = Rule("S402-D003", "sla-weakened", _D)
    CURRENCY_CHANGED = Rule("S402-D004", "currency-changed", _D)
    SERVICE_ADDED = Rule("S402-S001", "service-added", _S)
    OPTIONAL_PARAMETER_ADDED = Rule("S402-S002", "optional-parameter-added", _S)
    DESCRIPTION_CHANGED = Rule("S402-S003", "description-changed", _S)


def all_rules() -> list[Rule]:
    """Every rule of :class:`Rules`, in code order."""
    return sorted((r for r in vars(Rules).values() if isinstance(r, Rule)), key=lambda r: r.code)


def rule_named(name: str) -> Rule | None:
    """The rule called ``name`` (like ``missing-key``), or ``None``."""
    return next((r for r in all_rules() if r.name == name), None)


@dataclass(frozen=True)
class Location:
    """A place in a source file; ``line`` and ``column`` are 1-based."""

    file: str
    line: int
    column: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"


@dataclass(frozen=True)
class Finding:
    """One finding: a rule, a human message, where it is, an optional fix ``hint``
    (``did you mean 'tags'?``) and the ids of the ``services`` it concerns, if any."""

    rule: Rule
    message: str
    location: Location
    hint: str | None = None
    services: tuple[str, ...] = ()

    @property
    def level(self) -> Level:
        """The rule's level."""
        return self.rule.level

    def format(self) -> str:
        """``catalog.yaml:12:7: error: message [S402-E012 duplicate-legacy-id]``, and
        ``  hint: ...`` on a second line when there is a hint."""
        tag = f"[{self.rule.code} {self.rule.name}]"
        line = f"{self.location}: {self.level.value}: {self.message} {tag}"
        return f"{line}\n  hint: {self.hint}" if self.hint else line

    def format_github(self) -> str:
        """A GitHub Actions workflow command: ``::error file=...,line=...,col=...::message``."""
        title = f"{self.rule.code} {self.rule.name}"
        message = f"{self.message}\nhint: {self.hint}" if self.hint else self.message
        return github_command(self.level.github, self.location, title, message)

    def to_json(self) -> dict[str, object]:
        """The finding as a JSON object (``--format json``)."""
        return {
            "rule": self.rule.code,
            "name": self.rule.name,
            "level": self.level.value,
            "message": self.message,
            "hint": self.hint,
            "services": list(self.services),
            "file": self.location.file,
            "line": self.location.line,
            "column": self.location.column,
        }


#: The former name of :class:`Finding`, kept for the modules that still use it.
Diagnostic = Finding


def github_command(command: str, location: Location, title: str, message: str) -> str:
    """``::command file=...,line=...,col=...,title=...::message``, escaped as GitHub wants."""

    def prop(text: str) -> str:
        return _escape(text).replace(":", "%3A").replace(",", "%2C")

    where = f"file={prop(location.file)},line={location.line},col={location.column}"
    return f"::{command} {where},title={prop(title)}::{_escape(message)}"


def _escape(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def count_levels(findings: Iterable[Finding]) -> dict[str, int]:
    """``{"error": N, "warning": N, ...}`` for the levels present (every level when asked)."""
    counts = {level.value: 0 for level in Level}
    for finding in findings:
        counts[finding.level.value] += 1
    return counts


def format_findings(findings: Iterable[Finding], fmt: str, **document: Any) -> tuple[str, str]:
    """The one printer: ``(stdout text, stderr text)`` of ``findings`` in ``fmt``.

    ``text``: one finding a line (two with a hint) on stderr. ``github``:
    one workflow command a line on stdout (GitHub Actions reads them
    there). ``json``: one document on stdout, ``document``'s keys first, then
    ``findings`` and ``counts`` (by level). Raises ``ValueError`` for another
    ``fmt``.
    """
    findings = list(findings)
    if fmt == "text":
        return "", "".join(f.format() + "\n" for f in findings)
    if fmt == "github":
        return "".join(f.format_github() + "\n" for f in findings), ""
    if fmt == "json":
        body = {**document, "findings": [f.to_json() for f in findings]}
        body["counts"] = count_levels(findings)
        return json.dumps(body, ensure_ascii=False, indent=2) + "\n", ""
    raise ValueError(f"unknown format {fmt!r}; expected one of {', '.join(FORMATS)}")


class CatalogError(Exception):
    """Raised when a catalog cannot be compiled; ``diagnostics`` holds every reason."""

    def __init__(self, diagnostics: Iterable[Finding]):
        self.diagnostics = sort_diagnostics(diagnostics)
        super().__init__("\n".join(d.format() for d in self.diagnostics))


def sort_diagnostics(diagnostics: Iterable[Finding]) -> list[Finding]:
    """Without repeats, ordered by file, line, column, rule code, message, hint and services:
    a total order, so the output does not depend on the order found nor on the hash seed."""
    return sorted(
        dict.fromkeys(diagnostics),
        key=lambda d: (
            d.location.file,
            d.location.line,
            d.location.column,
            d.rule.code,
            d.message,
            d.hint or "",
            d.services,
        ),
    )


def has_errors(diagnostics: Iterable[Finding]) -> bool:
    """True when any finding is an error."""
    return any(d.level is Level.ERROR for d in diagnostics)


def closest(word: str, candidates: Iterable[str]) -> str | None:
    """The candidate closest to ``word`` (difflib ratio at least 0.6), or ``None``."""
    close = difflib.get_close_matches(word, sorted(set(candidates)), n=1, cutoff=0.6)
    return close[0] if close else None


def did_you_mean(word: str, candidates: Iterable[str]) -> str | None:
    """A ``did you mean 'x'?`` hint for the closest candidate, or ``None``."""
    match = closest(word, candidates)
    return f"did you mean '{match}'?" if match else None
