"""No caller stalls another (issue 14): blocking work runs off the event loop, a locked
ledger answers 503 with Retry-After, and MCP over stdio answers a malformed line.

The tests compare orders of events, never absolute times: an unrelated request must
complete while the slow ones are still in flight."""

from __future__ import annotations

import json
import select
import subprocess
import sys
from pathlib import Path

import anyio
import httpx
import pytest

from s402gen.runtime import protocol
from s402gen.runtime.app import create_app
from s402gen.runtime.generated import load_generated
from s402gen.runtime.payments import Ledger

from .conftest import GENERATED, running_app

SPECS = {spec.service_id: spec for spec in load_generated(GENERATED).specs}
#: An unpaid body of ~0.94 MB whose validation takes a while (30,000 URLs, each checked).
BIG_BODY = {"Type": 1, "URLList": [{"URL": "https://e.com/a.jpg"}] * 30_000}


async def _race(
    base: str, slow: list[tuple[str, str, dict]], quick: str, delay: float = 0.5
) -> list[str]:
    """Send the ``slow`` requests, then (``delay`` seconds later, once they are on their way)
    ``quick``; the order in which they completed, ``quick`` named ``"quick"``, and the slow
    answers' statuses."""
    done: list[str] = []
    statuses: list[int] = []
    async with httpx.AsyncClient(base_url=base, timeout=120) as client:

        async def send(method: str, path: str, body: dict | None) -> None:
            answer = await client.request(method, path, json=body)
            statuses.append(answer.status_code)
            done.append("slow")

        async def ask() -> None:
            await anyio.sleep(delay)
            answer = await client.get(quick)
            assert answer.status_code == 200
            done.append("quick")

        async with anyio.create_task_group() as group:
            for method, path, body in slow:
                group.start_soon(send, method, path, body)
            group.start_soon(ask)
    return done + [str(s) for s in statuses]


@pytest.mark.slow
def test_big_unpaid_bodies_do_not_stall_an_unrelated_request() -> None:
    """Eight 0.94 MB unpaid bodies are validated off the loop, one at a time: a catalog
    search sent while they are in flight completes before the second of them.

    Validated on the loop, the search would wait behind every body that arrived before it;
    validated all at once in threads, its own thread starved for the GIL behind all eight."""
    spec = SPECS["action-recognition"]
    app = create_app(GENERATED, ledger=Ledger())
    with running_app(app) as base:
        slow = [("POST", spec.endpoint, BIG_BODY)] * 8
        order = anyio.run(_race, base, slow, "/api/catalog/search?q=face")
    assert "quick" in order[:2], order
    assert order[9:] == ["402"] * 8  # each big body was validated, then asked for payment


@pytest.mark.slow
def test_a_ledger_locked_by_another_process_answers_503_and_stalls_nobody(tmp_path) -> None:
    """Another process holds the SQLite ledger past its busy timeout: the payment request
    answers 503 with Retry-After (no 500, no traceback) and the server serves others."""
    path = tmp_path / "ledger.sqlite"
    ledger = Ledger(path)
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sqlite3, sys\n"
            f"db = sqlite3.connect({str(path)!r}, isolation_level=None)\n"
            "db.execute('BEGIN EXCLUSIVE')\n"
            "print('locked', flush=True)\n"
            "sys.stdin.readline()\n",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        app = create_app(GENERATED, ledger=ledger)
        with running_app(app) as base:
            create = ("POST", "/api/payments", {"serviceId": "face-detection"})
            order = anyio.run(_race, base, [create], "/api/catalog", 0.1)
            with httpx.Client(base_url=base, timeout=60) as client:
                busy = client.post("/api/payments", json={"serviceId": "face-detection"})
    finally:
        holder.communicate("release\n", timeout=30)
    assert order == ["quick", "slow", "503"]
    assert busy.status_code == 503
    assert busy.headers["retry-after"] == str(protocol.RETRY_AFTER_SECONDS)
    assert busy.json() == {"error": protocol.LEDGER_BUSY}
    assert ledger.create(SPECS["face-detection"], _dev(), "", "x402-base-usdc")  # usable again


def _dev():
    from s402gen.runtime.payments import DevProvider

    return DevProvider()


def _read_line(process: subprocess.Popen, timeout: float = 60) -> dict:
    """The next JSON line on ``process``'s stdout; fails instead of hanging."""
    ready, _, _ = select.select([process.stdout], [], [], timeout)
    assert ready, "the server did not answer"
    return json.loads(process.stdout.readline())


@pytest.mark.slow
def test_mcp_stdio_answers_a_malformed_line(tmp_path: Path) -> None:
    """A line that is not JSON gets -32700 with id null (it was dropped: a client waiting
    on it hung); JSON that is no JSON-RPC message gets -32600; the server serves on."""
    exe = Path(sys.executable).parent / "s402gen"
    process = subprocess.Popen(
        [str(exe) if exe.exists() else "s402gen", "mcp", "--generated", str(GENERATED)]
        + ["--upstream", "emulator", "--ledger", ":memory:"],
        cwd=tmp_path,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        bufsize=1,
    )
    try:
        process.stdin.write('{"jsonrpc": "2.0", "id": 1, "method": \n')
        process.stdin.flush()
        assert _read_line(process) == {
            "jsonrpc": "2.0",
            "id": None,
            "error": {"code": -32700, "message": "Parse error"},
        }
        process.stdin.write('{"jsonrpc": "2.0", "id": 2}\n')
        process.stdin.flush()
        assert _read_line(process)["error"]["code"] == -32600
        initialize = {
            "jsonrpc": "2.0",
            "id": 3,
            "method": "initialize",
            "params": {
                "protocolVersion": "2025-06-18",
                "capabilities": {},
                "clientInfo": {"name": "test", "version": "1"},
            },
        }
        process.stdin.write(json.dumps(initialize) + "\n")
        process.stdin.flush()
        answer = _read_line(process)
        assert answer["id"] == 3 and "result" in answer
    finally:
        process.stdin.close()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
