"""Route specs: the data a generated route module declares for one service.

A generated module ``generated/routes/<module>.py`` holds one
:class:`RouteSpec` named ``SPEC``. The compiler's IR uses the same
:class:`Upstream`, :class:`Pricing`, :class:`Payment` and :class:`Messages`
classes, so a spec is exactly what the catalog compiled to.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

#: The upstream protocol of a provider that names none (built in, see ``s402gen.runtime.upstreams``).
DEFAULT_PROTOCOL = "aliyun-rpc"


class Slotted:
    """A frozen dataclass with slots, pickled as its class called with its fields: the
    pickling dataclasses give such a class sets each field from Python, and loads a
    catalog's IR 1.5x slower (:mod:`s402gen.servicecache` reads it on every build).
    A subclass takes ``@dataclass(frozen=True, slots=True)`` and no ``init=False``
    field."""

    __slots__ = ()

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        return type(self), tuple(getattr(self, name) for name in self.__match_args__)


def price_label(amount_cents: int, currency: str) -> str:
    """``USD 0.20`` for 20 cents: exact integer arithmetic, no float rounding."""
    return f"{currency} {amount_cents // 100}.{amount_cents % 100:02d}"


@dataclass(frozen=True, slots=True)
class Upstream(Slotted):
    """The upstream call: ``action`` of ``product`` at ``version``, through ``protocol``.

    ``endpoint`` is the default host (tests and deployments may point
    elsewhere); ``style`` and ``method`` are those of Alibaba Cloud's
    generic ``call_api`` (``Params(style="RPC", method="POST")``).
    ``protocol`` names the upstream protocol plug-in (entry point group
    ``s402gen.protocols``, see :mod:`s402gen.runtime.upstreams`); ``wire``
    maps a parameter to the wire style the catalog declares for it (for
    ``aliyun-rpc``: ``json``, ``flat``, ``repeatList``, ``simple`` or
    ``query``); a parameter not named there is sent in the protocol's
    default style.
    """

    product: str
    version: str
    action: str
    endpoint: str
    style: str = "RPC"
    method: str = "POST"
    protocol: str = DEFAULT_PROTOCOL
    wire: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Pricing(Slotted):
    """Price per call (``amount_cents`` in cents of ``currency``) and token rules."""

    policy_id: str
    amount_cents: int
    currency: str
    settle_mode: str
    billing_mode: str
    max_calls: int
    allow_reuse: bool
    bind_client: bool

    @property
    def calls_per_payment(self) -> int:
        """Calls one payment buys, as the ledger counts them: ``max_calls`` only with reuse.

        The one place of this rule: the ledger, the 402 metadata and the
        breaking-change check all ask here.
        """
        return self.max_calls if self.allow_reuse else 1

    @property
    def label(self) -> str:
        """``USD 0.20`` for 20 cents (see :func:`price_label`)."""
        return price_label(self.amount_cents, self.currency)


@dataclass(frozen=True, slots=True)
class Payment(Slotted):
    """The payment provider a service is paid through, e.g. ``x402-base-usdc``."""

    provider_id: str
    provider: str


@dataclass(frozen=True, slots=True)
class Messages(Slotted):
    """The route's 400 error texts.

    ``required[param]`` and ``invalid_url[param]`` exist for each required
    URL parameter (``ImageURL is required``, ``ImageURL must be a valid
    http or https URL``); ``missing`` is for any other missing required
    parameter (``required parameters are missing``).
    """

    missing: str
    required: dict[str, str] = field(default_factory=dict)
    invalid_url: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class RouteSpec(Slotted):
    """Everything a router needs to serve one service.

    ``input_schema`` is the JSON Schema the catalog publishes (Draft
    2020-12; ``format: uri`` means an http or https URL); ``array_params``
    name the parameters that also accept a JSON string; ``output_schema``
    is the service's success envelope schema (an answer that does not fit
    it is an upstream fault, not charged); ``private_hosts`` name the URL
    parameters whose URLs may point at private, loopback or link-local
    hosts (the catalog's ``allowPrivateHosts``; every other URL must not).
    """

    service_id: str
    legacy_id: str
    tool_name: str
    endpoint: str
    legacy_endpoint: str
    method: str
    upstream: Upstream
    input_schema: dict[str, Any]
    array_params: tuple[str, ...]
    messages: Messages
    pricing: Pricing
    payment: Payment
    output_schema: dict[str, Any] = field(default_factory=dict)
    private_hosts: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        # generated modules write lists (black-stable at any length); keep the spec immutable
        object.__setattr__(self, "array_params", tuple(self.array_params))
        object.__setattr__(self, "private_hosts", tuple(self.private_hosts))
