"""What the doc site shows beyond the catalog entry: parameter rows, copy-paste examples,
category groups and the search data of the index page.

Pure functions of the IR, called by :mod:`s402gen.render`; the templates only loop and
substitute. The examples use the gateway's own protocol constants
(:mod:`s402gen.runtime.protocol`), so a page never documents a header or an endpoint
the runtime does not answer.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from typing import Any

import orjson

from . import ir
from .runtime import protocol
from .runtime.auth import API_KEY_ENV

#: Where ``s402gen serve`` listens by default; the pages' examples start from it (a page
#: served by a gateway replaces it with the page's own origin, see ``site.js``).
DEFAULT_BASE_URL = "http://127.0.0.1:8402"
#: The examples send the caller's API key (``s402gen keys create``) from this variable, as
#: ``Authorization: Bearer``; a token binds to the key when the pricing says so.
EXAMPLE_KEY_ENV = API_KEY_ENV
#: The doc site's files besides the pages, under ``docs/`` (path, template).
STYLE = ("assets/style.css", "doc_style.css.jinja")
SCRIPT = ("assets/site.js", "doc_site.js.jinja")
#: The index page's search data: a classic script setting ``window.<SEARCH_GLOBAL>``
#: (it loads from file:// too, where ``fetch`` and ES modules are blocked).
SEARCH_DATA = ("assets/search-data.js", "doc_search_data.js.jinja")
SEARCH_GLOBAL = "S402_SEARCH"


@dataclass(frozen=True)
class ParamRow:
    """One row of a page's parameter table; ``example`` is compact JSON or ``""``."""

    name: str
    type: str
    required: bool
    description: str
    example: str


@dataclass(frozen=True)
class Group:
    """The services of one category, in catalog order; ``category`` is the id."""

    category: str
    services: tuple[ir.Service, ...]


def compact_json(value: Any) -> str:
    """One-line JSON without spaces (UTF-8), for values shown inline and request bodies."""
    return orjson.dumps(value).decode("utf-8")


def _type_label(schema: dict[str, Any]) -> str:
    kind = schema.get("type", "any")
    if kind == "array" and isinstance(schema.get("items"), dict):
        return f"array of {_type_label(schema['items'])}"
    if "format" in schema:
        return f"{kind} ({schema['format']})"
    return str(kind)


def param_rows(svc: ir.Service) -> tuple[ParamRow, ...]:
    """The parameter table: every input property in schema order, required ones first."""
    schema = svc.route.input_schema
    required = set(schema.get("required", ()))
    example = svc.examples.request or {}
    rows = [
        ParamRow(
            name=name,
            type=_type_label(prop),
            required=name in required,
            description=prop.get("description", ""),
            example=compact_json(example[name]) if name in example else "",
        )
        for name, prop in schema.get("properties", {}).items()
    ]
    return tuple(sorted(rows, key=lambda row: not row.required))


def groups(catalog: ir.Catalog) -> tuple[Group, ...]:
    """The index's sections: one per category, in order of first appearance."""
    members: dict[str, list[ir.Service]] = {}
    for svc in catalog.services:
        members.setdefault(svc.texts.category, []).append(svc)
    return tuple(Group(category, tuple(services)) for category, services in members.items())


def related(
    svc: ir.Service, catalog: ir.Catalog, by_id: dict[str, ir.Service] | None = None
) -> tuple[ir.Service, ...]:
    """The services ``related_services`` names, that the catalog has (catalog order kept
    as listed). ``by_id`` is :func:`services_by_id` of ``catalog``, when the caller made it
    once for every page (else it is made here: linear in the catalog)."""
    if by_id is None:
        by_id = services_by_id(catalog)
    return tuple(by_id[i] for i in svc.texts.related_services if i in by_id)


def services_by_id(catalog: ir.Catalog) -> dict[str, ir.Service]:
    """``{service id: service}`` of every service of ``catalog``."""
    return {other.route.service_id: other for other in catalog.services}


def _request(svc: ir.Service) -> dict[str, Any]:
    return svc.examples.request or {}


def curl_example(svc: ir.Service) -> str:
    """A shell session: the call without a token (HTTP 402), a payment, the paid retry."""
    route = svc.route
    body = shlex.quote(compact_json(_request(svc)))
    payment = shlex.quote(compact_json({"serviceId": route.service_id}))
    header = protocol.PAYMENT_HEADER
    return "\n".join(
        (
            f"BASE={DEFAULT_BASE_URL}",
            f"# your API key (s402gen keys create) is in ${EXAMPLE_KEY_ENV}",
            "# 1. call without a token: HTTP 402 Payment Required, the price in the body",
            f'curl -i -X POST "$BASE{route.endpoint}" \\',
            "  -H 'Content-Type: application/json' \\",
            f"  -d {body}",
            "# 2. create a payment for this service and keep its id and token",
            f'PAYMENT=$(curl -s -X POST "$BASE{protocol.CREATE_PAYMENT_URL}" \\',
            f"  -H \"Authorization: Bearer ${EXAMPLE_KEY_ENV}\" -H 'Content-Type: application/json' \\",
            f"  -d {payment})",
            "ID=$(printf '%s' \"$PAYMENT\" | python3 -c "
            "'import json,sys; print(json.load(sys.stdin)[\"paymentId\"])')",
            "TOKEN=$(printf '%s' \"$PAYMENT\" | python3 -c "
            "'import json,sys; print(json.load(sys.stdin)[\"token\"])')",
            "# 3. check that it is paid",
            f'curl -s -H "Authorization: Bearer ${EXAMPLE_KEY_ENV}" '
            f'"$BASE{protocol.VERIFY_PAYMENT_URL.replace("{paymentId}", "$ID")}"',
            "# 4. retry the same request with the token",
            f'curl -s -X POST "$BASE{route.endpoint}" \\',
            f'  -H "{header}: $TOKEN" -H "Authorization: Bearer ${EXAMPLE_KEY_ENV}" \\',
            "  -H 'Content-Type: application/json' \\",
            f"  -d {body}",
        )
    )


def python_example(svc: ir.Service) -> str:
    """A Python script with httpx: the 402, the payment, the paid retry."""
    route = svc.route
    verify = protocol.VERIFY_PAYMENT_URL.replace("{paymentId}", "{payment['paymentId']}")
    return "\n".join(
        (
            "import os",
            "",
            "import httpx",
            "",
            f'BASE = "{DEFAULT_BASE_URL}"',
            f'KEY = os.environ["{EXAMPLE_KEY_ENV}"]  # from s402gen keys create',
            f"body = {_request(svc)!r}",
            'client = httpx.Client(base_url=BASE, headers={"Authorization": f"Bearer {KEY}"})',
            "",
            f'answer = client.post("{route.endpoint}", json=body)',
            "assert answer.status_code == 402, answer.text",
            'print("price:", answer.json()["payment"])',
            f'payment = client.post("{protocol.CREATE_PAYMENT_URL}", '
            f'json={{"serviceId": "{route.service_id}"}}).json()',
            f'print("status:", client.get(f"{verify}").json()["status"])',
            f'answer = client.post("{route.endpoint}", json=body, '
            f'headers={{"{protocol.PAYMENT_HEADER}": payment["token"]}})',
            "print(answer.status_code, answer.json())",
        )
    )


def mcp_example(svc: ir.Service) -> str:
    """The JSON-RPC ``tools/call`` request of the paid call over MCP (one line per key)."""
    arguments = dict(_request(svc))
    arguments[protocol.MCP_ARGUMENT] = "TOKEN"
    params = {"name": svc.route.tool_name, "arguments": arguments}
    return "\n".join(
        (
            '{"jsonrpc": "2.0", "id": 1, "method": "tools/call",',
            f' "params": {compact_json(params)}}}',
        )
    )


def search_entry(svc: ir.Service) -> dict[str, str]:
    """What the index's search box matches a service against: its ids, names (English and
    Chinese), category, aliases and the catalog's ``searchText``, lowercased."""
    route, texts = svc.route, svc.texts
    parts = (
        route.service_id,
        route.legacy_id,
        route.tool_name,
        texts.name,
        texts.title_zh,
        texts.summary_zh,
        texts.category,
        *svc.discovery.aliases,
        svc.search_text,
    )
    return {"id": route.service_id, "text": " ".join(dict.fromkeys(parts)).lower()}


def search_data(catalog: ir.Catalog) -> list[dict[str, str]]:
    """Every service's :func:`search_entry`, in catalog order."""
    return [search_entry(svc) for svc in catalog.services]
