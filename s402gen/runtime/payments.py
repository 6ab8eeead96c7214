"""Payments: the ledger (SQLite embedded, or PostgreSQL) and the payment providers.

A payment record is the output contract's :class:`~.contract.PaymentRecord`.
A paid token allows ``Pricing.calls_per_payment`` calls of one service
(``maxCalls``, or one when the pricing does not allow reuse), until it
expires; when the pricing binds clients, only the client that created the
payment (``X-Client-Id``) may spend it; a payment created without a client
id is not bound. Spending is one guarded ``UPDATE`` inside a write
transaction, so concurrent calls, in one process or several sharing the
database (an SQLite file, or one PostgreSQL database for several replicas),
never spend a call twice. Each paid call is recorded with its state
(:class:`Ledger` says which states and what a restart does with them), and
a payment gives back at most :data:`MAX_GIVE_BACKS` failed upstream calls.
Where the data lives and how durably: :mod:`.ledger_store`; the schema and
its migrations: :mod:`.ledger_schema`.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Protocol

from . import protocol
from .contract import PaymentRecord
from .ledger_schema import SCHEMA_VERSION  # noqa: F401 - where the version was, for callers
from .ledger_store import PostgresStore, SQLiteStore, Transaction, open_store
from .spec import RouteSpec

DEFAULT_TTL_SECONDS = 3600

#: Upstream failures one payment may have given back; the next failing call is charged.
#: So a payment buys at most ``maxCalls + MAX_GIVE_BACKS`` upstream runs (README "Payments").
MAX_GIVE_BACKS = 3

_COLUMNS = (
    "payment_id, service_id, internal_service_id, provider_id, provider, amount_cents, "
    "currency, billing_mode, max_calls, used_calls, status, token, client_id, bind_client, "
    "pay_to, created_at, expires_at, paid_at, tx_hash, payer, network, settled_amount, give_backs"
)


def iso_utc(moment: float | None) -> str | None:
    """A Unix time in seconds as ``YYYY-MM-DDTHH:MM:SSZ`` (UTC, whole seconds); ``None``
    stays ``None``. The one format of every time the ledger shows."""
    if moment is None:
        return None
    return datetime.fromtimestamp(moment, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class Payment:
    """One payment as stored; times are Unix seconds."""

    payment_id: str
    service_id: str
    internal_service_id: str
    provider_id: str
    provider: str
    amount_cents: int
    currency: str
    billing_mode: str
    max_calls: int
    used_calls: int
    status: str
    token: str
    client_id: str
    bind_client: bool
    pay_to: str
    created_at: float
    expires_at: float
    paid_at: float | None
    tx_hash: str | None = None
    payer: str | None = None
    network: str | None = None
    settled_amount: str | None = None
    #: Upstream failures given back to this payment so far (at most :data:`MAX_GIVE_BACKS`).
    give_backs: int = 0

    @property
    def remaining_calls(self) -> int:
        """Calls the token still allows."""
        return max(self.max_calls - self.used_calls, 0)

    def record(self) -> PaymentRecord:
        """The record of the output contract (camelCase, ISO 8601 UTC times)."""
        return PaymentRecord(
            payment_id=self.payment_id,
            service_id=self.service_id,
            internal_service_id=self.internal_service_id,
            provider_id=self.provider_id,
            provider=self.provider,
            amount_cents=self.amount_cents,
            currency=self.currency,
            billing_mode=self.billing_mode,
            max_calls=self.max_calls,
            used_calls=self.used_calls,
            remaining_calls=self.remaining_calls,
            status=self.status,
            token=self.token,
            client_id=self.client_id,
            pay_to=self.pay_to,
            expires_at=iso_utc(self.expires_at),
            paid_at=iso_utc(self.paid_at),
        )

    def to_json(self) -> dict[str, Any]:
        """:meth:`record` as JSON (``paidAt`` only once paid)."""
        return self.record().to_json()


def payment_required(spec: RouteSpec, provider: str | None = None) -> PaymentRecord:
    """The ``payment`` of a 402 answer before any payment exists: what to pay.

    ``provider`` is the name of the provider that takes the payment when it
    is not the catalog's (``dev``: the 402 body says the server runs the dev one).
    """
    return PaymentRecord(
        service_id=spec.service_id,
        internal_service_id=spec.legacy_id,
        provider_id=spec.payment.provider_id,
        provider=provider or spec.payment.provider,
        amount_cents=spec.pricing.amount_cents,
        currency=spec.pricing.currency,
        billing_mode=spec.pricing.billing_mode,
        max_calls=spec.pricing.calls_per_payment,
        status="payment_required",
    )


@dataclass(frozen=True)
class MoneyTrail:
    """What an x402 settlement moved: transaction hash, payer address, CAIP-2 network,
    and the amount in the asset's smallest units (a decimal string)."""

    transaction: str
    payer: str
    network: str
    amount: str


class PaymentRefused(Exception):
    """A token cannot pay for this call; ``str()`` is one of ``protocol.FAILURES``."""


@dataclass(frozen=True)
class Settlement:
    """A provider's answer: the payment's status, where the money goes, when it was paid."""

    status: str
    pay_to: str
    paid_at: float | None


class PaymentProvider(Protocol):
    """A way to take payment. ``name`` is stored as the record's ``provider``.

    ``open`` is called when a payment is created and ``refresh`` when it is
    verified: a real x402 facilitator provider would return ``pending`` from
    ``open`` with its ``payTo`` address, and ``paid`` from ``refresh`` once the
    facilitator has settled the payment signature.
    """

    name: str

    def open(self, payment_id: str, amount_cents: int, currency: str) -> Settlement: ...

    def refresh(self, payment: Payment) -> Settlement: ...


class DevProvider:
    """Marks every payment paid on creation: for local use and tests, never production."""

    name = "dev"

    def __init__(self, clock: Callable[[], float] = time.time):
        self.clock = clock

    def open(self, payment_id: str, amount_cents: int, currency: str) -> Settlement:
        """Paid at once, to a dev address."""
        return Settlement("paid", "dev:server402", self.clock())

    def refresh(self, payment: Payment) -> Settlement:
        """Nothing changes after creation."""
        return Settlement(payment.status, payment.pay_to, payment.paid_at)


@dataclass(frozen=True)
class Reservation:
    """A call paid for and not yet finished: its ``call_id`` and the payment after spending."""

    call_id: str
    payment: Payment


@dataclass(frozen=True)
class Recovery:
    """What :meth:`Ledger.recover` settled: calls given back, and calls charged as done."""

    given_back: int = 0
    settled: int = 0


class Ledger:
    """Payments in SQLite (a path, or ``:memory:``) or PostgreSQL (a ``postgresql://`` URL);
    created and migrated on first use, then :meth:`recover` settles the calls of dead ledgers.

    Thread-safe. ``clock`` gives Unix seconds and ``ttl`` how long a token
    lives, in seconds. Raises ``RuntimeError`` for a ledger written by a
    newer s402gen, and the database driver's errors when it cannot be opened.

    A paid call goes through states kept in the ``calls`` table, each change
    committed before the next step: :meth:`reserve` spends one call of the
    token and records the call ``reserved``; :meth:`mark_sent` records
    ``sent`` just before the upstream request; then :meth:`finish` (``done``)
    or :meth:`give_back` (``given_back``, the call returned to the token).
    After a crash, :meth:`recover` gives back the dead ledger's ``reserved``
    calls (the upstream was never asked) and charges its ``sent`` ones as
    ``done``: the upstream may have run, and an upstream run for a call
    given back would be a free run, while a call charged whose request never
    left is one paid call lost in a window of milliseconds. So a token never
    pays for two upstream runs of one call, and a call that never reached
    the upstream is given back, except in that window.
    """

    def __init__(
        self,
        path: str | Path = ":memory:",
        *,
        clock: Callable[[], float] = time.time,
        ttl: float = DEFAULT_TTL_SECONDS,
    ):
        self.clock = clock
        self.ttl = ttl
        self._store = open_store(path)
        #: What opening this ledger settled of dead ledgers' calls.
        self.recovered = self.recover()

    @property
    def store(self) -> SQLiteStore | PostgresStore:
        """The open database: what the API keys share (:class:`~s402gen.runtime.keys.KeyStore`)."""
        return self._store

    @property
    def owner(self) -> str:
        """This open ledger's name in the ``calls`` table (``host:pid:random``)."""
        return self._store.owner

    def close(self) -> None:
        """Close the database connections."""
        self._store.close()

    @staticmethod
    def _row(tx: Transaction, where: str, value: str) -> Payment | None:
        found = tx.one(f"SELECT {_COLUMNS} FROM payments WHERE {where} = ?", (value,))
        return None if found is None else Payment(*found[:13], bool(found[13]), *found[14:])

    def claim_signature(self, signature_hash: str) -> bool:
        """Claim an x402 payment signature before settling it: ``False`` when it was
        claimed before (settled, or being settled), so a signature settles at most once."""
        with self._store.transaction(write=True) as tx:
            changed = tx.run(
                "INSERT INTO x402_signatures (signature_hash, state, claimed_at) "
                "VALUES (?, 'claimed', ?) ON CONFLICT DO NOTHING",
                (signature_hash, self.clock()),
            )
        return changed == 1

    def release_signature(self, signature_hash: str) -> None:
        """Forget a claim whose settlement failed (nothing was paid; it may be tried again)."""
        with self._store.transaction(write=True, patient=True) as tx:
            tx.run(
                "DELETE FROM x402_signatures WHERE signature_hash = ? AND state = 'claimed'",
                (signature_hash,),
            )

    def settle(self, payment_id: str, signature_hash: str, trail: "MoneyTrail") -> Payment | None:
        """Mark a pending payment paid by a settled x402 payment, keeping its money trail
        (a durable commit: money moved outside the ledger).

        Returns the record, or ``None`` when the payment is unknown or not pending.
        """
        with self._store.transaction(write=True, durable=True, patient=True) as tx:
            changed = tx.run(
                "UPDATE payments SET status = 'paid', paid_at = ?, tx_hash = ?, payer = ?, "
                "network = ?, settled_amount = ? WHERE payment_id = ? AND status = 'pending'",
                (self.clock(), trail.transaction, trail.payer, trail.network,
                 trail.amount, payment_id),
            )  # fmt: skip
            tx.run(
                "UPDATE x402_signatures SET state = 'settled', payment_id = ? "
                "WHERE signature_hash = ?",
                (payment_id if changed else None, signature_hash),
            )
            return self._row(tx, "payment_id", payment_id) if changed else None

    def create(
        self, spec: RouteSpec, provider: PaymentProvider, client_id: str, provider_id: str
    ) -> Payment:
        """Create and store a payment for one service through ``provider``."""
        payment_id = "pay_" + secrets.token_hex(12)
        settlement = provider.open(payment_id, spec.pricing.amount_cents, spec.pricing.currency)
        now = self.clock()
        payment = Payment(
            payment_id, spec.service_id, spec.legacy_id, provider_id, provider.name,
            spec.pricing.amount_cents, spec.pricing.currency, spec.pricing.billing_mode,
            spec.pricing.calls_per_payment, 0, settlement.status, secrets.token_urlsafe(24),
            client_id, bool(spec.pricing.bind_client), settlement.pay_to, now, now + self.ttl,
            settlement.paid_at,
        )  # fmt: skip
        values = [getattr(payment, name.strip()) for name in _COLUMNS.split(",")]
        values[13] = int(payment.bind_client)
        with self._store.transaction(write=True) as tx:
            tx.run(f"INSERT INTO payments ({_COLUMNS}) VALUES ({', '.join('?' * len(values))})",
                   values)  # fmt: skip
        return payment

    def discard(self, payment_id: str) -> None:
        """Delete a payment that is still pending (its x402 settlement failed)."""
        with self._store.transaction(write=True, patient=True) as tx:
            tx.run(
                "DELETE FROM payments WHERE payment_id = ? AND status = 'pending'", (payment_id,)
            )

    def get(self, payment_id: str) -> Payment | None:
        """The payment with this id, or ``None``."""
        with self._store.transaction() as tx:
            return self._row(tx, "payment_id", payment_id)

    def find_token(self, token: str) -> Payment | None:
        """The payment a token belongs to, or ``None``."""
        with self._store.transaction() as tx:
            return self._row(tx, "token", token)

    def verify(self, payment_id: str, provider: PaymentProvider) -> Payment | None:
        """Ask ``provider`` for news of a payment, store it (only when there is news),
        and return the record."""
        payment = self.get(payment_id)
        if payment is None:
            return None
        settlement = provider.refresh(payment)
        if settlement == Settlement(payment.status, payment.pay_to, payment.paid_at):
            return payment
        with self._store.transaction(write=True) as tx:
            tx.run(
                "UPDATE payments SET status = ?, pay_to = ?, paid_at = ? WHERE payment_id = ?",
                (settlement.status, settlement.pay_to, settlement.paid_at, payment_id),
            )
            return self._row(tx, "payment_id", payment_id)

    def reserve(self, token: str | None, service_id: str, client_id: str | None) -> Reservation:
        """Spend one call of ``token`` for ``service_id`` and record the call ``reserved``,
        in one transaction; the call's id and the record after spending.

        Raises :class:`PaymentRefused` with the catalog's failure text when
        the token is missing, unknown or unpaid (``payment required``),
        expired, used up, for another service, or bound to another client.
        """
        return self._spend(token, service_id, client_id, "reserved")

    def spend(self, token: str | None, service_id: str, client_id: str | None) -> Payment:
        """Charge one call of ``token`` outright (recorded ``done``: nothing to call, or the
        caller has called); the record after spending. Raises as :meth:`reserve`."""
        return self._spend(token, service_id, client_id, "done").payment

    def _spend(
        self, token: str | None, service_id: str, client_id: str | None, state: str
    ) -> Reservation:
        if not token:
            raise PaymentRefused(protocol.FAILURES[0])
        call_id = "call_" + secrets.token_hex(12)
        now = self.clock()
        with self._store.transaction(write=True) as tx:
            payment = self._row(tx, "token", token)
            _refuse(payment, service_id, client_id, now)
            assert payment is not None
            changed = tx.run(
                "UPDATE payments SET used_calls = used_calls + 1 "
                "WHERE payment_id = ? AND used_calls < max_calls",
                (payment.payment_id,),
            )
            if changed != 1:
                raise PaymentRefused(protocol.FAILURES[2])
            tx.run(
                "INSERT INTO calls (call_id, payment_id, owner, state, created_at, updated_at) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (call_id, payment.payment_id, self.owner, state, now, now),
            )
            spent = self._row(tx, "payment_id", payment.payment_id)
        assert spent is not None
        return Reservation(call_id, spent)

    def call_state(self, call_id: str) -> str | None:
        """A call's state (``reserved``, ``sent``, ``done`` or ``given_back``), or ``None``."""
        with self._store.transaction() as tx:
            row = tx.one("SELECT state FROM calls WHERE call_id = ?", (call_id,))
        return None if row is None else row[0]

    def _move(self, tx: Transaction, call_id: str, states: tuple[str, ...], to: str) -> bool:
        marks = ", ".join("?" * len(states))
        return (
            tx.run(
                f"UPDATE calls SET state = ?, updated_at = ? WHERE call_id = ? AND state IN ({marks})",
                (to, self.clock(), call_id, *states),
            )
            == 1
        )

    def mark_sent(self, call_id: str) -> bool:
        """Record that the upstream request is about to leave; ``False`` when the call is
        no longer ``reserved`` (a recovery gave it back): then it must not be sent."""
        with self._store.transaction(write=True, patient=True) as tx:
            return self._move(tx, call_id, ("reserved",), "sent")

    def finish(self, call_id: str) -> bool:
        """Record a call done (the upstream answered it; its call stays spent); ``False``
        when it was finished or given back before."""
        with self._store.transaction(write=True, patient=True) as tx:
            return self._move(tx, call_id, ("reserved", "sent"), "done")

    def give_back(self, call_id: str) -> bool:
        """Give a failed call back to its token; ``True`` when it was given back.

        A call never ``sent`` is always given back. A ``sent`` one (the upstream
        failed) is given back while its payment has had fewer than
        :data:`MAX_GIVE_BACKS` give-backs; past that it is charged (recorded
        ``done``) and this returns ``False``, as it does for a call already finished.
        """
        with self._store.transaction(write=True, patient=True) as tx:
            return self._give_back(tx, call_id)

    def _give_back(self, tx: Transaction, call_id: str) -> bool:
        row = tx.one("SELECT payment_id, state FROM calls WHERE call_id = ?", (call_id,))
        if row is None or row[1] not in ("reserved", "sent"):
            return False
        payment_id, state = row
        counted = int(state == "sent")  # a call never sent cost the upstream nothing
        back = tx.run(
            "UPDATE payments SET used_calls = used_calls - 1, give_backs = give_backs + ? "
            "WHERE payment_id = ? AND used_calls > 0 AND give_backs + ? <= ?",
            (counted, payment_id, counted, MAX_GIVE_BACKS),
        )
        self._move(tx, call_id, (state,), "given_back" if back else "done")
        return back == 1

    def recover(self) -> Recovery:
        """Settle the unfinished calls of ledgers whose process is gone: ``reserved`` ones
        are given back, ``sent`` ones charged as ``done`` (see the class). Runs on open;
        safe to run from several replicas at once. Returns what it settled."""
        with self._store.transaction() as tx:
            owners = [
                row[0]
                for row in tx.all(
                    "SELECT DISTINCT owner FROM calls WHERE state IN ('reserved', 'sent')"
                )
            ]
        given_back = settled = 0
        for owner in sorted(owners):
            with self._store.owner_lock(owner) as dead:
                if not dead:
                    continue
                with self._store.transaction(write=True, patient=True) as tx:
                    calls = tx.all(
                        "SELECT call_id, state FROM calls "
                        "WHERE owner = ? AND state IN ('reserved', 'sent')",
                        (owner,),
                    )
                    for call_id, state in calls:
                        if state == "reserved":
                            given_back += self._give_back(tx, call_id)
                        else:
                            settled += self._move(tx, call_id, ("sent",), "done")
        return Recovery(given_back, settled)


def _refuse(payment: Payment | None, service_id: str, client_id: str | None, now: float) -> None:
    """Raise :class:`PaymentRefused` when ``payment`` cannot pay for this call."""
    if payment is None or payment.status != "paid":
        raise PaymentRefused(protocol.FAILURES[0])
    if payment.service_id != service_id:
        raise PaymentRefused(protocol.FAILURES[4])
    if payment.bind_client and payment.client_id:  # created without X-Client-Id: unbound
        if not client_id:
            raise PaymentRefused(protocol.FAILURES[3])
        if client_id != payment.client_id:
            raise PaymentRefused(protocol.FAILURES[4])
    if payment.expires_at <= now:
        raise PaymentRefused(protocol.FAILURES[1])
    if payment.remaining_calls <= 0:
        raise PaymentRefused(protocol.FAILURES[2])
