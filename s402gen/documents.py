"""The JSON documents the generated files hold, as plain data, and their one serialization.

Assembled as ordered dicts (the live format's key order; schemas sorted) from
the IR; :func:`to_json` writes every one of them. Pure: no disk, no clock, no
Jinja (:mod:`s402gen.render` puts them in files).
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, Iterable, Iterator

from . import ir, jsonstream
from .runtime import contract, protocol, search, x402_contract


def to_json(value: Any, level: int = 0, sort_keys: bool = False) -> str:
    """The one JSON serialization of every artifact: 2-space indent, UTF-8, no newline.

    ``level`` indents every line but the first by ``2 * level`` spaces, for a
    value nested in a document a template streams piece by piece. orjson
    (C) gives the same text as ``json.dumps(value, ensure_ascii=False,
    indent=2)`` for catalog data (a test holds it to that) at 20x the speed.
    Raises ``orjson.JSONEncodeError`` for values JSON cannot hold.
    """
    return jsonstream.dumps(value, level, sort_keys).decode("utf-8")


def catalog_entry(
    svc: ir.Service, flow: contract.PaymentFlow | None = None
) -> contract.CatalogEntry:
    """One service in the ``server402.catalog.search.v1`` format, static fields only.

    ``flow`` is :func:`contract.payment_flow` (one shared copy by default).
    Raises ``pydantic.ValidationError`` if the IR does not fit the contract.
    """
    route, texts, discovery = svc.route, svc.texts, svc.discovery
    return contract.CatalogEntry(
        id=route.service_id,
        canonical_id=route.service_id,
        internal_service_id=route.legacy_id,
        name=texts.name,
        description=texts.description,
        description_for_model=texts.description,
        category=texts.category,
        keywords=list(texts.keywords),
        use_cases=list(texts.use_cases),
        limitations=list(texts.limitations),
        tags=list(texts.tags),
        method=route.method,
        endpoint=route.endpoint,
        legacy_endpoint=route.legacy_endpoint,
        endpoint_aliases=[route.endpoint, route.legacy_endpoint],
        input_types=list(discovery.input_types),
        output_types=list(discovery.output_types),
        input_schema=route.input_schema,
        output_schema=svc.output_schema,
        example_request=svc.examples.request,
        example_response=svc.examples.response,
        pricing=contract.Pricing(**dataclasses.asdict(route.pricing)),  # the same fields
        payment=contract.PaymentProviderRef(
            provider_id=route.payment.provider_id, provider=route.payment.provider
        ),
        discovery=contract.Discovery(
            tool_name=route.tool_name,
            search_text=svc.search_text,
            aliases=list(discovery.aliases),
            locale_hints=list(protocol.LOCALE_HINTS),
            use_cases=list(texts.use_cases),
            limitations=list(texts.limitations),
            payment_flow=flow or contract.payment_flow(),
            payment_hint=discovery.payment_hint,
            retry_hint=protocol.RETRY_HINT,
            required_state=protocol.REQUIRED_STATE,
        ),
        complexity=texts.complexity,
        typical_response_time=texts.typical_response_time,
        cacheable=texts.cacheable,
        idempotent=texts.idempotent,
        output_format=texts.output_format,
        related_services=list(texts.related_services),
        required_context=list(texts.required_context),
        error_examples=[
            contract.ErrorExample(input=e.input, error=e.error, status_code=e.status_code)
            for e in svc.examples.errors
        ],
        sla=texts.sla,
    )


def catalog_head(catalog: ir.Catalog) -> dict[str, Any]:
    """The catalog document's fields before ``services``: an empty query's answer."""
    document = catalog_document(catalog, entries=())
    return document.model_dump(by_alias=True, exclude={"services", "payment"})


def catalog_entries(catalog: ir.Catalog) -> Iterator[contract.CatalogEntry]:
    """Every service's catalog entry, one at a time, sharing one payment flow."""
    flow = contract.payment_flow()
    return (catalog_entry(svc, flow) for svc in catalog.services)


def catalog_document(
    catalog: ir.Catalog, entries: Iterable[contract.CatalogEntry] | None = None
) -> contract.CatalogDocument:
    """The whole catalog in the search format (what catalog.json holds).

    ``entries`` replaces the services' entries (the file map streams them
    itself and passes none).
    """
    return contract.CatalogDocument(
        schema_version=protocol.SCHEMA_VERSION,
        generated_at=catalog.generated_at,
        query="",
        expanded_terms=[],
        filters={},
        total=len(catalog.services),
        services=list(catalog_entries(catalog) if entries is None else entries),
        payment=contract.payment_block(),
    )


def mcp_tool(svc: ir.Service) -> dict[str, Any]:
    """The MCP ``Tool`` (spec revision 2025-11-25) of a service.

    Its input schema is the service's plus an optional ``paymentToken``.
    """
    properties = dict(svc.route.input_schema["properties"])
    properties[protocol.MCP_ARGUMENT] = {
        "description": protocol.PAYMENT_TOKEN_DESCRIPTION,
        "type": "string",
    }
    input_schema = dict(svc.route.input_schema)
    input_schema["properties"] = {key: properties[key] for key in sorted(properties)}
    return {
        "name": svc.route.tool_name,
        "title": svc.texts.name,
        "description": svc.texts.description,
        "inputSchema": input_schema,
        "outputSchema": _tool_output_schema(svc.output_schema),
        "annotations": {
            "readOnlyHint": svc.discovery.annotations.read_only,
            "destructiveHint": svc.discovery.annotations.destructive,
            "idempotentHint": svc.discovery.annotations.idempotent,
            "openWorldHint": svc.discovery.annotations.open_world,
        },
    }


def _tool_output_schema(success: dict[str, Any]) -> dict[str, Any]:
    """:func:`contract.tool_output_schema` of a service, the failures' schemas shared by every
    tool (they are only serialized, never changed: copying them per tool cost seconds)."""
    schema = contract.tool_output_schema(success)
    schema["anyOf"].extend(_failure_schemas())
    return schema


@functools.cache
def _failure_schemas() -> tuple[dict[str, Any], ...]:
    return tuple(contract.wire_schema(model) for model in contract.TOOL_FAILURES)


def doc_schema_block(svc: ir.Service) -> str:
    """The "Schema And Examples" JSON of a doc page (keys sorted, as the live pages)."""
    block: dict[str, Any] = {}
    if svc.examples.request is not None:
        block["exampleRequest"] = svc.examples.request
    block["exampleResponse"] = svc.examples.response
    block["inputSchema"] = svc.route.input_schema
    block["outputSchema"] = svc.output_schema
    return to_json(block, sort_keys=True)


def categories_json(catalog: ir.Catalog) -> dict[str, Any]:
    """The declared categories as :data:`s402gen.runtime.search.CATEGORIES_FILE` holds them."""
    return search.Categories(
        categories=[
            search.CategoryInfo(
                id=c.id,
                label=c.label,
                label_zh=c.label_zh,
                description=c.description,
                synonyms={word: list(more) for word, more in c.synonyms.items()},
                services=list(c.services),
            )
            for c in catalog.categories
        ]
    ).to_json()


def x402_paid(catalog: ir.Catalog) -> Iterator[ir.Service]:
    """The services paid through an x402 payment provider, in catalog order."""
    return (svc for svc in catalog.services if svc.route.payment.provider_id in catalog.x402_terms)


def x402_offer(catalog: ir.Catalog, svc: ir.Service) -> dict[str, Any]:
    """What ``svc``'s 402 offers through its x402 payment provider
    (:func:`s402gen.runtime.x402_contract.service_offer`); ``svc`` is one of
    :func:`x402_paid`'s (else ``KeyError``).

    Made when asked for: an offer repeats the service's schemas and examples inside the
    Bazaar extension (about 4 kB of dicts a service), so the IR does not hold it.
    """
    route = svc.route
    return x402_contract.service_offer(
        catalog.x402_terms[route.payment.provider_id],
        endpoint=route.endpoint,
        description=svc.texts.description,
        amount_cents=route.pricing.amount_cents,
        input_schema=route.input_schema,
        output_schema=svc.output_schema,
        example_request=svc.examples.request,
        example_response=svc.examples.response,
    )


def offers_document(catalog: ir.Catalog) -> dict[str, Any]:
    """``generated/x402/offers.json`` whole, offers included (what a user's
    ``x402_offers.json.jinja`` gets; the packaged one streams it, :mod:`s402gen.aggregates`)."""
    offers = {svc.route.service_id: x402_offer(catalog, svc) for svc in x402_paid(catalog)}
    return x402_contract.offers_document(catalog.x402_providers, offers)
