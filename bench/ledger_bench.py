"""Benchmark the payment ledger: payment creations (+ verifications) per second.

Usage (from the repository root, with ``pip install -e '.[test]'``)::

    python bench/ledger_bench.py [--payments 1000] [--processes 2] [--threads 4]
                                 [--ledger sqlite|postgres] [--http] [--source DIR]

Two measures, both on 127.0.0.1 and on one shared ledger:

* **ledger**: ``--processes`` OS processes (two gateway replicas, by default)
  each open their own :class:`~s402gen.runtime.payments.Ledger` on the same
  SQLite file (or PostgreSQL database, started here with pgserver) and,
  from ``--threads`` threads each, create ``--payments`` payments in all
  and verify each one (``Ledger.create`` then ``Ledger.verify``, the dev
  provider). It prints creations per second over the wall time from the
  common start line to the last process's end.
* **http** (``--http``): ``--processes`` ``s402gen serve`` replicas on the same
  ledger, and ``POST /api/payments`` + ``GET /api/payments/{id}`` for
  ``--payments`` payments, 32 at a time, spread over the replicas.

``--source DIR`` runs the s402gen of another checkout (e.g. an older commit
in a ``git worktree``) to compare. A report, not a test: it exits 1 only
when something fails.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _worker(source: str, ledger: str, count: int, threads: int, ready, go, out) -> None:
    """One replica: open the ledger, say ready, wait for go, create+verify ``count``."""
    sys.path.insert(0, source)
    from s402gen.runtime.generated import load_generated
    from s402gen.runtime.payments import DevProvider, Ledger

    spec = load_generated(Path(source) / "generated").specs[0]
    book = Ledger(ledger)
    provider = DevProvider()

    def one(_: int) -> None:
        payment = book.create(spec, provider, "", spec.payment.provider_id)
        assert book.verify(payment.payment_id, provider).status == "paid"

    ready.release()
    go.wait()
    start = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(one, range(count)))
    out.put(time.perf_counter() - start)
    book.close()


def ledger_bench(source: str, ledger: str, payments: int, processes: int, threads: int) -> float:
    """Creations (+ verifications) per second over ``processes`` processes (the ledger is
    created and migrated here first, as the first replica to start would)."""
    sys.path.insert(0, source)
    from s402gen.runtime.payments import Ledger

    Ledger(ledger).close()
    context = multiprocessing.get_context("spawn")
    ready, go, out = context.Semaphore(0), context.Event(), context.Queue()
    shares = [payments // processes + (i < payments % processes) for i in range(processes)]
    workers = [
        context.Process(target=_worker, args=(source, ledger, n, threads, ready, go, out))
        for n in shares
    ]
    for worker in workers:
        worker.start()
    waiting = len(workers)
    while waiting:
        if ready.acquire(timeout=1):
            waiting -= 1
        elif any(worker.exitcode not in (None, 0) for worker in workers):
            sys.exit("a ledger worker failed before the start line")
    start = time.perf_counter()
    go.set()
    for worker in workers:
        worker.join()
        if worker.exitcode != 0:
            sys.exit(f"a ledger worker failed (exit {worker.exitcode})")
    return payments / (time.perf_counter() - start)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def http_bench(source: str, ledger: str, payments: int, processes: int, folder: Path) -> float:
    """Payments created and verified per second over HTTP through ``processes`` replicas."""
    import httpx

    env = dict(os.environ, PYTHONPATH=source)
    run = f"import sys; sys.path.insert(0, {source!r}); from s402gen.cli import main; main()"
    ports = [_free_port() for _ in range(processes)]
    servers = [
        subprocess.Popen(
            [sys.executable, "-c", run, "serve", "--generated", str(Path(source) / "generated"),
             "--port", str(port), "--upstream", "emulator", "--ledger", ledger, "--no-api-keys"],
            stderr=subprocess.DEVNULL, stdout=subprocess.DEVNULL, env=env, cwd=folder,
        )
        for port in ports
    ]  # fmt: skip
    bases = [f"http://127.0.0.1:{port}" for port in ports]
    try:
        for base in bases:
            for _ in range(600):
                try:
                    httpx.get(f"{base}/api/catalog", timeout=1)
                    break
                except httpx.TransportError:
                    time.sleep(0.1)
        service = httpx.get(f"{bases[0]}/api/catalog").json()["services"][0]["id"]

        async def run_all() -> None:
            gate = asyncio.Semaphore(32)
            async with httpx.AsyncClient(timeout=120) as http:

                async def one(i: int) -> None:
                    base = bases[i % len(bases)]
                    async with gate:
                        made = await http.post(f"{base}/api/payments", json={"serviceId": service})
                        made.raise_for_status()
                        got = await http.get(f"{base}/api/payments/{made.json()['paymentId']}")
                        got.raise_for_status()

                await asyncio.gather(*(one(i) for i in range(payments)))

        start = time.perf_counter()
        asyncio.run(run_all())
        return payments / (time.perf_counter() - start)
    finally:
        for server in servers:
            server.terminate()
            server.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--payments", type=int, default=1000)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--ledger", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--http", action="store_true", help="also through s402gen serve")
    parser.add_argument("--source", default=str(REPO), help="the s402gen checkout to run")
    args = parser.parse_args()
    source = str(Path(args.source).resolve())
    folder = Path(tempfile.mkdtemp(prefix="s402gen-ledger-bench-"))
    server = None
    try:
        if args.ledger == "postgres":
            import pgserver

            server = pgserver.get_server(folder / "pg", cleanup_mode="stop")
            url = server.get_uri()
        measures = [("ledger", None)] + ([("http", None)] if args.http else [])
        for name, _ in measures:
            location = url if args.ledger == "postgres" else str(folder / f"{name}.sqlite3")
            if name == "ledger":
                rate = ledger_bench(source, location, args.payments, args.processes, args.threads)
                shape = f"{args.processes} processes x {args.threads} threads"
            else:
                rate = http_bench(source, location, args.payments, args.processes, folder)
                shape = f"{args.processes} serve replicas, 32 requests at a time"
            print(
                f"{name:<6} {args.ledger:<8} {args.payments} creations+verifications, {shape}: "
                f"{rate:,.0f}/s ({args.payments / rate:.2f} s)"
            )
    finally:
        if server is not None:
            server.cleanup()
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
