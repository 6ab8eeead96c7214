"""The OpenAPI 3.1 document of the gateway (``generated/openapi.json``), built from the IR.

Every paid route (canonical, and its deprecated legacy alias) with its
request schema and examples, its 200 schema (the service's ``outputSchema``)
and the 400/401/402/413/415/502/503 bodies; the payment and catalog endpoints;
the payment token, the x402 payment signature and the client API key
(``Authorization: Bearer``) as security schemes; the x402
headers; one tag per category. Every body schema is one of the output
contract's (:mod:`s402gen.runtime.contract`), placed under
``components/schemas`` by its model name. ``s402gen serve`` serves the
file as ``/openapi.json``. Pure: no disk, no clock.
"""

from __future__ import annotations

import functools
from typing import Any, Callable, Iterator

import orjson

from . import ir, jsonstream
from .runtime import contract, protocol, x402_contract
from .runtime.payments import payment_required
from .runtime.search import DEFAULT_LIMIT, MAX_QUERY_CHARS

#: What stands for one service's part of the document: ``(service, slot, make) -> value``.
MemberOf = Callable[[ir.Service, str, Callable[[], Any]], Any]

OPENAPI_VERSION = "3.1.0"
JSON = "application/json"
#: Where ``s402gen serve`` listens by default (``--host``, ``--port``); a relative URL first,
#: so that the document served by any gateway points at that gateway.
SERVERS = (
    {"url": "/", "description": "The gateway serving this document."},
    {"url": "http://127.0.0.1:8402", "description": "`s402gen serve` on its default port."},
)
#: The security requirements of a paid call: a payment token, an x402 payment, or none (the
#: unpaid call answers 402 with what to pay), each with the client's API key or without it
#: (anonymous: only where the pricing does not bind the client).
PAID_CALL_SECURITY = [
    {"paymentToken": [], "apiKey": []},
    {"paymentToken": []},
    {"x402": [], "apiKey": []},
    {"x402": []},
    {},
]
#: The payment endpoints: with the client's API key, or anonymous.
PAYMENT_SECURITY = [{"apiKey": []}, {}]


def _ref(kind: str, name: str) -> dict[str, str]:
    return {"$ref": f"#/components/{kind}/{name}"}


def _title(model: type[contract.Contract]) -> str:
    return model.__name__


def contract_components() -> dict[str, Any]:
    """The contract's published schemas as OpenAPI components, keyed by model name.

    Each schema's ``$defs`` are lifted into the components and its
    ``#/$defs/X`` references rewritten to ``#/components/schemas/X``
    (inside an OpenAPI document a ``#`` pointer means the whole document).
    Raises ``ValueError`` if two schemas define one name differently.
    """
    components: dict[str, Any] = {}

    def put(name: str, schema: dict[str, Any]) -> None:
        schema = _rewrite_refs(schema)
        if components.setdefault(name, schema) != schema:
            raise ValueError(f"two contract schemas named {name!r} differ")

    for model in contract.PUBLISHED.values():
        schema = contract.contract_schema(model)
        for name, definition in schema.pop("$defs", {}).items():
            put(name, definition)
        schema.pop("$schema", None)
        put(_title(model), schema)
    return {name: components[name] for name in sorted(components)}


def _rewrite_refs(node: Any) -> Any:
    if isinstance(node, list):
        return [_rewrite_refs(item) for item in node]
    if not isinstance(node, dict):
        return node
    return {
        key: (
            value.replace("#/$defs/", "#/components/schemas/")
            if key == "$ref" and isinstance(value, str)
            else _rewrite_refs(value)
        )
        for key, value in node.items()
    }


def _header(description: str, required: bool = False) -> dict[str, Any]:
    return {"description": description, "required": required, "schema": {"type": "string"}}


def _error_response(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {JSON: {"schema": _ref("schemas", "ErrorAnswer")}},
    }


def shared_components() -> dict[str, Any]:
    """``components``: schemas, shared responses, the security schemes."""
    return {
        "schemas": contract_components(),
        "responses": {
            "PayloadTooLarge": _error_response("The request body is larger than 1 MiB."),
            "UnsupportedMediaType": _error_response("The body is not `application/json`."),
            "UpstreamFailure": {
                "description": "An upstream fault: the call was given back to the token, "
                "unless the request went out and no answer came (code `UpstreamNoAnswer`: "
                "the upstream may still complete it).",
                "content": {JSON: {"schema": _ref("schemas", "UpstreamFailure")}},
            },
            "Unauthorized": {
                **_error_response(
                    f"`{protocol.FAILURES[3]}`: the service's pricing binds the client and no "
                    f"API key was sent; `{protocol.FAILURES[4]}`: the key is unknown or revoked."
                ),
                "headers": {"WWW-Authenticate": _header("`Bearer`.", required=True)},
            },
            "LedgerBusy": {
                **_error_response("The payment ledger is busy; nothing was spent: retry later."),
                "headers": {"Retry-After": _header("Seconds to wait.", required=True)},
            },
        },
        "securitySchemes": {
            "apiKey": {
                "type": "http",
                "scheme": "bearer",
                "description": "The client's API key (`s402gen keys create`), as "
                "`Authorization: Bearer <key>`: payments it creates are bound to it and show "
                "their token only to it. Required where the service's pricing binds the "
                "client (`bindClient`).",
            },
            "paymentToken": {
                "type": "apiKey",
                "in": "header",
                "name": protocol.PAYMENT_HEADER,
                "description": protocol.TOKEN_HTTP_USAGE + " " + protocol.RETRY_WHEN,
            },
            "x402": {
                "type": "apiKey",
                "in": "header",
                "name": x402_contract.PAYMENT_SIGNATURE_HEADER,
                "description": "An x402 version 2 payment: the base64-encoded JSON "
                "`PaymentPayload` signed for one of the `accepts` of the 402's "
                f"`{x402_contract.PAYMENT_REQUIRED_HEADER}` header (x402 HTTP transport, version 2).",
            },
        },
    }


def _examples(values: list[tuple[str, Any]]) -> dict[str, Any]:
    return {f"example{i + 1}": {"summary": s, "value": v} for i, (s, v) in enumerate(values)}


def _tool_operation(svc: ir.Service, deprecated: bool) -> dict[str, Any]:
    route, texts = svc.route, svc.texts
    request: dict[str, Any] = {"schema": _ref("schemas", f"{route.tool_name}_input")}
    if svc.examples.request is not None:
        request["example"] = svc.examples.request
    by_status: dict[int, list[tuple[str, Any]]] = {}
    for example in svc.examples.errors:
        summary = f"{route.method} {route.endpoint} with {_compact(example.input)}"
        by_status.setdefault(example.status_code, []).append((summary, {"error": example.error}))
    bad = _error_response("Invalid request: the catalog's message in `error`; nothing charged.")
    if 400 in by_status:
        bad["content"][JSON]["examples"] = _examples(by_status[400])
    unpaid = contract.PaymentRequired(error=protocol.FAILURES[0], payment=payment_required(route))
    operation = {
        "operationId": route.tool_name + ("_legacy" if deprecated else ""),
        "summary": texts.name + (" (legacy id)" if deprecated else ""),
        "description": texts.description + "\n\n" + svc.discovery.payment_hint,
        "tags": [texts.category],
        "security": PAID_CALL_SECURITY,
        "requestBody": {"required": True, "content": {JSON: request}},
        "responses": {
            "200": {
                "description": "The upstream's answer in the success envelope.",
                "headers": {
                    x402_contract.PAYMENT_RESPONSE_HEADER: _header(
                        "With an x402 payment: the base64-encoded JSON settlement response "
                        "(`success`, `transaction`, `network`, `payer`)."
                    )
                },
                "content": {
                    JSON: {
                        "schema": _ref("schemas", f"{route.tool_name}_output"),
                        "example": svc.examples.response,
                    }
                },
            },
            "400": bad,
            "401": _ref("responses", "Unauthorized"),
            "402": {
                "description": "Payment required: pay (`POST /api/payments`, or x402) and "
                "retry. `error` is one of: " + "; ".join(protocol.FAILURES) + ".",
                "headers": {
                    protocol.REQUIRED_HEADER: _header("Always `true`.", required=True),
                    x402_contract.PAYMENT_REQUIRED_HEADER: _header(
                        "The x402 version 2 `PaymentRequired` object, base64-encoded JSON "
                        "(`x402Version`, `resource`, `accepts`, `error`)."
                    ),
                },
                "content": {
                    JSON: {
                        "schema": _ref("schemas", "PaymentRequired"),
                        "example": unpaid.to_json(),
                    }
                },
            },
            "413": _ref("responses", "PayloadTooLarge"),
            "415": _ref("responses", "UnsupportedMediaType"),
            "502": _ref("responses", "UpstreamFailure"),
            "503": _ref("responses", "LedgerBusy"),
        },
    }
    if deprecated:
        operation["deprecated"] = True
    return operation


def _post(operation: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    return {"post": operation()}


def _value(value: Any) -> Callable[[], Any]:
    return lambda: value


def _legacy_operation(operation: dict[str, Any]) -> dict[str, Any]:
    """``_tool_operation(svc, deprecated=True)`` made from ``deprecated=False``'s answer
    (sharing its members: both are only serialized)."""
    legacy = dict(operation)
    legacy["operationId"] += "_legacy"
    legacy["summary"] += " (legacy id)"
    legacy["deprecated"] = True
    return legacy


def _compact(value: Any) -> str:
    """``value`` as compact JSON, for an example's one-line summary."""
    return orjson.dumps(value).decode("utf-8")


_PAYMENT_ID = {"name": "paymentId", "in": "path", "required": True, "schema": {"type": "string"}}


def _payment_paths() -> dict[str, Any]:
    record = {JSON: {"schema": _ref("schemas", "PaymentRecord")}}
    not_found = _error_response("No such service or payment.")
    return {
        protocol.CREATE_PAYMENT_URL: {
            "post": {
                "operationId": protocol.CREATE_PAYMENT_TOOL,
                "summary": "Create a payment",
                "description": "Create a payment for one service (its id, or its legacy id). "
                + protocol.TOKEN_HTTP_USAGE,
                "tags": ["payments"],
                "security": PAYMENT_SECURITY,
                "requestBody": {
                    "required": True,
                    "content": {JSON: {"schema": _ref("schemas", "CreatePayment")}},
                },
                "responses": {
                    "201": {"description": "The payment, with its token.", "content": record},
                    "400": _error_response("Invalid payment request."),
                    "401": _ref("responses", "Unauthorized"),
                    "404": not_found,
                    "413": _ref("responses", "PayloadTooLarge"),
                    "415": _ref("responses", "UnsupportedMediaType"),
                    "503": _ref("responses", "LedgerBusy"),
                },
            }
        },
        x402_contract.PAY_PAYMENT_URL: {
            "post": {
                "operationId": "pay_payment",
                "summary": "Pay a pending payment with x402",
                "description": "Settle an x402 payment signature for a pending payment (the "
                "x402 provider): the payment is then paid and its token works.",
                "tags": ["payments"],
                "security": PAYMENT_SECURITY,
                "parameters": [
                    _PAYMENT_ID,
                    {
                        "name": x402_contract.PAYMENT_SIGNATURE_HEADER,
                        "in": "header",
                        "required": True,
                        "description": "The x402 version 2 payment payload, base64-encoded JSON.",
                        "schema": {"type": "string"},
                    },
                ],
                "responses": {
                    "200": {
                        "description": "The paid payment.",
                        "headers": {
                            x402_contract.PAYMENT_RESPONSE_HEADER: _header(
                                "The base64-encoded JSON settlement response."
                            )
                        },
                        "content": record,
                    },
                    "401": _ref("responses", "Unauthorized"),
                    "402": {
                        "description": "Not paid: no signature, or the facilitator refused it.",
                        "content": {JSON: {"schema": _ref("schemas", "PaymentRequired")}},
                    },
                    "404": not_found,
                    "503": _ref("responses", "LedgerBusy"),
                },
            }
        },
        protocol.VERIFY_PAYMENT_URL: {
            "get": {
                "operationId": protocol.VERIFY_PAYMENT_TOOL,
                "summary": "Verify a payment",
                "description": "The current state of a payment: status, remaining calls, and "
                "the token, shown only to the API key that created the payment (or to anyone "
                "for an anonymous payment).",
                "tags": ["payments"],
                "security": PAYMENT_SECURITY,
                "parameters": [_PAYMENT_ID],
                "responses": {
                    "200": {"description": "The payment.", "content": record},
                    "401": _ref("responses", "Unauthorized"),
                    "404": not_found,
                    "503": _ref("responses", "LedgerBusy"),
                },
            }
        },
    }


def _catalog_paths() -> dict[str, Any]:
    document = {JSON: {"schema": _ref("schemas", "CatalogDocument")}}
    return {
        "/api/catalog": {
            "get": {
                "operationId": "get_catalog",
                "summary": "The compiled catalog",
                "description": f"Every service in the `{protocol.SCHEMA_VERSION}` format.",
                "tags": ["catalog"],
                "security": [],
                "responses": {"200": {"description": "The catalog.", "content": document}},
            }
        },
        "/api/catalog/search": {
            "get": {
                "operationId": "search_catalog",
                "summary": "Search the catalog",
                "description": "A ranked search over the catalog (English and Chinese), with "
                "each service's runtime call statistics.",
                "tags": ["catalog"],
                "security": [],
                "parameters": [
                    {
                        "name": "q",
                        "in": "query",
                        "required": False,
                        "description": "The query: words, ids, tool names.",
                        "schema": {"type": "string", "default": "", "maxLength": MAX_QUERY_CHARS},
                    },
                    {
                        "name": "limit",
                        "in": "query",
                        "required": False,
                        "description": "How many services to answer at most.",
                        "schema": {"type": "integer", "default": DEFAULT_LIMIT},
                    },
                ],
                "responses": {
                    "200": {"description": "The ranked answer.", "content": document},
                    "422": {
                        "description": "`limit` is not an integer, or `q` is too long "
                        "(FastAPI's validation error).",
                        "content": {JSON: {"schema": {"type": "object"}}},
                    },
                },
            }
        },
    }


def openapi_document(catalog: ir.Catalog) -> dict[str, Any]:
    """The whole OpenAPI 3.1 document of ``catalog`` (a JSON value, in a fixed key order).

    Raises ``ValueError`` if the contract's schemas conflict (see
    :func:`contract_components`).
    """
    return jsonstream.materialize(openapi_tree(catalog)[0])


def _plain(svc: ir.Service, slot: str, make: Callable[[], Any]) -> Any:
    return make()


def openapi_tree(
    catalog: ir.Catalog, member: MemberOf | None = None
) -> tuple[jsonstream.Items, bool]:
    """:func:`openapi_document` with ``paths`` and ``components/schemas`` lazy (produced one
    service at a time when serialized, see :mod:`s402gen.jsonstream`), and whether every key
    of those two objects is unique (when not, materialize it: a later key replaces an
    earlier one in place). ``member(service, slot, make)`` is what stands for each service's
    path items (slots ``path``, ``legacy``) and schemas (``input``, ``output``), ``make()``
    their value (default: the value; see :class:`s402gen.incremental.Splice`). Raises as
    :func:`openapi_document`.
    """
    member = member or _plain
    components = shared_components()
    schemas = components.pop("schemas")
    services = catalog.services
    categories = list(dict.fromkeys(svc.texts.category for svc in services))
    payment_paths, catalog_paths = _payment_paths(), _catalog_paths()

    def paths() -> Iterator[tuple[str, Any]]:
        for svc in services:
            operation = functools.cache(functools.partial(_tool_operation, svc, False))
            canonical = functools.partial(_post, operation)
            legacy = functools.partial(_post, lambda: _legacy_operation(operation()))
            yield svc.route.endpoint, member(svc, "path", canonical)
            yield svc.route.legacy_endpoint, member(svc, "legacy", legacy)
        yield from payment_paths.items()
        yield from catalog_paths.items()

    def all_schemas() -> Iterator[tuple[str, Any]]:
        yield from schemas.items()
        for svc in services:
            yield f"{svc.route.tool_name}_input", member(
                svc, "input", _value(svc.route.input_schema)
            )
            yield f"{svc.route.tool_name}_output", member(svc, "output", _value(svc.output_schema))

    path_keys = [key for svc in services for key in (svc.route.endpoint, svc.route.legacy_endpoint)]
    path_keys += [*payment_paths, *catalog_paths]
    schema_keys = [*schemas]
    schema_keys += [
        f"{svc.route.tool_name}_{part}" for svc in services for part in ("input", "output")
    ]
    unique = len(set(path_keys)) == len(path_keys) and len(set(schema_keys)) == len(schema_keys)
    tags = [{"name": c, "description": f"Paid services of category `{c}`."} for c in categories]
    tags += [
        {"name": "payments", "description": "Create and verify payments for the paid services."},
        {"name": "catalog", "description": "The compiled catalog and its search."},
    ]
    document = {
        "openapi": OPENAPI_VERSION,
        "info": {
            "title": catalog.marketplace,
            "version": catalog.generated_at or "0",
            "description": "Paid API services, each sold per call behind an HTTP 402 payment "
            "flow. " + protocol.PAYMENT_INTRO,
        },
        "servers": list(SERVERS),
        "tags": tags,
        "paths": jsonstream.Items(paths()),
        "components": jsonstream.Items(
            [("schemas", jsonstream.Items(all_schemas())), *components.items()]
        ),
    }
    return jsonstream.Items(document.items()), unique
