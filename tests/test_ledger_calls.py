"""Each paid call's state in the ledger, what a crash leaves and what a restart settles,
the bound on give-backs, and the migration from the schema-2 ledger of earlier releases."""

from __future__ import annotations

import dataclasses
import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

import s402gen
from s402gen.runtime import payments
from s402gen.runtime.emulator import FAULT_MARKER, start_emulator
from s402gen.runtime.generated import load_generated
from s402gen.runtime.ledger_schema import MIGRATIONS, SCHEMA_VERSION, pending
from s402gen.runtime.payments import (
    MAX_GIVE_BACKS,
    DevProvider,
    Ledger,
    PaymentRefused,
    Recovery,
)
from s402gen.runtime.service import ServiceRuntime, UpstreamFailed
from s402gen.runtime.upstream import AlibabaCloudUpstream, Credentials

from .conftest import GENERATED, run_cli

SPECS = load_generated(GENERATED).specs
SPEC = next(spec for spec in SPECS if spec.service_id == "face-detection")
USED_UP = "payment token has no remaining calls"


def _single_use(ledger: Ledger):
    return ledger.create(SPEC, DevProvider(), "", SPEC.payment.provider_id)


def test_a_call_goes_reserved_sent_done() -> None:
    ledger = Ledger()
    payment = _single_use(ledger)
    reserved = ledger.reserve(payment.token, SPEC.service_id, None)
    assert reserved.payment.used_calls == 1
    assert ledger.call_state(reserved.call_id) == "reserved"
    assert ledger.mark_sent(reserved.call_id) is True
    assert ledger.call_state(reserved.call_id) == "sent"
    assert ledger.mark_sent(reserved.call_id) is False  # only a reserved call is sent
    assert ledger.finish(reserved.call_id) is True
    assert ledger.call_state(reserved.call_id) == "done"
    assert ledger.give_back(reserved.call_id) is False  # a done call stays charged
    assert ledger.get(payment.payment_id).used_calls == 1
    assert ledger.call_state("call_unknown") is None


def test_give_backs_are_bounded_per_payment() -> None:
    """One single-use token pays for at most 1 + MAX_GIVE_BACKS failing upstream calls."""
    ledger = Ledger()
    payment = _single_use(ledger)
    answers = []
    for _ in range(MAX_GIVE_BACKS + 1):
        reserved = ledger.reserve(payment.token, SPEC.service_id, None)
        assert ledger.mark_sent(reserved.call_id)
        answers.append(ledger.give_back(reserved.call_id))
    assert answers == [True] * MAX_GIVE_BACKS + [False]
    assert ledger.call_state(reserved.call_id) == "done"  # the last failing call is charged
    record = ledger.get(payment.payment_id)
    assert (record.used_calls, record.give_backs) == (1, MAX_GIVE_BACKS)
    with pytest.raises(PaymentRefused, match=USED_UP):
        ledger.reserve(payment.token, SPEC.service_id, None)


def test_a_call_never_sent_is_given_back_without_counting() -> None:
    ledger = Ledger()
    payment = _single_use(ledger)
    for _ in range(MAX_GIVE_BACKS + 2):
        assert ledger.give_back(ledger.reserve(payment.token, SPEC.service_id, None).call_id)
    assert ledger.get(payment.payment_id).give_backs == 0


class _Counting:
    """The real signed upstream client, counting the requests it sends."""

    def __init__(self, upstream) -> None:
        self.upstream, self.sent = upstream, 0

    def call(self, spec, arguments):
        self.sent += 1
        return self.upstream.call(spec, arguments)


def test_failing_calls_cannot_be_farmed_through_the_service() -> None:
    """Twenty failing calls on one single-use token reach the upstream 1 + MAX_GIVE_BACKS
    times; the rest are refused with 402 before the upstream is asked."""
    emulator = start_emulator(SPECS)
    try:
        upstream = _Counting(
            AlibabaCloudUpstream(
                Credentials("test-key", "test-secret"), endpoint=emulator.endpoints, protocol="http"
            )
        )
        runtime = ServiceRuntime(SPECS, ledger=Ledger(), upstream=upstream)
        payment = runtime.create_payment(SPEC.service_id, None, None)
        failing = {"ImageURL": f"https://example.com/{FAULT_MARKER}.jpg"}  # an upstream fault
        outcomes = []
        for _ in range(20):
            try:
                runtime.call(SPEC, failing, payment.token, None)
                outcomes.append("200")
            except UpstreamFailed:
                outcomes.append("502")
            except Exception as refused:  # PaymentNeeded
                outcomes.append(f"402 {refused}")
    finally:
        emulator.stop()
    assert upstream.sent == 1 + MAX_GIVE_BACKS
    assert outcomes == ["502"] * (1 + MAX_GIVE_BACKS) + [f"402 {USED_UP}"] * (19 - MAX_GIVE_BACKS)


def test_schema_2_ledger_is_migrated_keeping_payments_and_spent_calls(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite3"
    with sqlite3.connect(path) as db:  # a ledger as the previous release wrote it
        for migration in pending(0)[:2]:
            for statement in migration.sql("sqlite"):
                db.execute(statement)
        db.execute("PRAGMA user_version = 2")
        db.execute(
            "INSERT INTO payments VALUES ('pay_1', 'face-detection', 'legacy', 'x402-base-usdc', "
            "'dev', 20, 'USD', 'per_call', 2, 1, 'paid', 'tok', '', 0, 'dev:server402', 0, 9e9, 0, "
            "NULL, NULL, NULL, NULL)"
        )
    ledger = Ledger(path)
    kept = ledger.get("pay_1")
    assert (kept.used_calls, kept.remaining_calls, kept.give_backs) == (1, 1, 0)
    reserved = ledger.reserve("tok", "face-detection", None)
    assert ledger.call_state(reserved.call_id) == "reserved"
    ledger.close()
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 4
    assert [m.version for m in MIGRATIONS] == list(range(1, SCHEMA_VERSION + 1))


def test_a_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite3"
    Ledger(path).close()
    with sqlite3.connect(path) as db:
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(RuntimeError, match="newer than this s402gen"):
        Ledger(path)


def test_money_trail_commit_is_durable_and_others_are_not_fsynced(tmp_path: Path) -> None:
    """WAL with synchronous=NORMAL on every connection (the durability argument is in
    ledger_store's docstring), back to NORMAL after the FULL commit of a settlement."""
    ledger = Ledger(tmp_path / "ledger.sqlite3")
    payment = ledger.create(SPEC, payments.DevProvider(), "", SPEC.payment.provider_id)
    trail = payments.MoneyTrail("0xtx", "0xpayer", "eip155:84532", "200000")
    ledger.settle(payment.payment_id, "sig", trail)
    with ledger._store.transaction() as tx:
        assert tx.one("PRAGMA synchronous")[0] == 1  # NORMAL
        assert tx.one("PRAGMA journal_mode")[0] == "wal"
    ledger.close()


# The worker of the crash test: open the ledger on a file, leave one call in each state,
# say "ready", then wait to be killed.
CRASHING = """
import json, sys, time
from s402gen.runtime.generated import load_generated
from s402gen.runtime.payments import DevProvider, Ledger

path, generated = sys.argv[1], sys.argv[2]
spec = next(s for s in load_generated(generated).specs if s.service_id == "face-detection")
ledger = Ledger(path)
made = [ledger.create(spec, DevProvider(), "", spec.payment.provider_id) for _ in range(4)]
calls = [ledger.reserve(p.token, spec.service_id, None).call_id for p in made[:3]]
ledger.mark_sent(calls[1])
ledger.mark_sent(calls[2]); ledger.finish(calls[2])
print(json.dumps({"tokens": [p.token for p in made], "calls": calls}), flush=True)
time.sleep(600)
"""


def _crash_worker(path: str) -> tuple[subprocess.Popen, dict]:
    import json

    env = dict(os.environ)
    package_root = str(Path(s402gen.__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [package_root, env.get("PYTHONPATH")]))
    worker = subprocess.Popen(
        [sys.executable, "-c", CRASHING, str(path), str(GENERATED)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    line = worker.stdout.readline()
    assert line, worker.stderr.read()
    return worker, json.loads(line)


def check_sigkill_recovery(location: str) -> None:
    """A process killed with calls reserved, sent and done on the ledger at ``location``: a
    live process's calls are left alone; once it is dead, the next open gives back the
    reserved call (its token pays again) and charges the sent one, once."""
    worker, made = _crash_worker(location)
    try:
        alive = Ledger(location)  # the worker still runs: nothing of its calls is touched
        assert alive.recovered == Recovery(0, 0)
        assert alive.call_state(made["calls"][0]) == "reserved"
        alive.close()
    finally:
        worker.send_signal(signal.SIGKILL)
        worker.wait()
        worker.stdout.close()
        worker.stderr.close()
    ledger = Ledger(location)
    assert ledger.recovered == Recovery(given_back=1, settled=1)
    states = [ledger.call_state(call) for call in made["calls"]]
    assert states == ["given_back", "done", "done"]
    used = [ledger.find_token(token).used_calls for token in made["tokens"]]
    assert used == [0, 1, 1, 0]
    assert ledger.spend(made["tokens"][0], SPEC.service_id, None).used_calls == 1
    again = Ledger(location)
    assert again.recovered == Recovery(0, 0)  # settled once, not at every open
    again.close()
    ledger.close()


@pytest.mark.slow
def test_sigkill_leaves_no_call_lost_or_counted_twice(tmp_path: Path) -> None:
    check_sigkill_recovery(str(tmp_path / "ledger.sqlite3"))


# Open (create and migrate) the ledger at the start line, then print its schema version.
OPENING = """
import sys
from s402gen.runtime.payments import Ledger
print("ready", flush=True)
sys.stdin.readline()
print(Ledger(sys.argv[1]).get("pay_none") is None, flush=True)
"""


@pytest.mark.slow
def test_replicas_starting_together_migrate_a_new_ledger_once(tmp_path: Path) -> None:
    """Six processes opening one new ledger file at once: each one migrates it or waits for
    the one that does (before, two could both run a step: "duplicate column name")."""
    env = dict(os.environ)
    package_root = str(Path(s402gen.__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [package_root, env.get("PYTHONPATH")]))
    path = tmp_path / "ledger.sqlite3"
    opening = [
        subprocess.Popen(
            [sys.executable, "-c", OPENING, str(path)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for _ in range(6)
    ]
    for process in opening:  # the start line: every process has imported s402gen
        assert process.stdout.readline() == "ready\n", process.stderr.read()
    for process in opening:
        process.stdin.write("go\n")
    for process in opening:
        process.stdin.flush()
    outcomes = [process.communicate(timeout=120) for process in opening]
    assert [out for out, _ in outcomes] == ["True\n"] * 6, [err for _, err in outcomes]
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION


def test_dataclass_fields_match_the_columns() -> None:
    """The record read back is the record created (every column in the Payment)."""
    ledger = Ledger()
    payment = _single_use(ledger)
    assert ledger.get(payment.payment_id) == payment
    names = [f.name for f in dataclasses.fields(payments.Payment)]
    assert names == [c.strip() for c in payments._COLUMNS.split(",")]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("ledger", "says"),
    [
        ("postgresql://s402gen:hunter2@127.0.0.1:1/ledger", "payment ledger (PostgreSQL): "),
        ("{tmp}/newer.sqlite3", "is newer than this s402gen"),
    ],
)
def test_a_ledger_that_cannot_be_opened_is_a_clean_error(
    tmp_path: Path, ledger: str, says: str
) -> None:
    """``serve`` and ``mcp`` say why in one line and exit 2: no traceback, no password."""
    newer = tmp_path / "newer.sqlite3"
    Ledger(newer).close()
    with sqlite3.connect(newer) as db:
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    location = ledger.format(tmp=tmp_path)
    code, _, err = run_cli("mcp", "--generated", str(GENERATED), "--upstream", "emulator",
                           "--ledger", location)  # fmt: skip
    assert code == 2
    last = err.splitlines()[-1]
    assert last.startswith("error: ") and says in last, err
    assert "Traceback" not in err and "hunter2" not in err
