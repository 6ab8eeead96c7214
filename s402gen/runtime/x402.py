"""x402 payments: the ``PAYMENT-REQUIRED`` offer, and verify + settle through a facilitator.

Built on the x402 package's own resource server (``x402ResourceServerSync``
with ``ExactEvmServerScheme``) and types (``PaymentRequired``,
``PaymentRequirements``, the header codecs of ``x402.http.utils``); the
facilitator is x402's ``HTTPFacilitatorClientSync`` at the configured URL, or
any object with the same ``verify``/``settle``/``get_supported`` methods
(x402's in-process ``x402FacilitatorSync`` in tests). The offers themselves
(amount, asset, network, EIP-712 domain, Bazaar extension) are the compiler's
(``generated/x402/offers.json``, :mod:`.x402_contract`); this module only
fills ``payTo`` and applies ``s402gen serve --x402-*`` overrides.

Secrets: the facilitator URL may carry credentials; :func:`redact_url` is the
only form of it this module puts in a message.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping
from urllib.parse import urlsplit

from x402 import x402ResourceServerSync
from x402.http import FacilitatorConfig, HTTPFacilitatorClientSync
from x402.http.facilitator_client_base import AuthHeaders
from x402.http.utils import (
    decode_payment_signature_header,
    encode_payment_required_header,
    encode_payment_response_header,
)
from x402.mechanisms.evm.exact import ExactEvmServerScheme
from x402.schemas import (
    PaymentPayload,
    PaymentRequired,
    PaymentRequirements,
    ResourceInfo,
)

from . import x402_contract
from .payments import MoneyTrail
from .spec import RouteSpec

#: Environment variable holding the facilitator's bearer token (sent, never printed).
FACILITATOR_TOKEN_ENV = "X402_FACILITATOR_TOKEN"


class _BearerAuth:
    """x402's facilitator ``AuthProvider``: ``Authorization: Bearer <token>`` on every call."""

    def __init__(self, token: str):
        self._headers = {"Authorization": f"Bearer {token}"}

    def __repr__(self) -> str:  # never the token, even in a debugger's or a log's repr
        return "_BearerAuth(***)"

    def get_auth_headers(self) -> AuthHeaders:
        h = self._headers
        return AuthHeaders(verify=dict(h), settle=dict(h), supported=dict(h), bazaar=dict(h))


class X402Error(Exception):
    """x402 cannot be set up (no payTo, a bad facilitator); the message holds no secret."""


class X402Refused(Exception):
    """A payment signature did not pay: ``reason`` is x402's error code or a short text."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Overrides:
    """``s402gen serve --x402-facilitator/--x402-network/--x402-asset/--x402-pay-to``."""

    facilitator_url: str | None = None
    network: str | None = None
    asset: str | None = None
    pay_to: str | None = None


@dataclass(frozen=True)
class Settled:
    """A settled payment: its money trail, and the ``PAYMENT-RESPONSE`` header value."""

    trail: MoneyTrail
    signature_hash: str
    response_header: str


def redact_url(url: str) -> str:
    """``scheme://host[:port]``: no user, password, path or query (they may hold a key)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    return f"{parts.scheme}://{host}{f':{parts.port}' if parts.port else ''}"


def load_offers(generated_root: str | Path) -> dict[str, Any]:
    """``generated/x402/offers.json`` (an empty document when the build has none)."""
    path = Path(generated_root) / x402_contract.OFFERS_FILE
    if not path.is_file():
        return x402_contract.offers_document({}, {})
    return json.loads(path.read_text(encoding="utf-8"))


def signature_hash(header: str) -> str:
    """A stable key of one payment signature: sha256 of the payload's ``signature``
    (EIP-3009: one signature per authorization nonce), else of the whole header."""
    try:
        payload = decode_payment_signature_header(header)
        signed = str((payload.payload or {}).get("signature") or header)
    except Exception:
        signed = header
    return hashlib.sha256(signed.encode()).hexdigest()


class X402Gateway:
    """The x402 offers of a compiled catalog and the facilitator that settles them.

    ``offers`` is the offers document; ``facilitator`` an x402 facilitator
    client (default: ``HTTPFacilitatorClientSync`` at the provider's or the
    override's URL, with ``$X402_FACILITATOR_TOKEN`` as its bearer token).
    ``environ`` supplies ``payTo`` when the catalog names an environment variable. Raises :class:`X402Error` when a provider has
    no ``payTo`` or no facilitator, or the facilitator cannot be reached.
    """

    def __init__(
        self,
        offers: Mapping[str, Any],
        *,
        overrides: Overrides = Overrides(),
        facilitator: Any = None,
        environ: Mapping[str, str] = os.environ,
    ):
        self.providers: dict[str, dict[str, Any]] = {}
        for provider_id, settings in offers.get("providers", {}).items():
            pay_to = overrides.pay_to or settings.get("payTo") or ""
            if not pay_to and settings.get("payToEnv"):
                pay_to = environ.get(settings["payToEnv"], "")
            if not pay_to:
                hint = f" or set {settings['payToEnv']}" if settings.get("payToEnv") else ""
                raise X402Error(f"{provider_id}: no payTo address (use --x402-pay-to{hint})")
            network = overrides.network or settings["network"]
            self.providers[provider_id] = {
                "network": network,
                "asset": _address(network, overrides.asset or settings["asset"], "asset"),
                "payTo": _address(network, pay_to, "payTo"),
                "facilitatorUrl": overrides.facilitator_url or settings.get("facilitatorUrl", ""),
            }
        self._offers: dict[str, dict[str, Any]] = {}
        self._accepts: dict[str, list[PaymentRequirements]] = {}
        for service_id, offer in offers.get("services", {}).items():
            provider = self.providers.get(offer["providerId"])
            if provider is None:
                continue
            self._offers[service_id] = offer
            self._accepts[service_id] = [
                PaymentRequirements.model_validate(
                    {**accept, "network": provider["network"], "asset": provider["asset"]}
                    | {"payTo": provider["payTo"]}
                )
                for accept in offer["accepts"]
            ]
        self.server = x402ResourceServerSync(
            facilitator or self._http_facilitator(environ.get(FACILITATOR_TOKEN_ENV))
        )
        for network in sorted({p["network"] for p in self.providers.values()}):
            self.server.register(network, ExactEvmServerScheme())
        try:
            self.server.initialize()  # asks the facilitator what it supports
        except Exception as exc:
            where = ", ".join(redact_url(p["facilitatorUrl"]) for p in self.providers.values())
            raise X402Error(
                f"the x402 facilitator ({where or 'in process'}) cannot be used: "
                f"{type(exc).__name__}"
            ) from None

    def _http_facilitator(self, token: str | None) -> Any:
        urls = sorted({p["facilitatorUrl"] for p in self.providers.values()})
        if len(urls) != 1 or not urls[0]:
            raise X402Error("one x402 facilitator URL is needed (use --x402-facilitator)")
        auth = _BearerAuth(token) if token else None
        return HTTPFacilitatorClientSync(FacilitatorConfig(url=urls[0], auth_provider=auth))

    def offers(self, service_id: str) -> bool:
        """Whether this service is paid through x402."""
        return service_id in self._accepts

    def pay_to(self, service_id: str) -> str:
        """The address a service's payments go to."""
        return self._accepts[service_id][0].pay_to

    def accepts(self, service_id: str) -> list[PaymentRequirements]:
        """The service's payment requirements, as served."""
        return self._accepts[service_id]

    def payment_required(
        self, spec: RouteSpec, url: str, error: str | None = None
    ) -> PaymentRequired:
        """The x402 v2 ``PaymentRequired`` of a service's route at ``url``."""
        offer = self._offers[spec.service_id]
        resource = ResourceInfo.model_validate({**offer["resource"], "url": url})
        return PaymentRequired(
            x402_version=x402_contract.X402_VERSION,
            error=error,
            resource=resource,
            accepts=self._accepts[spec.service_id],
            extensions=offer.get("extensions"),
        )

    def required_header(self, spec: RouteSpec, url: str, error: str | None = None) -> str:
        """The ``PAYMENT-REQUIRED`` header value (base64 JSON, x402's own encoder)."""
        return encode_payment_required_header(self.payment_required(spec, url, error))

    def decode(self, header: str) -> PaymentPayload:
        """The payment payload of a ``PAYMENT-SIGNATURE`` header; :class:`X402Refused` if bad."""
        try:
            payload = decode_payment_signature_header(header)
        except Exception:
            raise X402Refused("invalid_payment_signature_header") from None
        if not isinstance(payload, PaymentPayload):
            raise X402Refused("unsupported_x402_version")
        return payload

    def verify_and_settle(self, spec: RouteSpec, header: str) -> Settled:
        """Verify a ``PAYMENT-SIGNATURE`` with the facilitator and settle it on chain.

        Raises :class:`X402Refused` (x402's reason) when it does not match the
        service's requirements, is invalid (bad signature, nonce already used,
        insufficient balance) or the settlement fails.
        """
        payload = self.decode(header)
        requirements = self.server.find_matching_requirements(
            self._accepts[spec.service_id], payload
        )
        if requirements is None:
            raise X402Refused("no_matching_payment_requirements")
        try:
            verified = self.server.verify_payment(payload, requirements)
        except Exception as exc:
            raise X402Refused(_reason(exc, "verify_failed")) from None
        if not verified.is_valid:
            raise X402Refused(verified.invalid_reason or "invalid_payment")
        try:
            settled = self.server.settle_payment(payload, requirements, phase="before-handler")
        except Exception as exc:
            raise X402Refused(_reason(exc, "settle_failed")) from None
        if not settled.success:
            raise X402Refused(settled.error_reason or "settle_failed")
        trail = MoneyTrail(
            transaction=settled.transaction,
            payer=settled.payer or verified.payer or "",
            network=settled.network,
            amount=settled.amount or requirements.amount,
        )
        return Settled(trail, signature_hash(header), encode_payment_response_header(settled))


def _address(network: str, address: str, what: str) -> str:
    """An EVM address in its checksum form (x402's facilitator takes no other);
    raises :class:`X402Error` when it is not one. Other chains' addresses pass as given."""
    if not network.startswith("eip155:"):
        return address
    from eth_utils import is_address, to_checksum_address

    if not is_address(address):
        raise X402Error(f"{what} {address!r} is not an EVM address (0x and 40 hex digits)")
    return to_checksum_address(address)


def _reason(exc: Exception, fallback: str) -> str:
    """x402's reason code of a verify/settle error; never the exception's text (it may
    quote the facilitator's URL)."""
    for attribute in ("invalid_reason", "error_reason", "reason"):
        value = getattr(exc, attribute, None)
        if isinstance(value, str) and value:
            return value
    return fallback


# ---------------------------------------------------------------------------
# MCP: x402's MCP transport (x402.mcp: the payment in the request's
# ``_meta["x402/payment"]``, the settlement in the result's
# ``_meta["x402/payment-response"]``, the offer as a JSON text with ``accepts``)

MCP_PAYMENT_META_KEY = "x402/payment"
MCP_PAYMENT_RESPONSE_META_KEY = "x402/payment-response"


def mcp_payment_header(meta: Mapping[str, Any] | None) -> str | None:
    """The ``PAYMENT-SIGNATURE`` value of an MCP call's ``_meta["x402/payment"]``, or ``None``.

    Raises :class:`X402Refused` when it is there but not an x402 payment payload.
    """
    data = (meta or {}).get(MCP_PAYMENT_META_KEY)
    if data is None:
        return None
    try:
        payload = PaymentPayload.model_validate(json.loads(data) if isinstance(data, str) else data)
    except Exception:
        raise X402Refused("invalid_payment_payload") from None
    from x402.http.utils import encode_payment_signature_header

    return encode_payment_signature_header(payload)


def mcp_resource_url(tool_name: str) -> str:
    """The resource URL x402's MCP transport names a tool by: ``mcp://tool/<name>``."""
    return f"mcp://tool/{tool_name}"


def mcp_required_text(gateway: X402Gateway, spec: RouteSpec, error: str | None) -> str:
    """The x402 ``PaymentRequired`` JSON an x402 MCP client reads from a result's text."""
    required = gateway.payment_required(spec, mcp_resource_url(spec.tool_name), error)
    return json.dumps(required.model_dump(by_alias=True, exclude_none=True))


def mcp_response_meta(payment_response: str) -> dict[str, Any]:
    """The result ``_meta`` of a paid MCP call: the settlement under x402's key."""
    from x402.http.utils import decode_payment_response_header

    settled = decode_payment_response_header(payment_response)
    return {MCP_PAYMENT_RESPONSE_META_KEY: settled.model_dump(by_alias=True, exclude_none=True)}
