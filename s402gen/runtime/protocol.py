"""The Server402 HTTP 402 payment protocol, as the catalog publishes it.

This is what the marketplace runtime implements, not catalog data: the
payment endpoints, the token header and MCP argument, the 402 response and
the retry rules. Source: the live marketplace's catalog search JSON
(``shared/seeds/003_*.txt``, its top-level ``payment`` block and every
service's ``discovery.paymentFlow``). Each piece is written once here, as
plain constants; :mod:`s402gen.runtime.contract` assembles them into the
typed documents (``contract.payment_block``, ``contract.payment_flow``).
"""

from __future__ import annotations

SCHEMA_VERSION = "server402.catalog.search.v1"
PAYMENT_HEADER = "X-Payment-Token"
#: Set to ``true`` on every 402 answer (``requiredResponse.headers``).
REQUIRED_HEADER = "X-Payment-Required"
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
#: The ``error`` of a failed upstream call (HTTP 502, MCP ``isError``).
UPSTREAM_ERROR = "upstream error"
#: The ``message`` of every upstream fault (HTTP 502): details stay in the server's log.
UPSTREAM_UNAVAILABLE = "upstream unavailable"
#: The ``error`` (HTTP 503, with ``Retry-After``) when the payment ledger is held too long.
LEDGER_BUSY = "payment ledger busy, retry later"
#: Seconds a 503 answer asks the client to wait (``Retry-After``).
RETRY_AFTER_SECONDS = 1
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


#: ``token.httpUsage`` and ``token.mcpUsage``: where a paid token goes.
TOKEN_HTTP_USAGE = (
    "Send the paid token in the X-Payment-Token request header when calling /api/tools/*."
)
TOKEN_MCP_USAGE = "Pass the paid token as the paymentToken argument when calling the MCP tool."
#: ``retry``: when to retry, and the steps over HTTP and over MCP.
RETRY_WHEN = "Retry after payment.status is paid and the token has remaining calls."
RETRY_HTTP = (
    "Call POST /api/payments with serviceId to create a payment if the first service call "
    "returned 402.",
    "Complete or verify payment using GET /api/payments/{paymentId}.",
    "Retry the original /api/tools/* request with X-Payment-Token set to payment.token.",
)
RETRY_MCP = (
    "Call the tool without paymentToken to receive payment_required structuredContent.",
    "Complete or verify payment using the returned payment.paymentId.",
    "Call the same MCP tool again with paymentToken set to payment.token.",
)


CREATE_PAYMENT_TOOL = "create_payment"
VERIFY_PAYMENT_TOOL = "verify_payment"
#: The MCP discovery mode's tools (``s402gen mcp --discovery``): search the catalog, call a service.
SEARCH_TOOL = "search_services"
CALL_TOOL = "call_service"
#: Tool names the payment and discovery tools take; no service may use them.
RESERVED_TOOL_NAMES = (CREATE_PAYMENT_TOOL, VERIFY_PAYMENT_TOOL, SEARCH_TOOL, CALL_TOOL)
