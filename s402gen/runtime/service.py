"""The paid call, once for every front end: validate, charge, call upstream, answer.

:class:`ServiceRuntime` owns the route specs, the payment ledger, the
payment provider and the upstream client. The HTTP routes (and the MCP
server) turn requests into :meth:`ServiceRuntime.call` and its outcomes
into their own responses; none of them validates, charges or calls the
upstream itself.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Iterable, Mapping

from . import protocol
from .contract import (
    PaymentRecord,
    PaymentRequired,
    Quality,
    SuccessEnvelope,
    UpstreamFailure,
    success,
)
from .payments import (
    DevProvider,
    Ledger,
    Payment,
    PaymentProvider,
    PaymentRefused,
    Settlement,
    payment_required,
)
from .spec import RouteSpec
from .upstream import Upstream, UpstreamError
from .upstreams import load as load_protocol
from .validation import RequestError, RequestValidator, schema_validator

#: The 502 ``code`` of a call that went out and got no answer: not given back (it may run).
NO_ANSWER = "UpstreamNoAnswer"
#: The 502 ``code`` of an answer that does not fit the service's output schema.
ANSWER_INVALID = "UpstreamAnswerInvalid"


class UpstreamRefused(RequestError):
    """The upstream said the caller's input is wrong (HTTP 400): the call counts, nothing
    is given back; ``str(error)`` names the upstream's code and message."""

    def __init__(self, code: str, message: str, request_id: str = ""):
        super().__init__(f"upstream refused the request: {code}: {message}")
        self.code = code
        self.request_id = request_id


logger = logging.getLogger(__name__)

#: Compiled request validators kept per runtime (a service's is compiled on its first call).
VALIDATOR_CACHE_SIZE = 512


class UnknownService(LookupError):
    """No service has this id or legacy id."""


class PaymentNeeded(Exception):
    """The call was not paid: ``answer`` is the 402 body (HTTP) and MCP ``structuredContent``;
    ``x402_error`` is x402's reason when a payment signature was refused."""

    def __init__(self, answer: PaymentRequired, x402_error: str | None = None):
        super().__init__(answer.error)
        self.answer = answer
        self.x402_error = x402_error


@dataclass(frozen=True)
class UpstreamFailed(Exception):
    """The upstream failed (HTTP 502): no answer, a 5xx, or an answer that is malformed,
    too large or off the service's output schema. The call was given back to the token
    (charged instead once its payment has had ``payments.MAX_GIVE_BACKS`` give-backs),
    unless the request went out and no answer came (:data:`NO_ANSWER`): the upstream
    may still run it, and one payment pays for one upstream run."""

    code: str
    message: str
    request_id: str
    #: The paid payment an x402 call settled before the upstream failed: its token retries free.
    payment: Payment | None = None

    def answer(self) -> UpstreamFailure:
        """The 502 body (HTTP) and MCP ``structuredContent`` of this failure."""
        return UpstreamFailure(
            error=protocol.UPSTREAM_ERROR,
            code=self.code,
            message=self.message,
            request_id=self.request_id,
            payment=self.payment.record() if self.payment else None,
        )


@dataclass(frozen=True)
class PaidCall:
    """An x402-paid call's answer: the envelope, the ``PAYMENT-RESPONSE`` header value, and
    the payment it settled (its token pays for the remaining calls when ``maxCalls > 1``)."""

    envelope: SuccessEnvelope
    payment_response: str
    payment: Payment


class X402Provider:
    """Payments completed by an x402 payment to ``pay_to``: created ``pending``; the ledger
    marks them paid once the facilitator has settled (``ServiceRuntime.pay_payment``)."""

    name = "x402_facilitator"

    def __init__(self, pay_to: str):
        self.pay_to = pay_to

    def open(self, payment_id: str, amount_cents: int, currency: str) -> Settlement:
        """Pending, to the seller's address."""
        return Settlement("pending", self.pay_to, None)

    def refresh(self, payment: Payment) -> Settlement:
        """The ledger is the record of settlement: nothing to ask."""
        return Settlement(payment.status, payment.pay_to, payment.paid_at)


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

    def version(self, service_id: str) -> int:
        """The calls counted for ``service_id`` so far: :meth:`quality` stays the same while
        this does (every :meth:`record` adds one), so an answer holding it can be reused."""
        counters = self.counters.get(service_id)
        return counters.calls if counters is not None else 0

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
        x402: Any = None,
    ):
        self.specs = tuple(specs)
        self.ledger = ledger
        self.upstream = upstream
        self.x402 = x402  # an x402.X402Gateway, or None (no x402 payments)
        if provider is None and x402 is not None and x402.providers:
            provider = X402Provider(next(iter(x402.providers.values()))["payTo"])
        self.provider = provider or DevProvider(clock)
        self.clock = clock
        self.stats = Stats()
        self._by_id: dict[str, RouteSpec] = {}
        for spec in self.specs:
            self._by_id[spec.service_id] = spec
            self._by_id.setdefault(spec.legacy_id, spec)
        # a service's validators are compiled on its first call; the recent ones are kept
        self._validator = functools.lru_cache(maxsize=VALIDATOR_CACHE_SIZE)(
            lambda service_id: RequestValidator.for_spec(self._by_id[service_id])
        )
        self._answer_validator = functools.lru_cache(maxsize=VALIDATOR_CACHE_SIZE)(
            lambda service_id: schema_validator(self._by_id[service_id].output_schema)
        )
        # each service's protocol judges its answers; a missing one fails here, not per call
        loaded = {name: load_protocol(name) for name in {s.upstream.protocol for s in self.specs}}
        self._protocols = {spec.service_id: loaded[spec.upstream.protocol] for spec in self.specs}

    def spec(self, service_id: str) -> RouteSpec:
        """The spec of a canonical or legacy service id; raises :class:`UnknownService`."""
        try:
            return self._by_id[service_id]
        except KeyError:
            raise UnknownService(service_id) from None

    def arguments(self, spec: RouteSpec, body: Mapping[str, Any]) -> dict[str, Any]:
        """Validated upstream arguments; raises ``RequestError`` with the catalog's text,
        also for a required parameter whose value its wire style cannot carry (an empty
        list sent ``flat`` vanishes: the upstream would refuse the call as incomplete)."""
        arguments = self._validator(spec.service_id).arguments(dict(body))
        protocol = self._protocols[spec.service_id]
        vanishes = getattr(protocol, "vanishes", None)  # an optional hook of the plug-ins
        for name in spec.input_schema.get("required", ()) if vanishes else ():
            style = spec.upstream.wire.get(name, protocol.default_wire)
            if vanishes(style, arguments.get(name)):
                raise RequestError(spec.messages.missing)
        return arguments

    def call(
        self, spec: RouteSpec, body: Mapping[str, Any], token: str | None, client_id: str | None
    ) -> SuccessEnvelope:
        """One paid call; returns the success envelope of the catalog's output schema.

        Raises ``RequestError`` (400, nothing charged; a URL naming an internal
        host too), :class:`UpstreamRefused` (400, the upstream refused the
        caller's input: the call counts), :class:`PaymentNeeded` (402) or
        :class:`UpstreamFailed` (502, an upstream fault: given back unless the
        request went out and no answer came, see :meth:`_failure`).
        """
        arguments = self.arguments(spec, body)
        now = self.clock()
        if token and self.ledger.find_token(token) is not None:
            # the resolver is asked for a known token only, before anything is charged
            self._validator(spec.service_id).check_hosts(arguments)
        try:
            reserved = self.ledger.reserve(token, spec.service_id, client_id)
        except PaymentRefused as refused:
            self.stats.record(spec.service_id, "payment_required", now)
            answer = PaymentRequired(
                error=str(refused), payment=self._payment_metadata(spec, token, client_id)
            )
            raise PaymentNeeded(answer) from None
        try:
            envelope = self._call_reserved(spec, arguments, reserved.call_id)
        except UpstreamError as exc:
            self.stats.record(spec.service_id, "error", now)
            raise self._failure(spec, reserved.payment, exc) from None
        self.stats.record(spec.service_id, "success", now)
        return envelope

    def _call_reserved(
        self, spec: RouteSpec, arguments: dict[str, Any], call_id: str
    ) -> SuccessEnvelope:
        """Call the upstream for a reserved call, recording it ``sent`` first, then ``done``.

        On ``UpstreamError`` the call is charged when the error says so
        (:attr:`~.upstream.UpstreamError.charged`), else given back (within
        ``payments.MAX_GIVE_BACKS``); anything else that escapes once the request may have
        left is charged, as after a crash."""
        if not self.ledger.mark_sent(call_id):  # a recovery gave it back: never send it
            raise UpstreamError("CallGivenBack", "the call was given back; retry it", "")
        try:
            envelope = self._call_upstream(spec, arguments)
        except UpstreamError as exc:
            if exc.charged:
                self.ledger.finish(call_id)
            else:
                self.ledger.give_back(call_id)
            raise
        except BaseException:
            self.ledger.finish(call_id)
            raise
        self.ledger.finish(call_id)
        return envelope

    def _call_upstream(self, spec: RouteSpec, arguments: dict[str, Any]) -> SuccessEnvelope:
        """The success envelope of the upstream's answer; raises ``UpstreamError`` for no
        answer, an answer the service's protocol calls an error (an error inside an HTTP
        200 is one too), or one that does not fit the service's output schema."""
        result = self._protocols[spec.service_id].interpret(self.upstream.call(spec, arguments))
        envelope = success(spec.upstream.action, result.result, result.request_id)
        if next(self._answer_validator(spec.service_id).iter_errors(envelope.to_json()), None):
            logger.warning("upstream %s answer does not fit the output schema", spec.service_id)
            raise UpstreamError(ANSWER_INVALID, protocol.UPSTREAM_UNAVAILABLE, result.request_id)
        return envelope

    def _failure(
        self, spec: RouteSpec, payment: Payment, exc: UpstreamError, settled: bool = False
    ) -> Exception:
        """What a failed upstream call raises (:meth:`_call_reserved` has already given the
        call back or charged it).

        The caller's fault (:class:`UpstreamRefused`, 400): the call counts. No
        answer to a request that went out (``may_have_run``): charged, since the
        upstream may still run it (no action here takes an idempotency token).
        Any other upstream fault: given back (``settled``, an x402 call: the 502 carries
        the payment, whose token retries free). A 502's message never carries the
        upstream's internals (:data:`protocol.UPSTREAM_UNAVAILABLE`).
        """
        if exc.caller_fault:
            return UpstreamRefused(exc.code, exc.message, exc.request_id)
        if exc.may_have_run:
            return UpstreamFailed(NO_ANSWER, protocol.UPSTREAM_UNAVAILABLE, exc.request_id)
        if exc.message != protocol.UPSTREAM_UNAVAILABLE:
            logger.warning("upstream %s failed: %s", spec.service_id, exc)
        refunded = self.ledger.get(payment.payment_id) if settled else None
        return UpstreamFailed(exc.code, protocol.UPSTREAM_UNAVAILABLE, exc.request_id, refunded)

    def _payment_metadata(
        self, spec: RouteSpec, token: str | None, client_id: str | None = None
    ) -> PaymentRecord:
        """The token's own record when it is one of this service's and not bound to another
        client (another key's payment is never shown), else what to pay."""
        payment: Payment | None = self.ledger.find_token(token) if token else None
        if (
            payment is not None
            and payment.service_id == spec.service_id
            and payment.client_id in ("", client_id)
        ):
            return payment.record()
        return payment_required(spec, None if self.x402 else self.provider.name)

    def x402_offered(self, spec: RouteSpec) -> bool:
        """Whether this service takes x402 payment signatures."""
        return self.x402 is not None and self.x402.offers(spec.service_id)

    def call_paid(
        self,
        spec: RouteSpec,
        body: Mapping[str, Any],
        payment_signature: str,
        client_id: str | None,
    ) -> PaidCall:
        """A call paid by an x402 ``PAYMENT-SIGNATURE``: check the body, verify and settle
        (``settle_first``), record the paid payment, spend one call, call the upstream.

        Raises ``RequestError`` (nothing charged), :class:`PaymentNeeded` with x402's
        reason (nothing charged: invalid, replayed, unfunded, failed settlement),
        :class:`UpstreamRefused` (the call counts), or :class:`UpstreamFailed`
        carrying the paid payment whose token retries free (when given back).
        """
        arguments = self.arguments(spec, body)
        if not self.x402_offered(spec):
            raise PaymentNeeded(
                PaymentRequired(error=protocol.FAILURES[0], payment=payment_required(spec)),
                "x402 payments are not accepted here",
            )
        self._validator(spec.service_id).check_hosts(arguments)  # before settling
        payment = self.ledger.create(spec, self.provider, client_id or "", spec.payment.provider_id)
        response_header = self._settle(spec, payment_signature, payment.payment_id)
        reserved = self.ledger.reserve(payment.token, spec.service_id, client_id or None)
        spent = reserved.payment
        try:
            envelope = self._call_reserved(spec, arguments, reserved.call_id)
        except UpstreamError as exc:
            self.stats.record(spec.service_id, "error", self.clock())
            raise self._failure(spec, spent, exc, settled=True) from None
        self.stats.record(spec.service_id, "success", self.clock())
        return PaidCall(envelope, response_header, spent)

    def pay_payment(self, payment_id: str, payment_signature: str) -> tuple[Payment, str] | None:
        """Complete a pending payment with an x402 ``PAYMENT-SIGNATURE``: the paid record
        and the ``PAYMENT-RESPONSE`` value, or ``None`` for an unknown payment.

        Raises :class:`PaymentNeeded` (x402's reason) when the payment is not pending
        or the signature does not settle.
        """
        payment = self.ledger.get(payment_id)
        if payment is None:
            return None
        spec = self.spec(payment.service_id)
        if payment.status != "pending" or not self.x402_offered(spec):
            answer = PaymentRequired(error=protocol.FAILURES[0], payment=payment.record())
            raise PaymentNeeded(answer, f"payment is {payment.status}, not pending")
        header = self._settle(spec, payment_signature, payment_id, discard=False)
        return self.ledger.get(payment_id), header  # type: ignore[return-value]

    def _settle(self, spec: RouteSpec, header: str, payment_id: str, discard: bool = True) -> str:
        """Settle ``header`` for ``payment_id`` at most once; the PAYMENT-RESPONSE value."""
        from .x402 import X402Refused, signature_hash

        key = signature_hash(header)
        lock = f"payment:{payment_id}"  # one settlement at a time per payment
        refused: str | None = None
        if not self.ledger.claim_signature(lock):
            refused = "payment is being settled"
        elif not self.ledger.claim_signature(key):
            self.ledger.release_signature(lock)
            refused = "payment signature already used"
        else:
            try:
                settled = self.x402.verify_and_settle(spec, header)
            except X402Refused as exc:
                self.ledger.release_signature(key)
                self.ledger.release_signature(lock)
                refused = exc.reason
        if refused is not None:
            if discard:  # the record made for this call: no paid (or pending) record stays
                self.ledger.discard(payment_id)
            self.stats.record(spec.service_id, "payment_required", self.clock())
            answer = PaymentRequired(error=protocol.FAILURES[0], payment=payment_required(spec))
            raise PaymentNeeded(answer, refused)
        self.ledger.settle(payment_id, key, settled.trail)  # the lock stays: settled once
        return settled.response_header

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
