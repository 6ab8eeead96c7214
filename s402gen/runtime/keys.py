"""Client API keys: issued by ``s402gen keys create``, sent as ``Authorization: Bearer <key>``.

A key is 256 bits from :mod:`secrets` (``s402_`` + 43 URL-safe base64 characters); the
store keeps only its SHA-256 digest, as GitHub and Stripe do for their tokens: a key has
full entropy, so a fast digest cannot be brute-forced and a stolen database gives no key
(a slow hash such as scrypt is for low-entropy passwords). A key's public id (``key_...``)
is what payments record as their ``clientId``.

The keys live in the payment ledger's database (SQLite or PostgreSQL, table
``api_keys``, created by the ledger's migration 4 in :mod:`.ledger_schema`), so
replicas sharing the ledger share the keys.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from .ledger_schema import SchemaTooNew
from .ledger_store import PostgresStore, SQLiteStore, open_store
from .payments import iso_utc

#: The prefix of every key (so a leaked one is recognisable by secret scanners).
KEY_PREFIX = "s402_"
#: The prefix of a key's public id.
ID_PREFIX = "key_"
KEY_BYTES = 32  # 256 bits


class KeyStoreError(Exception):
    """The key store cannot be used (a newer schema, an unknown key id); ``str()`` says why."""


def key_digest(key: str) -> str:
    """The stored form of a key: the hex SHA-256 of its UTF-8 bytes."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class ApiKey:
    """One issued key as stored (never the key itself); times are Unix seconds."""

    key_id: str
    name: str
    created_at: float
    revoked_at: float | None

    @property
    def active(self) -> bool:
        """Whether the key is still accepted."""
        return self.revoked_at is None

    def describe(self) -> str:
        """One line for ``keys list``: id, state, creation time (UTC), name."""
        state = "active" if self.active else f"revoked {iso_utc(self.revoked_at)}"
        return f"{self.key_id}  {state}  created {iso_utc(self.created_at)}  {self.name}"


class KeyStore:
    """API keys in the payment ledger at ``location`` (an SQLite path, ``:memory:``, or a
    ``postgresql://`` URL), migrated on open as the ledger is; or in the already open
    ``store`` of a ledger (:attr:`~s402gen.runtime.payments.Ledger.store`).

    Thread-safe (the ledger store's transactions). Raises :class:`KeyStoreError` when the
    ledger holds a newer schema than this s402gen knows, and the driver's errors when it
    cannot be opened.
    """

    def __init__(
        self,
        location: str | Path = ":memory:",
        *,
        clock: Callable[[], float] = time.time,
        store: SQLiteStore | PostgresStore | None = None,
    ):
        self.clock = clock
        self._shared = store is not None  # an open ledger's store (Ledger.store): its own close
        if store is not None:
            self._store = store
            return
        try:
            self._store = open_store(location)
        except SchemaTooNew as exc:
            raise KeyStoreError(str(exc)) from None

    def close(self) -> None:
        """Close the database connections (not those of a shared ``store``: its ledger's)."""
        if not self._shared:
            self._store.close()

    def create(self, name: str = "") -> tuple[ApiKey, str]:
        """Issue a key: its stored record and the key itself (shown once, never stored)."""
        key = KEY_PREFIX + secrets.token_urlsafe(KEY_BYTES)
        record = ApiKey(ID_PREFIX + secrets.token_hex(8), name, self.clock(), None)
        with self._store.transaction(write=True, durable=True) as tx:
            tx.run(
                "INSERT INTO api_keys (key_id, name, key_hash, created_at) VALUES (?, ?, ?, ?)",
                (record.key_id, name, key_digest(key), record.created_at),
            )
        return record, key

    def list(self) -> list[ApiKey]:
        """Every issued key, oldest first (ties by id)."""
        with self._store.transaction() as tx:
            rows = tx.all(
                "SELECT key_id, name, created_at, revoked_at FROM api_keys "
                "ORDER BY created_at, key_id"
            )
        return [ApiKey(*row) for row in rows]

    def revoke(self, key_id: str) -> ApiKey:
        """Revoke a key by its id (revoking twice keeps the first time); the record.

        Raises :class:`KeyStoreError` for an unknown id.
        """
        with self._store.transaction(write=True, durable=True) as tx:
            tx.run(
                "UPDATE api_keys SET revoked_at = ? WHERE key_id = ? AND revoked_at IS NULL",
                (self.clock(), key_id),
            )
            row = tx.one(
                "SELECT key_id, name, created_at, revoked_at FROM api_keys WHERE key_id = ?",
                (key_id,),
            )
        if row is None:
            raise KeyStoreError(f"no API key {key_id!r} (see `s402gen keys list`)")
        return ApiKey(*row)

    def authenticate(self, key: str) -> ApiKey | None:
        """The active key record for a presented key, else ``None`` (unknown or revoked)."""
        digest = key_digest(key)
        with self._store.transaction() as tx:
            row = tx.one(
                "SELECT key_id, name, created_at, revoked_at FROM api_keys WHERE key_hash = ?",
                (digest,),
            )
        if row is None or row[3] is not None:
            return None
        return ApiKey(*row)
