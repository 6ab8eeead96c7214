"""Gateway replicas on one ledger, as real processes: three ``s402gen serve`` on one
PostgreSQL database (started by the tests with pgserver's bundled binaries), and
``serve`` replicas SIGKILLed in the middle of paid calls, on PostgreSQL and on SQLite."""

from __future__ import annotations

from pathlib import Path

import pytest

from s402gen.runtime.ledger_schema import MIGRATIONS, SCHEMA_VERSION
from s402gen.runtime.payments import MAX_GIVE_BACKS, DevProvider, Ledger, PaymentRefused

from .conftest import GENERATED, LOOPBACK_BASE
from .ledger_replicas import (
    crash_mid_calls,
    crash_with_calls_in_every_state,
    postgres_server,
    postgres_url,
    race_one_token,
)
from .test_ledger_calls import SPEC, check_sigkill_recovery

__all__ = ["postgres_server", "postgres_url"]  # the fixtures, used by name

pytestmark = pytest.mark.slow


def test_postgres_ledger_spends_gives_back_and_keeps_its_version(postgres_url: str) -> None:
    import psycopg

    ledger = Ledger(postgres_url)
    payment = ledger.create(SPEC, DevProvider(), "client-a", SPEC.payment.provider_id)
    assert ledger.get(payment.payment_id) == payment  # times and flags round-trip exactly
    for _ in range(MAX_GIVE_BACKS):
        reserved = ledger.reserve(payment.token, SPEC.service_id, "client-a")
        assert ledger.mark_sent(reserved.call_id) and ledger.give_back(reserved.call_id)
    reserved = ledger.reserve(payment.token, SPEC.service_id, "client-a")
    assert ledger.mark_sent(reserved.call_id) and not ledger.give_back(reserved.call_id)
    with pytest.raises(PaymentRefused, match="no remaining calls"):
        ledger.reserve(payment.token, SPEC.service_id, "client-a")
    assert ledger.claim_signature("sig") and not ledger.claim_signature("sig")
    ledger.close()
    with psycopg.connect(postgres_url) as db:
        assert db.execute("SELECT version FROM schema_version").fetchall() == [(SCHEMA_VERSION,)]
    Ledger(postgres_url).close()  # opening again migrates nothing
    with psycopg.connect(postgres_url) as db:
        db.execute("UPDATE schema_version SET version = %s", (SCHEMA_VERSION + 1,))
    with pytest.raises(RuntimeError, match="newer than this s402gen"):
        Ledger(postgres_url)


def test_api_keys_live_in_the_postgres_ledger_shared_by_replicas(postgres_url: str) -> None:
    """A key issued through one connection is accepted through another (a replica's) and
    stored only as its digest; revoking it refuses it everywhere."""
    import psycopg

    from s402gen.runtime.keys import KeyStore, key_digest

    issuer, replica = KeyStore(postgres_url), KeyStore(postgres_url)
    try:
        record, key = issuer.create("alice")
        assert replica.authenticate(key) == record
        with psycopg.connect(postgres_url) as db:
            rows = db.execute("SELECT key_hash FROM api_keys WHERE key_id = %s", (record.key_id,))
            assert rows.fetchall() == [(key_digest(key),)]
        issuer.revoke(record.key_id)
        assert replica.authenticate(key) is None
    finally:
        issuer.close()
        replica.close()


def test_a_postgres_ledger_held_by_another_session_answers_503(postgres_url: str) -> None:
    """Another session holds the payments table past the busy timeout: the payment request
    answers 503 with Retry-After (it waited forever before), and the ledger works after."""
    import psycopg
    from fastapi.testclient import TestClient

    from s402gen.runtime import protocol
    from s402gen.runtime.app import create_app

    ledger = Ledger(postgres_url)
    try:
        with psycopg.connect(postgres_url) as holder:  # a transaction, open until the block ends
            holder.execute("LOCK TABLE payments IN ACCESS EXCLUSIVE MODE")
            with TestClient(create_app(GENERATED, ledger=ledger), base_url=LOOPBACK_BASE) as http:
                busy = http.post("/api/payments", json={"serviceId": SPEC.service_id})
        assert busy.status_code == 503
        assert busy.headers["retry-after"] == str(protocol.RETRY_AFTER_SECONDS)
        assert busy.json() == {"error": protocol.LEDGER_BUSY}
        assert ledger.create(SPEC, DevProvider(), "", SPEC.payment.provider_id)  # usable again
    finally:
        ledger.close()


def test_a_postgres_write_that_records_what_happened_waits_for_the_rows(
    postgres_url: str,
) -> None:
    """As on SQLite: finishing a call is not given up on after the busy timeout (a 503
    would lose it); it is done once the other session lets the table go."""
    import threading

    import psycopg

    from s402gen.runtime import ledger_store

    ledger = Ledger(postgres_url)
    try:
        payment = ledger.create(SPEC, DevProvider(), "", SPEC.payment.provider_id)
        reservation = ledger.reserve(payment.token, SPEC.service_id, None)
        with psycopg.connect(postgres_url) as holder:
            holder.execute("LOCK TABLE calls IN ACCESS EXCLUSIVE MODE")
            outcome: list = []
            thread = threading.Thread(
                target=lambda: outcome.append(ledger.finish(reservation.call_id)), daemon=True
            )
            thread.start()
            thread.join(ledger_store.BUSY_TIMEOUT_MS / 1000 + 1)
            assert thread.is_alive() and outcome == []  # past the busy timeout, waiting
        thread.join(10)  # the holder's transaction ended with the block
        assert outcome == [True]
        assert ledger.call_state(reservation.call_id) == "done"
    finally:
        ledger.close()


def test_postgres_schema_2_is_migrated(postgres_url: str) -> None:
    import psycopg

    with psycopg.connect(postgres_url) as db:
        for migration in MIGRATIONS[:2]:
            for statement in migration.sql("postgres"):
                db.execute(statement)
        db.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
        db.execute("INSERT INTO schema_version VALUES (2)")
        db.execute(
            "INSERT INTO payments VALUES ('pay_1', 'face-detection', 'legacy', 'x402-base-usdc', "
            "'dev', 20, 'USD', 'per_call', 1, 0, 'paid', 'tok', '', 0, 'dev:server402', 0, 9e9, "
            "0, NULL, NULL, NULL, NULL)"
        )
    ledger = Ledger(postgres_url)
    assert ledger.spend("tok", "face-detection", None).give_backs == 0
    ledger.close()


def test_sigkill_recovery_on_postgres(postgres_url: str) -> None:
    check_sigkill_recovery(postgres_url)


def test_three_replicas_on_postgres_spend_a_single_use_token_once(
    postgres_url: str, tmp_path: Path
) -> None:
    statuses = race_one_token(postgres_url, tmp_path, replicas=3, calls=100)
    assert statuses == [200] + [402] * 99


def test_replica_sigkilled_mid_calls_on_postgres(postgres_url: str, tmp_path: Path) -> None:
    crash_mid_calls(postgres_url, tmp_path, replicas=3)


def test_serve_sigkilled_mid_calls_on_sqlite(tmp_path: Path) -> None:
    crash_mid_calls(str(tmp_path / "ledger.sqlite3"), tmp_path, replicas=2)


def test_a_replica_that_lost_its_session_never_sends_a_call_given_back(
    postgres_url: str,
) -> None:
    """Replica A's PostgreSQL session (and so its advisory lock) is gone while a call is
    reserved: replica B, opening, gives the call back; A then must not send it."""
    from s402gen.runtime.service import ServiceRuntime
    from s402gen.runtime.upstream import UpstreamError

    class Unreachable:
        def call(self, spec, arguments):
            raise AssertionError("a call given back was sent upstream")

    a = Ledger(postgres_url)
    payment = a.create(SPEC, DevProvider(), "", SPEC.payment.provider_id)
    reserved = a.reserve(payment.token, SPEC.service_id, None)
    a._store._owner_db.close()  # as when the connection to the database breaks
    b = Ledger(postgres_url)
    assert (b.recovered.given_back, b.recovered.settled) == (1, 0)
    runtime = ServiceRuntime([SPEC], ledger=a, upstream=Unreachable())
    with pytest.raises(UpstreamError, match="CallGivenBack"):
        runtime._call_reserved(SPEC, {"ImageURL": "https://example.com/a.jpg"}, reserved.call_id)
    assert b.call_state(reserved.call_id) == "given_back"
    assert b.get(payment.payment_id).remaining_calls == 1
    a.close()
    b.close()


def test_serve_sigkilled_with_calls_reserved_and_sent_on_sqlite(tmp_path: Path) -> None:
    crash_with_calls_in_every_state(str(tmp_path / "ledger.sqlite3"), tmp_path)


def test_serve_sigkilled_with_calls_reserved_and_sent_on_postgres(
    postgres_url: str, tmp_path: Path
) -> None:
    crash_with_calls_in_every_state(postgres_url, tmp_path)
