"""The output contract: typed models of every document the compiler and the gateway publish.

One module, on the runtime side, for what both halves share: the catalog
entry (:class:`CatalogEntry`) and document (:class:`CatalogDocument`, also
the search answer), the payment record (:class:`PaymentRecord`), the 402
body, which is also the MCP payment-required ``structuredContent``
(:class:`PaymentRequired`), and the success envelope
(:class:`SuccessEnvelope`). The compiler's render stage serializes through
these models, the runtime answers through them, the importer and the search
read through them, and :func:`published_schemas` derives the JSON Schemas
that ``generated/contract/`` publishes.

Field order is the live format's key order (``shared/seeds/003_*.txt``):
:meth:`Contract.to_json` keeps it, and leaves out an optional field that is
not there (``exampleRequest``, ``paidAt``, ``generatedAt``, the search's
runtime fields) instead of writing ``null``. The payment schemas the
catalog embeds (``payment.flow``, ``requiredResponse``) are the live
format's plain style, derived from the same models by :func:`wire_schema`.

Imports pydantic, never the compiler; a generated route module does not
import this module (it needs only :mod:`s402gen.runtime.spec`).
"""

from __future__ import annotations

import copy
from functools import cache
from typing import Any, ClassVar, Union, get_args, get_origin

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from . import protocol

JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
DATE_TIME = {"format": "date-time"}


#: A JSON object kept as given (a JSON Schema, an example): an object with string keys.
JsonObject = dict[str, Any]


def _absent(value: Any) -> bool:
    return value is None


def optional(description: str | None = None, **extra: Any) -> Any:
    """A field that may be left out: ``None`` when absent, and then not serialized at all."""
    return Field(None, exclude_if=_absent, description=description, json_schema_extra=extra or None)


class Contract(BaseModel):
    """Base of the contract models: camelCase on the wire, snake_case in Python, immutable.

    Unknown keys are rejected (``extra="forbid"``, ``additionalProperties:
    false`` in the schemas) and values are validated strictly on
    construction (no ``"yes"`` for a boolean, lists as lists), so a document
    that does not fit raises ``pydantic.ValidationError``.
    """

    model_config = ConfigDict(
        alias_generator=to_camel,
        validate_by_name=True,
        validate_by_alias=True,
        extra="forbid",
        frozen=True,
        strict=True,
    )
    #: The live format's embedded schemas list ``required`` for this model (see :func:`wire_schema`).
    wire_required: ClassVar[bool] = True

    def to_json(self) -> dict[str, Any]:
        """The JSON value: camelCase keys in field order, absent optional fields left out.

        Equal to ``model_dump(by_alias=True)`` (a test holds it to that), but
        JSON objects and lists of strings are shared with the model, not
        copied (do not mutate them): the build serializes thousands of
        entries, each with its schemas, and a deep copy of each costs more
        than writing it.
        """
        json: dict[str, Any] = {}
        for name, alias, kind, optional_field in _plan(type(self)):
            value = getattr(self, name)
            if value is None and optional_field:
                continue
            if kind == "model":
                value = value.to_json()
            elif kind == "models":
                value = [item.to_json() for item in value]
            json[alias] = value
        return json


@cache
def _plan(model: type[Contract]) -> tuple[tuple[str, str, str, bool], ...]:
    """``(name, alias, kind, optional)`` of each field; kind ``model``, ``models`` or ``plain``."""
    plan = []
    for name, field in model.model_fields.items():
        annotation, kind = field.annotation, "plain"
        if get_origin(annotation) in (Union, type(int | None)):  # X | None: X
            kept = [arg for arg in get_args(annotation) if arg is not type(None)]
            annotation = kept[0] if len(kept) == 1 else annotation
        if get_origin(annotation) is list:
            (item,) = get_args(annotation)
            kind = "models" if isinstance(item, type) and issubclass(item, Contract) else kind
        elif isinstance(annotation, type) and issubclass(annotation, Contract):
            kind = "model"
        plan.append((name, field.alias or name, kind, field.exclude_if is not None))
    return tuple(plan)


# ---------------------------------------------------------------------------
# payments


class PaymentRecord(Contract):
    """A payment: the create and verify answers, and the ``payment`` of a 402 body.

    Before any payment exists (``status`` ``payment_required``) only what to
    pay is given; a stored payment adds its id, counters, token and times
    (ISO 8601 UTC, ``2026-06-03T12:06:21Z``).
    """

    wire_required: ClassVar[bool] = False  # the live record schema lists no required keys

    payment_id: str | None = optional()
    service_id: str = Field(description="Canonical public service id.")
    internal_service_id: str = Field(
        description="Legacy internal service id, included only for backward compatibility."
    )
    provider_id: str
    provider: str
    amount_cents: int
    currency: str
    billing_mode: str
    max_calls: int
    used_calls: int | None = optional()
    remaining_calls: int | None = optional()
    status: str
    token: str | None = optional()
    client_id: str | None = optional()
    pay_to: str | None = optional()
    expires_at: str | None = optional(**DATE_TIME)
    paid_at: str | None = optional(**DATE_TIME)


class CreatePayment(Contract):
    """The ``POST /api/payments`` body (and the ``create_payment`` MCP tool's arguments)."""

    provider_id: str | None = optional()
    service_id: str = Field(
        description="Use the canonical service id from the catalog. Legacy internal ids "
        "remain accepted for backward compatibility."
    )


class PaymentRequired(Contract):
    """The HTTP 402 body, and the MCP ``structuredContent`` of an unpaid tool call.

    ``error`` is one of :data:`protocol.FAILURES`; ``payment`` the token's
    own record when it is one of this service's, else what to pay.
    """

    error: str
    payment: PaymentRecord


class EnvelopeData(Contract):
    """The ``data`` of a success envelope: the upstream action and its result."""

    action: str = Field(alias="Action")
    result: Any = Field(alias="Result")


class SuccessEnvelope(Contract):
    """A paid call's answer (HTTP 200, MCP ``structuredContent``) and ``exampleResponse``."""

    code: str
    content: str
    data: EnvelopeData
    message: str
    request_id: str


class ErrorAnswer(Contract):
    """A refused request: the HTTP 400/404/413/415 body and an MCP error ``structuredContent``.

    ``error`` is the catalog's own message (``ImageURL is required``).
    """

    error: str


class UpstreamFailure(Contract):
    """A failed upstream call (HTTP 502, MCP ``isError``): the upstream's code and message.

    The call was given back to the token, unless ``code`` is ``UpstreamNoAnswer``
    (the request went out, no answer came: the upstream may still run it);
    ``message`` is ``upstream unavailable`` (details stay in the server's log);
    ``requestId`` is the upstream's.
    ``payment`` is there when an x402 payment was settled before the upstream
    failed: its token retries the call for free.
    """

    error: str
    code: str
    message: str
    request_id: str
    payment: PaymentRecord | None = optional()


def tool_output_schema(success_schema: JsonObject, *failures: type[Contract]) -> JsonObject:
    """An MCP tool's ``outputSchema``: every ``structuredContent`` the tool can return.

    ``{"type": "object", "anyOf": [success_schema, <wire schema of each failure>]}``:
    a strict client (the TypeScript SDK checks every result, ``isError`` or
    not) then accepts the payment-required and error answers too. The MCP
    spec asks for ``type: object`` at the root (revision 2025-11-25, ``Tool``).
    """
    return {
        "anyOf": [success_schema, *(wire_schema(model) for model in failures)],
        "type": "object",
    }


#: What a paid service's MCP tool answers besides success, in the order its schema lists them.
TOOL_FAILURES = (PaymentRequired, UpstreamFailure, ErrorAnswer)


def success(action: str, result: Any, request_id: str) -> SuccessEnvelope:
    """The success envelope of ``action``: code ``200``, message ``success``."""
    return SuccessEnvelope(
        code="200",
        content="",
        data=EnvelopeData(action=action, result=result),
        message="success",
        request_id=request_id,
    )


# ---------------------------------------------------------------------------
# the payment flow the catalog publishes


class PaymentStep(Contract):
    """One payment endpoint: method, URL and the schemas of its body and answer."""

    method: str
    url: str
    body_schema: JsonObject | None = optional()
    response_schema: JsonObject


class TokenUsage(Contract):
    """Where a paid token goes: the HTTP header and the MCP argument."""

    header: str
    mcp_argument: str
    http_usage: str
    mcp_usage: str


class RequiredResponse(Contract):
    """The 402 answer: status, content type, headers and body schema."""

    status: int
    content_type: str
    headers: dict[str, str]
    body_schema: JsonObject


class RetryRules(Contract):
    """When and how to retry after a 402, over HTTP and MCP; the failure texts."""

    when: str
    http: list[str]
    mcp: list[str]
    failures: list[str]


class PaymentFlow(Contract):
    """The ``http-402`` flow (``payment.flow`` and every ``discovery.paymentFlow``)."""

    def to_json(self) -> dict[str, Any]:
        """As :meth:`Contract.to_json`; the shared :func:`payment_flow` is serialized once."""
        return _flow_json() if self is payment_flow() else super().to_json()

    type: str
    create_payment: PaymentStep
    verify_payment: PaymentStep
    token: TokenUsage
    required_response: RequiredResponse
    retry: RetryRules


class PaymentBlock(Contract):
    """The catalog's top-level ``payment`` object."""

    payment_header: str
    create_payment: str
    verify_payment: str
    token: TokenUsage
    required_response: RequiredResponse
    retry: RetryRules
    flow: PaymentFlow


# ---------------------------------------------------------------------------
# the catalog


class Pricing(Contract):
    """A service's price per call and token rules (see ``spec.Pricing``)."""

    amount_cents: int = Field(ge=0)
    currency: str
    policy_id: str
    settle_mode: str
    billing_mode: str
    max_calls: int = Field(ge=1)
    allow_reuse: bool
    bind_client: bool


class PaymentProviderRef(Contract):
    """The payment provider a service is paid through."""

    provider_id: str
    provider: str


class Discovery(Contract):
    """What an agent needs to find and pay for a service."""

    tool_name: str
    search_text: str
    aliases: list[str]
    locale_hints: list[str]
    use_cases: list[str]
    limitations: list[str]
    payment_flow: PaymentFlow
    payment_hint: str
    retry_hint: str
    required_state: str


class ErrorExample(Contract):
    """A request the route rejects: ``input`` gets HTTP ``statusCode`` with ``error``."""

    input: JsonObject
    error: str
    status_code: int


class Sla(Contract):
    """Promised uptime (``99.5%``) and latency (``5000ms``)."""

    uptime: str
    max_latency: str


class Quality(Contract):
    """Runtime call statistics of a service (search answers only); ``qualityScore`` is 0..5."""

    quality_score: int | float
    health_status: str
    health_checked_at: str | None = optional("When a health probe last ran.", **DATE_TIME)
    health_latency_ms: int | None = optional("The last health probe's latency, in ms.")
    success_rate: int | float
    call_count: int
    execution_count: int
    success_count: int
    error_count: int
    payment_requireds: int
    last_call_at: str


class CatalogEntry(Contract):
    """One service in the ``server402.catalog.search.v1`` format.

    ``quality``, ``matchScore``, ``matchTerms`` and ``why`` are the search's
    runtime fields: absent from catalog.json, present in search answers.
    """

    id: str
    canonical_id: str
    internal_service_id: str
    name: str
    description: str
    description_for_model: str
    category: str
    keywords: list[str]
    use_cases: list[str]
    limitations: list[str]
    tags: list[str]
    method: str
    endpoint: str
    legacy_endpoint: str
    endpoint_aliases: list[str]
    input_types: list[str]
    output_types: list[str]
    input_schema: JsonObject
    output_schema: JsonObject
    example_request: JsonObject | None = optional()
    example_response: SuccessEnvelope
    pricing: Pricing
    payment: PaymentProviderRef
    quality: Quality | None = optional("Runtime: call statistics (search answers only).")
    discovery: Discovery
    complexity: str
    typical_response_time: str
    cacheable: bool
    idempotent: bool
    output_format: str
    related_services: list[str]
    required_context: list[str]
    error_examples: list[ErrorExample]
    sla: Sla
    match_score: int | None = optional("Runtime: the search score (search answers only).")
    match_terms: list[str] | None = optional("Runtime: the terms that scored.")
    why: str | None = optional("Runtime: why the search listed the service.")


#: The search's runtime fields of a :class:`CatalogEntry` (camelCase): a catalog lacks them.
RUNTIME_FIELDS = ("quality", "matchScore", "matchTerms", "why")


class CatalogDocument(Contract):
    """The catalog (catalog.json: an empty query's answer) and every search answer."""

    schema_version: str = Field(json_schema_extra={"const": protocol.SCHEMA_VERSION})
    generated_at: str | None = optional(**DATE_TIME)
    query: str
    expanded_terms: list[str]
    filters: JsonObject
    total: int
    services: list[CatalogEntry]
    payment: PaymentBlock


# ---------------------------------------------------------------------------
# schemas


def _plain(node: Any, defs: dict[str, Any]) -> Any:
    """A pydantic JSON Schema node in the live format's plain style (see :func:`wire_schema`)."""
    if isinstance(node, list):
        return [_plain(item, defs) for item in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        return _plain(defs[node["$ref"].rsplit("/", 1)[1]], defs)
    options = node.get("anyOf")
    if options and {"type": "null"} in options and len(options) == 2:
        (kept,) = (option for option in options if option != {"type": "null"})
        node = {**{k: v for k, v in node.items() if k != "anyOf"}, **kept}
    skipped = {"title", "default", "additionalProperties", "$defs"}
    return {key: _plain(node[key], defs) for key in sorted(node) if key not in skipped}


@cache
def _wire_schema(model: type[Contract]) -> dict[str, Any]:
    schema = model.model_json_schema(by_alias=True)
    defs = schema.get("$defs", {})
    plain = {"properties": _plain(schema["properties"], defs), "type": "object"}
    for name, field in model.model_fields.items():
        # nested records (also optional ones) keep their own style, inline
        if field.annotation is PaymentRecord or PaymentRecord in get_args(field.annotation):
            plain["properties"][field.alias or name] = _wire_schema(PaymentRecord)
    if model.wire_required and schema.get("required"):
        plain["required"] = schema["required"]
    return {key: plain[key] for key in sorted(plain)}


def wire_schema(model: type[Contract]) -> dict[str, Any]:
    """The schema of ``model`` in the style the live catalog embeds (a fresh copy).

    Types, formats and descriptions only (no titles, defaults or
    ``additionalProperties``), keys sorted, ``required`` only where the live
    format lists it (not for :class:`PaymentRecord`).
    """
    return copy.deepcopy(_wire_schema(model))


def contract_schema(model: type[Contract]) -> dict[str, Any]:
    """The published JSON Schema (Draft 2020-12) of ``model``, deterministic.

    Derived by pydantic; property titles (made from Python names) are
    dropped, optional fields are plain (absent, never ``null``), every
    object's keys are sorted.
    """
    schema = model.model_json_schema(by_alias=True)
    return _published({"$schema": JSON_SCHEMA_DIALECT, **schema})


def _published(node: Any) -> Any:
    if isinstance(node, list):
        return [_published(item) for item in node]
    if not isinstance(node, dict):
        return node
    options = node.get("anyOf")
    if options and {"type": "null"} in options and node.get("default", 0) is None:
        rest = [option for option in options if option != {"type": "null"}]
        node = {k: v for k, v in node.items() if k not in ("anyOf", "default")}
        node.update(rest[0] if len(rest) == 1 else {"anyOf": rest})
    return {
        key: (
            {name: _published(value) for name, value in sorted(node[key].items())}
            if key in ("properties", "$defs")
            else _published(node[key])
        )
        for key in sorted(node)
        if not (key == "title" and _is_field_title(node))
    }


def _is_field_title(node: dict[str, Any]) -> bool:
    """A title pydantic made from a field name (models keep theirs: the class name)."""
    return node.get("type") != "object" or "properties" not in node


#: The published schemas: ``generated/contract/<name>.schema.json`` for each model.
PUBLISHED = {
    "catalog-document": CatalogDocument,
    "catalog-entry": CatalogEntry,
    "payment-record": PaymentRecord,
    "payment-required": PaymentRequired,
    "success-envelope": SuccessEnvelope,
    "create-payment": CreatePayment,
    "error": ErrorAnswer,
    "upstream-failure": UpstreamFailure,
}


def published_schemas() -> dict[str, dict[str, Any]]:
    """``{name: JSON Schema}`` of every model in :data:`PUBLISHED`, in that order."""
    return {name: contract_schema(model) for name, model in PUBLISHED.items()}


# ---------------------------------------------------------------------------
# the payment protocol's documents


def required_response() -> RequiredResponse:
    """The 402 answer: status, content type, headers and :class:`PaymentRequired` schema."""
    return RequiredResponse(
        status=402,
        content_type="application/json",
        headers={protocol.REQUIRED_HEADER: "true", protocol.PAYMENT_HEADER: "payment.token"},
        body_schema=wire_schema(PaymentRequired),
    )


def _token() -> TokenUsage:
    return TokenUsage(
        header=protocol.PAYMENT_HEADER,
        mcp_argument=protocol.MCP_ARGUMENT,
        http_usage=protocol.TOKEN_HTTP_USAGE,
        mcp_usage=protocol.TOKEN_MCP_USAGE,
    )


def _retry() -> RetryRules:
    return RetryRules(
        when=protocol.RETRY_WHEN,
        http=list(protocol.RETRY_HTTP),
        mcp=list(protocol.RETRY_MCP),
        failures=list(protocol.FAILURES),
    )


@cache
def payment_flow() -> PaymentFlow:
    """The ``http-402`` flow (``payment.flow`` and ``discovery.paymentFlow``); one shared copy."""
    record = wire_schema(PaymentRecord)
    return PaymentFlow(
        type="http-402",
        create_payment=PaymentStep(
            method="POST",
            url=protocol.CREATE_PAYMENT_URL,
            body_schema=wire_schema(CreatePayment),
            response_schema=record,
        ),
        verify_payment=PaymentStep(
            method="GET", url=protocol.VERIFY_PAYMENT_URL, response_schema=record
        ),
        token=_token(),
        required_response=required_response(),
        retry=_retry(),
    )


@cache
def _flow_json() -> dict[str, Any]:
    return Contract.to_json(payment_flow())


@cache
def payment_block() -> PaymentBlock:
    """The catalog's top-level ``payment`` object; one shared copy."""
    return PaymentBlock(
        payment_header=protocol.PAYMENT_HEADER,
        create_payment=protocol.CREATE_PAYMENT_URL,
        verify_payment=protocol.VERIFY_PAYMENT_URL,
        token=_token(),
        required_response=required_response(),
        retry=_retry(),
        flow=payment_flow(),
    )


def payment_tools() -> list[dict[str, Any]]:
    """The two MCP tools that pay for the others (``createPayment``/``verifyPayment``),
    so that an MCP client without HTTP access can follow ``retry.mcp``."""
    return [
        {
            "name": protocol.CREATE_PAYMENT_TOOL,
            "title": "Create a payment",
            "description": "Create a payment for one service (its id, or its legacy id). "
            "Pass the returned token as paymentToken when calling that service's tool.",
            "inputSchema": wire_schema(CreatePayment),
            "outputSchema": tool_output_schema(wire_schema(PaymentRecord), ErrorAnswer),
            "annotations": {
                "readOnlyHint": False,
                "destructiveHint": False,
                "idempotentHint": False,
                "openWorldHint": False,
            },
        },
        {
            "name": protocol.VERIFY_PAYMENT_TOOL,
            "title": "Verify a payment",
            "description": "The current state of a payment: status, remaining calls, token.",
            "inputSchema": {
                "properties": {"paymentId": {"type": "string"}},
                "required": ["paymentId"],
                "type": "object",
            },
            "outputSchema": tool_output_schema(wire_schema(PaymentRecord), ErrorAnswer),
            "annotations": {
                "readOnlyHint": True,
                "destructiveHint": False,
                "idempotentHint": True,
                "openWorldHint": False,
            },
        },
    ]
