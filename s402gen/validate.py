"""Validate stage: the semantic rule registry, every rule one function.

Field constraints live in the authoring model (:mod:`s402gen.model` and the
``model_*`` modules it is built from, reported by
:func:`s402gen.structure.parse_model`). Every other rule is one function
registered under its rule with :func:`rule`:
``model`` rules check the authoring model before derive (references between
sections, so derive only resolves), ``ir`` rules check the derived catalog
(uniqueness, tool names, JSON Schema validity, examples against their
schemas, error examples really rejected, related services, lint warnings).
:func:`check_model` and :func:`check_catalog` run them. Nothing here raises
for a user's mistake: findings are returned.
"""

from __future__ import annotations

import dataclasses
import keyword
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Iterator, Literal, Protocol, Sequence

from . import ir, model, model_base
from .derive import inherited_path, provider_of
from .diagnostics import Finding, Rule, Rules, did_you_mean
from .load import SourceMap
from .runtime import protocol
from .schema_check import schema_problem

#: MCP tool names this compiler accepts (the MCP SDK allows up to 128 characters;
#: 64 keeps names usable by every client the marketplace targets).
TOOL_NAME_PATTERN = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


# ---------------------------------------------------------------------------
# the rule registry


@dataclass(frozen=True)
class Issue:
    """What a rule function yields: a message, the path of the node it is about, an
    optional fix hint and the service it concerns (its id)."""

    message: str
    path: tuple
    hint: str | None = None
    service: str | None = None


@dataclass
class Context:
    """What rule functions read: the authoring model, its source map, and (``ir`` rules)
    the derived catalog. ``memo`` shares work between rules (compiled validators).

    A ``service`` rule (see :func:`rule`) looks at the services :meth:`services` and
    :meth:`pairs` give (``selected``: their indexes; ``None``: all), and at the shared
    sections (defaults, providers ...) only when ``shared`` is set: its findings over
    the whole catalog are those of a run with ``selected=()`` and ``shared`` plus those of
    one run per service with ``selected=(index,)`` and not ``shared`` (what
    :mod:`s402gen.servicecache` keeps per service). A ``catalog`` rule always looks at
    every service.
    """

    authored: model.Catalog
    source: SourceMap
    catalog: ir.Catalog | None = None
    memo: dict[Any, Any] = field(default_factory=dict)
    selected: Sequence[int] | None = None
    shared: bool = True

    def services(self) -> Iterator[tuple[int, model.Service]]:
        """``(index, authored service)`` for each selected service."""
        services = self.authored.services
        if self.selected is None:
            yield from enumerate(services)
        else:
            for index in self.selected:
                yield index, services[index]

    def pairs(self) -> Iterator[tuple[ir.Service, model.Service, tuple]]:
        """``(derived service, authored service, its path)`` for each selected service."""
        assert self.catalog is not None
        for index, authored in self.services():
            yield self.catalog.services[index], authored, ("services", index)


Stage = Literal["model", "ir"]
Scope = Literal["service", "catalog"]
Check = Callable[[Context], Iterable[Issue]]


@dataclass(frozen=True)
class Registered:
    """A registered rule: the rule, the stage it runs at, its scope and its function."""

    rule: Rule
    stage: Stage
    check: Check
    scope: Scope = "service"


REGISTRY: dict[Rule, Registered] = {}


def rule(which: Rule, stage: Stage = "ir", scope: Scope = "service") -> Callable[[Check], Check]:
    """Register the decorated function as the one check of ``which``, run at ``stage``
    (``model``: before derive, on the authoring model; ``ir``: on the derived catalog).
    ``scope`` is ``service`` when what it finds in a service depends only on that service
    and the shared sections (see :class:`Context`), else ``catalog`` (a check across
    services: uniqueness, references between services).

    Raises ``ValueError`` when the rule already has a function.
    """

    def register(check: Check) -> Check:
        if which in REGISTRY:
            raise ValueError(f"{which.code} {which.name} is already registered")
        REGISTRY[which] = Registered(which, stage, check, scope)
        return check

    return register


Found = tuple[Rule, Issue]


def run_rules(stage: Stage, context: Context, scope: Scope | None = None) -> list[Found]:
    """``(rule, issue)`` of every rule of ``stage`` (of ``scope`` only, when given)."""
    return [
        (registered.rule, issue)
        for registered in REGISTRY.values()
        if registered.stage == stage and scope in (None, registered.scope)
        for issue in registered.check(context)
    ]


def locate(source: SourceMap, found: Iterable[Found]) -> list[Finding]:
    """The findings of ``found``, located in ``source``."""
    return [
        Finding(
            rule,
            issue.message,
            source.value(issue.path),
            issue.hint,
            (issue.service,) if issue.service else (),
        )
        for rule, issue in found
    ]


class KnownFindings(Protocol):
    """What a check may take from an earlier one, service by service (see
    :class:`s402gen.servicecache.Session`)."""

    def issues(self, stage: Stage, index: int) -> list[Found] | None:
        """The ``service`` rules' issues of service ``index`` at ``stage``, if known."""

    def keep(self, stage: Stage, index: int, found: list[Found]) -> None:
        """Record what the ``service`` rules found in service ``index`` at ``stage``."""


def _check(stage: Stage, context: Context, reuse: KnownFindings | None) -> list[Finding]:
    if reuse is None:
        return locate(context.source, run_rules(stage, context))
    found = run_rules(stage, context, "catalog")  # every service: checks across them
    found += run_rules(stage, dataclasses.replace(context, selected=()), "service")  # shared
    for index in range(len(context.authored.services)):
        known = reuse.issues(stage, index)
        if known is None:
            one = dataclasses.replace(context, selected=(index,), shared=False)
            known = run_rules(stage, one, "service")
            reuse.keep(stage, index, known)
        found += known
    return locate(context.source, found)


def check_model(
    authored: model.Catalog, source: SourceMap, reuse: KnownFindings | None = None
) -> list[Finding]:
    """The ``model`` rules: what derive needs to hold (references resolve). With ``reuse``,
    a service's findings are taken from it when it has them (and given to it otherwise)."""
    return _check("model", Context(authored, source), reuse)


def check_catalog(
    catalog: ir.Catalog,
    authored: model.Catalog,
    source: SourceMap,
    reuse: KnownFindings | None = None,
) -> list[Finding]:
    """The ``ir`` rules of a derived catalog: errors and warnings (``reuse``: as
    :func:`check_model`)."""
    return _check("ir", Context(authored, source, catalog), reuse)


# ---------------------------------------------------------------------------
# model rules: references between sections


def _reference(
    table: dict, name: str, kind: str, path: tuple, extra: Iterable[str] = ()
) -> Iterator[Issue]:
    if name not in table:
        yield Issue(f"unknown {kind} '{name}'", path, did_you_mean(name, [*table, *extra]))


@rule(Rules.UNKNOWN_REFERENCE, "model")
def unknown_reference(ctx: Context) -> Iterator[Issue]:
    """A provider, pricing policy, payment provider or preset name that is not defined."""
    c = ctx.authored
    tables = (
        (c.providers, "provider", "provider"),
        (c.pricing_policies, "pricing policy", "pricingPolicy"),
        (c.payment_providers, "payment provider", "paymentProvider"),
    )
    if ctx.shared:
        for table, kind, key in tables:
            name = getattr(c.defaults, model_field(key))
            yield from _reference(table, name, kind, ("defaults", key))
        for section, scope in _scoped_defaults(c):
            for table, kind, key in tables[1:]:  # a scoped default cannot name a provider
                name = getattr(scope, model_field(key), None)
                if name is not None:
                    yield from _reference(table, name, kind, (*section, "defaults", key))
        if c.categories:  # categories declared: every category named must be one of them
            named = [(c.defaults.category, ("defaults", "category"))]
            named += [
                (scope.category, (*section, "defaults", "category"))
                for section, scope in _scoped_defaults(c)
                if getattr(scope, "category", None) is not None
            ]
            for name, where in named:
                yield from _reference(c.categories, name, "category", where)
    for index, svc in ctx.services():
        path = ("services", index)
        if c.categories and svc.category is not None:
            yield from _reference(c.categories, svc.category, "category", path + ("category",))
        for table, kind, key in tables:
            name = getattr(svc, model_field(key))
            if name is not None:
                yield from _reference(table, name, kind, path + (key,))
        for name, param in svc.params.items():
            if param.preset is not None:  # a shorthand may have meant a JSON type
                where = path + ("params", name, "preset")
                yield from _reference(
                    c.presets, param.preset, "preset", where, model_base.JSON_TYPES
                )


def _scoped_defaults(c: model.Catalog) -> Iterator[tuple[tuple, Any]]:
    """``(path of the owner, its defaults)`` of every provider and category with defaults."""
    for section, table in (("providers", c.providers), ("categories", c.categories)):
        for name, owner in table.items():
            if owner.defaults is not None:
                yield (section, name), owner.defaults


def model_field(alias: str) -> str:
    """``pricingPolicy`` -> ``pricing_policy``."""
    return re.sub(r"[A-Z]", lambda m: "_" + m.group(0).lower(), alias)


@rule(Rules.UNKNOWN_PARAMETER, "model")
def unknown_required_parameter(ctx: Context) -> Iterator[Issue]:
    """A name under ``required`` that is not under ``params``."""
    for index, svc in ctx.services():
        for position, name in enumerate(svc.required):
            if name not in svc.params:
                yield Issue(
                    f"required parameter '{name}' of service '{svc.id}' is not under params",
                    ("services", index, "required", position),
                    did_you_mean(name, svc.params),
                    svc.id,
                )


# ---------------------------------------------------------------------------
# ir rules: across services


def _first_uses(ctx: Context, values: Callable[[ir.Service], Iterable[str]]) -> Iterator[tuple]:
    """``(service, value, first service using it)`` for each value a service repeats;
    services whose id repeats are left out (their other values repeat the same clash)."""
    assert ctx.catalog is not None
    ids: set[str] = set()
    seen: dict[str, ir.Service] = {}
    for svc in ctx.catalog.services:
        if svc.id in ids:
            continue
        ids.add(svc.id)
        for value in values(svc):
            first = seen.setdefault(value, svc)
            if first is not svc:
                yield svc, value, first


@rule(Rules.DUPLICATE_ID, scope="catalog")
def duplicate_id(ctx: Context) -> Iterator[Issue]:
    """Two services with one id."""
    assert ctx.catalog is not None
    seen: dict[str, ir.Service] = {}
    for svc in ctx.catalog.services:
        first = seen.setdefault(svc.id, svc)
        if first is not svc:
            there = ctx.source.value(("services", first.index))
            here = ctx.source.value(("services", svc.index))
            line = f"line {there.line}" if there.file == here.file else f"{there.file}:{there.line}"
            yield Issue(
                f"id '{svc.id}' is already used by the service at {line}",
                ("services", svc.index, "id"),
                service=svc.id,
            )


def _duplicate(ctx: Context, kind: str, key: str, values: Callable) -> Iterator[Issue]:
    for svc, value, first in _first_uses(ctx, values):
        yield Issue(
            f"{kind} '{value}' of service '{svc.id}' is already used by service '{first.id}'",
            ("services", svc.index, key),
            service=svc.id,
        )


@rule(Rules.DUPLICATE_LEGACY_ID, scope="catalog")
def duplicate_legacy_id(ctx: Context) -> Iterator[Issue]:
    """Two services with one legacy id."""
    yield from _duplicate(ctx, "legacy id", "legacyId", lambda svc: [svc.legacy_id])


@rule(Rules.DUPLICATE_TOOL_NAME, scope="catalog")
def duplicate_tool_name(ctx: Context) -> Iterator[Issue]:
    """Two services with one MCP tool name."""
    yield from _duplicate(ctx, "tool name", "toolName", lambda svc: [svc.tool_name])


@rule(Rules.DUPLICATE_ENDPOINT, scope="catalog")
def duplicate_endpoint(ctx: Context) -> Iterator[Issue]:
    """Two services answering at one path (an endpoint or a legacy endpoint)."""
    yield from _duplicate(
        ctx, "endpoint", "id", lambda svc: unique_pair(svc.endpoint, svc.legacy_endpoint)
    )


def unique_pair(a: str, b: str) -> tuple[str, ...]:
    """``(a, b)``, or ``(a,)`` when both are the same."""
    return (a,) if a == b else (a, b)


@rule(Rules.NO_GENERATED_AT, scope="catalog")
def no_generated_at(ctx: Context) -> Iterator[Issue]:
    """No ``catalog.generatedAt`` and no ``SOURCE_DATE_EPOCH``."""
    assert ctx.catalog is not None
    if ctx.catalog.generated_at is None:
        message = "no catalog.generatedAt and no SOURCE_DATE_EPOCH: generatedAt is left out"
        yield Issue(message, ("catalog",))


# ---------------------------------------------------------------------------
# ir rules: one service


@rule(Rules.RESERVED_TOOL_NAME)
def reserved_tool_name(ctx: Context) -> Iterator[Issue]:
    """A tool name the MCP payment tools use."""
    for svc, _, path in ctx.pairs():
        if svc.tool_name in protocol.RESERVED_TOOL_NAMES:
            message = (
                f"tool name '{svc.tool_name}' of service '{svc.id}' is taken by the MCP "
                "payment tools"
            )
            yield Issue(message, path + ("toolName",), service=svc.id)


@rule(Rules.INVALID_TOOL_NAME)
def invalid_tool_name(ctx: Context) -> Iterator[Issue]:
    """A tool name MCP clients do not accept."""
    for svc, _, path in ctx.pairs():
        if not TOOL_NAME_PATTERN.fullmatch(svc.tool_name):
            message = (
                f"tool name '{svc.tool_name}' of service '{svc.id}' must match "
                f"{TOOL_NAME_PATTERN.pattern}"
            )
            yield Issue(message, path + ("toolName",), service=svc.id)


@rule(Rules.INVALID_DERIVED_LEGACY_ID, scope="catalog")
def invalid_derived_legacy_id(ctx: Context) -> Iterator[Issue]:
    """A legacy id made of a provider's ``legacyIdPrefix`` and the action that does not match
    :data:`model_base.ID_PATTERN`, the check a written ``legacyId`` gets; its legacy endpoint
    would not be one literal path (``{p:path}`` would capture other services' requests).
    Reported once per provider, at its prefix."""
    assert ctx.catalog is not None
    bad: dict[str, list[ir.Service]] = {}
    for svc, authored, _ in ctx.pairs():
        if authored.legacy_id is None and not re.fullmatch(model_base.ID_PATTERN, svc.legacy_id):
            bad.setdefault(provider_of(ctx.authored, authored), []).append(svc)
    for name, services in bad.items():
        first, more = services[0], len(services) - 1
        prefix = ctx.authored.providers[name].legacy_id_prefix
        others = f" (and {more} more)" if more else ""
        yield Issue(
            f"legacyIdPrefix {prefix!r} of provider '{name}' makes legacy id "
            f"{first.legacy_id!r} of service '{first.id}'{others}, which must match "
            f"{model_base.ID_PATTERN}",
            ("providers", name, "legacyIdPrefix"),
            "use lowercase letters, digits and single hyphens, ending with '-'",
            first.id,
        )


@rule(Rules.PYTHON_KEYWORD_ID)
def python_keyword_id(ctx: Context) -> Iterator[Issue]:
    """An id whose route module name is a Python keyword."""
    for svc, _, path in ctx.pairs():
        if keyword.iskeyword(svc.module):
            message = f"route module name '{svc.module}' of service '{svc.id}' is a Python keyword"
            yield Issue(message, path + ("id",), "choose another id", svc.id)


def _related_path(ctx: Context, authored: model.Service, path: tuple, position: int) -> tuple:
    if authored.related_services is not None:
        return path + ("relatedServices", position)
    return inherited_path(ctx.authored, authored, "relatedServices")


@rule(Rules.REDUNDANT_RELATED_SERVICE)
def redundant_related_service(ctx: Context) -> Iterator[Issue]:
    """A related service that is the service itself, or listed twice."""
    for svc, authored, path in ctx.pairs():
        for position, related in enumerate(svc.related_services):
            if related == svc.id or svc.related_services.index(related) != position:
                what = "the service itself" if related == svc.id else "listed twice"
                yield Issue(
                    f"related service '{related}' of service '{svc.id}' is {what}",
                    _related_path(ctx, authored, path, position),
                    service=svc.id,
                )


@rule(Rules.UNKNOWN_RELATED_SERVICE, scope="catalog")
def unknown_related_service(ctx: Context) -> Iterator[Issue]:
    """A related service that does not exist."""
    assert ctx.catalog is not None
    known = {s.id for s in ctx.catalog.services}
    for svc, authored, path in ctx.pairs():
        for position, related in enumerate(svc.related_services):
            if related not in known:
                yield Issue(
                    f"related service '{related}' of service '{svc.id}' does not exist",
                    _related_path(ctx, authored, path, position),
                    did_you_mean(related, known),
                    svc.id,
                )


@rule(Rules.INVALID_INPUT_SCHEMA)
def invalid_input_schema(ctx: Context) -> Iterator[Issue]:
    """A parameter schema that is not valid JSON Schema."""
    for svc, _, path in ctx.pairs():
        for name, prop in svc.input_schema["properties"].items():
            problem = schema_problem(prop)
            if problem is not None:
                yield Issue(
                    f"schema of parameter '{name}' of service '{svc.id}' is not valid JSON "
                    f"Schema: {problem}",
                    path + ("params", name),
                    service=svc.id,
                )


def output_path(ctx: Context, authored: model.Service, path: tuple) -> tuple:
    if authored.output_schema:
        return path + ("outputSchema",)
    return inherited_path(ctx.authored, authored, "outputSchema")


def output_problem(schema: dict) -> str | None:
    problem = schema_problem(schema)
    if problem is not None:
        return f"is not valid JSON Schema: {problem}"
    if schema.get("type") != "object":
        return "must have type 'object' (MCP requires it)"
    return None


@rule(Rules.INVALID_OUTPUT_SCHEMA, "model")
def invalid_output_schema(ctx: Context) -> Iterator[Issue]:
    """An output schema that is not valid JSON Schema, or not an object's (checked before
    derive, which reads the schema's types; the default one is reported once)."""
    if ctx.shared:
        # where a service's output schema is inherited from depends on its provider and
        # category alone: one service of each pair tells
        inheriting: dict[tuple, model.Service] = {}
        for svc in ctx.authored.services:
            if svc.output_schema is None:
                inheriting.setdefault((svc.provider, svc.category), svc)
        used = {inherited_path(ctx.authored, svc, "outputSchema") for svc in inheriting.values()}
        problem = output_problem(ctx.authored.defaults.output_schema)
        if problem is not None and ("defaults", "outputSchema") in used:
            yield Issue(f"defaults.outputSchema {problem}", ("defaults", "outputSchema"))
        for section, scope in _scoped_defaults(ctx.authored):
            problem = output_problem(scope.output_schema) if scope.output_schema else None
            if problem is not None and (*section, "defaults", "outputSchema") in used:
                where = ".".join(section)
                yield Issue(
                    f"{where}.defaults.outputSchema {problem}",
                    (*section, "defaults", "outputSchema"),
                )
    for index, svc in ctx.services():
        problem = output_problem(svc.output_schema) if svc.output_schema else None
        if problem is not None:
            message = f"output schema of service '{svc.id}' {problem}"
            yield Issue(message, ("services", index, "outputSchema"), service=svc.id)


@rule(Rules.PROTOCOL_NOT_INSTALLED, "model", "catalog")
def protocol_not_installed(ctx: Context) -> Iterator[Issue]:
    """A provider whose ``protocol`` no installed plug-in provides."""
    from .runtime import upstreams

    missing = {p.protocol for p in ctx.authored.providers.values()} - set(upstreams.BUILTIN)
    installed = upstreams.available() if missing else upstreams.BUILTIN
    for name, provider in ctx.authored.providers.items():
        if provider.protocol not in installed:
            yield Issue(
                f"protocol '{provider.protocol}' of provider '{name}' is not installed "
                f"(installed: {', '.join(installed)}; a plug-in registers in the "
                f"'{upstreams.ENTRY_POINT_GROUP}' entry point group)",
                ("providers", name, "protocol"),
                did_you_mean(provider.protocol, installed),
            )


@rule(Rules.UNKNOWN_WIRE_STYLE, "model", "catalog")
def unknown_wire_style(ctx: Context) -> Iterator[Issue]:
    """A parameter ``wire`` style that its provider's protocol does not have."""
    from .runtime import upstreams

    c = ctx.authored
    for index, svc in enumerate(c.services):
        provider = c.providers.get(svc.provider or c.defaults.provider)
        if provider is None:
            continue  # reported by unknown-reference
        try:
            styles = upstreams.load(provider.protocol).wire_styles
        except upstreams.ProtocolMissing:
            continue  # reported by protocol-not-installed
        for name, param in svc.params.items():
            if param.wire is not None and param.wire not in styles:
                yield Issue(
                    f"wire style '{param.wire}' of '{name}' is not one of protocol "
                    f"'{provider.protocol}' ({', '.join(styles)})",
                    ("services", index, "params", name, "wire"),
                    did_you_mean(param.wire, styles),
                    svc.id,
                )


from . import validate_values  # noqa: E402,F401 - registers the rules on published values
from . import validate_examples  # noqa: E402,F401 - registers the rules on examples
from . import validate_lint  # noqa: E402,F401 - registers the lint warnings
