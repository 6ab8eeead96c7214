"""The x402 side of the output contract: ``generated/x402/offers.json`` and the x402 headers.

The compiler computes, per service paid through an ``x402_facilitator``
provider, the x402 v2 ``PaymentRequired`` parts that do not depend on the
request: ``accepts`` (scheme ``exact``, CAIP-2 network, asset, amount in the
asset's units, payTo, maxTimeoutSeconds, the token's EIP-712 name and
version in ``extra``), the Bazaar discovery extension (from the service's
input and output schemas and examples) and the resource's description. The
runtime reads them from that file and does not re-derive them; it only adds
the resource URL (the request's own) and fills ``payTo`` when the catalog
leaves it to the environment or ``s402gen serve --x402-pay-to``.

Sources: the x402 v2 transport spec (``specs/transports-v2/http.md``:
``PAYMENT-REQUIRED``, ``PAYMENT-SIGNATURE``, ``PAYMENT-RESPONSE``, base64
JSON) and the Bazaar extension (``specs/extensions/bazaar.md``), as the x402
2.25.0 Python package implements them (``x402.http.utils``,
``x402.extensions.bazaar.declare_discovery_extension``). Plain Python:
neither the compiler nor this module imports x402.
"""

from __future__ import annotations

from typing import Any

X402_VERSION = 2
SCHEME = "exact"
PROVIDER_KIND = "x402_facilitator"
OFFERS_FILE = "x402/offers.json"

#: x402 v2 HTTP headers (names as the x402 spec writes them; HTTP reads them case-blind).
PAYMENT_REQUIRED_HEADER = "PAYMENT-REQUIRED"
PAYMENT_SIGNATURE_HEADER = "PAYMENT-SIGNATURE"
PAYMENT_RESPONSE_HEADER = "PAYMENT-RESPONSE"
#: The route that completes a created payment with an x402 payment signature.
PAY_PAYMENT_URL = "/api/payments/{paymentId}/x402"
#: The JSON Schema dialect the Bazaar extension's ``schema`` declares (as x402 writes it).
BAZAAR_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"


def asset_amount(amount_cents: int, decimals: int) -> str:
    """The price in the asset's smallest units: 20 cents of a 6-decimal USD token is ``200000``.

    Exact integer arithmetic; ``decimals`` is at least 2 (the catalog model checks it).
    """
    return str(amount_cents * 10 ** (decimals - 2))


def bazaar_extension(
    input_schema: dict[str, Any],
    output_schema: dict[str, Any],
    example_request: dict[str, Any] | None,
    example_response: dict[str, Any] | None,
    method: str = "POST",
) -> dict[str, Any]:
    """The ``bazaar`` discovery extension of a JSON-body route, as x402's
    ``declare_discovery_extension(input=..., input_schema=..., body_type="json",
    output=OutputConfig(example=..., schema=...))`` builds it, with the method
    filled in (x402's HTTP server adds it from the route; a test compares the two).
    """
    info_input: dict[str, Any] = {"type": "http", "method": method, "bodyType": "json"}
    info_input["body"] = example_request or {}
    info: dict[str, Any] = {"input": info_input, "output": {"type": "json"}}
    if example_response is not None:
        info["output"]["example"] = example_response
    schema = {
        "$schema": BAZAAR_SCHEMA_DIALECT,
        "type": "object",
        "properties": {
            "input": {
                "type": "object",
                "properties": {
                    "type": {"type": "string", "const": "http"},
                    "method": {"type": "string", "enum": ["POST", "PUT", "PATCH"]},
                    "bodyType": {"type": "string", "enum": ["json", "form-data", "text"]},
                    "body": input_schema,
                },
                "required": ["type", "method", "bodyType", "body"],
                "additionalProperties": False,
            },
            "output": {
                "type": "object",
                "properties": {"type": {"type": "string"}, "example": output_schema},
                "required": ["type"],
            },
        },
        "required": ["input"],
    }
    return {"bazaar": {"info": info, "schema": schema}}


def provider_settings(provider_id: str, provider: Any) -> dict[str, Any] | None:
    """The runtime settings of an x402 payment provider (``catalog.yaml``'s
    ``paymentProviders`` entry), or ``None`` when it declares no x402 network."""
    if provider is None or provider.provider != PROVIDER_KIND or provider.network is None:
        return None
    settings = {
        "provider": provider.provider,
        "network": provider.network,
        "asset": provider.asset,
        "payTo": provider.pay_to or "",
        "payToEnv": provider.pay_to_env or "",
        "facilitatorUrl": provider.facilitator_url or "",
    }
    return settings


def offer_terms(provider_id: str, provider: Any) -> dict[str, Any] | None:
    """What every offer through an x402 payment provider shares, or ``None`` when it
    declares no x402 network: ``{providerId, decimals, requirement}``, ``requirement``
    being the ``accepts`` item without its ``amount`` (``payTo`` is ``""`` when it
    comes from the environment). A few hundred bytes a provider, computed once; the
    offers themselves are made from it one service at a time (:func:`service_offer`).
    """
    if provider_settings(provider_id, provider) is None:
        return None
    requirement = {
        "scheme": SCHEME,
        "network": provider.network,
        "asset": provider.asset,
        "payTo": provider.pay_to or "",
        "maxTimeoutSeconds": provider.max_timeout_seconds,
        "extra": {"name": provider.token_name, "version": provider.token_version},
    }
    return {
        "providerId": provider_id,
        "decimals": provider.asset_decimals,
        "requirement": requirement,
    }


def service_offer(
    terms: dict[str, Any],
    *,
    endpoint: str,
    description: str,
    amount_cents: int,
    input_schema: dict[str, Any],
    output_schema: dict[str, Any],
    example_request: dict[str, Any] | None,
    example_response: dict[str, Any] | None,
) -> dict[str, Any]:
    """What a service's 402 offers through the x402 provider of ``terms``
    (:func:`offer_terms`).

    ``{providerId, resource: {url, description, mimeType}, accepts: [...],
    extensions: {bazaar}}``; ``resource.url`` is the route's path (the runtime
    makes it absolute).
    """
    shared = terms["requirement"]
    requirement = {
        "scheme": shared["scheme"],
        "network": shared["network"],
        "asset": shared["asset"],
        "amount": asset_amount(amount_cents, terms["decimals"]),
        "payTo": shared["payTo"],
        "maxTimeoutSeconds": shared["maxTimeoutSeconds"],
        "extra": shared["extra"],
    }
    return {
        "providerId": terms["providerId"],
        "resource": {"url": endpoint, "description": description, "mimeType": "application/json"},
        "accepts": [requirement],
        "extensions": bazaar_extension(
            input_schema, output_schema, example_request, example_response
        ),
    }


def offers_document(
    providers: dict[str, dict[str, Any]], services: dict[str, dict[str, Any]]
) -> dict[str, Any]:
    """``generated/x402/offers.json``: x402 providers by id, and offers by service id."""
    return {"x402Version": X402_VERSION, "providers": providers, "services": services}
