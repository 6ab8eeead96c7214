#!/usr/bin/env python3
"""CI smoke test of the serving install: ``s402gen serve`` and ``s402gen mcp`` answer.

Standard library only, so that it runs in a venv holding nothing but the
README's serving install (``pip install -e '.[serve]'``). Starts
``s402gen serve`` on 127.0.0.1 at a free port with the upstream emulator,
asks for the catalog and makes a payment, checks that uvicorn logged the
request, and stops it by pid; then starts ``s402gen mcp`` (stdio), sends an
MCP ``initialize`` and a ``tools/list`` and reads the answers. Exits 0 when
everything answered, 1 with a message otherwise.

Usage: smoke_serve.py [--exe PATH/TO/s402gen] [--generated DIR]
"""

from __future__ import annotations

import argparse
import json
import queue
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
START_TIMEOUT_S = 60
RUNTIME = ["--upstream", "emulator", "--ledger", ":memory:"]


class SmokeFailure(Exception):
    """A server did not start or answered wrongly."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _request(url: str, body: dict | None = None, key: str | None = None) -> tuple[int, dict]:
    data = None if body is None else json.dumps(body).encode()
    headers = {"Content-Type": "application/json"}
    if key:
        headers["Authorization"] = f"Bearer {key}"
    request = urllib.request.Request(url, data=data, headers=headers)
    with urllib.request.urlopen(request, timeout=10) as answer:
        return answer.status, json.load(answer)


def _stop(process: subprocess.Popen) -> None:
    """Stop the process we started, by its pid (SIGTERM, then SIGKILL)."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def smoke_serve(exe: str, generated: Path) -> str:
    """Issue an API key (``s402gen keys create``), start ``s402gen serve`` on the same
    ledger, get the catalog and a payment with the key; a one-line summary."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory() as logs:
        out, err = Path(logs, "stdout"), Path(logs, "stderr")
        ledger = ["--ledger", str(Path(logs, "ledger.db"))]
        issued = subprocess.run(
            [exe, "keys", "create", "--name", "smoke", *ledger],
            capture_output=True,
            text=True,
            check=True,
        )
        key = issued.stdout.strip().splitlines()[-1]
        with out.open("wb") as stdout, err.open("wb") as stderr:
            command = [exe, "serve", "--port", str(port), "--generated", str(generated)]
            command += ["--upstream", "emulator", *ledger]
            process = subprocess.Popen(command, stdout=stdout, stderr=stderr, cwd=ROOT)
            try:
                catalog = _wait_for_catalog(process, base, err)
                service = catalog["services"][0]["id"]
                status, payment = _request(f"{base}/api/payments", {"serviceId": service}, key)
                if payment.get("serviceId") != service or not payment.get("paymentId"):
                    raise SmokeFailure(f"POST /api/payments answered {status} {payment}")
            finally:
                _stop(process)
        log = out.read_text() + err.read_text()
    if '"GET /api/catalog HTTP/1.1" 200' not in log:
        raise SmokeFailure(f"no uvicorn access line for GET /api/catalog in:\n{log}")
    services = len(catalog["services"])
    return f"serve: {services} services on {base}, payment {payment['paymentId']} for {service}"


def _wait_for_catalog(process: subprocess.Popen, base: str, err: Path) -> dict:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SmokeFailure(f"s402gen serve exited {process.returncode}:\n{err.read_text()}")
        try:
            status, catalog = _request(f"{base}/api/catalog")
        except OSError:
            time.sleep(0.2)
            continue
        if status == 200 and catalog.get("services"):
            return catalog
        raise SmokeFailure(f"GET /api/catalog answered {status}")
    raise SmokeFailure(f"s402gen serve did not answer in {START_TIMEOUT_S} s:\n{err.read_text()}")


def smoke_mcp(exe: str, generated: Path) -> str:
    """Start ``s402gen mcp``, initialize and list the tools over stdio; a one-line summary."""
    command = [exe, "mcp", "--generated", str(generated), *RUNTIME]
    process = subprocess.Popen(
        command,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=ROOT,
        text=True,
        encoding="utf-8",
    )
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(
        target=lambda: [lines.put(line) for line in process.stdout], daemon=True
    ).start()

    def call(message: dict) -> dict:
        process.stdin.write(json.dumps(message) + "\n")
        process.stdin.flush()
        if "id" not in message:
            return {}
        try:
            answer = json.loads(lines.get(timeout=START_TIMEOUT_S))
        except queue.Empty:
            raise SmokeFailure(f"s402gen mcp did not answer {message['method']}") from None
        if "result" not in answer:
            raise SmokeFailure(f"s402gen mcp answered {message['method']} with {answer}")
        return answer["result"]

    try:
        initialized = call(
            {
                "jsonrpc": "2.0",
                "id": 1,
                "method": "initialize",
                "params": {
                    "protocolVersion": "2025-06-18",
                    "capabilities": {},
                    "clientInfo": {"name": "s402gen-ci-smoke", "version": "0"},
                },
            }
        )
        call({"jsonrpc": "2.0", "method": "notifications/initialized"})
        tools = call({"jsonrpc": "2.0", "id": 2, "method": "tools/list", "params": {}})["tools"]
    finally:
        process.stdin.close()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            _stop(process)
    server = initialized["serverInfo"]["name"]
    return f"mcp: server {server!r}, protocol {initialized['protocolVersion']}, {len(tools)} tools"


def main(argv: list[str] | None = None) -> int:
    """Run both smoke tests; 0 when both answered."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--exe", default=shutil.which("s402gen") or "s402gen")
    parser.add_argument("--generated", type=Path, default=ROOT / "generated")
    args = parser.parse_args(argv)
    try:
        for smoke in (smoke_serve, smoke_mcp):
            print(smoke(args.exe, args.generated), flush=True)
    except (SmokeFailure, OSError, KeyError, ValueError) as exc:
        print(f"smoke test failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
