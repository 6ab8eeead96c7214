"""The paid call, once for every front end: validate, charge, call upstream, answer.

:class:`ServiceRuntime` owns the route specs, the payment ledger, the
payment provider and the upstream client. The HTTP routes (and the MCP
server) turn requests into :meth:`ServiceRuntime.call` and its outcomes
into their own responses; none of them validates, charges or calls the
upstream itself.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Iterable, Mapping

from .contract import PaymentRecord, PaymentRequired, Quality, SuccessEnvelope, success
from .payments import (
    DevProvider,
    Ledger,
    Payment,
    PaymentProvider,
    PaymentRefused,
    payment_required,
)
from .spec import RouteSpec
from .upstream import Upstream, UpstreamError
from .upstreams import load as load_protocol
from .validation import RequestError, RequestValidator


class UnknownService(LookupError):
    """No service has this id or legacy id."""


class PaymentNeeded(Exception):
    """The call was not paid: ``answer`` is the 402 body (HTTP) and MCP ``structuredContent``."""

    def __init__(self, answer: PaymentRequired):
        super().__init__(answer.error)
        self.answer = answer


@dataclass(frozen=True)
class UpstreamFailed(Exception):
    """The upstream failed; the call was given back to the token."""

    code: str
    message: str
    request_id: str


@dataclass
class _Counters:
    calls: int = 0
    successes: int = 0
    errors: int = 0
    payment_requireds: int = 0
    last_call_at: float | None = None


@dataclass
class Stats:
    """Per-service call counters since start (the search's ``quality``)."""

    counters: dict[str, _Counters] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, service_id: str, outcome: str, now: float) -> None:
        """Count a call that ended in ``success``, ``error`` or ``payment_required``."""
        with self.lock:
            counters = self.counters.setdefault(service_id, _Counters())
            counters.calls += 1
            counters.last_call_at = now
            if outcome == "success":
                counters.successes += 1
            elif outcome == "error":
                counters.errors += 1
            else:
                counters.payment_requireds += 1

    def quality(self, service_id: str) -> Quality:
        """The ``quality`` of a search result; ``qualityScore`` is 0..5 (4 before any call)."""
        with self.lock:
            c = self.counters.get(service_id, _Counters())
            executions = c.successes + c.errors
            rate = c.successes / executions if executions else 0.0
            return Quality(
                quality_score=round(5 * rate, 2) if executions else 4,
                health_status=(
                    "" if not executions else ("healthy" if rate >= 0.9 else "degraded")
                ),
                success_rate=round(rate, 4),
                call_count=c.calls,
                execution_count=executions,
                success_count=c.successes,
                error_count=c.errors,
                payment_requireds=c.payment_requireds,
                last_call_at=(
                    datetime.fromtimestamp(c.last_call_at, tz=timezone.utc).strftime(
                        "%Y-%m-%dT%H:%M:%SZ"
                    )
                    if c.last_call_at
                    else ""
                ),
            )


class ServiceRuntime:
    """Validation, payment and upstream for every service of a compiled catalog."""

    def __init__(
        self,
        specs: Iterable[RouteSpec],
        *,
        ledger: Ledger,
        upstream: Upstream,
        provider: PaymentProvider | None = None,
        clock: Any = time.time,
    ):
        self.specs = tuple(specs)
        self.ledger = ledger
        self.upstream = upstream
        self.provider = provider or DevProvider(clock)
        self.clock = clock
        self.stats = Stats()
        self._by_id: dict[str, RouteSpec] = {}
        for spec in self.specs:
            self._by_id[spec.service_id] = spec
            self._by_id.setdefault(spec.legacy_id, spec)
        self._validators = {spec.service_id: RequestValidator.for_spec(spec) for spec in self.specs}
        # each service's protocol judges its answers; a missing one fails here, not per call
        self._protocols = {
            spec.service_id: load_protocol(spec.upstream.protocol) for spec in self.specs
        }

    def spec(self, service_id: str) -> RouteSpec:
        """The spec of a canonical or legacy service id; raises :class:`UnknownService`."""
        try:
            return self._by_id[service_id]
        except KeyError:
            raise UnknownService(service_id) from None

    def arguments(self, spec: RouteSpec, body: Mapping[str, Any]) -> dict[str, Any]:
        """Validated upstream arguments; raises ``RequestError`` with the catalog's text."""
        return self._validators[spec.service_id].arguments(dict(body))

    def call(
        self, spec: RouteSpec, body: Mapping[str, Any], token: str | None, client_id: str | None
    ) -> SuccessEnvelope:
        """One paid call; returns the success envelope of the catalog's output schema.

        Raises ``RequestError`` (400, nothing charged), :class:`PaymentNeeded`
        (402) or :class:`UpstreamFailed` (502, the call given back): no answer,
        or an answer the service's protocol calls an error, whatever its
        HTTP status.
        """
        arguments = self.arguments(spec, body)
        now = self.clock()
        try:
            payment = self.ledger.spend(token, spec.service_id, client_id)
        except PaymentRefused as refused:
            self.stats.record(spec.service_id, "payment_required", now)
            answer = PaymentRequired(
                error=str(refused), payment=self._payment_metadata(spec, token)
            )
            raise PaymentNeeded(answer) from None
        try:  # an error inside an HTTP 200 is an error too: the protocol says which
            answer = self.upstream.call(spec, arguments)
            result = self._protocols[spec.service_id].interpret(answer)
        except UpstreamError as exc:
            self.ledger.refund(payment.payment_id)
            self.stats.record(spec.service_id, "error", now)
            raise UpstreamFailed(exc.code, exc.message, exc.request_id) from None
        self.stats.record(spec.service_id, "success", now)
        return success(spec.upstream.action, result.result, result.request_id)

    def _payment_metadata(self, spec: RouteSpec, token: str | None) -> PaymentRecord:
        """The token's own record when it is one of this service's, else what to pay."""
        payment: Payment | None = self.ledger.find_token(token) if token else None
        if payment is not None and payment.service_id == spec.service_id:
            return payment.record()
        return payment_required(spec)

    def create_payment(
        self, service_id: str, provider_id: str | None, client_id: str | None
    ) -> Payment:
        """Create a payment for a canonical or legacy service id.

        Raises :class:`UnknownService`, or ``RequestError`` for a provider id
        the service does not accept.
        """
        spec = self.spec(service_id)
        if provider_id not in (None, spec.payment.provider_id):
            raise RequestError(f"providerId must be {spec.payment.provider_id}")
        return self.ledger.create(spec, self.provider, client_id or "", spec.payment.provider_id)

    def verify_payment(self, payment_id: str) -> Payment | None:
        """The payment's current record, after asking the provider for news."""
        return self.ledger.verify(payment_id, self.provider)
