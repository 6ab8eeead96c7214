"""Breaking-change diff: two catalogs compiled, then compared as IRs, not as text.

``s402gen diff [CATALOG] --against REF`` (REF: another catalog file, a git
ref, or ``REF:path``) compiles both catalogs with the whole pipeline and
compares them service by service, like ``buf breaking``: services match by
id, then by legacy id (same legacy id, new id: the endpoint changed). Each
difference is a :class:`~s402gen.diagnostics.Finding` of a rule listed in
:class:`~s402gen.diagnostics.Rules` with a level: ``breaking`` (old callers
fail), ``dangerous`` (they pay more or get less) or ``safe``, printed by the
one findings printer. A parameter counts as renamed only when the names are
similar (:func:`rename_similarity`); a change of a shared pricing policy or
SLA is one finding listing the services it touches. An invalid catalog, a
bad ref or a missing git raise :class:`DiffError`, which the command turns
into exit code 2.
"""

from __future__ import annotations

import contextlib
import difflib
import json
import os
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, NoReturn

import click

from . import ir
from .cli import CONTEXT_SETTINGS, emit, format_option
from .config import display_path as _display
from .diagnostics import CatalogError, Finding, Level, Location, Rule, Rules
from .diagnostics import all_rules as all_known_rules
from .exits import Exit, epilog
from .gitref import GitError, catalog_at, repository_path
from .load import SourceMap, load_catalog

#: The levels of a change between two catalogs.
CHANGE_LEVELS = (Level.BREAKING, Level.DANGEROUS, Level.SAFE)
#: Least similarity (difflib ratio of the names, +0.4 for the same description) for a removed
#: and an added parameter of one type to be reported as one renamed parameter.
RENAME_SIMILARITY = 0.6
#: How many service ids a grouped finding's message names (its ``services`` holds all).
NAMED_IN_GROUP = 3


def all_rules() -> list[Rule]:
    """Every rule ``s402gen diff`` reports a change with (breaking, dangerous, safe), by code."""
    return [rule for rule in all_known_rules() if rule.level in CHANGE_LEVELS]


@dataclass
class DiffReport:
    """The changes from ``old_name`` to ``new_name``: breaking first, then by service,
    rule code and message."""

    old_name: str
    new_name: str
    changes: list[Finding] = field(default_factory=list)

    def count(self, level: Level) -> int:
        """How many changes have ``level``."""
        return sum(c.level is level for c in self.changes)

    @property
    def breaking(self) -> bool:
        """True when any change is breaking (the command then exits 1)."""
        return self.count(Level.BREAKING) > 0

    def summary(self) -> str:
        """``catalog.yaml: 1 breaking, 0 dangerous, 2 safe change(s) against HEAD:catalog.yaml``."""
        counts = ", ".join(f"{self.count(level)} {level.value}" for level in CHANGE_LEVELS)
        return f"{self.new_name}: {counts} change(s) against {self.old_name}"


class DiffError(Exception):
    """The diff cannot be made: ``message`` says why, ``diagnostics`` hold the
    errors of an invalid catalog; ``ref`` is true when REF could not be read
    (a bad ref, a catalog outside a repository, git missing)."""

    def __init__(self, message: str, diagnostics: Iterable[Finding] = (), ref: bool = False):
        self.message = message
        self.diagnostics = list(diagnostics)
        self.ref = ref
        super().__init__(message)


# --- comparing two IRs -------------------------------------------------------


class _Comparer:
    """Collects the changes of the matched old/new service pairs, one pair at a time."""

    def __init__(self, source: SourceMap, data: Any):
        self.source = source
        self.data = data
        self.changes: list[Finding] = []
        #: changes of a shared setting: (rule, its path, message with {service}) -> services
        self.shared: dict[tuple, list[tuple[str, Location]]] = {}
        self.sid = ""
        self.index = 0

    def add(self, rule: Rule, message: str, *path: str | int) -> None:
        """Record a change of the current service at ``path`` under its node (the key's
        location when there is one: ``toolName:`` rather than its value)."""
        where = self.source.key(("services", self.index, *path))
        self.changes.append(Finding(rule, message, where, services=(self.sid,)))

    def add_shared(self, rule: Rule, template: str, shared: tuple | None, *path: str | int) -> None:
        """Record a change whose ``template`` has ``{service}``; changes of one rule and text
        that come from one shared setting (at path ``shared``, e.g. a pricing policy) are
        reported once, by :meth:`grouped`; ``shared`` is ``None`` when the service's own."""
        if shared is None:
            self.add(rule, template.format(service=f"service '{self.sid}'"), *path)
            return
        where = self.source.key(("services", self.index, *path))
        self.shared.setdefault((rule, shared, template), []).append((self.sid, where))

    def grouped(self) -> list[Finding]:
        """One finding per shared change, naming how many services it touches (a change
        that touches one service is reported as that service's)."""
        found = []
        for (rule, shared, template), touched in self.shared.items():
            ids = tuple(sorted(sid for sid, _ in touched))
            if len(ids) == 1:
                what, where = f"service '{ids[0]}'", touched[0][1]
            else:
                named = ", ".join(ids[:NAMED_IN_GROUP])
                more = f" and {len(ids) - NAMED_IN_GROUP} more" if len(ids) > NAMED_IN_GROUP else ""
                setting = (
                    f"pricing policy '{shared[1]}'"
                    if shared[0] == "pricingPolicies"
                    else ".".join(map(str, shared))
                )
                what = f"{setting} ({len(ids)} services: {named}{more})"
                where = self.source.key(shared)
            found.append(Finding(rule, template.format(service=what), where, services=ids))
        return found

    def _own(self, key: str) -> bool:
        """True when the current service sets ``key`` itself (else it comes from defaults)."""
        try:
            return key in self.data["services"][self.index]
        except (KeyError, IndexError, TypeError):
            return True

    def service(self, old: ir.Service, new: ir.Service) -> None:
        """Every change from ``old`` to ``new`` (the same service, matched by id or legacy id)."""
        self.sid, self.index, sid = new.id, new.index, new.id
        if old.endpoint != new.endpoint:
            message = (
                f"endpoint of service '{old.id}' changed from {old.endpoint} to {new.endpoint}"
            )
            self.add(Rules.ENDPOINT_CHANGED, f"{message} (same legacy id)", "id")
        if old.legacy_id != new.legacy_id:
            message = (
                f"legacy id of service '{sid}' changed from '{old.legacy_id}' to '{new.legacy_id}'"
            )
            self.add(Rules.LEGACY_ID_CHANGED, message, "legacyId")
        if old.tool_name != new.tool_name:
            message = f"MCP tool name of service '{sid}' changed from '{old.tool_name}'"
            self.add(Rules.TOOL_NAME_CHANGED, f"{message} to '{new.tool_name}'", "toolName")
        if old.description != new.description:
            self.add(Rules.DESCRIPTION_CHANGED, f"description of service '{sid}' changed")
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
            message = f"parameter '{was}' of service '{sid}' was renamed to '{now}'{tail}"
            self.add(Rules.PARAMETER_RENAMED, message, "params", now)
        for name in removed:
            message = f"parameter '{name}' of service '{sid}' was removed"
            self.add(Rules.PARAMETER_REMOVED, message, "params")
        for name in added:
            rule, kind = (
                (Rules.REQUIRED_PARAMETER_ADDED, "required")
                if name in required
                else (Rules.OPTIONAL_PARAMETER_ADDED, "optional")
            )
            self.add(
                rule, f"{kind} parameter '{name}' was added to service '{sid}'", "params", name
            )
        for name in sorted(set(before) & set(after)):
            if name in required and name not in was_required:
                message = f"parameter '{name}' of service '{sid}' is now required"
                self.add(Rules.PARAMETER_MADE_REQUIRED, message, *self.required_path(name))
            for path, text in narrowings(before[name], after[name]):
                message = (
                    f"parameter '{name}{path}' of service '{sid}' accepts fewer values: {text}"
                )
                self.add(Rules.PARAMETER_TYPE_NARROWED, message, "params", name)
            if before[name].get("description") != after[name].get("description"):
                message = f"description of parameter '{name}' of service '{sid}' changed"
                self.add(Rules.DESCRIPTION_CHANGED, message, "params", name)

    def output(self, old: dict[str, Any], new: dict[str, Any]) -> None:
        before, after = output_fields(old), output_fields(new)
        gone = [name for name in before if name not in after]
        for name in sorted(gone):
            if name.rpartition(".")[0].removesuffix("[]") in gone:
                continue  # reported with its removed parent
            message = f"output field '{name}' of service '{self.sid}' was removed"
            self.add(Rules.OUTPUT_FIELD_REMOVED, message, "outputSchema")
        for name in sorted(set(before) & set(after)):
            if before[name] and not after[name]:
                message = (
                    f"output field '{name}' of service '{self.sid}' is no longer always present"
                )
                self.add(Rules.OUTPUT_FIELD_MADE_OPTIONAL, message, "outputSchema")

    def pricing(self, was: ir.Pricing, now: ir.Pricing) -> None:
        """Price and calls per payment; a change of a policy the service keeps is shared."""
        policy = was.policy_id == now.policy_id
        shared = ("pricingPolicies", now.policy_id) if policy else None
        if was.currency != now.currency:
            message = f"price of {{service}} changed currency from {was.label} to {now.label}"
            self.add_shared(Rules.CURRENCY_CHANGED, message + " per call", shared, "pricingPolicy")
        elif now.amount_cents > was.amount_cents:
            message = f"price of {{service}} raised from {was.label} to {now.label} per call"
            self.add_shared(Rules.PRICE_RAISED, message, shared, "pricingPolicy")
        calls_before, calls_now = _calls(was), _calls(now)
        if calls_now < calls_before:
            tail = " (allowReuse turned off)" if was.allow_reuse and not now.allow_reuse else ""
            message = f"calls per payment of {{service}} lowered from {calls_before} to {calls_now}"
            self.add_shared(Rules.MAX_CALLS_LOWERED, message + tail, shared, "pricingPolicy")

    def sla(self, was: dict[str, str], now: dict[str, str]) -> None:
        """Uptime and latency; a change of ``defaults.sla`` is shared."""
        shared = None if self._own("sla") else ("defaults", "sla")
        for key, unit, worse, verb in _SLA_TERMS:
            before, after = _number(was.get(key), unit), _number(now.get(key), unit)
            if before is not None and after is not None and (after - before) * worse > 0:
                message = f"SLA {key} of {{service}} {verb} from {was[key]} to {now[key]}"
                self.add_shared(Rules.SLA_WEAKENED, message, shared, "sla")


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


def rename_similarity(was: str, now: str, old: dict, new: dict) -> float:
    """How likely parameter ``was`` (schema ``old``) became ``now`` (schema ``new``): the
    difflib ratio of the names (case-insensitive), +0.4 when the descriptions are the
    same; 0 when the types differ."""
    if _json(old.get("type")) != _json(new.get("type")):
        return 0.0
    score = difflib.SequenceMatcher(None, was.lower(), now.lower()).ratio()
    return score + (0.4 if old.get("description") == new.get("description") else 0.0)


def _renames(
    removed: list[str], added: list[str], before: dict, after: dict
) -> list[tuple[str, str]]:
    """Pairs (removed, added) reported as renames: similar enough
    (:func:`rename_similarity` at least :data:`RENAME_SIMILARITY`), the most similar
    pairs first, each name in one pair at most (ties: alphabetical)."""
    scored = sorted(
        (-rename_similarity(was, now, before[was], after[now]), was, now)
        for was in removed
        for now in added
    )
    pairs: list[tuple[str, str]] = []
    for score, was, now in scored:
        if -score < RENAME_SIMILARITY:
            break
        if all(was != a and now != b for a, b in pairs):
            pairs.append((was, now))
    return sorted(pairs)


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


def compare(old: ir.Catalog, new: ir.Catalog, source: SourceMap, data: Any = None) -> list[Finding]:
    """Every change from ``old`` to ``new``: breaking first, then dangerous, then safe;
    within a level by service id, rule code, message. A change of a shared setting (a
    pricing policy, ``defaults.sla``) is one finding listing the services it touches.

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
            comparer.changes.append(
                Finding(Rules.SERVICE_REMOVED, message, top, services=(svc.id,))
            )
        else:
            del new_by_id[partner.id]
            pairs.append((svc, partner))
    for svc in new_by_id.values():
        comparer.sid, comparer.index = svc.id, svc.index
        comparer.add(Rules.SERVICE_ADDED, f"service '{svc.id}' was added")
    for before, after in pairs:
        comparer.service(before, after)
    return sorted(set(comparer.changes + comparer.grouped()), key=_order)


def _order(change: Finding) -> tuple:
    where = change.location
    return (
        change.level.rank,
        change.services,
        change.rule.code,
        change.message,
        where.file,
        where.line,
        where.column,
    )


# --- reading both catalogs -----------------------------------------------------


@contextlib.contextmanager
def against_file(catalog: Path, against: str) -> Iterator[tuple[Path, str]]:
    """The old catalog as ``(file path, display name)``, for the duration of the block.

    ``against`` is an existing file (used as is), a git ``REF`` (the catalog's
    path from the repository root, in ``REF``, shown as ``REF:path``) or an
    explicit ``REF:path``; a catalog read from git comes with the files its
    ``include:`` names, as they were in ``REF`` (:func:`s402gen.gitref.catalog_at`).
    Raises :class:`DiffError` for a bad ref, a catalog outside a git
    repository, or git missing.
    """
    if os.path.isfile(against):
        yield Path(against), _display(Path(against))
        return
    if not against or against.startswith("-"):
        raise DiffError(f"--against {against!r} is neither a file nor a git ref", ref=True)
    folder = catalog.resolve().parent
    if not folder.is_dir():
        raise DiffError(f"cannot read {_display(catalog)}: no such folder", ref=True)
    with contextlib.ExitStack() as stack:
        try:
            spec = against if ":" in against else f"{against}:{repository_path(catalog)}"
            path = stack.enter_context(catalog_at(spec, folder))
        except GitError as exc:
            raise DiffError(f"--against {against}: {exc.message}", ref=True) from None
        yield path, spec


def _compile(path: Path, name: str) -> tuple[ir.Catalog | None, list[Finding]]:
    from .pipeline import compile_catalog

    result = compile_catalog(path, display_name=name, environ={})
    errors = [d for d in result.diagnostics if d.level is Level.ERROR]
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
        raise DiffError(exc.message, new_errors + exc.diagnostics, exc.ref) from None
    errors = new_errors + old_errors
    if new is None or old is None:
        invalid = [n for n, c in ((new_name, new), (old_name, old)) if c is None]
        raise DiffError(f"invalid catalog: {', '.join(invalid)}", errors)
    try:
        document = load_catalog(str(catalog), new_name)
    except CatalogError as exc:  # the file changed under us
        raise DiffError(f"invalid catalog: {new_name}", exc.diagnostics) from None
    changes = compare(old, new, document.source, document.data)
    return DiffReport(old_name, new_name, changes)


# --- command line --------------------------------------------------------------


def _fail(error: DiffError, fmt: str, catalog: Path) -> NoReturn:
    findings = list(error.diagnostics)
    if error.ref:
        where = Location(_display(catalog), 1, 1)
        findings.append(Finding(Rules.UNREADABLE_REF, error.message, where))
    emit(findings, fmt, file=_display(catalog))
    if not error.ref:
        click.echo(f"error: {error.message}", err=True)
    sys.exit(Exit.INVALID)


@click.command("diff", epilog=epilog("diff"), context_settings=CONTEXT_SETTINGS)
@click.argument("catalog", required=False, type=click.Path(dir_okay=False))
@click.option(
    "--against",
    required=True,
    metavar="REF",
    help="The old catalog: a git ref (HEAD~1, main; the same catalog path is read from it), "
    "REF:path, or a path to another catalog file (an existing file wins).",
)
@format_option
def diff_command(catalog: str | None, against: str, fmt: str) -> None:
    """Report the breaking, dangerous and safe changes of CATALOG since REF.

    Both catalogs are compiled and compared as models: services matched by
    id (then by legacy id), their endpoints, tool names, parameters, output
    schema, pricing and SLA. Each change has a stable rule id, like
    S402-B004 parameter-removed; breaking changes come first, and a change of
    a shared pricing policy or SLA is one finding naming the services it touches.
    """
    from .config import ConfigError, load_settings

    if catalog is None:
        try:
            path = load_settings().catalog
        except ConfigError as exc:
            emit([exc.finding], fmt)
            sys.exit(Exit.INVALID)
    else:
        path = Path(catalog)
    try:
        report = diff(path, against)
    except DiffError as exc:
        _fail(exc, fmt, path)
    emit(report.changes, fmt, file=report.new_name, against=report.old_name)
    if fmt == "text":
        click.echo(report.summary(), err=True)
    sys.exit(Exit.FINDINGS if report.breaking else Exit.OK)
