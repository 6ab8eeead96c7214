"""The payment ledger through its public interface: calls per token, expiry, client
binding, the SQL guard on its own, the database file, and what providers are told."""

from __future__ import annotations

import dataclasses
import sqlite3
from pathlib import Path

import pytest

from s402gen.runtime import payments
from s402gen.runtime.generated import load_generated
from s402gen.runtime.payments import DevProvider, Ledger, PaymentRefused, Settlement

from .conftest import GENERATED

SPEC = load_generated(GENERATED).specs[0]
EXPIRED, USED_UP, NO_CLIENT, NOT_ALLOWED = (
    "payment token expired",
    "payment token has no remaining calls",
    "api key required",
    "api key is not allowed to call this service",
)


def _spec(**pricing):
    """The first generated service with some pricing fields replaced."""
    return dataclasses.replace(SPEC, pricing=dataclasses.replace(SPEC.pricing, **pricing))


def _spend_all(ledger: Ledger, token: str) -> int:
    """How many calls ``token`` pays for before it is refused as used up."""
    for spent in range(100):
        try:
            ledger.spend(token, SPEC.service_id, None)
        except PaymentRefused as refused:
            assert str(refused) == USED_UP
            return spent
    raise AssertionError("never used up")


@pytest.mark.parametrize(
    ("allow_reuse", "max_calls", "calls"), [(True, 3, 3), (False, 3, 1), (True, 1, 1)]
)
def test_calls_per_payment(allow_reuse: bool, max_calls: int, calls: int) -> None:
    ledger = Ledger()
    spec = _spec(allow_reuse=allow_reuse, max_calls=max_calls)
    payment = ledger.create(spec, DevProvider(), "", spec.payment.provider_id)
    assert payment.max_calls == calls
    assert _spend_all(ledger, payment.token) == calls


def test_token_expires_at_exactly_its_ttl() -> None:
    now = [1000.0]
    ledger = Ledger(clock=lambda: now[0], ttl=10)
    first = ledger.create(SPEC, DevProvider(), "", SPEC.payment.provider_id)
    second = ledger.create(SPEC, DevProvider(), "", SPEC.payment.provider_id)
    now[0] = 1009.5
    assert ledger.spend(first.token, SPEC.service_id, None).used_calls == 1
    now[0] = 1010.0
    with pytest.raises(PaymentRefused, match=EXPIRED):
        ledger.spend(second.token, SPEC.service_id, None)


def test_client_binding_follows_the_pricing() -> None:
    ledger = Ledger()
    unbound = _spec(bind_client=False)
    payment = ledger.create(unbound, DevProvider(), "client-a", unbound.payment.provider_id)
    assert ledger.spend(payment.token, SPEC.service_id, "client-b").used_calls == 1
    bound = _spec(bind_client=True)
    payment = ledger.create(bound, DevProvider(), "client-a", bound.payment.provider_id)
    with pytest.raises(PaymentRefused, match=NOT_ALLOWED):
        ledger.spend(payment.token, SPEC.service_id, "client-b")
    with pytest.raises(PaymentRefused, match=NO_CLIENT):
        ledger.spend(payment.token, SPEC.service_id, None)
    assert ledger.spend(payment.token, SPEC.service_id, "client-a").used_calls == 1


def test_sql_guard_alone_refuses_a_used_up_token(monkeypatch: pytest.MonkeyPatch) -> None:
    """Defence in depth: with the checks before it switched off, the guarded UPDATE
    still never spends past ``maxCalls``, and nothing changes."""
    ledger = Ledger()
    payment = ledger.create(SPEC, DevProvider(), "", SPEC.payment.provider_id)
    ledger.spend(payment.token, SPEC.service_id, None)
    monkeypatch.setattr(payments, "_refuse", lambda *args: None)
    with pytest.raises(PaymentRefused) as refused:
        ledger.spend(payment.token, SPEC.service_id, None)
    assert str(refused.value) == USED_UP
    assert ledger.find_token(payment.token).used_calls == 1


def test_give_back_returns_one_call_and_never_goes_below_zero() -> None:
    ledger = Ledger()
    payment = ledger.create(SPEC, DevProvider(), "", SPEC.payment.provider_id)
    reserved = ledger.reserve(payment.token, SPEC.service_id, None)
    assert ledger.give_back(reserved.call_id) is True
    assert ledger.get(payment.payment_id).used_calls == 0
    assert ledger.give_back(reserved.call_id) is False  # given back once, not twice
    assert ledger.get(payment.payment_id).used_calls == 0
    assert ledger.spend(payment.token, SPEC.service_id, None).used_calls == 1


def test_file_ledger_is_created_with_its_folders_in_wal_mode(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "ledger.sqlite3"
    ledger = Ledger(path)
    payment = ledger.create(SPEC, DevProvider(), "", SPEC.payment.provider_id)
    ledger.close()
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert Ledger(path).find_token(payment.token) == payment  # it persists


def test_memory_ledger_writes_no_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    ledger = Ledger()
    ledger.create(SPEC, DevProvider(), "", SPEC.payment.provider_id)
    ledger.close()
    assert list(tmp_path.iterdir()) == []


class _RecordingProvider:
    """A provider that settles later, as an x402 facilitator would; it records its calls."""

    name = "recording"

    def __init__(self) -> None:
        self.opened: list[tuple] = []

    def open(self, payment_id: str, amount_cents: int, currency: str) -> Settlement:
        self.opened.append((payment_id, amount_cents, currency))
        return Settlement("pending", "0xpayee", None)

    def refresh(self, payment) -> Settlement:
        return Settlement("paid", payment.pay_to, 1234.0)


def test_provider_is_told_what_to_charge_and_settles_on_verify() -> None:
    ledger = Ledger()
    provider = _RecordingProvider()
    payment = ledger.create(SPEC, provider, "", SPEC.payment.provider_id)
    assert provider.opened == [
        (payment.payment_id, SPEC.pricing.amount_cents, SPEC.pricing.currency)
    ]
    assert (payment.status, payment.provider, payment.pay_to) == ("pending", "recording", "0xpayee")
    with pytest.raises(PaymentRefused, match="payment required"):
        ledger.spend(payment.token, SPEC.service_id, None)
    verified = ledger.verify(payment.payment_id, provider)
    assert (verified.status, verified.paid_at) == ("paid", 1234.0)
    assert ledger.spend(payment.token, SPEC.service_id, None).used_calls == 1
    assert ledger.verify("pay_unknown", provider) is None


def test_dev_provider_keeps_the_payment_time_on_verify() -> None:
    ledger = Ledger()
    provider = DevProvider(clock=lambda: 42.0)
    payment = ledger.create(SPEC, provider, "", SPEC.payment.provider_id)
    assert payment.paid_at == 42.0
    assert ledger.verify(payment.payment_id, provider).paid_at == 42.0


def test_a_statement_sqlite_refuses_is_not_a_busy_ledger(tmp_path: Path) -> None:
    """Only a ledger held past its busy timeout answers 503 "retry later"; any other error
    of the driver is a bug, a 500 (it answered 503 too, and a client retried it for ever)."""
    from fastapi.testclient import TestClient

    from s402gen.runtime.app import create_app

    from .conftest import LOOPBACK_BASE

    ledger = Ledger(tmp_path / "ledger.sqlite3")
    with ledger.store.transaction(write=True) as tx:
        tx.run("DROP TABLE payments")
    app = create_app(GENERATED, ledger=ledger)
    with TestClient(app, base_url=LOOPBACK_BASE, raise_server_exceptions=False) as client:
        answer = client.post("/api/payments", json={"serviceId": "face-detection"})
    assert answer.status_code == 500
    ledger.close()


_HOLD_LOCK = """
import fcntl, os, signal, sys
held = open(sys.argv[1], "ab")
fcntl.flock(held, fcntl.LOCK_EX)
print("held", flush=True)
if sys.argv[2] == "stop":
    os.kill(os.getpid(), signal.SIGSTOP)
sys.stdin.readline()  # held until told
"""


def _holder(tmp_path: Path, how: str):
    """A process holding the writers' file lock of ``tmp_path``'s ledger: stopped
    (``how="stop"``), or until a line comes on its stdin (``how="stdin"``)."""
    import subprocess
    import sys

    lock = str(tmp_path / "ledger.sqlite3.lock")
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLD_LOCK, lock, how],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout.readline() == "held\n"
    return holder


def _kill(holder) -> None:
    import os
    import signal

    os.kill(holder.pid, signal.SIGKILL)
    holder.wait()


def test_a_stopped_process_holding_the_file_lock_makes_writes_busy_not_stuck(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A write waits for the other processes' file lock no longer than the busy timeout,
    then raises LedgerBusy (503) having done nothing; the wait it gave up on, once its
    lock comes, lets it go (another process can take it)."""
    import fcntl
    import time

    from s402gen.runtime import ledger_store

    ledger = Ledger(tmp_path / "ledger.sqlite3")
    monkeypatch.setattr(ledger_store, "BUSY_TIMEOUT_MS", 300)
    holder = _holder(tmp_path, "stop")
    try:
        for _ in range(2):  # the second queues behind the first's abandoned wait
            started = time.monotonic()
            with pytest.raises(ledger_store.LedgerBusy):
                ledger.create(SPEC, DevProvider(), "", SPEC.payment.provider_id)
            assert 0.25 < time.monotonic() - started < 3
    finally:
        _kill(holder)
    with ledger.store.transaction() as tx:
        assert tx.one("SELECT COUNT(*) FROM payments")[0] == 0
    payment = ledger.create(SPEC, DevProvider(), "", SPEC.payment.provider_id)
    assert ledger.find_token(payment.token) == payment
    with open(tmp_path / "ledger.sqlite3.lock", "ab") as other:
        fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)  # free: nothing kept it
    ledger.close()


def _in_thread(function):
    """``function()`` started in a thread; returns the thread and a list that gets its
    result (or the exception it raised)."""
    import threading

    outcome: list = []

    def run() -> None:
        try:
            outcome.append(function())
        except Exception as exc:  # noqa: BLE001 - handed to the test
            outcome.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, outcome


def test_a_write_that_records_what_happened_waits_for_the_lock_however_long(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Finishing a call (the upstream answered) is not given up on: a 503 then would lose
    it. It waits past the busy timeout, and is done once the lock is free."""
    from s402gen.runtime import ledger_store

    ledger = Ledger(tmp_path / "ledger.sqlite3")
    payment = ledger.create(SPEC, DevProvider(), "", SPEC.payment.provider_id)
    reservation = ledger.reserve(payment.token, SPEC.service_id, None)
    assert ledger.mark_sent(reservation.call_id)
    monkeypatch.setattr(ledger_store, "BUSY_TIMEOUT_MS", 100)
    holder = _holder(tmp_path, "stop")
    try:
        thread, outcome = _in_thread(lambda: ledger.finish(reservation.call_id))
        thread.join(1.0)  # ten busy timeouts
        assert thread.is_alive() and outcome == []
    finally:
        _kill(holder)
    thread.join(10)
    assert outcome == [True]
    assert ledger.call_state(reservation.call_id) == "done"
    ledger.close()


def test_a_write_that_finds_the_file_lock_held_for_a_moment_waits_for_it(
    tmp_path: Path,
) -> None:
    ledger = Ledger(tmp_path / "ledger.sqlite3")
    holder = _holder(tmp_path, "stdin")
    thread, outcome = _in_thread(
        lambda: ledger.create(SPEC, DevProvider(), "", SPEC.payment.provider_id)
    )
    thread.join(0.3)
    assert thread.is_alive() and outcome == []  # waiting for the lock
    holder.communicate("go\n", timeout=10)  # it lets the lock go and ends
    thread.join(10)
    (payment,) = outcome
    assert ledger.find_token(payment.token) == payment
    ledger.close()
