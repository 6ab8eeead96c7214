"""The Server402 HTTP 402 payment protocol, as the catalog publishes it.

This is what the marketplace runtime implements, not catalog data: the
payment endpoints, the token header and MCP argument, the 402 response and
the retry rules. Source: the live marketplace's catalog search JSON
(``shared/seeds/003_*.txt``, its top-level ``payment`` block and every
service's ``discovery.paymentFlow``). Each piece is written once here and
assembled into both places by :func:`payment_block` and :func:`payment_flow`.
"""

from __future__ import annotations

from typing import Any

SCHEMA_VERSION = "server402.catalog.search.v1"
PAYMENT_HEADER = "X-Payment-Token"
MCP_ARGUMENT = "paymentToken"
CREATE_PAYMENT_URL = "/api/payments"
VERIFY_PAYMENT_URL = "/api/payments/{paymentId}"
TOOL_ENDPOINT_PREFIX = "/api/tools/"
LOCALE_HINTS = ("en", "zh")
REQUIRED_STATE = "published, enabled"
RETRY_HINT = (
    "If the service returns HTTP 402, complete or verify the payment and retry "
    "the same request with the payment token."
)
MISSING_PARAMETERS = "required parameters are missing"
PAYMENT_INTRO = (
    "Call the endpoint without payment to receive HTTP 402 metadata. After payment "
    "is complete, retry with X-Payment-Token, an x402 payment signature, or MCP paymentToken."
)
PAYMENT_TOKEN_DESCRIPTION = (
    "Paid token from POST /api/payments; omit it to receive payment_required metadata."
)

#: Failure texts of a paid call, in the order the live catalog lists them.
FAILURES = (
    "payment required",
    "payment token expired",
    "payment token has no remaining calls",
    "api key required",
    "api key is not allowed to call this service",
)


def required_message(param: str) -> str:
    """Error text for a missing required URL parameter: ``ImageURL is required``."""
    return f"{param} is required"


def invalid_url_message(param: str) -> str:
    """Error text for a URL parameter that is not http(s): ``ImageURL must be ...``."""
    return f"{param} must be a valid http or https URL"


def payment_hint(service_id: str) -> str:
    """The per-service ``discovery.paymentHint`` sentence (also on the doc page)."""
    return (
        f'Create a payment with POST /api/payments using serviceId="{service_id}", '
        "then pass the returned token in X-Payment-Token or MCP paymentToken."
    )


def payment_record_schema() -> dict[str, Any]:
    """JSON Schema of a payment record (create and verify responses, 402 body)."""
    integer = {"type": "integer"}
    string = {"type": "string"}
    date_time = {"format": "date-time", "type": "string"}
    return {
        "properties": {
            "amountCents": integer,
            "billingMode": string,
            "clientId": string,
            "currency": string,
            "expiresAt": date_time,
            "internalServiceId": {
                "description": "Legacy internal service id, included only for backward "
                "compatibility.",
                "type": "string",
            },
            "maxCalls": integer,
            "paidAt": date_time,
            "payTo": string,
            "paymentId": string,
            "provider": string,
            "providerId": string,
            "remainingCalls": integer,
            "serviceId": {"description": "Canonical public service id.", "type": "string"},
            "status": string,
            "token": string,
            "usedCalls": integer,
        },
        "type": "object",
    }


def create_payment_body_schema() -> dict[str, Any]:
    """JSON Schema of the ``POST /api/payments`` body."""
    return {
        "properties": {
            "providerId": {"type": "string"},
            "serviceId": {
                "description": "Use the canonical service id from the catalog. Legacy "
                "internal ids remain accepted for backward compatibility.",
                "type": "string",
            },
        },
        "required": ["serviceId"],
        "type": "object",
    }


def required_response() -> dict[str, Any]:
    """The 402 answer: status, content type, headers and body schema."""
    return {
        "status": 402,
        "contentType": "application/json",
        "headers": {"X-Payment-Required": "true", "X-Payment-Token": "payment.token"},
        "bodySchema": {
            "properties": {"error": {"type": "string"}, "payment": payment_record_schema()},
            "required": ["error", "payment"],
            "type": "object",
        },
    }


def _token() -> dict[str, str]:
    return {
        "header": PAYMENT_HEADER,
        "mcpArgument": MCP_ARGUMENT,
        "httpUsage": "Send the paid token in the X-Payment-Token request header when "
        "calling /api/tools/*.",
        "mcpUsage": "Pass the paid token as the paymentToken argument when calling the MCP tool.",
    }


def _retry() -> dict[str, Any]:
    return {
        "when": "Retry after payment.status is paid and the token has remaining calls.",
        "http": [
            "Call POST /api/payments with serviceId to create a payment if the first "
            "service call returned 402.",
            "Complete or verify payment using GET /api/payments/{paymentId}.",
            "Retry the original /api/tools/* request with X-Payment-Token set to payment.token.",
        ],
        "mcp": [
            "Call the tool without paymentToken to receive payment_required structuredContent.",
            "Complete or verify payment using the returned payment.paymentId.",
            "Call the same MCP tool again with paymentToken set to payment.token.",
        ],
        "failures": list(FAILURES),
    }


def payment_flow() -> dict[str, Any]:
    """The ``http-402`` flow object (``payment.flow`` and ``discovery.paymentFlow``)."""
    return {
        "type": "http-402",
        "createPayment": {
            "method": "POST",
            "url": CREATE_PAYMENT_URL,
            "bodySchema": create_payment_body_schema(),
            "responseSchema": payment_record_schema(),
        },
        "verifyPayment": {
            "method": "GET",
            "url": VERIFY_PAYMENT_URL,
            "responseSchema": payment_record_schema(),
        },
        "token": _token(),
        "requiredResponse": required_response(),
        "retry": _retry(),
    }


def payment_block() -> dict[str, Any]:
    """The catalog's top-level ``payment`` object."""
    return {
        "paymentHeader": PAYMENT_HEADER,
        "createPayment": CREATE_PAYMENT_URL,
        "verifyPayment": VERIFY_PAYMENT_URL,
        "token": _token(),
        "requiredResponse": required_response(),
        "retry": _retry(),
        "flow": payment_flow(),
    }


CREATE_PAYMENT_TOOL = "create_payment"
VERIFY_PAYMENT_TOOL = "verify_payment"
#: Tool names the payment tools take; no service may use them.
RESERVED_TOOL_NAMES = (CREATE_PAYMENT_TOOL, VERIFY_PAYMENT_TOOL)


def payment_tools() -> list[dict[str, Any]]:
    """The two MCP tools that pay for the others (``createPayment``/``verifyPayment``),
    so that an MCP client without HTTP access can follow ``retry.mcp``."""
    return [
        {
            "name": CREATE_PAYMENT_TOOL,
            "title": "Create a payment",
            "description": "Create a payment for one service (its id, or its legacy id). "
            "Pass the returned token as paymentToken when calling that service's tool.",
            "inputSchema": create_payment_body_schema(),
            "outputSchema": payment_record_schema(),
            "annotations": {
                "readOnlyHint": False,
                "destructiveHint": False,
                "idempotentHint": False,
                "openWorldHint": False,
            },
        },
        {
            "name": VERIFY_PAYMENT_TOOL,
            "title": "Verify a payment",
            "description": "The current state of a payment: status, remaining calls, token.",
            "inputSchema": {
                "properties": {"paymentId": {"type": "string"}},
                "required": ["paymentId"],
                "type": "object",
            },
            "outputSchema": payment_record_schema(),
            "annotations": {
                "readOnlyHint": True,
                "destructiveHint": False,
                "idempotentHint": True,
                "openWorldHint": False,
            },
        },
    ]
