"""Render stage: IR to ``{relative path: text}``, through the Jinja templates.

Pure: no disk writes, no clock, no environment. The JSON documents are
assembled here as ordered dicts (the live format's key order; schemas
sorted) and serialized by one function; templates only loop and
substitute. Python is emitted black-stable by construction (every
collection exploded, one item a line, magic trailing commas); black itself
only runs when a user's template folder overrides the route template.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jinja2

from . import ir, protocol

PACKAGED_TEMPLATES = Path(__file__).parent / "templates"
SOURCE_TEMPLATES = Path(__file__).parent.parent / "templates"
INDENT = "    "


def packaged_templates() -> Path:
    """The template folder shipped with s402gen (in a wheel, or the source tree)."""
    return PACKAGED_TEMPLATES if PACKAGED_TEMPLATES.is_dir() else SOURCE_TEMPLATES


def to_json(value: Any) -> str:
    """The one JSON serialization of every artifact: 2-space indent, UTF-8, no newline."""
    return json.dumps(value, ensure_ascii=False, indent=2)


def py_str(text: str) -> str:
    """A Python string literal with the quotes black would choose."""
    body = (
        text.replace("\\", "\\\\")
        .replace("\n", "\\n")
        .replace("\r", "\\r")
        .replace("\t", "\\t")
    )
    body = "".join(
        f"\\x{ord(ch):02x}" if ord(ch) < 0x20 or ord(ch) == 0x7F else ch for ch in body
    )
    quote = "'" if text.count("'") < text.count('"') else '"'
    return quote + body.replace(quote, "\\" + quote) + quote


def py_literal(value: Any, level: int = 0) -> str:
    """A Python literal for a JSON-like value, black-stable at indent ``level``.

    Non-empty dicts, lists and tuples are exploded one item per line with a
    trailing comma, which black keeps as is (magic trailing comma).
    """
    if value is None or isinstance(value, bool):
        return repr(value)
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return py_str(value)
    inner = INDENT * (level + 1)
    if isinstance(value, dict):
        if not value:
            return "{}"
        items = [f"{inner}{py_str(str(k))}: {py_literal(v, level + 1)}," for k, v in value.items()]
        return "{\n" + "\n".join(items) + "\n" + INDENT * level + "}"
    if isinstance(value, (list, tuple)):
        if not value:
            return "()" if isinstance(value, tuple) else "[]"
        if isinstance(value, tuple) and len(value) == 1:
            return f"({py_literal(value[0], level)},)"  # black never explodes a 1-tuple
        opening, closing = ("(", ")") if isinstance(value, tuple) else ("[", "]")
        items = [f"{inner}{py_literal(v, level + 1)}," for v in value]
        return opening + "\n" + "\n".join(items) + "\n" + INDENT * level + closing
    raise TypeError(f"no Python literal for {type(value).__name__}")


def make_environment(user_templates: Path | None = None) -> jinja2.Environment:
    """Jinja environment: the user's template folder first, the packaged one second."""
    loaders: list[jinja2.BaseLoader] = []
    if user_templates is not None:
        loaders.append(jinja2.FileSystemLoader(str(user_templates)))
    loaders.append(jinja2.FileSystemLoader(str(packaged_templates())))
    env = jinja2.Environment(
        loader=jinja2.ChoiceLoader(loaders),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        autoescape=jinja2.select_autoescape(enabled_extensions=("html", "html.jinja"), default=False),
    )
    env.filters["py"] = py_literal
    env.filters["json"] = to_json
    return env


# ---------------------------------------------------------------------------
# JSON documents


def catalog_entry(svc: ir.Service) -> dict[str, Any]:
    """One service in the ``server402.catalog.search.v1`` format, static fields only."""
    entry: dict[str, Any] = {
        "id": svc.id,
        "canonicalId": svc.id,
        "internalServiceId": svc.legacy_id,
        "name": svc.name,
        "description": svc.description,
        "descriptionForModel": svc.description,
        "category": svc.category,
        "keywords": list(svc.keywords),
        "useCases": list(svc.use_cases),
        "limitations": list(svc.limitations),
        "tags": list(svc.tags),
        "method": svc.method,
        "endpoint": svc.endpoint,
        "legacyEndpoint": svc.legacy_endpoint,
        "endpointAliases": [svc.endpoint, svc.legacy_endpoint],
        "inputTypes": list(svc.input_types),
        "outputTypes": list(svc.output_types),
        "inputSchema": svc.input_schema,
        "outputSchema": svc.output_schema,
    }
    if svc.example_request is not None:
        entry["exampleRequest"] = svc.example_request
    entry.update(
        {
            "exampleResponse": svc.example_response,
            "pricing": {
                "amountCents": svc.pricing.amount_cents,
                "currency": svc.pricing.currency,
                "policyId": svc.pricing.policy_id,
                "settleMode": svc.pricing.settle_mode,
                "billingMode": svc.pricing.billing_mode,
                "maxCalls": svc.pricing.max_calls,
                "allowReuse": svc.pricing.allow_reuse,
                "bindClient": svc.pricing.bind_client,
            },
            "payment": {"providerId": svc.payment.provider_id, "provider": svc.payment.provider},
            "discovery": {
                "toolName": svc.tool_name,
                "searchText": svc.search_text,
                "aliases": list(svc.aliases),
                "localeHints": list(protocol.LOCALE_HINTS),
                "useCases": list(svc.use_cases),
                "limitations": list(svc.limitations),
                "paymentFlow": protocol.payment_flow(),
                "paymentHint": svc.payment_hint,
                "retryHint": protocol.RETRY_HINT,
                "requiredState": protocol.REQUIRED_STATE,
            },
            "complexity": svc.complexity,
            "typicalResponseTime": svc.typical_response_time,
            "cacheable": svc.cacheable,
            "idempotent": svc.idempotent,
            "outputFormat": svc.output_format,
            "relatedServices": list(svc.related_services),
            "requiredContext": list(svc.required_context),
            "errorExamples": [
                {"input": e.input, "error": e.error, "statusCode": e.status_code}
                for e in svc.error_examples
            ],
            "sla": svc.sla,
        }
    )
    return entry


def catalog_document(catalog: ir.Catalog) -> dict[str, Any]:
    """The whole catalog in the search format, as an empty query would return it."""
    document: dict[str, Any] = {"schemaVersion": protocol.SCHEMA_VERSION}
    if catalog.generated_at is not None:
        document["generatedAt"] = catalog.generated_at
    document.update(
        {
            "query": "",
            "expandedTerms": [],
            "filters": {},
            "total": len(catalog.services),
            "services": [catalog_entry(svc) for svc in catalog.services],
            "payment": protocol.payment_block(),
        }
    )
    return document


def mcp_tool(svc: ir.Service) -> dict[str, Any]:
    """The MCP ``Tool`` (spec revision 2025-11-25) of a service.

    Its input schema is the service's plus an optional ``paymentToken``.
    """
    properties = dict(svc.input_schema["properties"])
    properties[protocol.MCP_ARGUMENT] = {
        "description": protocol.PAYMENT_TOKEN_DESCRIPTION,
        "type": "string",
    }
    input_schema = dict(svc.input_schema)
    input_schema["properties"] = {key: properties[key] for key in sorted(properties)}
    return {
        "name": svc.tool_name,
        "title": svc.name,
        "description": svc.description,
        "inputSchema": input_schema,
        "outputSchema": svc.output_schema,
        "annotations": {
            "readOnlyHint": svc.annotations.read_only,
            "destructiveHint": svc.annotations.destructive,
            "idempotentHint": svc.annotations.idempotent,
            "openWorldHint": svc.annotations.open_world,
        },
    }


def doc_schema_block(svc: ir.Service) -> str:
    """The "Schema And Examples" JSON of a doc page (keys sorted, as the live pages)."""
    block: dict[str, Any] = {}
    if svc.example_request is not None:
        block["exampleRequest"] = svc.example_request
    block["exampleResponse"] = svc.example_response
    block["inputSchema"] = svc.input_schema
    block["outputSchema"] = svc.output_schema
    return json.dumps(block, ensure_ascii=False, indent=2, sort_keys=True)


# ---------------------------------------------------------------------------
# the file map


def render(catalog: ir.Catalog, user_templates: Path | None = None) -> dict[str, str]:
    """Every generated file but the manifest: ``{posix relative path: text}``.

    Raises ``jinja2.TemplateError`` for a broken user template.
    """
    env = make_environment(user_templates)
    route = env.get_template("route.py.jinja")
    needs_black = Path(route.filename or "").parent.resolve() != packaged_templates().resolve()
    services = catalog.services
    files: dict[str, str] = {}

    for svc in services:
        files[f"routes/{svc.module}.py"] = route.render(service=svc)
    files["routes/__init__.py"] = env.get_template("routes_init.py.jinja").render(
        services=services
    )
    if needs_black:
        from .formatting import format_python

        for path in [p for p in files if p.endswith(".py")]:
            files[path] = format_python(files[path])

    files["mcp/tools.json"] = env.get_template("mcp_tools.json.jinja").render(
        tools=[mcp_tool(svc) for svc in services]
    )
    catalog_template = env.get_template("catalog.json.jinja")
    files["catalog/catalog.json"] = catalog_template.render(document=catalog_document(catalog))
    for svc in services:
        files[f"catalog/services/{svc.id}.json"] = catalog_template.render(
            document=catalog_entry(svc)
        )

    page = env.get_template("doc_page.html.jinja")
    for svc in services:
        files[f"docs/tools/{svc.id}.html"] = page.render(
            service=svc,
            marketplace=catalog.marketplace,
            payment_intro=protocol.PAYMENT_INTRO,
            schema_block=doc_schema_block(svc),
        )
    files["docs/index.html"] = env.get_template("doc_index.html.jinja").render(
        services=services, marketplace=catalog.marketplace
    )
    return files
