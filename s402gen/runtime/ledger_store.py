"""Where the payment ledger lives: an SQLite file (embedded, the default) or PostgreSQL.

A store hands out transactions (:meth:`SQLiteStore.transaction`); the
ledger (:class:`~.payments.Ledger`) writes its SQL once, with ``?``
placeholders, and the PostgreSQL store turns them into psycopg's ``%s``.
Each store also names the ledger instance that owns a paid call
(:attr:`owner`) and tells whether another owner is still alive, so that a
restarted gateway settles only the calls of dead ones (``Ledger.recover``).

SQLite durability (WAL with ``synchronous = NORMAL``): every commit is in
the write-ahead log before the call returns, so a killed process (SIGKILL,
a crash) loses nothing; only an operating-system crash or power cut can
lose the last commits, and then the database rolls back to an earlier,
consistent state: a payment created in that window is gone before its
client could have been charged for it (the dev provider takes no money; an
x402 one is created ``pending``), and a call whose ``sent`` or ``done`` is
lost is given back or charged by :meth:`~.payments.Ledger.recover` as
before, never charged twice. The one write that records money that moved
outside the ledger, an x402 settlement, is committed ``durable``
(``synchronous = FULL`` for that commit, which syncs every commit before it too).
See https://www.sqlite.org/pragma.html#pragma_synchronous and
https://www.sqlite.org/wal.html.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import queue
import secrets
import socket
import sqlite3
import sys
import threading
import time
from pathlib import Path
from typing import Any, Iterator, Sequence

from . import ledger_schema

#: How long a write waits for another process's write lock before failing, in milliseconds.
BUSY_TIMEOUT_MS = 5000
#: PostgreSQL connections one ledger keeps at most (the pool's ``max_size``).
POSTGRES_POOL_SIZE = 8
#: ``pg_advisory_xact_lock`` key serializing migrations across replicas ("s402gen" in ASCII).
_MIGRATION_LOCK = 0x73343032_67656E


def is_postgres(location: str | Path) -> bool:
    """Whether a ``--ledger`` value names a PostgreSQL database (a ``postgresql://`` URL)."""
    return str(location).startswith(("postgresql://", "postgres://"))


def new_owner() -> str:
    """A name for one open ledger: ``host:pid:random`` (the random part tells apart two
    ledgers of one process, and a process that reuses a dead one's pid)."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


class Transaction:
    """Statements of one transaction; SQL with ``?`` placeholders."""

    def __init__(self, cursor: Any, postgres: bool):
        self._cursor = cursor
        self._postgres = postgres

    def _execute(self, sql: str, params: Sequence[Any]) -> Any:
        if self._postgres:
            sql = sql.replace("?", "%s")
        return self._cursor.execute(sql, tuple(params))

    def one(self, sql: str, params: Sequence[Any] = ()) -> tuple | None:
        """The first row of a query, or ``None``."""
        return self._execute(sql, params).fetchone()

    def all(self, sql: str, params: Sequence[Any] = ()) -> list[tuple]:
        """Every row of a query."""
        return list(self._execute(sql, params).fetchall())

    def run(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Run a statement; the number of rows it changed."""
        return self._execute(sql, params).rowcount


class SQLiteStore:
    """An SQLite ledger file (or ``:memory:``), migrated on open.

    A file gets one connection per thread (reads run side by side under
    WAL); writers queue on a lock of this process, then on an OS file lock
    (:class:`_FileLock` of ``<file>.lock``) shared with the other processes on
    the file, instead of polling in SQLite's busy handler (which sleeps 1, 2, 5,
    ... ms between tries: two replicas writing at once spent most of their
    time asleep). A write waits for both locks up to :data:`BUSY_TIMEOUT_MS`, then
    raises :class:`LedgerBusy` (a stopped process that holds the file lock never
    stalls the others for longer), and up to :data:`BUSY_TIMEOUT_MS` more for
    anything else holding the database (SQLite's busy timeout); a ``patient`` one
    (see :meth:`transaction`) waits for the locks as long as it takes.
    ``:memory:`` is one connection behind the process's lock.
    """

    dialect = "sqlite"

    def __init__(self, path: str | Path):
        self.path = str(path)
        self.memory = self.path == ":memory:"
        if not self.memory:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        self.owner = new_owner()
        self._write = threading.Lock()
        self._registry = threading.Lock()
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._shared = self._connect() if self.memory else None
        self._file_lock = None if self.memory else _FileLock(self.path + ".lock")
        try:
            if not self.memory:  # under the writers' OS lock: two processes switching a
                # new file to WAL at once can get SQLITE_BUSY at once, past the busy handler
                with _busy_as_ledger_busy(), self._locked(write=True, patient=True):
                    self._connection().execute("PRAGMA journal_mode = WAL")
            with self.transaction(write=True, patient=True) as tx:
                version = tx.one("PRAGMA user_version")[0]
                for migration in ledger_schema.pending(version):
                    for statement in migration.sql(self.dialect):
                        tx.run(statement)
                tx.run(f"PRAGMA user_version = {ledger_schema.SCHEMA_VERSION}")
        except BaseException:
            self.close()
            raise

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        db.execute("PRAGMA synchronous = NORMAL")  # WAL: see the module's note on durability
        with self._registry:
            self._connections.append(db)
        return db

    def _connection(self) -> sqlite3.Connection:
        if self._shared is not None:
            return self._shared
        db = getattr(self._local, "db", None)
        if db is None:
            db = self._local.db = self._connect()
        return db

    @contextlib.contextmanager
    def transaction(
        self, write: bool = False, durable: bool = False, patient: bool = False
    ) -> Iterator[Transaction]:
        """A write transaction: it takes the write locks first (``BEGIN IMMEDIATE``), so
        that what it reads stays true until it commits; ``durable`` syncs the commit to
        disk; ``patient`` waits for the writers' locks without a limit (a write that
        records what already happened: money moved, an upstream call made; a 503 would
        lose it). Without ``write``, each statement reads the latest commits on its own.
        Raises :class:`LedgerBusy` when the ledger stays held (see the class)."""
        db = self._connection()
        if not write:
            with _busy_as_ledger_busy(), self._locked(write=False):
                yield Transaction(db.cursor(), postgres=False)
            return
        with _busy_as_ledger_busy(), self._locked(write=True, patient=patient):
            if durable:
                db.execute("PRAGMA synchronous = FULL")
            db.execute("BEGIN IMMEDIATE")
            try:
                yield Transaction(db.cursor(), postgres=False)
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
            finally:
                if durable:
                    db.execute("PRAGMA synchronous = NORMAL")

    @contextlib.contextmanager
    def _locked(self, write: bool, patient: bool = False) -> Iterator[None]:
        """A writer (or any user of ``:memory:``) takes this process's lock, then the
        other processes' (:class:`_FileLock`), both within :data:`BUSY_TIMEOUT_MS` unless
        ``patient``; raises :class:`LedgerBusy` when either stays held."""
        if not (write or self.memory):
            yield
            return
        limit = None if patient else BUSY_TIMEOUT_MS / 1000
        deadline = None if limit is None else time.monotonic() + limit
        if not self._write.acquire(timeout=-1 if limit is None else limit):
            raise LedgerBusy("another writer of this process held the ledger")
        try:
            if self._file_lock is None:
                yield
                return
            left = None if deadline is None else deadline - time.monotonic()
            if not self._file_lock.acquire(left):
                raise LedgerBusy(f"another process held {self._file_lock.path}")
            try:
                yield
            finally:
                self._file_lock.release()
        finally:
            self._write.release()

    def owner_alive(self, owner: str) -> bool:
        """Whether the ledger ``owner`` may still be running: an SQLite file is used on one
        machine, so an owner of this host is dead once its process is gone; an owner of
        another host (a file on a shared disk) is never taken for dead."""
        host, pid, _ = owner.rsplit(":", 2)
        if owner == self.owner or host != socket.gethostname():
            return True
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            return False
        except (PermissionError, ValueError, OverflowError):
            return True
        return True

    @contextlib.contextmanager
    def owner_lock(self, owner: str) -> Iterator[bool]:
        """Yields whether ``owner`` is dead, so that its calls may be settled."""
        yield not self.owner_alive(owner)

    def close(self) -> None:
        """Close every connection this store opened."""
        with self._write, self._registry:
            for db in self._connections:
                db.close()
            self._connections.clear()
            if self._file_lock is not None:
                self._file_lock.close()


class _Wait:
    """One wait for a :class:`_FileLock`: ``done`` once ``granted`` (or once ``flock``
    failed with ``error``); ``abandoned`` when its thread stopped waiting (then the lock,
    once got, is let go)."""

    def __init__(self) -> None:
        self.done = threading.Event()
        self.granted = False
        self.abandoned = False
        self.error: OSError | None = None


class _FileLock:
    """An exclusive ``flock`` of the file ``path`` (created if missing) that a thread waits
    for at most a given time.

    ``flock`` wakes a waiter as soon as the lock is free but cannot give up: a wait that
    finds the lock held is handed to a waiter thread (one per lock, started on the first
    such wait), and the caller waits for it with a timeout. A wait given up on stays
    queued: when the waiter gets the lock for it, it lets it go at once. Not reentrant;
    one thread at a time waits for it (the store's process lock sees to that).
    """

    def __init__(self, path: str):
        self.path = path
        self._file = open(path, "ab")
        self._state = threading.Lock()
        self._waits: queue.SimpleQueue[_Wait | None] = queue.SimpleQueue()
        self._pending = 0  # waits handed to the waiter and not yet granted or let go
        self._waiter: threading.Thread | None = None

    def acquire(self, timeout: float | None) -> bool:
        """Take the lock within ``timeout`` seconds (``None``: however long it takes);
        whether it was taken. Raises ``OSError`` when ``flock`` fails."""
        with self._state:
            if self._pending == 0:  # else the waiter's flock, still pending, comes first
                try:
                    fcntl.flock(self._file, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    return True
                except BlockingIOError:
                    pass
            if self._waiter is None:
                waiter = threading.Thread(
                    target=self._wait_in_turn, name="s402gen-ledger-lock", daemon=True
                )
                waiter.start()
                self._waiter = waiter
            wait = _Wait()
            self._pending += 1
        self._waits.put(wait)
        try:
            wait.done.wait(None if timeout is None else max(timeout, 0.0))
        finally:  # given up on (or interrupted): the waiter lets the lock go once got
            with self._state:
                wait.abandoned = not wait.granted
        if wait.error is not None:
            raise wait.error
        return wait.granted

    def release(self) -> None:
        """Let the lock go (taken by :meth:`acquire`)."""
        fcntl.flock(self._file, fcntl.LOCK_UN)

    def _wait_in_turn(self) -> None:
        while (wait := self._waits.get()) is not None:
            try:
                fcntl.flock(self._file, fcntl.LOCK_EX)
            except OSError as exc:  # e.g. ENOLCK: told to the one waiting, if any
                with self._state:
                    self._pending -= 1
                    wait.error = exc
                    wait.done.set()
                continue
            with self._state:
                self._pending -= 1
                if wait.abandoned:
                    fcntl.flock(self._file, fcntl.LOCK_UN)
                else:
                    wait.granted = True
                    wait.done.set()
        self._file.close()

    def close(self) -> None:
        """Close the file (once the waiter, if any, is done with the waits it holds)."""
        if self._waiter is None:
            self._file.close()
        else:
            self._waits.put(None)


def _advisory_key(owner: str) -> int:
    """A signed 64-bit advisory lock key for an owner name."""
    return int.from_bytes(
        hashlib.blake2b(owner.encode(), digest_size=8).digest(), "big", signed=True
    )


class PostgresStore:
    """A PostgreSQL ledger at a ``postgresql://`` URL (psycopg 3 and its pool), migrated on open.

    Transactions are PostgreSQL's default READ COMMITTED: every write the
    ledger makes is a guarded ``UPDATE`` (``... WHERE used_calls < max_calls``),
    which PostgreSQL re-checks on the newest row after waiting for a
    concurrent writer, so replicas never spend one call twice. Each open
    ledger holds a session advisory lock named after :attr:`owner` on a
    connection of its own for as long as it is open; PostgreSQL drops it
    when that process dies, which is how another replica tells a dead owner.
    """

    dialect = "postgres"

    def __init__(self, url: str):
        import psycopg
        from psycopg_pool import ConnectionPool

        self.url = url
        self.owner = new_owner()
        self._owner_lock = threading.Lock()
        self._owner_db = psycopg.connect(url, autocommit=True)
        self._owner_db.execute("SELECT pg_advisory_lock(%s)", (_advisory_key(self.owner),))
        self._pool = ConnectionPool(
            url,
            min_size=1,
            max_size=POSTGRES_POOL_SIZE,
            # a row or table held by another session past the busy timeout is an error
            # (LedgerBusy), as SQLite's busy_timeout is, rather than an endless wait
            kwargs={"autocommit": True, "options": f"-c lock_timeout={BUSY_TIMEOUT_MS}"},
            timeout=BUSY_TIMEOUT_MS / 1000,
            open=True,
            name="s402gen-ledger",
        )
        try:
            with self.transaction(write=True, patient=True) as tx:
                tx.run("SELECT pg_advisory_xact_lock(?)", (_MIGRATION_LOCK,))
                tx.run("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
                row = tx.one("SELECT max(version) FROM schema_version")
                for migration in ledger_schema.pending((row[0] or 0) if row else 0):
                    for statement in migration.sql(self.dialect):
                        tx.run(statement)
                tx.run("DELETE FROM schema_version")
                tx.run(
                    "INSERT INTO schema_version (version) VALUES (?)",
                    (ledger_schema.SCHEMA_VERSION,),
                )
        except BaseException:
            self.close()
            raise

    @contextlib.contextmanager
    def transaction(
        self, write: bool = False, durable: bool = False, patient: bool = False
    ) -> Iterator[Transaction]:
        """A transaction on a pooled connection (PostgreSQL commits are durable already);
        ``patient``: its statements wait for the rows and tables they need without a limit
        (``lock_timeout`` 0; as :meth:`SQLiteStore.transaction`'s). Without ``write``, each
        statement reads the latest commits on its own. Raises :class:`LedgerBusy` when a
        lock stays held or no connection comes within :data:`BUSY_TIMEOUT_MS`."""
        with _busy_as_ledger_busy(), self._pool.connection() as db:
            if not write:
                yield Transaction(db.cursor(), postgres=True)
                return
            with db.transaction():
                if patient:
                    db.execute("SET LOCAL lock_timeout = 0")
                yield Transaction(db.cursor(), postgres=True)

    @contextlib.contextmanager
    def owner_lock(self, owner: str) -> Iterator[bool]:
        """Yields whether ``owner`` is dead (its advisory lock could be taken); holds that
        lock meanwhile, so that two replicas never settle one owner's calls at once."""
        if owner == self.owner:
            yield False
            return
        key = _advisory_key(owner)
        with self._owner_lock:
            taken = self._owner_db.execute("SELECT pg_try_advisory_lock(%s)", (key,)).fetchone()[0]
            try:
                yield bool(taken)
            finally:
                if taken:
                    self._owner_db.execute("SELECT pg_advisory_unlock(%s)", (key,))

    def close(self) -> None:
        """Close the pool and the owner's connection (which releases its advisory lock)."""
        self._pool.close()
        self._owner_db.close()


class LedgerBusy(Exception):
    """The ledger stayed held by someone else past :data:`BUSY_TIMEOUT_MS` (or, on
    PostgreSQL, could not be reached): the transaction did nothing. The gateway answers
    503 with ``Retry-After``. Raised by the stores' ``transaction``: from the driver's
    error (``__cause__``), or, on SQLite, when the writers' locks stay held."""


def _is_busy(exc: BaseException) -> bool:
    """Whether the driver's ``exc`` means the ledger was held or unreachable: SQLite's
    busy or locked (``sqlite_errorname``); once a PostgreSQL ledger is open (psycopg
    imported), psycopg's ``OperationalError`` (a ``lock_timeout``, a lost connection) and
    the pool's ``PoolTimeout``. Any other error is a bug, not a busy ledger."""
    if isinstance(exc, sqlite3.OperationalError):
        name = getattr(exc, "sqlite_errorname", "")
        return name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED"))
    psycopg, pool = sys.modules.get("psycopg"), sys.modules.get("psycopg_pool")
    return (psycopg is not None and isinstance(exc, psycopg.OperationalError)) or (
        pool is not None and isinstance(exc, pool.PoolTimeout)
    )


@contextlib.contextmanager
def _busy_as_ledger_busy() -> Iterator[None]:
    """Turn the driver's busy errors raised in the block into :class:`LedgerBusy`."""
    try:
        yield
    except Exception as exc:
        if _is_busy(exc):
            raise LedgerBusy(str(exc)) from exc
        raise


def open_store(location: str | Path) -> SQLiteStore | PostgresStore:
    """The store of a ``--ledger`` value: a ``postgresql://`` URL or an SQLite path.

    Raises ``RuntimeError`` (:class:`~.ledger_schema.SchemaTooNew`) for a ledger
    written by a newer s402gen, and the driver's errors when it cannot connect.
    """
    if is_postgres(location):
        return PostgresStore(str(location))
    return SQLiteStore(location)
