"""Derive stage: authoring model to IR, computing every derived field once.

Defaults, providers, pricing policies and presets are applied here; the
fields the live catalog repeats in many forms (name, description,
keywords, aliases, searchText, inputTypes, examples, errorExamples,
requiredContext, payment hints) are computed here from a handful of
authored values. Derive only resolves: the rules (references that must
exist, placeholders that must be known) are checked before it, by the model
and :mod:`s402gen.validate`.
"""

from __future__ import annotations

import functools
from typing import Any, Callable, Generic, Hashable, Iterable, Protocol, Sequence, TypeVar

from . import ir, model, model_defaults, model_parameters, phrasing
from .phrasing import kebab, split_words, unique
from .runtime import contract, protocol, x402_contract
from .runtime.spec import DEFAULT_PROTOCOL

#: First words of actions that change upstream state (MCP ``readOnlyHint`` false).
MUTATING_VERBS = frozenset({"Add", "Authorize", "Batch", "Create", "Delete", "Gen", "Update"})
#: First words of actions that add upstream state, so that repeating one adds more
#: (MCP ``idempotentHint`` false; the catalog's own ``idempotent`` field is left as authored).
ADDING_VERBS = frozenset({"Add", "Batch", "Create", "Gen"})
#: First words of actions that destroy upstream state (MCP ``destructiveHint`` true).
DESTRUCTIVE_VERBS = frozenset({"Delete"})

T = TypeVar("T")

#: The ``requestId`` of every ``exampleResponse``.
EXAMPLE_REQUEST_ID = "example-request-id"
_SCHEMA_KEYS = ("type", "format", "enum", "minimum", "maximum", "items")


class MadeOnce(Generic[T]):
    """Values made once for each object (by identity: equal but distinct objects get their
    own), and for each further key, then shared: IR values are never mutated, so services
    made from one shared object may share what is made of it. The objects are held, so
    that an id stays theirs for as long as the table lives."""

    def __init__(self) -> None:
        self._made: dict[tuple, tuple[Any, T]] = {}

    def get(self, owner: Any, make: Callable[[], T], *more: Hashable) -> T:
        """What ``make()`` made for ``owner`` and ``more`` (made now the first time)."""
        key = (id(owner), *more)
        found = self._made.get(key)
        if found is None:
            found = self._made[key] = (owner, make())
        return found[1]


def sorted_json(value: Any) -> Any:
    """A copy of a JSON value with every object's keys sorted (the live schema order)."""
    if isinstance(value, dict):
        return {key: sorted_json(value[key]) for key in sorted(value)}
    if isinstance(value, list):
        return [sorted_json(item) for item in value]
    return value


def schema_types(schema: dict[str, Any]) -> tuple[str, ...]:
    """The catalog's ``inputTypes``/``outputTypes``: root type, then each property's
    type and format in declaration order, without repeats."""
    found: list[str] = []
    for prop in [schema, *schema.get("properties", {}).values()]:
        kinds = prop.get("type", "object" if prop is schema else [])
        found.extend([kinds] if isinstance(kinds, str) else [str(k) for k in kinds])
        if prop is not schema and "format" in prop:
            found.append(str(prop["format"]))
    return unique(found)


def example_value(name: str, prop: dict[str, Any]) -> Any:
    """Placeholder example for a parameter without one, by JSON type."""
    return {
        "string": f"example-{kebab(name[0].upper() + name[1:])}",
        "number": 1,
        "integer": 1,
        "boolean": True,
        "array": [],
        "object": {},
    }[prop["type"]]


def merge_list(
    inherited: Iterable[str], value: list[str] | model_defaults.Extend | None
) -> list[str]:
    """A list key resolved against the inherited one: a list replaces it, ``{extend: [...]}``
    appends to it, ``None`` keeps it."""
    if value is None:
        return list(inherited)
    if isinstance(value, model_defaults.Extend):
        return [*inherited, *value.extend]
    return list(value)


def _scoped(inherited: model_defaults.Defaults, scoped: Any) -> model_defaults.Defaults:
    """``inherited`` with every key ``scoped`` (a provider's or category's defaults) sets."""
    if scoped is None:
        return inherited
    update: dict[str, Any] = {}
    for name in scoped.model_fields_set:
        value = getattr(scoped, name)
        if value is None:
            continue
        update[name] = (
            merge_list(getattr(inherited, name), value)
            if isinstance(getattr(inherited, name), list)
            else value
        )
    return inherited.model_copy(update=update) if update else inherited


def provider_of(catalog: model.Catalog, svc: model.Service) -> str:
    """The provider name of ``svc``: its own, else the global default."""
    return svc.provider or catalog.defaults.provider


def category_of(catalog: model.Catalog, svc: model.Service) -> str:
    """The category id of ``svc``: its own, else its provider's default, else the global one."""
    if svc.category:
        return svc.category
    provider = catalog.providers.get(provider_of(catalog, svc))
    scoped = provider.defaults if provider else None
    return (scoped.category if scoped else None) or catalog.defaults.category


def resolve_defaults(catalog: model.Catalog, svc: model.Service) -> model_defaults.Defaults:
    """What ``svc`` inherits: the global ``defaults``, overridden by its provider's
    ``defaults``, overridden by its category's (the service's own keys win over all three)."""
    provider = catalog.providers.get(provider_of(catalog, svc))
    category = catalog.categories.get(category_of(catalog, svc))
    resolved = _scoped(catalog.defaults, provider.defaults if provider else None)
    resolved = _scoped(resolved, category.defaults if category else None)
    return resolved.model_copy(update={"category": category_of(catalog, svc)})


def inherited_path(catalog: model.Catalog, svc: model.Service, key: str) -> tuple:
    """Where the value ``svc`` inherits for ``key`` (camelCase) is written: its category's
    ``defaults``, else its provider's, else the global ``defaults``."""
    name = model_defaults.Defaults.model_fields.keys()
    field = next(f for f in name if model_defaults.Defaults.model_fields[f].alias == key)
    owners = (
        ("categories", category_of(catalog, svc), catalog.categories),
        ("providers", provider_of(catalog, svc), catalog.providers),
    )
    for section, owner, table in owners:
        scoped = table[owner].defaults if owner in table else None
        if scoped is not None and getattr(scoped, field, None) is not None:
            return (section, owner, "defaults", key)
    return ("defaults", key)


class _Deriver:
    def __init__(self, catalog: model.Catalog):
        self.catalog = catalog
        self.defaults = catalog.defaults  # of the service being derived
        #: an inherited schema's sorted copy (:meth:`inherited_schema`)
        self._inherited: MadeOnce[dict[str, Any]] = MadeOnce()
        #: a shorthand parameter's resolution, by name and default description
        self._parameters: MadeOnce[tuple[dict, Any, str]] = MadeOnce()
        #: input schemas of shorthand parameters only (:meth:`input_schema`)
        self._schemas: dict[tuple, dict[str, Any]] = {}

    def inherited_schema(self, schema: dict[str, Any]) -> dict[str, Any]:
        """:func:`sorted_json` of an output schema a service inherits from ``defaults``: made
        once for each defaults' schema and shared by every service inheriting it (IR
        values are never mutated; 13 MiB at 10,000 services if each had its own copy)."""
        return self._inherited.get(schema, lambda: sorted_json(schema))

    def input_schema(
        self, description: str, props: dict[str, Any], required: list[str], shared: bool
    ) -> dict[str, Any]:
        """A service's input schema. When every parameter is ``shared`` (written as
        shorthand, so ``props`` are :meth:`parameter`'s shared dicts), services with the same
        parameters, required ones and description share one schema (and one validator in
        the checks, :mod:`s402gen.validate_examples`)."""
        names = sorted(props)
        key = (description, tuple((n, id(props[n])) for n in names), tuple(required))
        found = self._schemas.get(key) if shared else None
        if found is None:
            found = {
                "description": description,
                "properties": {name: props[name] for name in names},
                "required": required,
                "type": "object",
            }
            if shared:  # the props named by id are held by the parameters' memo
                self._schemas[key] = found
        return found

    def lookup(self, table: dict[str, Any], name: str, kind: str, path: tuple) -> Any:
        """``table[name]``: the ``unknown-reference`` rule has checked that it is there."""
        return table[name]

    def parameter(
        self, name: str, param: model_parameters.Parameter, path: tuple
    ) -> tuple[dict, Any, str]:
        """Resolve one parameter: (property schema, example, required context).

        A parameter model written as shorthand is one object for every use
        (:meth:`~s402gen.model_parameters.Parameter._shorthand`), and so is what it
        resolves to here under the same default description: made once, shared by the
        services using it (IR values are never mutated)."""
        if not model_parameters.is_shorthand(param):
            return self._parameter(name, param, path)
        return self._parameters.get(
            param,
            lambda: self._parameter(name, param, path),
            name,
            self.defaults.parameter_description,
        )

    def _parameter(
        self, name: str, param: model_parameters.Parameter, path: tuple
    ) -> tuple[dict, Any, str]:
        preset: model_parameters.Preset | None = None
        if param.preset is not None:
            preset = self.lookup(self.catalog.presets, param.preset, "preset", path + ("preset",))
        merged: dict[str, Any] = preset.model_dump(exclude_none=True) if preset else {}
        merged.update(param.model_dump(exclude_none=True, exclude={"preset"}))
        description = merged.get("description", self.defaults.parameter_description)
        prop = {key: merged[key] for key in _SCHEMA_KEYS if key in merged}
        prop["description"] = phrasing.parameter_description(description, name)
        example = merged.get("example", example_value(name, prop))
        return sorted_json(prop), example, merged.get("required_context", "")

    def allows_private_hosts(self, param: model_parameters.Parameter) -> bool:
        """The parameter's ``allowPrivateHosts``, else its preset's, else ``False``."""
        if param.allow_private_hosts is not None:
            return param.allow_private_hosts
        if param.preset is not None:
            preset = self.catalog.presets.get(param.preset)
            return bool(preset and preset.allow_private_hosts)
        return False

    def service(self, index: int, svc: model.Service) -> ir.Service:
        d = self.defaults = resolve_defaults(self.catalog, svc)
        path = ("services", index)
        provider = self.lookup(
            self.catalog.providers,
            svc.provider or d.provider,
            "provider",
            path + ("provider",) if svc.provider else ("defaults", "provider"),
        )
        policy_id = svc.pricing_policy or d.pricing_policy
        policy = self.lookup(
            self.catalog.pricing_policies,
            policy_id,
            "pricing policy",
            path + ("pricingPolicy",) if svc.pricing_policy else ("defaults", "pricingPolicy"),
        )
        payment_id = svc.payment_provider or d.payment_provider
        payment = self.lookup(
            self.catalog.payment_providers,
            payment_id,
            "payment provider",
            (
                path + ("paymentProvider",)
                if svc.payment_provider
                else ("defaults", "paymentProvider")
            ),
        )
        props: dict[str, Any] = {}
        examples: dict[str, Any] = {}
        contexts: list[str] = []
        for name, param in svc.params.items():
            prop, example, context = self.parameter(name, param, path + ("params", name))
            props[name] = prop
            examples[name] = example
            if context:
                contexts.append(context)
        required = sorted(set(svc.required))
        shorthand = all(model_parameters.is_shorthand(p) for p in svc.params.values())
        input_schema = self.input_schema(d.input_schema_description, props, required, shorthand)
        output_schema_source = svc.output_schema or d.output_schema
        if svc.output_schema:
            output_schema = sorted_json(output_schema_source)
        else:
            output_schema = self.inherited_schema(output_schema_source)

        task = svc.task or phrasing.task_phrase(d.task_template, svc.summary_zh)
        description = phrasing.describe(d.description_template, task, props, required)
        texts = service_texts(svc, d, provider, task, description, contexts)
        url_params = [n for n in required if props.get(n, {}).get("format") == "uri"]
        paid_through = ir.Payment(payment_id, payment.provider if payment else "")
        route = route_spec(
            svc,
            provider,
            input_schema,
            pricing(policy_id, policy),
            paid_through,
            url_params,
            output_schema=output_schema,
            private_hosts=tuple(
                n for n in sorted(props) if self.allows_private_hosts(svc.params[n])
            ),
        )
        examples_ = service_examples(svc, d, url_params, required, examples)
        return ir.Service(
            index=index,
            module=phrasing.tool_name(svc.id),
            route=route,
            params=tuple(
                ir.Param(n, props[n]["type"], n in required, props[n].get("format") == "uri")
                for n in sorted(props)
            ),
            output_schema=output_schema,
            texts=texts,
            discovery=service_discovery(
                svc, route, texts, props, output_schema_source, stated_hints(self.catalog, svc, d)
            ),
            examples=examples_,
        )


def route_spec(
    svc: model.Service,
    provider: model.Provider | None,
    input_schema: dict[str, Any],
    prices: ir.Pricing,
    paid_through: ir.Payment,
    url_params: list[str],
    *,
    output_schema: dict[str, Any] | None = None,
    private_hosts: tuple[str, ...] = (),
) -> ir.RouteSpec:
    """What the route module declares: ids, endpoints, upstream, input schema and its
    messages, output schema, the URL parameters that may name private hosts, price and
    payment provider."""
    legacy_id = svc.legacy_id or phrasing.legacy_id(
        provider.legacy_id_prefix if provider else "", svc.action
    )
    return ir.RouteSpec(
        service_id=svc.id,
        legacy_id=legacy_id,
        tool_name=svc.tool_name or phrasing.tool_name(svc.id),
        endpoint=protocol.TOOL_ENDPOINT_PREFIX + svc.id,
        legacy_endpoint=protocol.TOOL_ENDPOINT_PREFIX + legacy_id,
        method="POST",
        upstream=ir.Upstream(
            product=provider.product if provider else "",
            version=provider.version if provider else "",
            action=svc.action,
            endpoint=provider.endpoint if provider else "",
            method=svc.upstream_method or (provider.upstream_method if provider else "POST"),
            protocol=provider.protocol if provider else DEFAULT_PROTOCOL,
            wire={n: p.wire for n, p in svc.params.items() if p.wire},
        ),
        input_schema=input_schema,
        array_params=tuple(
            n
            for n in sorted(input_schema["properties"])
            if input_schema["properties"][n]["type"] == "array"
        ),
        messages=route_messages(url_params),
        pricing=prices,
        payment=paid_through,
        output_schema=output_schema or {},
        private_hosts=private_hosts,
    )


def service_texts(
    svc: model.Service,
    d: model_defaults.Defaults,
    provider: model.Provider | None,
    task: str,
    description: str,
    contexts: list[str],
) -> ir.Texts:
    """The service's texts: its own values, else the defaults, phrased by :mod:`phrasing`."""
    label = provider.label_zh if provider else ""
    sla = svc.sla or d.sla
    return ir.Texts(
        name=svc.name or phrasing.service_name(svc.action, d.name_suffix),
        title_zh=svc.title_zh or "",
        summary_zh=svc.summary_zh,
        task=task,
        description=description,
        category=svc.category or d.category,
        keywords=phrasing.keywords(svc.action, label, svc.title_zh or "", d.keywords, svc.keywords),
        use_cases=(task, *d.use_cases),
        limitations=tuple(merge_list(d.limitations, svc.limitations)),
        tags=tuple(merge_list(d.tags, svc.tags)),
        complexity=svc.complexity or d.complexity,
        typical_response_time=svc.typical_response_time or d.typical_response_time,
        cacheable=_pick(svc.cacheable, d.cacheable),
        idempotent=_pick(svc.idempotent, d.idempotent),
        output_format=svc.output_format or d.output_format,
        sla=_sla(sla.uptime, sla.max_latency),
        related_services=tuple(
            svc.related_services
            if svc.related_services is not None
            else [s for s in d.related_services if s != svc.id][: d.related_services_limit]
        ),
        required_context=unique(contexts + list(svc.required_context or d.required_context)),
    )


@functools.lru_cache(maxsize=4096)
def _sla(uptime: str, max_latency: str) -> dict[str, str]:
    """``texts.sla``: one dict for each pair, shared as :func:`route_messages` is."""
    return {"uptime": uptime, "maxLatency": max_latency}


def service_discovery(
    svc: model.Service,
    route: ir.RouteSpec,
    texts: ir.Texts,
    props: dict[str, Any],
    output_schema: dict[str, Any],
    stated: model.Annotations,
) -> ir.Discovery:
    """Aliases, payment hint, input and output types, MCP hints (``stated``:
    what the catalog's fields say of them, see :func:`stated_hints`)."""
    input_types = schema_types({"type": "object", "properties": props})
    output_types = schema_types(output_schema)
    aliases = [texts.name, texts.category, *texts.tags, *texts.keywords]
    return ir.Discovery(
        aliases=unique([*aliases, svc.id, route.tool_name, route.endpoint]),
        payment_hint=protocol.payment_hint(svc.id),
        input_types=input_types,
        output_types=output_types,
        annotations=tool_annotations(svc.action, svc.annotations or model.Annotations(), stated),
    )


def service_examples(
    svc: model.Service,
    d: model_defaults.Defaults,
    url_params: list[str],
    required: list[str],
    examples: dict[str, Any],
) -> ir.Examples:
    """The authored examples, else those made from the required parameters' examples."""
    if svc.example_request is not None:
        request: dict[str, Any] | None = sorted_json(svc.example_request)
    else:
        request = {n: examples[n] for n in required if n in examples} or None
    authored = svc.error_examples
    return ir.Examples(
        request=request,
        response=contract.success(
            svc.action, svc.example_result or d.example_result, EXAMPLE_REQUEST_ID
        ).to_json(),
        errors=(
            tuple(ir.ErrorExample(e.input, e.error, e.status_code) for e in authored)
            if authored is not None
            else error_examples(tuple(url_params), tuple(required))
        ),
    )


def route_messages(url_params: Sequence[str]) -> ir.Messages:
    """The route's 400 texts: one pair per required URL parameter, and the generic one.

    Made once for each list of URL parameters and shared by the services with that list
    (IR values are never mutated): 3 MiB at 10,000 services if each had its own."""
    return _route_messages(tuple(url_params))


@functools.lru_cache(maxsize=4096)
def _route_messages(url_params: tuple[str, ...]) -> ir.Messages:
    return ir.Messages(
        missing=protocol.MISSING_PARAMETERS,
        required={n: protocol.required_message(n) for n in url_params},
        invalid_url={n: protocol.invalid_url_message(n) for n in url_params},
    )


@functools.lru_cache(maxsize=4096)
def error_examples(
    url_params: tuple[str, ...], required: tuple[str, ...]
) -> tuple[ir.ErrorExample, ...]:
    """The error examples of a service that authors none: its first required URL parameter
    missing and not a URL, else any required parameter missing, else none (made once for
    each pair of lists, shared as :func:`route_messages` is)."""
    messages = route_messages(url_params)
    if url_params:
        first = url_params[0]
        return (
            ir.ErrorExample({}, messages.required[first], 400),
            ir.ErrorExample({first: "not-a-url"}, messages.invalid_url[first], 400),
        )
    if required:
        return (ir.ErrorExample({}, messages.missing, 400),)
    return ()


def pricing(policy_id: str, policy: model.PricingPolicy | None) -> ir.Pricing:
    """The pricing of ``policy`` (neutral values when the policy is unknown, an error)."""
    return ir.Pricing(
        policy_id=policy_id,
        amount_cents=policy.amount_cents if policy else 0,
        currency=policy.currency if policy else "USD",
        settle_mode=policy.settle_mode if policy else "",
        billing_mode=policy.billing_mode if policy else "",
        max_calls=policy.max_calls if policy else 1,
        allow_reuse=policy.allow_reuse if policy else False,
        bind_client=policy.bind_client if policy else True,
    )


def stated_hints(
    catalog: model.Catalog, svc: model.Service, d: model_defaults.Defaults
) -> model.Annotations:
    """The MCP hints the catalog's fields state for ``svc``: ``readOnly`` and
    ``destructive`` from any level; ``idempotent`` when the service, its category or its
    provider sets it (the global default is the catalog JSON's field only, so that
    catalogs written before these keys keep their hints)."""
    provider = catalog.providers.get(provider_of(catalog, svc))
    category = catalog.categories.get(category_of(catalog, svc))
    scoped = [s.defaults for s in (provider, category) if s is not None and s.defaults]
    idempotent = svc.idempotent
    if idempotent is None and any(s.idempotent is not None for s in scoped):
        idempotent = d.idempotent
    return model.Annotations(
        readOnlyHint=_pick(svc.read_only, d.read_only),
        destructiveHint=_pick(svc.destructive, d.destructive),
        idempotentHint=idempotent,
    )


def tool_annotations(
    action: str, overrides: model.Annotations, stated: model.Annotations | None = None
) -> ir.ToolAnnotations:
    """MCP hints: the authored ``annotations``, else what the catalog's fields state
    (:func:`stated_hints`), else from the action's first word (see :data:`MUTATING_VERBS`)."""
    words = split_words(action)
    verb = words[0] if words else ""
    stated = stated or model.Annotations()
    return ir.ToolAnnotations(
        read_only=_pick(
            overrides.read_only_hint, _pick(stated.read_only_hint, verb not in MUTATING_VERBS)
        ),
        destructive=_pick(
            overrides.destructive_hint, _pick(stated.destructive_hint, verb in DESTRUCTIVE_VERBS)
        ),
        idempotent=_pick(
            overrides.idempotent_hint, _pick(stated.idempotent_hint, verb not in ADDING_VERBS)
        ),
        open_world=_pick(overrides.open_world_hint, True),
    )


def _pick(override: Any, default: Any) -> Any:
    return default if override is None else override


class KnownServices(Protocol):
    """Derived services kept from an earlier compile (see
    :class:`s402gen.servicecache.Session`)."""

    def service(self, index: int) -> ir.Service | None:
        """The IR of service ``index``, if known."""

    def keep_service(self, index: int, svc: ir.Service) -> None:
        """Record the IR of service ``index``."""


def _reused(reuse: KnownServices, deriver: _Deriver, index: int, svc: model.Service) -> ir.Service:
    found = reuse.service(index)
    if found is None:
        found = deriver.service(index, svc)
        reuse.keep_service(index, found)
    return found


def derive(
    catalog: model.Catalog, generated_at: str | None, reuse: KnownServices | None = None
) -> ir.Catalog:
    """Compile the authoring model into the IR: resolution only, no rules.

    ``generated_at`` is used when the catalog declares no ``generatedAt``.
    ``catalog`` must have passed the ``model`` rules of :mod:`s402gen.validate`
    (every reference resolves); its field constraints hold by construction.
    With ``reuse``, a service it knows is taken from it, and it is given the others
    (a service's IR depends only on the service and the shared sections).
    """
    deriver = _Deriver(catalog)
    if reuse is None:
        services = tuple(deriver.service(i, svc) for i, svc in enumerate(catalog.services))
    else:
        services = tuple(_reused(reuse, deriver, i, svc) for i, svc in enumerate(catalog.services))
    x402_providers = {
        pid: settings
        for pid, provider in catalog.payment_providers.items()
        if (settings := x402_contract.provider_settings(pid, provider)) is not None
    }
    x402_terms = {
        pid: terms
        for pid, provider in catalog.payment_providers.items()
        if (terms := x402_contract.offer_terms(pid, provider)) is not None
    }
    return ir.Catalog(
        marketplace=catalog.catalog.marketplace,
        generated_at=catalog.catalog.generated_at or generated_at,
        services=services,
        categories=tuple(
            ir.Category(
                id=name,
                label=category.label,
                label_zh=category.label_zh or "",
                description=category.description or "",
                synonyms={word: tuple(more) for word, more in category.synonyms.items()},
                services=tuple(s.id for s in services if s.texts.category == name),
            )
            for name, category in catalog.categories.items()
        ),
        includes=tuple(catalog.include),
        x402_providers=x402_providers,
        x402_terms=x402_terms,
    )
