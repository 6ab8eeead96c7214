"""Payments: an embedded SQLite ledger and the payment providers behind one interface.

A payment record is the output contract's :class:`~.contract.PaymentRecord`.
A paid token allows ``Pricing.calls_per_payment`` calls of one service
(``maxCalls``, or one when the pricing does not allow reuse), until it
expires; when the pricing binds clients, only the client that created the
payment (``X-Client-Id``) may spend it; a payment created without a client
id is not bound. Spending is one guarded ``UPDATE``
inside an immediate transaction, so concurrent calls, in one process or
several sharing the database file, never spend a call twice.
"""

from __future__ import annotations

import secrets
import sqlite3
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Protocol

from . import protocol
from .contract import PaymentRecord
from .spec import RouteSpec

SCHEMA_VERSION = 2
DEFAULT_TTL_SECONDS = 3600

_SCHEMA = """
CREATE TABLE IF NOT EXISTS payments (
    payment_id TEXT PRIMARY KEY,
    service_id TEXT NOT NULL,
    internal_service_id TEXT NOT NULL,
    provider_id TEXT NOT NULL,
    provider TEXT NOT NULL,
    amount_cents INTEGER NOT NULL,
    currency TEXT NOT NULL,
    billing_mode TEXT NOT NULL,
    max_calls INTEGER NOT NULL,
    used_calls INTEGER NOT NULL DEFAULT 0,
    status TEXT NOT NULL,
    token TEXT NOT NULL UNIQUE,
    client_id TEXT NOT NULL,
    bind_client INTEGER NOT NULL,
    pay_to TEXT NOT NULL,
    created_at REAL NOT NULL,
    expires_at REAL NOT NULL,
    paid_at REAL
);
"""

#: Version 2: the money trail of x402 settlements, and each payment signature settled once.
_SCHEMA_2 = """
ALTER TABLE payments ADD COLUMN tx_hash TEXT;
ALTER TABLE payments ADD COLUMN payer TEXT;
ALTER TABLE payments ADD COLUMN network TEXT;
ALTER TABLE payments ADD COLUMN settled_amount TEXT;
CREATE TABLE IF NOT EXISTS x402_signatures (
    signature_hash TEXT PRIMARY KEY,
    state TEXT NOT NULL,
    payment_id TEXT,
    claimed_at REAL NOT NULL
);
"""

_COLUMNS = (
    "payment_id, service_id, internal_service_id, provider_id, provider, amount_cents, "
    "currency, billing_mode, max_calls, used_calls, status, token, client_id, bind_client, "
    "pay_to, created_at, expires_at, paid_at, tx_hash, payer, network, settled_amount"
)


def _iso(moment: float | None) -> str | None:
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
            expires_at=_iso(self.expires_at),
            paid_at=_iso(self.paid_at),
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


class Ledger:
    """Payments in SQLite (``path``, or ``:memory:``); created and migrated on first use.

    Thread-safe: one connection guarded by a lock; ``clock`` gives Unix
    seconds and ``ttl`` how long a token lives, in seconds.
    """

    def __init__(
        self,
        path: str | Path = ":memory:",
        *,
        clock: Callable[[], float] = time.time,
        ttl: float = DEFAULT_TTL_SECONDS,
    ):
        if str(path) != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        self.clock = clock
        self.ttl = ttl
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA busy_timeout = 5000")
        if str(path) != ":memory:":
            self._db.execute("PRAGMA journal_mode = WAL")
        self._migrate()

    def _migrate(self) -> None:
        with self._lock:
            version = self._db.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise RuntimeError(
                    f"payment ledger schema {version} is newer than this s402gen ({SCHEMA_VERSION})"
                )
            if version < 1:
                self._db.executescript(_SCHEMA + "PRAGMA user_version = 1;")
            if version < 2:
                self._db.executescript(
                    "BEGIN;" + _SCHEMA_2 + f"PRAGMA user_version = {SCHEMA_VERSION}; COMMIT;"
                )

    def close(self) -> None:
        """Close the database connection."""
        with self._lock:
            self._db.close()

    def _row(self, where: str, value: str) -> Payment | None:
        row = self._db.execute(f"SELECT {_COLUMNS} FROM payments WHERE {where} = ?", (value,))
        found = row.fetchone()
        return None if found is None else Payment(*found[:13], bool(found[13]), *found[14:])

    def claim_signature(self, signature_hash: str) -> bool:
        """Claim an x402 payment signature before settling it: ``False`` when it was
        claimed before (settled, or being settled), so a signature settles at most once."""
        with self._lock:
            changed = self._db.execute(
                "INSERT OR IGNORE INTO x402_signatures (signature_hash, state, claimed_at) "
                "VALUES (?, 'claimed', ?)",
                (signature_hash, self.clock()),
            ).rowcount
        return changed == 1

    def release_signature(self, signature_hash: str) -> None:
        """Forget a claim whose settlement failed (nothing was paid; it may be tried again)."""
        with self._lock:
            self._db.execute(
                "DELETE FROM x402_signatures WHERE signature_hash = ? AND state = 'claimed'",
                (signature_hash,),
            )

    def settle(self, payment_id: str, signature_hash: str, trail: "MoneyTrail") -> Payment | None:
        """Mark a pending payment paid by a settled x402 payment, keeping its money trail.

        Returns the record, or ``None`` when the payment is unknown or not pending.
        """
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                changed = self._db.execute(
                    "UPDATE payments SET status = 'paid', paid_at = ?, tx_hash = ?, payer = ?, "
                    "network = ?, settled_amount = ? WHERE payment_id = ? AND status = 'pending'",
                    (self.clock(), trail.transaction, trail.payer, trail.network,
                     trail.amount, payment_id),
                ).rowcount  # fmt: skip
                self._db.execute(
                    "UPDATE x402_signatures SET state = 'settled', payment_id = ? "
                    "WHERE signature_hash = ?",
                    (payment_id if changed else None, signature_hash),
                )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            return self._row("payment_id", payment_id) if changed else None

    def create(
        self, spec: RouteSpec, provider: PaymentProvider, client_id: str, provider_id: str
    ) -> Payment:
        """Create and store a payment for one service through ``provider``."""
        payment_id = "pay_" + secrets.token_hex(12)
        settlement = provider.open(payment_id, spec.pricing.amount_cents, spec.pricing.currency)
        now = self.clock()
        values = (
            payment_id, spec.service_id, spec.legacy_id, provider_id, provider.name,
            spec.pricing.amount_cents, spec.pricing.currency, spec.pricing.billing_mode,
            spec.pricing.calls_per_payment, 0, settlement.status, secrets.token_urlsafe(24),
            client_id, int(spec.pricing.bind_client), settlement.pay_to, now, now + self.ttl,
            settlement.paid_at, None, None, None, None,
        )  # fmt: skip
        with self._lock:
            self._db.execute(
                f"INSERT INTO payments ({_COLUMNS}) VALUES ({', '.join('?' * len(values))})",
                values,
            )
            return self._row("payment_id", payment_id)  # type: ignore[return-value]

    def discard(self, payment_id: str) -> None:
        """Delete a payment that is still pending (its x402 settlement failed)."""
        with self._lock:
            self._db.execute(
                "DELETE FROM payments WHERE payment_id = ? AND status = 'pending'", (payment_id,)
            )

    def get(self, payment_id: str) -> Payment | None:
        """The payment with this id, or ``None``."""
        with self._lock:
            return self._row("payment_id", payment_id)

    def find_token(self, token: str) -> Payment | None:
        """The payment a token belongs to, or ``None``."""
        with self._lock:
            return self._row("token", token)

    def verify(self, payment_id: str, provider: PaymentProvider) -> Payment | None:
        """Ask ``provider`` for news of a payment, store it, and return the record."""
        payment = self.get(payment_id)
        if payment is None:
            return None
        settlement = provider.refresh(payment)
        with self._lock:
            self._db.execute(
                "UPDATE payments SET status = ?, pay_to = ?, paid_at = ? WHERE payment_id = ?",
                (settlement.status, settlement.pay_to, settlement.paid_at, payment_id),
            )
            return self._row("payment_id", payment_id)

    def spend(self, token: str | None, service_id: str, client_id: str | None) -> Payment:
        """Take one call off ``token`` for ``service_id``; the record after spending.

        Raises :class:`PaymentRefused` with the catalog's failure text when
        the token is missing, unknown or unpaid (``payment required``),
        expired, used up, for another service, or bound to another client.
        """
        if not token:
            raise PaymentRefused(protocol.FAILURES[0])
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                payment = self._row("token", token)
                _refuse(payment, service_id, client_id, self.clock())
                assert payment is not None
                changed = self._db.execute(
                    "UPDATE payments SET used_calls = used_calls + 1 "
                    "WHERE payment_id = ? AND used_calls < max_calls",
                    (payment.payment_id,),
                ).rowcount
                if changed != 1:
                    raise PaymentRefused(protocol.FAILURES[2])
                spent = self._row("payment_id", payment.payment_id)
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        assert spent is not None
        return spent

    def refund(self, payment_id: str) -> None:
        """Give back one call (the upstream failed after the token was spent)."""
        with self._lock:
            self._db.execute(
                "UPDATE payments SET used_calls = used_calls - 1 "
                "WHERE payment_id = ? AND used_calls > 0",
                (payment_id,),
            )


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
