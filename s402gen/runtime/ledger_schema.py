"""The payment ledger's schema: one ordered list of migrations, for SQLite and PostgreSQL.

Each :class:`Migration` takes the schema from ``version - 1`` to ``version``.
Its statements are written once, in the SQL both databases take; the only
word that differs is the type of a Unix time in seconds, written ``{real}``
(SQLite ``REAL``; PostgreSQL ``DOUBLE PRECISION``, since PostgreSQL's
``REAL`` is a 4-byte float that would round a timestamp to minutes).

Where the version is kept: SQLite in ``PRAGMA user_version``, PostgreSQL in
a one-row ``schema_version`` table. Both backends apply the missing steps in
one transaction (DDL is transactional in both), so a ledger is at one
version or the next, never between.
"""

from __future__ import annotations

from dataclasses import dataclass

#: Seconds since the Unix epoch, as each dialect stores them exactly enough.
_REAL = {"sqlite": "REAL", "postgres": "DOUBLE PRECISION"}


@dataclass(frozen=True)
class Migration:
    """One step of the schema: the ``version`` it makes, why, and its statements."""

    version: int
    why: str
    statements: tuple[str, ...]

    def sql(self, dialect: str) -> list[str]:
        """The statements for ``dialect`` (``sqlite`` or ``postgres``)."""
        return [statement.format(real=_REAL[dialect]) for statement in self.statements]


MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "payments: one row per payment, its token and the calls it has used",
        (
            """CREATE TABLE IF NOT EXISTS payments (
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
                created_at {real} NOT NULL,
                expires_at {real} NOT NULL,
                paid_at {real}
            )""",
        ),
    ),
    Migration(
        2,
        "the money trail of x402 settlements, and each payment signature settled once",
        (
            "ALTER TABLE payments ADD COLUMN tx_hash TEXT",
            "ALTER TABLE payments ADD COLUMN payer TEXT",
            "ALTER TABLE payments ADD COLUMN network TEXT",
            "ALTER TABLE payments ADD COLUMN settled_amount TEXT",
            """CREATE TABLE IF NOT EXISTS x402_signatures (
                signature_hash TEXT PRIMARY KEY,
                state TEXT NOT NULL,
                payment_id TEXT,
                claimed_at {real} NOT NULL
            )""",
        ),
    ),
    Migration(
        3,
        "each paid call's state (reserved, sent, done, given_back) with the ledger that "
        "owns it, and the give-backs counted per payment",
        (
            "ALTER TABLE payments ADD COLUMN give_backs INTEGER NOT NULL DEFAULT 0",
            """CREATE TABLE calls (
                call_id TEXT PRIMARY KEY,
                payment_id TEXT NOT NULL,
                owner TEXT NOT NULL,
                state TEXT NOT NULL,
                created_at {real} NOT NULL,
                updated_at {real} NOT NULL
            )""",
            "CREATE INDEX calls_payment ON calls (payment_id)",
            "CREATE INDEX calls_open ON calls (owner) WHERE state IN ('reserved', 'sent')",
        ),
    ),
    Migration(
        4,
        "client API keys (s402gen keys): only each key's SHA-256 digest, shared by replicas",
        (
            """CREATE TABLE IF NOT EXISTS api_keys (
                key_id TEXT PRIMARY KEY,
                name TEXT NOT NULL,
                key_hash TEXT NOT NULL UNIQUE,
                created_at {real} NOT NULL,
                revoked_at {real}
            )""",
        ),
    ),
)

#: The version this s402gen writes: the last migration's.
SCHEMA_VERSION = MIGRATIONS[-1].version


class SchemaTooNew(RuntimeError):
    """The ledger was written by a newer s402gen (its schema version is higher than ours)."""


def pending(version: int) -> list[Migration]:
    """The migrations a ledger at ``version`` still needs, in order.

    Raises :class:`SchemaTooNew` when ``version`` is above :data:`SCHEMA_VERSION`.
    """
    if version > SCHEMA_VERSION:
        raise SchemaTooNew(
            f"payment ledger schema {version} is newer than this s402gen ({SCHEMA_VERSION})"
        )
    return [migration for migration in MIGRATIONS if migration.version > version]
