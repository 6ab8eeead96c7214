"""Benchmark ``s402gen serve``: the 402 path and paid calls (wrk), and the runtime at scale.

Usage (from the repository root; both need ``wrk``, the C HTTP load generator:
``apt-get install -y wrk`` on Debian or Ubuntu, ``brew install wrk`` on macOS)::

    python bench/serve_bench.py [--seconds 10] [--connections 32] [--service face-detection]
    python bench/serve_bench.py --scale 2000 [--seconds 10] [--connections 32]

``--scale N`` builds bench.py's synthetic catalog of N services into a
temporary folder and reports, for ``s402gen serve`` on it: the time from start
to the first 200 (and the server's CPU seconds by then), its RSS after start and
after the load; catalog search requests per second, p50/p99 and the server's CPU
per search under ``--connections`` connections (wrk in its own process, cycling
English and Chinese queries), with the p99 of a doc page fetched alongside (the
search must not block other requests); and MCP ``tools/list`` (every page)
bytes and time in the one-tool-per-service mode and in the discovery mode, with
the mcp SDK's client. See :func:`serve_scale.scale_main`.

It starts ``s402gen serve --upstream emulator --ledger :memory: --no-api-keys`` on a
free loopback port (one uvicorn process, its output to /dev/null), then runs wrk twice against the
service's endpoint: without a payment token (every answer is the 402), and
with a fresh single-call token per request (tokens made beforehand through
``POST /api/payments``; each paid call goes through the ledger and, signed,
to the upstream emulator; one paid call before the measure imports the upstream
SDK). It prints requests per second and the p50/p99
latency of each, and checks the target: the 402 path at 2,000 requests per
second or more.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
TARGET_402_RPS = 2000
SCRIPT = """
local body = os.getenv("BENCH_BODY")
local token_file = os.getenv("BENCH_TOKENS")
local tokens, next_token, step = {}, 1, 1
local threads = {}

function setup(thread)
  thread:set("id", #threads + 1)
  table.insert(threads, thread)
end

function init(args)
  step = tonumber(os.getenv("BENCH_THREADS"))
  next_token = id
  if token_file ~= "" then
    for line in io.lines(token_file) do tokens[#tokens + 1] = line end
  end
end

function request()
  local headers = {["Content-Type"] = "application/json"}
  if #tokens > 0 then
    headers["X-Payment-Token"] = tokens[next_token] or "used-up"
    next_token = next_token + step
  end
  return wrk.format("POST", nil, headers, body)
end
"""


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_ready(base: str, process: subprocess.Popen) -> None:
    """Wait until the server answers, or exit when it died."""
    for _ in range(300):
        if process.poll() is not None:
            sys.exit(f"s402gen serve exited with {process.returncode}")
        try:
            httpx.get(f"{base}/api/catalog", timeout=1)
            return
        except httpx.TransportError:
            time.sleep(0.05)
    sys.exit("s402gen serve did not start")


def run_wrk(
    url: str, seconds: int, connections: int, threads: int, env: dict, lua: str = SCRIPT
) -> dict:
    """Run wrk with the request script ``lua`` (its environment plus ``env``); returns rps,
    p50/p99 ms and request counts. Exits when wrk is not installed."""
    if shutil.which("wrk") is None:
        sys.exit("wrk not found: apt-get install -y wrk (Debian, Ubuntu) or brew install wrk")
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(lua)
    command = [
        "wrk",
        f"-t{threads}",
        f"-c{connections}",
        f"-d{seconds}s",
        "--latency",
        "-s",
        script.name,
        url,
    ]
    output = subprocess.run(
        command, env={**os.environ, **env, "BENCH_THREADS": str(threads)},
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    os.unlink(script.name)

    def latency(label: str) -> float:
        value, unit = re.search(rf"^\s+{label}%\s+([\d.]+)(us|ms|s)", output, re.M).groups()
        return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]

    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    return {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1)),
        "p50": latency("50"),
        "p99": latency("99"),
        "requests": int(re.search(r"(\d+) requests in", output).group(1)),
        "non_2xx": int(non_2xx.group(1)) if non_2xx else 0,
    }


def make_tokens(base: str, service: str, count: int, path: Path) -> None:
    """Create ``count`` paid single-call tokens for ``service`` and write one a line."""
    with httpx.Client(base_url=base, timeout=30) as http:
        tokens = [
            http.post("/api/payments", json={"serviceId": service}).json()["token"]
            for _ in range(count)
        ]
    path.write_text("\n".join(tokens) + "\n")


def main() -> None:
    """Start the server, load it twice, print the report (``--scale``: :func:`scale_main`)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--threads", type=int, default=1, help="wrk threads (default 1)")
    parser.add_argument("--service", default="face-detection")
    parser.add_argument("--tokens", type=int, default=20000, help="paid tokens to prepare")
    parser.add_argument("--scale", type=int, help="services of a synthetic catalog")
    args = parser.parse_args()
    if args.scale:
        from serve_scale import scale_main

        scale_main(args.scale, args.seconds, args.connections)
        return
    catalog = json.loads((REPO / "generated/catalog/services" / f"{args.service}.json").read_text())
    body = json.dumps(catalog.get("exampleRequest", {}))
    beside = Path(sys.executable).parent / "s402gen"
    exe = str(beside) if beside.exists() else "s402gen"
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    url = base + catalog["endpoint"]
    server = subprocess.Popen(
        [exe, "serve", "--generated", str(REPO / "generated"), "--port", str(port),
         "--upstream", "emulator", "--ledger", ":memory:", "--no-api-keys"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        wait_ready(base, server)
        run_wrk(url, 2, args.connections, args.threads, {"BENCH_BODY": body, "BENCH_TOKENS": ""})
        unpaid = run_wrk(
            url,
            args.seconds,
            args.connections,
            args.threads,
            {"BENCH_BODY": body, "BENCH_TOKENS": ""},
        )
        with tempfile.TemporaryDirectory() as tmp:
            tokens = Path(tmp) / "tokens.txt"
            make_tokens(base, args.service, args.tokens + 1, tokens)
            first, rest = tokens.read_text().split("\n", 1)
            tokens.write_text(rest)
            warm = {"Content-Type": "application/json", "X-Payment-Token": first}
            # the first paid call imports the upstream SDK (about 1 s): not measured
            assert httpx.post(url, content=body, headers=warm, timeout=60).status_code == 200
            paid = run_wrk(
                url, args.seconds, args.connections, args.threads,
                {"BENCH_BODY": body, "BENCH_TOKENS": str(tokens)},
            )  # fmt: skip
    finally:
        server.terminate()
        server.wait(timeout=10)
    print(
        f"service {args.service}, {args.connections} connections, {args.seconds} s each, wrk on loopback"
    )
    print(f"{'path':<10} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'requests':>9} {'non-2xx':>8}")
    for name, row in (("402", unpaid), ("paid", paid)):
        print(f"{name:<10} {row['rps']:>9.0f} {row['p50']:>8.2f} {row['p99']:>8.2f} "
              f"{row['requests']:>9} {row['non_2xx']:>8}")  # fmt: skip
    if paid["requests"] > args.tokens:
        print(f"note: {paid['requests'] - args.tokens} paid requests ran out of tokens (402s); "
              "raise --tokens")  # fmt: skip
    verdict = "PASS" if unpaid["rps"] >= TARGET_402_RPS else "FAIL"
    print(f"402 path >= {TARGET_402_RPS} req/s: {verdict} ({unpaid['rps']:.0f} req/s)")


if __name__ == "__main__":
    main()
