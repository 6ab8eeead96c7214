"""Benchmark: does unauthenticated work stall others? An unrelated request's latency, alone
and while eight ~0.94 MB unpaid bodies are being validated.

Usage (from the repository root)::

    python bench/loop_bench.py [--bodies 8] [--samples 5]

It starts ``s402gen serve --upstream emulator --ledger :memory:`` on a free
loopback port, times ``GET /api/catalog/search?q=face`` alone (median of
``--samples``), then sends ``--bodies`` unpaid ``POST``s of ~0.94 MB each
(30,000 URLs in ``URLList`` of action-recognition: every one is checked, then
the 402 answers) and times the same GET while they are in flight. Issue 14
measured 0.08 s alone and 5.9 s under load before the validation left the
event loop; the target is the same order alone and under load.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
BODY = json.dumps({"Type": 1, "URLList": [{"URL": "https://e.com/a.jpg"}] * 30_000})
QUICK = "/api/catalog/search?q=face"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def _timed_get(client: httpx.AsyncClient) -> float:
    start = time.perf_counter()
    (await client.get(QUICK)).raise_for_status()
    return time.perf_counter() - start


async def _measure(base: str, bodies: int, samples: int) -> tuple[float, float, float]:
    """(median alone, median under load, seconds the big bodies took) in seconds."""
    async with httpx.AsyncClient(base_url=base, timeout=300) as client:
        alone = [await _timed_get(client) for _ in range(samples)]
        headers = {"Content-Type": "application/json"}
        start = time.perf_counter()
        big = [
            asyncio.create_task(
                client.post("/api/tools/action-recognition", content=BODY, headers=headers)
            )
            for _ in range(bodies)
        ]
        await asyncio.sleep(0.3)  # the bodies are on their way
        loaded = []
        while not all(task.done() for task in big) and len(loaded) < samples:
            loaded.append(await _timed_get(client))
        answers = await asyncio.gather(*big)
        took = time.perf_counter() - start
        assert all(a.status_code == 402 for a in answers), [a.status_code for a in answers]
    return statistics.median(alone), statistics.median(loaded or [float("nan")]), took


def main() -> None:
    """Run the benchmark and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bodies", type=int, default=8)
    parser.add_argument("--samples", type=int, default=5)
    args = parser.parse_args()
    exe = shutil.which("s402gen", path=str(Path(sys.executable).parent)) or "s402gen"
    port = _free_port()
    server = subprocess.Popen(
        [exe, "serve", "--port", str(port), "--upstream", "emulator", "--ledger", ":memory:"],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "PYTHONHASHSEED": "0"},
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                httpx.get(base + QUICK, timeout=1).raise_for_status()
                break
            except httpx.HTTPError:
                time.sleep(0.1)
        alone, loaded, took = asyncio.run(_measure(base, args.bodies, args.samples))
    finally:
        server.terminate()
        server.wait(timeout=30)
    print(f"unrelated GET alone:                     {alone:.3f} s (median)")
    print(f"unrelated GET during {args.bodies} big unpaid bodies: {loaded:.3f} s (median)")
    print(f"the {args.bodies} big bodies took:                {took:.3f} s")


if __name__ == "__main__":
    main()
