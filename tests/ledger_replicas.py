"""Helpers of the ledger tests that run real processes: a PostgreSQL server (pgserver's
bundled binaries, on a unix socket in a temporary folder), an upstream emulator that can
hold its answers, and ``s402gen serve`` replicas sharing one ledger."""

from __future__ import annotations

import contextlib
import fcntl
import os
import secrets
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import httpx
import pytest

import s402gen
from s402gen.runtime.emulator import Emulator, start_emulator
from s402gen.runtime.generated import load_generated
from s402gen.runtime.serve import EMULATOR_CREDENTIALS

from .conftest import GENERATED, free_port

SPECS = load_generated(GENERATED).specs
SERVICE = "face-detection"
ENDPOINT = f"/api/tools/{SERVICE}"


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """A PostgreSQL server started for this test session; yields its ``postgresql://`` URL.

    Its data folder is a private temporary folder (removed at the end) rather than pytest's
    numbered ones, which a concurrent pytest run may rotate away while the server runs.
    """
    try:
        import pgserver
    except ImportError:  # pragma: no cover - the test extra installs it
        pytest.skip("pgserver is not installed (pip install -e '.[test]')")
    data = tempfile.mkdtemp(prefix="s402gen-pg-")
    try:
        server = pgserver.get_server(data, cleanup_mode="stop")
        try:
            yield server.get_uri()
        finally:
            server.cleanup()
    finally:
        shutil.rmtree(data, ignore_errors=True)


@pytest.fixture
def postgres_url(postgres_server: str) -> str:
    """A fresh, empty database on the session's PostgreSQL server."""
    import psycopg

    name = "ledger_" + secrets.token_hex(4)
    with psycopg.connect(postgres_server, autocommit=True) as db:
        db.execute(f"CREATE DATABASE {name}")
    return postgres_server.replace("/postgres?", f"/{name}?", 1)


@contextlib.contextmanager
def gated_emulator() -> Iterator[tuple[Emulator, threading.Event]]:
    """The upstream emulator with a gate: while the gate is closed, every request is
    recorded in ``emulator.calls`` and then held, unanswered, until the gate opens."""
    gate = threading.Event()
    gate.set()
    emulator = start_emulator(SPECS, credentials=[EMULATOR_CREDENTIALS])
    for server in emulator.servers.values():
        base = server.RequestHandlerClass

        class Held(base):  # type: ignore[valid-type,misc]
            def send_response(self, *args, **kwargs) -> None:
                gate.wait(60)
                super().send_response(*args, **kwargs)

        server.RequestHandlerClass = Held
    try:
        yield emulator, gate
    finally:
        gate.set()
        emulator.stop()


@dataclass
class Replica:
    """One ``s402gen serve`` process: its base URL, process and stderr log."""

    base: str
    process: subprocess.Popen
    log: Path

    def kill(self) -> None:
        """SIGKILL, then reap it (a zombie's pid would still look alive)."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self) -> None:
        """SIGTERM (a clean shutdown), or SIGKILL after 15 s."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()


def start_replicas(ledger: str, emulator: Emulator, folder: Path, count: int) -> list[Replica]:
    """Start ``count`` ``s402gen serve`` processes on ``ledger``, calling ``emulator``;
    returns once each answers (each has opened, migrated and recovered the ledger)."""
    exe = Path(sys.executable).parent / "s402gen"
    env = dict(os.environ)
    package_root = str(Path(s402gen.__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [package_root, env.get("PYTHONPATH")]))
    replicas = []
    for _ in range(count):
        port = free_port()
        log = folder / f"serve-{port}.log"
        command = [str(exe) if exe.exists() else "s402gen", "serve", "--generated", str(GENERATED)]
        command += ["--port", str(port), "--upstream", "emulator"]
        command += ["--upstream-endpoint", emulator.endpoint, "--ledger", ledger, "--no-api-keys"]
        with log.open("w") as err:
            process = subprocess.Popen(command, cwd=folder, stderr=err, env=env)
        replicas.append(Replica(f"http://127.0.0.1:{port}", process, log))
    for replica in replicas:
        deadline = time.monotonic() + 120
        while True:
            assert replica.process.poll() is None, replica.log.read_text()
            try:
                httpx.get(f"{replica.base}/api/catalog", timeout=2)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, replica.log.read_text()
                time.sleep(0.1)
    return replicas


def image(index: int) -> dict:
    """The body of call ``index``: its image URL names it, so the emulator's log does too."""
    return {"ImageURL": f"https://example.com/call-{index}.jpg"}


def upstream_runs(emulator: Emulator, index: int) -> int:
    """How many times the upstream ran call ``index``."""
    return sum(
        call.parameters.get("ImageURL") == image(index)["ImageURL"] for call in emulator.calls
    )


def crash_mid_calls(ledger: str, folder: Path, replicas: int) -> None:
    """SIGKILL one of ``replicas`` serve processes on ``ledger`` while it has paid calls in
    flight, restart it, and check that no payment is lost or counted twice.

    Twelve single-use tokens: calls 0-3 complete; calls 4-9 go to the replica that is
    killed and are held by the upstream (recorded there) when it dies; 10-11 are never
    called. After the restart, every token's ``usedCalls`` equals the number of times the
    upstream ran its call (spent ones ran once; the others pay again) and each held call
    is charged once.
    """
    with gated_emulator() as (emulator, gate):
        running = start_replicas(ledger, emulator, folder, replicas)
        victim = running[0]
        try:
            with httpx.Client(timeout=60) as http:
                payments = [
                    http.post(f"{running[i % replicas].base}/api/payments",
                              json={"serviceId": SERVICE}).json()
                    for i in range(12)
                ]  # fmt: skip
                for i in range(4):
                    answer = http.post(
                        f"{running[i % replicas].base}{ENDPOINT}",
                        json=image(i),
                        headers={"X-Payment-Token": payments[i]["token"]},
                    )
                    assert answer.status_code == 200, answer.text
            gate.clear()
            held = [
                threading.Thread(target=_call_quietly, args=(victim.base, payments[i], i))
                for i in range(4, 10)
            ]
            for thread in held:
                thread.start()
            deadline = time.monotonic() + 60
            while len(emulator.calls) < 10:
                assert time.monotonic() < deadline, "the held calls never reached the upstream"
                time.sleep(0.05)
            victim.kill()
            gate.set()
            for thread in held:
                thread.join(timeout=60)
            running[0] = start_replicas(ledger, emulator, folder, 1)[0]
            assert "6 sent calls charged" in running[0].log.read_text()
            with httpx.Client(timeout=60) as http:
                for i, payment in enumerate(payments):
                    record = http.get(
                        f"{running[i % replicas].base}/api/payments/{payment['paymentId']}"
                    ).json()
                    assert record["usedCalls"] == upstream_runs(emulator, i) == (i < 10), i
                for i in (10, 11):  # never called: they still pay, once
                    answer = http.post(
                        f"{running[i % replicas].base}{ENDPOINT}",
                        json=image(i),
                        headers={"X-Payment-Token": payments[i]["token"]},
                    )
                    assert answer.status_code == 200, answer.text
                    assert upstream_runs(emulator, i) == 1
        finally:
            for replica in running:
                replica.stop()


def _call_quietly(base: str, payment: dict, index: int) -> None:
    """A paid call whose server may die under it."""
    with contextlib.suppress(httpx.HTTPError):
        httpx.post(
            f"{base}{ENDPOINT}",
            json=image(index),
            headers={"X-Payment-Token": payment["token"]},
            timeout=60,
        )


def race_one_token(ledger: str, folder: Path, replicas: int, calls: int) -> list[int]:
    """``calls`` concurrent paid calls with one single-use token, split across ``replicas``
    serve processes on ``ledger``; the sorted status codes, after checking the upstream
    ran exactly once."""
    import asyncio

    with gated_emulator() as (emulator, _):
        running = start_replicas(ledger, emulator, folder, replicas)
        try:
            payment = httpx.post(
                f"{running[0].base}/api/payments", json={"serviceId": SERVICE}, timeout=30
            ).json()
            headers = {"X-Payment-Token": payment["token"]}

            async def burst() -> list[int]:
                limits = httpx.Limits(max_connections=calls)
                async with httpx.AsyncClient(timeout=120, limits=limits) as http:
                    answers = await asyncio.gather(
                        *(
                            http.post(
                                f"{running[i % replicas].base}{ENDPOINT}",
                                json=image(0),
                                headers=headers,
                            )
                            for i in range(calls)
                        )
                    )
                return [answer.status_code for answer in answers]

            statuses = sorted(asyncio.run(burst()))
            assert len(emulator.calls) == 1 and upstream_runs(emulator, 0) == 1
            record = httpx.get(
                f"{running[-1].base}/api/payments/{payment['paymentId']}", timeout=30
            ).json()
            assert (record["usedCalls"], record["remainingCalls"]) == (1, 0)
            return statuses
        finally:
            for replica in running:
                replica.stop()


_STATES = "SELECT c.state, p.token FROM calls c JOIN payments p ON p.payment_id = c.payment_id"


@contextlib.contextmanager
def writes_held(ledger: str) -> Iterator[Callable[[], list[tuple[str, str]]]]:
    """Hold every replica's ledger writes (SQLite: the writers' ``flock``; PostgreSQL: an
    EXCLUSIVE lock on ``calls``, which still lets plain reads through); yields a function
    that reads each call's ``(state, token)``."""
    if ledger.startswith("postgresql://"):
        import psycopg

        with psycopg.connect(ledger) as db:
            db.execute("LOCK TABLE calls IN EXCLUSIVE MODE")
            try:
                yield lambda: db.execute(_STATES).fetchall()
            finally:
                db.rollback()
        return
    with open(ledger + ".lock", "ab") as lock, sqlite3.connect(ledger) as db:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield lambda: db.execute(_STATES).fetchall()
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


@contextlib.contextmanager
def writes_held_when(
    ledger: str, wanted: Callable[[list[tuple[str, str]]], bool]
) -> Iterator[list[tuple[str, str]]]:
    """Hold the ledger writes at a moment the calls' ``(state, token)`` are ``wanted``;
    yields them. Between two looks the writes go on for a moment.

    PostgreSQL queues lock requests in order. SQLite's ``flock`` is not fair: a waiter
    this process blocks in is woken after a replica with writers queued has taken the
    lock again, and gets it once the replica's queue is empty; so a look tries for the
    lock without blocking, over and over, and gets it between two of the replica's
    writes. Raises ``AssertionError`` when the states are never wanted.
    """
    seen: list[tuple[str, str]] = []
    for attempt in range(3000):
        time.sleep(0.0002 * (1 + attempt % 5))  # let a few writes through
        if ledger.startswith("postgresql://"):
            with writes_held(ledger) as states:
                seen = states()
                if wanted(seen):
                    yield seen
                    return
            continue
        with open(ledger + ".lock", "ab") as lock, sqlite3.connect(ledger) as db:
            while True:
                try:
                    fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    continue
            try:
                seen = db.execute(_STATES).fetchall()
                if wanted(seen):
                    yield seen
                    return
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)
    raise AssertionError(f"never caught calls in the wanted states: {seen}")


def crash_with_calls_in_every_state(ledger: str, folder: Path, calls: int = 30) -> None:
    """SIGKILL a serve replica with paid calls ``reserved`` (spent, not yet sent), ``sent``
    (at the upstream) and ``done``, restart it, and check that every token's ``usedCalls``
    equals the upstream's runs of its call: reserved calls are given back and pay again.

    The moment is chosen, not hoped for: the calls start while the ledger's writes are
    held, so they queue, and the upstream holds every call it gets (a sent call stays
    sent); then the test lets writes through a moment at a time
    (:func:`writes_held_when`), and kills only once a call is reserved beside one sent,
    with writes held, and every sent call has reached the upstream (the emulator's log).
    """
    with gated_emulator() as (emulator, gate):
        replica = start_replicas(ledger, emulator, folder, 1)[0]
        try:
            with httpx.Client(timeout=60) as http:
                payments = [
                    http.post(f"{replica.base}/api/payments", json={"serviceId": SERVICE}).json()
                    for _ in range(calls)
                ]
            index = {payment["token"]: i for i, payment in enumerate(payments)}
            threads = [
                threading.Thread(target=_call_quietly, args=(replica.base, payment, i))
                for i, payment in enumerate(payments)
            ]
            gate.clear()  # a sent call stays sent (held at the upstream) until the kill
            with writes_held(ledger):  # every call queues for the ledger first
                for thread in threads:
                    thread.start()
                time.sleep(1)

            def mixed(seen: list[tuple[str, str]]) -> bool:
                return {"reserved", "sent"} <= {state for state, _ in seen}

            with writes_held_when(ledger, mixed) as seen:
                reserved = [token for state, token in seen if state == "reserved"]
                sent = [index[token] for state, token in seen if state == "sent"]
                deadline = time.monotonic() + 10
                while not all(upstream_runs(emulator, i) for i in sent):
                    assert time.monotonic() < deadline, "a sent call never arrived"
                    time.sleep(0.01)
                replica.kill()
            gate.set()
            for thread in threads:
                thread.join(timeout=60)
            replica = start_replicas(ledger, emulator, folder, 1)[0]
            log = replica.log.read_text()
            assert f"{len(reserved)} unsent calls given back, {len(sent)} sent" in log, log
            with httpx.Client(timeout=60) as http:
                for i, payment in enumerate(payments):
                    record = http.get(f"{replica.base}/api/payments/{payment['paymentId']}")
                    assert record.json()["usedCalls"] == upstream_runs(emulator, i), i
                for token in reserved:  # given back: it pays, once
                    answer = http.post(
                        f"{replica.base}{ENDPOINT}",
                        json=image(index[token]),
                        headers={"X-Payment-Token": token},
                    )
                    assert answer.status_code == 200, answer.text
                    assert upstream_runs(emulator, index[token]) == 1
        finally:
            replica.stop()
