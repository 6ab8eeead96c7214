"""Breaking-change diff: two catalogs compiled, then compared as IRs, not as text.

``s402gen diff [CATALOG] --against REF`` (REF: another catalog file, a git
ref, or ``REF:path``) compiles both catalogs with the whole pipeline and
compares them service by service, like ``buf breaking``: services match by
id, then by legacy id (same legacy id, new id: the endpoint changed). Each
difference is a :class:`Change` with a stable rule id and a level:
``breaking`` (old callers fail), ``dangerous`` (they pay more or get less)
or ``safe``. An invalid catalog, a bad ref or a missing git raise
:class:`DiffError`, which the command turns into exit code 2.
"""

from __future__ import annotations

import contextlib
import difflib
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from decimal import Decimal, InvalidOperation
from enum import Enum
from pathlib import Path
from typing import Any, NoReturn

import click

from . import ir
from .config import display_path as _display
from .diagnostics import CatalogError, Diagnostic, Location, github_command
from .diagnostics import Level as DiagnosticLevel
from .load import SourceMap, load_file

EXIT_OK = 0
EXIT_BREAKING = 1
EXIT_ERROR = 2

EXIT_CODES = """\b
Exit codes:
  0  no breaking change (dangerous and safe changes may be reported)
  1  at least one breaking change
  2  either catalog is invalid, REF cannot be read, git is missing, or usage error"""


class Level(str, Enum):
    """How a change affects clients written against the old catalog."""

    BREAKING = "breaking"
    DANGEROUS = "dangerous"
    SAFE = "safe"


_LEVELS = {"B": Level.BREAKING, "D": Level.DANGEROUS, "S": Level.SAFE}


@dataclass(frozen=True)
class ChangeRule:
    """A change rule: ``code`` like ``S402-B004``, ``name`` like ``parameter-removed``."""

    code: str
    name: str

    @property
    def level(self) -> Level:
        """``S402-B...`` are breaking, ``S402-D...`` dangerous, ``S402-S...`` safe."""
        return _LEVELS[self.code[len("S402-")]]


class ChangeRules:
    """Every change ``s402gen diff`` reports (codes are stable: never reuse one)."""

    SERVICE_REMOVED = ChangeRule("S402-B001", "service-removed")
    LEGACY_ID_CHANGED = ChangeRule("S402-B002", "legacy-id-changed")
    ENDPOINT_CHANGED = ChangeRule("S402-B003", "endpoint-changed")
    PARAMETER_REMOVED = ChangeRule("S402-B004", "parameter-removed")
    PARAMETER_RENAMED = ChangeRule("S402-B005", "parameter-renamed")
    PARAMETER_MADE_REQUIRED = ChangeRule("S402-B006", "parameter-made-required")
    REQUIRED_PARAMETER_ADDED = ChangeRule("S402-B007", "required-parameter-added")
    PARAMETER_TYPE_NARROWED = ChangeRule("S402-B008", "parameter-type-narrowed")
    OUTPUT_FIELD_REMOVED = ChangeRule("S402-B009", "output-field-removed")
    TOOL_NAME_CHANGED = ChangeRule("S402-B010", "tool-name-changed")
    OUTPUT_FIELD_MADE_OPTIONAL = ChangeRule("S402-B011", "output-field-made-optional")
    PRICE_RAISED = ChangeRule("S402-D001", "price-raised")
    MAX_CALLS_LOWERED = ChangeRule("S402-D002", "max-calls-lowered")
    SLA_WEAKENED = ChangeRule("S402-D003", "sla-weakened")
    CURRENCY_CHANGED = ChangeRule("S402-D004", "currency-changed")
    SERVICE_ADDED = ChangeRule("S402-S001", "service-added")
    OPTIONAL_PARAMETER_ADDED = ChangeRule("S402-S002", "optional-parameter-added")
    DESCRIPTION_CHANGED = ChangeRule("S402-S003", "description-changed")


def all_rules() -> list[ChangeRule]:
    """Every :class:`ChangeRule` of :class:`ChangeRules`, in code order."""
    rules = [r for r in vars(ChangeRules).values() if isinstance(r, ChangeRule)]
    return sorted(rules, key=lambda r: r.code)


@dataclass(frozen=True)
class Change:
    """One difference between the catalogs: a rule, a message, the service it
    concerns (its new id when it still exists) and where it is in the new catalog."""

    rule: ChangeRule
    message: str
    service: str
    location: Location

    @property
    def level(self) -> Level:
        """The rule's level."""
        return self.rule.level

    def format(self) -> str:
        """``catalog.yaml:12:7: breaking: message [S402-B004 parameter-removed]``."""
        return (
            f"{self.location}: {self.level.value}: {self.message} "
            f"[{self.rule.code} {self.rule.name}]"
        )

    def format_github(self) -> str:
        """A GitHub Actions workflow command (``::error`` breaking, ``::warning``
        dangerous, ``::notice`` safe) that annotates the new catalog."""
        command = {Level.BREAKING: "error", Level.DANGEROUS: "warning", Level.SAFE: "notice"}
        title = f"{self.rule.code} {self.rule.name}"
        return github_command(command[self.level], self.location, title, self.message)

    def to_json(self) -> dict[str, object]:
        """The change as a JSON object (``--format json``)."""
        return {
            "rule": self.rule.code,
            "name": self.rule.name,
            "level": self.level.value,
            "message": self.message,
            "service": self.service,
            **asdict(self.location),  # file, line, column
        }


@dataclass
class DiffReport:
    """The changes from ``old_name`` to ``new_name``, sorted by service, rule code, message."""

    old_name: str
    new_name: str
    changes: list[Change] = field(default_factory=list)

    def count(self, level: Level) -> int:
        """How many changes have ``level``."""
        return sum(c.level is level for c in self.changes)

    @property
    def breaking(self) -> bool:
        """True when any change is breaking (the command then exits 1)."""
        return self.count(Level.BREAKING) > 0

    def to_json(self) -> dict[str, object]:
        """``{"changes": [...], "breaking": N, "dangerous": N, "safe": N}``."""
        document: dict[str, object] = {"changes": [c.to_json() for c in self.changes]}
        for level in Level:
            document[level.value] = self.count(level)
        return document

    def summary(self) -> str:
        """``catalog.yaml: 1 breaking, 0 dangerous, 2 safe change(s) against HEAD:catalog.yaml``."""
        counts = ", ".join(f"{self.count(level)} {level.value}" for level in Level)
        return f"{self.new_name}: {counts} change(s) against {self.old_name}"


class DiffError(Exception):
    """The diff cannot be made: ``message`` says why, ``diagnostics`` hold the
    errors of an invalid catalog (empty for a bad ref or a missing git)."""

    def __init__(self, message: str, diagnostics: Iterable[Diagnostic] = ()):
        self.message = message
        self.diagnostics = list(diagnostics)
        super().__init__(message)


# --- comparing two IRs -------------------------------------------------------


class _Comparer:
    """Collects the changes of the matched old/new service pairs, one pair at a time."""

    def __init__(self, source: SourceMap, data: Any):
        self.source = source
        self.data = data
        self.changes: list[Change] = []
        self.sid = ""
        self.index = 0

    def add(self, rule: ChangeRule, message: str, *path: str | int) -> None:
        """Record a change of the current service at ``path`` under its node (the key's
        location when there is one: ``toolName:`` rather than its value)."""
        where = self.source.key(("services", self.index, *path))
        self.changes.append(Change(rule, message, self.sid, where))

    def service(self, old: ir.Service, new: ir.Service) -> None:
        """Every change from ``old`` to ``new`` (the same service, matched by id or legacy id)."""
        self.sid, self.index, sid = new.id, new.index, new.id
        if old.endpoint != new.endpoint:
            message = f"endpoint of '{old.id}' changed from {old.endpoint} to {new.endpoint}"
            self.add(ChangeRules.ENDPOINT_CHANGED, f"{message} (same legacy id)", "id")
        if old.legacy_id != new.legacy_id:
            message = f"legacy id of '{sid}' changed from '{old.legacy_id}' to '{new.legacy_id}'"
            self.add(ChangeRules.LEGACY_ID_CHANGED, message, "legacyId")
        if old.tool_name != new.tool_name:
            message = f"MCP tool name of '{sid}' changed from '{old.tool_name}'"
            self.add(ChangeRules.TOOL_NAME_CHANGED, f"{message} to '{new.tool_name}'", "toolName")
        if old.description != new.description:
            self.add(ChangeRules.DESCRIPTION_CHANGED, f"description of '{sid}' changed")
        self.parameters(old.input_schema, new.input_schema)
        self.output(old.output_schema, new.output_schema)
        self.pricing(old.pricing, new.pricing)
        self.sla(old.sla, new.sla)

    def required_path(self, name: str) -> tuple[str | int, ...]:
        """Path of ``name`` in the current service's ``required:`` list, else of its parameter."""
        try:
            return ("required", self.data["services"][self.index]["required"].index(name))
        except (KeyError, IndexError, TypeError, ValueError, AttributeError):
            return ("params", name)

    def parameters(self, old: dict[str, Any], new: dict[str, Any]) -> None:
        sid = self.sid
        before, after = old["properties"], new["properties"]
        was_required, required = set(old["required"]), set(new["required"])
        removed = sorted(set(before) - set(after))
        added = sorted(set(after) - set(before))
        for was, now in _renames(removed, added, before, after):
            removed.remove(was)
            added.remove(now)
            tail = " and is required" if now in required else ""
            message = f"parameter '{was}' of '{sid}' was renamed to '{now}'{tail}"
            self.add(ChangeRules.PARAMETER_RENAMED, message, "params", now)
        for name in removed:
            message = f"parameter '{name}' of '{sid}' was removed"
            self.add(ChangeRules.PARAMETER_REMOVED, message, "params")
        for name in added:
            rule, kind = (
                (ChangeRules.REQUIRED_PARAMETER_ADDED, "required")
                if name in required
                else (ChangeRules.OPTIONAL_PARAMETER_ADDED, "optional")
            )
            self.add(rule, f"{kind} parameter '{name}' was added to '{sid}'", "params", name)
        for name in sorted(set(before) & set(after)):
            if name in required and name not in was_required:
                message = f"parameter '{name}' of '{sid}' is now required"
                self.add(ChangeRules.PARAMETER_MADE_REQUIRED, message, *self.required_path(name))
            for path, text in narrowings(before[name], after[name]):
                message = f"parameter '{name}{path}' of '{sid}' accepts fewer values: {text}"
                self.add(ChangeRules.PARAMETER_TYPE_NARROWED, message, "params", name)
            if before[name].get("description") != after[name].get("description"):
                message = f"description of parameter '{name}' of '{sid}' changed"
                self.add(ChangeRules.DESCRIPTION_CHANGED, message, "params", name)

    def output(self, old: dict[str, Any], new: dict[str, Any]) -> None:
        before, after = output_fields(old), output_fields(new)
        gone = [name for name in before if name not in after]
        for name in sorted(gone):
            if name.rpartition(".")[0].removesuffix("[]") in gone:
                continue  # reported with its removed parent
            message = f"output field '{name}' of '{self.sid}' was removed"
            self.add(ChangeRules.OUTPUT_FIELD_REMOVED, message, "outputSchema")
        for name in sorted(set(before) & set(after)):
            if before[name] and not after[name]:
                message = f"output field '{name}' of '{self.sid}' is no longer always present"
                self.add(ChangeRules.OUTPUT_FIELD_MADE_OPTIONAL, message, "outputSchema")

    def pricing(self, was: ir.Pricing, now: ir.Pricing) -> None:
        sid = self.sid
        if was.currency != now.currency:
            message = f"price of '{sid}' changed currency from {was.label} to {now.label} per call"
            self.add(ChangeRules.CURRENCY_CHANGED, message, "pricingPolicy")
        elif now.amount_cents > was.amount_cents:
            message = f"price of '{sid}' raised from {was.label} to {now.label} per call"
            self.add(ChangeRules.PRICE_RAISED, message, "pricingPolicy")
        calls_before, calls_now = _calls(was), _calls(now)
        if calls_now < calls_before:
            tail = " (allowReuse turned off)" if was.allow_reuse and not now.allow_reuse else ""
            message = f"calls per payment of '{sid}' lowered from {calls_before} to {calls_now}"
            self.add(ChangeRules.MAX_CALLS_LOWERED, message + tail, "pricingPolicy")

    def sla(self, was: dict[str, str], now: dict[str, str]) -> None:
        for key, unit, worse, verb in _SLA_TERMS:
            before, after = _number(was.get(key), unit), _number(now.get(key), unit)
            if before is not None and after is not None and (after - before) * worse > 0:
                message = f"SLA {key} of '{self.sid}' {verb} from {was[key]} to {now[key]}"
                self.add(ChangeRules.SLA_WEAKENED, message, "sla")


#: SLA keys: unit suffix, sign of a worse change, verb for it.
_SLA_TERMS = (("uptime", "%", -1, "lowered"), ("maxLatency", "ms", 1, "raised"))


def _calls(pricing: ir.Pricing) -> int:
    """Calls one payment buys (see ``spec.Pricing.calls_per_payment``)."""
    return pricing.calls_per_payment


def _number(text: str | None, unit: str) -> Decimal | None:
    """``"99.5%"`` -> ``Decimal("99.5")``, ``"5000ms"`` -> ``Decimal(5000)``; ``None`` if not so."""
    if not isinstance(text, str) or not text.endswith(unit):
        return None
    try:
        return Decimal(text.removesuffix(unit).strip())
    except InvalidOperation:
        return None


def _renames(
    removed: list[str], added: list[str], before: dict, after: dict
) -> list[tuple[str, str]]:
    """Pairs (removed, added) of the same type, each removed name with its most similar
    added one (ties: alphabetical); these are reported as renames."""
    pairs: list[tuple[str, str]] = []
    free = list(added)
    for name in removed:
        kind = _json(before[name].get("type"))
        same = [a for a in free if _json(after[a].get("type")) == kind]
        if not same:
            continue
        best = min(same, key=lambda a: (-difflib.SequenceMatcher(None, name, a).ratio(), a))
        free.remove(best)
        pairs.append((name, best))
    return pairs


def _json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False)


_LOWER_BOUNDS = ("minimum", "exclusiveMinimum", "minLength", "minItems", "minProperties")
_UPPER_BOUNDS = ("maximum", "exclusiveMaximum", "maxLength", "maxItems", "maxProperties")
_EXACT = ("format", "pattern", "const")


def _types(schema: dict) -> set[str] | None:
    kinds = schema.get("type")
    if kinds is None:
        return None
    return {kinds} if isinstance(kinds, str) else {str(k) for k in kinds}


def _bound(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def narrowings(old: Any, new: Any, path: str = "") -> list[tuple[str, str]]:
    """What values ``old`` (a JSON Schema) accepts that ``new`` rejects, as
    ``(sub-path, text)`` pairs: sub-path ``""`` for the value itself, ``"[]"``
    for array items, ``".Name"`` for an object property (nested: ``"[].Url"``).

    Detected: types lost (``number`` -> ``integer`` included), an enum added
    or losing members, a bound added or tightened, a format, pattern or const
    added or changed, a nested property made required, additional properties
    forbidden. Never raises; non-schema values compare as no narrowing.
    """
    if not isinstance(old, dict) or not isinstance(new, dict):
        return []
    found: list[tuple[str, str]] = []

    def say(text: str) -> None:
        found.append((path, text))

    old_types, new_types = _types(old), _types(new)
    if new_types is not None:
        if old_types is None:
            say(f"type {_json(sorted(new_types))} added")
        else:
            lost = old_types - new_types - ({"integer"} if "number" in new_types else set())
            if lost:
                was, now = " | ".join(sorted(old_types)), " | ".join(sorted(new_types))
                say(f"type narrowed from {was} to {now}")
    if "enum" in new and isinstance(new["enum"], list):
        if not isinstance(old.get("enum"), list):
            say(f"enum {_json(new['enum'])} added")
        else:
            kept = {_json(v) for v in new["enum"]}
            lost = [v for v in old["enum"] if _json(v) not in kept]
            if lost:
                say(f"enum no longer allows {_json(lost)}")
    for key in _LOWER_BOUNDS + _UPPER_BOUNDS:
        was, now = old.get(key), new.get(key)
        if not _bound(now):
            continue
        if not _bound(was):
            say(f"{key} {_json(now)} added")
        elif (now > was) if key in _LOWER_BOUNDS else (now < was):
            verb = "raised" if key in _LOWER_BOUNDS else "lowered"
            say(f"{key} {verb} from {_json(was)} to {_json(now)}")
    for key in _EXACT:
        if key in new and key not in old:
            say(f"{key} {_json(new[key])} added")
        elif key in new and _json(new[key]) != _json(old[key]):
            say(f"{key} changed from {_json(old[key])} to {_json(new[key])}")
    if new.get("additionalProperties") is False and old.get("additionalProperties") is not False:
        say("additional properties no longer allowed")
    old_props, new_props = old.get("properties"), new.get("properties")
    if isinstance(new.get("required"), list):
        was_required = old.get("required") if isinstance(old.get("required"), list) else []
        for name in sorted(set(map(str, new["required"])) - set(map(str, was_required))):
            say(f"'{name}' is now required")
    if isinstance(old_props, dict) and isinstance(new_props, dict):
        for name in sorted(set(old_props) & set(new_props)):
            found += narrowings(old_props[name], new_props[name], f"{path}.{name}")
    found += narrowings(old.get("items"), new.get("items"), f"{path}[]")
    return found


def output_fields(schema: Any, prefix: str = "") -> dict[str, bool]:
    """Every field an output schema declares, ``{"data.Result": always present?}``;
    array items add ``[]`` to the path (``Faces[].Rect``)."""
    fields: dict[str, bool] = {}
    if not isinstance(schema, dict):
        return fields
    props = schema.get("properties")
    required = schema.get("required") if isinstance(schema.get("required"), list) else []
    if isinstance(props, dict):
        for name, prop in props.items():
            path = f"{prefix}.{name}" if prefix else name
            fields[path] = name in required
            fields.update(output_fields(prop, path))
    items = schema.get("items")
    if isinstance(items, dict):
        fields.update(output_fields(items, f"{prefix}[]"))
    return fields


def compare(old: ir.Catalog, new: ir.Catalog, source: SourceMap, data: Any = None) -> list[Change]:
    """Every change from ``old`` to ``new``, sorted by service id, rule code, message.

    ``source`` locates the new catalog (changes point at the new service's
    nodes; a removed service at line 1, column 1); ``data`` is the new
    catalog's loaded tree, used to point at ``required:`` entries (optional).
    Services match by id, then by legacy id. Pure; never raises on valid IRs.
    """
    comparer = _Comparer(source, data)
    new_by_id = {svc.id: svc for svc in new.services}
    pairs: list[tuple[ir.Service, ir.Service]] = []
    unmatched: list[ir.Service] = []
    for svc in old.services:
        if svc.id in new_by_id:
            pairs.append((svc, new_by_id.pop(svc.id)))
        else:
            unmatched.append(svc)
    by_legacy = {svc.legacy_id: svc for svc in new_by_id.values()}
    for svc in unmatched:
        partner = by_legacy.pop(svc.legacy_id, None)
        if partner is None:
            gone = f"{svc.endpoint} and {svc.legacy_endpoint} are gone"
            message = f"service '{svc.id}' was removed ({gone})"
            top = Location(source.file, 1, 1)
            comparer.changes.append(Change(ChangeRules.SERVICE_REMOVED, message, svc.id, top))
        else:
            del new_by_id[partner.id]
            pairs.append((svc, partner))
    for svc in new_by_id.values():
        comparer.sid, comparer.index = svc.id, svc.index
        comparer.add(ChangeRules.SERVICE_ADDED, f"service '{svc.id}' was added")
    for before, after in pairs:
        comparer.service(before, after)
    return sorted(set(comparer.changes), key=_order)


def _order(change: Change) -> tuple:
    where = change.location
    return (change.service, change.rule.code, change.message, where.file, where.line, where.column)


# --- reading both catalogs -----------------------------------------------------


def _git(args: list[str], cwd: Path) -> bytes:
    """Run git; its stdout. Raises :class:`DiffError` when git is missing or fails."""
    try:
        done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, check=False)
    except FileNotFoundError:
        raise DiffError("git is not installed (needed to read a git ref)") from None
    except OSError as exc:
        raise DiffError(f"cannot run git: {exc}") from None
    if done.returncode != 0:
        lines = done.stderr.decode("utf-8", "replace").strip().splitlines()
        raise DiffError(lines[-1] if lines else f"git {args[0]} failed ({done.returncode})")
    return done.stdout


@contextlib.contextmanager
def against_file(catalog: Path, against: str) -> Iterator[tuple[Path, str]]:
    """The old catalog as ``(file path, display name)``, for the duration of the block.

    ``against`` is an existing file (used as is), a git ``REF`` (the blob at
    ``REF:<catalog's path from the repository root>``, written to a
    temporary file shown as ``REF:path``) or an explicit ``REF:path``.
    Raises :class:`DiffError` for a bad ref, a catalog outside a git
    repository, or git missing.
    """
    if os.path.isfile(against):
        yield Path(against), _display(Path(against))
        return
    if not against or against.startswith("-"):
        raise DiffError(f"--against {against!r} is neither a file nor a git ref")
    folder = catalog.resolve().parent
    if not folder.is_dir():
        raise DiffError(f"cannot read {_display(catalog)}: no such folder")
    try:
        if ":" in against:
            spec = against
        else:
            root = Path(os.fsdecode(_git(["rev-parse", "--show-toplevel"], folder)).strip())
            relative = os.path.relpath(catalog.resolve(), root.resolve()).replace(os.sep, "/")
            spec = f"{against}:{relative}"
        blob = _git(["show", "--no-textconv", spec], folder)
    except DiffError as exc:
        raise DiffError(f"--against {against}: {exc.message}") from None
    with tempfile.TemporaryDirectory(prefix="s402gen-diff-") as tmp:
        path = Path(tmp) / "catalog.yaml"
        path.write_bytes(blob)
        yield path, spec


def _compile(path: Path, name: str) -> tuple[ir.Catalog | None, list[Diagnostic]]:
    from .pipeline import compile_catalog

    result = compile_catalog(path, display_name=name, environ={})
    errors = [d for d in result.diagnostics if d.level is DiagnosticLevel.ERROR]
    return (result.catalog if result.ok else None), errors


def diff(catalog: Path, against: str) -> DiffReport:
    """Compile ``catalog`` and the catalog ``against`` names (see :func:`against_file`),
    and compare them (:func:`compare`).

    Raises :class:`DiffError` when either catalog is invalid (with the
    errors of both), or the old one cannot be read.
    """
    new_name = _display(catalog)
    new, new_errors = _compile(catalog, new_name)
    try:
        with against_file(catalog, against) as (old_path, old_name):
            old, old_errors = _compile(old_path, old_name)
    except DiffError as exc:
        raise DiffError(exc.message, new_errors + exc.diagnostics) from None
    errors = new_errors + old_errors
    if new is None or old is None:
        invalid = [n for n, c in ((new_name, new), (old_name, old)) if c is None]
        raise DiffError(f"invalid catalog: {', '.join(invalid)}", errors)
    try:
        document = load_file(str(catalog), new_name)
    except CatalogError as exc:  # the file changed under us
        raise DiffError(f"invalid catalog: {new_name}", exc.diagnostics) from None
    changes = compare(old, new, document.source, document.data)
    return DiffReport(old_name, new_name, changes)


# --- command line --------------------------------------------------------------


def _fail(error: DiffError, fmt: str, catalog: Path) -> NoReturn:
    for diagnostic in error.diagnostics:
        click.echo(diagnostic.format(), err=True)
    click.echo(f"error: {error.message}", err=True)
    if fmt == "json":
        diagnostics = [d.to_json() for d in error.diagnostics]
        document = {"error": error.message, "diagnostics": diagnostics}
        click.echo(json.dumps(document, ensure_ascii=False, indent=2))
    elif fmt == "github":
        for diagnostic in error.diagnostics:
            click.echo(diagnostic.format_github())
        if not error.diagnostics:
            where = Location(_display(catalog), 1, 1)
            click.echo(github_command("error", where, "s402gen diff", error.message))
    sys.exit(EXIT_ERROR)


@click.command("diff", epilog=EXIT_CODES)
@click.argument("catalog", required=False, type=click.Path(dir_okay=False))
@click.option(
    "--against",
    required=True,
    metavar="REF",
    help="The old catalog: a git ref (HEAD~1, main; the same catalog path is read from it), "
    "REF:path, or a path to another catalog file (an existing file wins).",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json", "github"]),
    default="text",
    show_default=True,
    help="text for people, json for tools, github for GitHub Actions annotations.",
)
def diff_command(catalog: str | None, against: str, fmt: str) -> None:
    """Report the breaking, dangerous and safe changes of CATALOG since REF.

    Both catalogs are compiled and compared as models: services matched by
    id (then by legacy id), their endpoints, tool names, parameters, output
    schema, pricing and SLA. Each change has a stable rule id, like
    S402-B004 parameter-removed.
    """
    from .config import ConfigError, load_settings

    if catalog is None:
        try:
            path = load_settings().catalog
        except ConfigError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(EXIT_ERROR)
    else:
        path = Path(catalog)
    try:
        report = diff(path, against)
    except DiffError as exc:
        _fail(exc, fmt, path)
    if fmt == "json":
        click.echo(json.dumps(report.to_json(), ensure_ascii=False, indent=2))
    elif fmt == "github":
        for change in report.changes:
            click.echo(change.format_github())
    else:
        for change in report.changes:
            click.echo(change.format())
        click.echo(report.summary(), err=True)
    sys.exit(EXIT_BREAKING if report.breaking else EXIT_OK)
