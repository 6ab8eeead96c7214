"""Benchmark x402 payments through ``s402gen serve`` on loopback: p50/p99 latency.

Usage (from the repository root, with ``pip install -e '.[test]'``)::

    python bench/x402_bench.py [--calls 50]

Starts, all on 127.0.0.1: a local EVM (py-evm in this process) with the test
USDC of ``tests/x402/``, x402's own facilitator over HTTP (a uvicorn thread of
this process, settling on that chain), and ``s402gen serve --upstream
emulator --x402-facilitator URL --x402-pay-to ADDRESS`` as its own process.
Payment signatures are made by x402's own client before the clock starts;
then, one request at a time, it times:

* **x402 call**: ``POST /api/tools/<id>`` with ``PAYMENT-SIGNATURE`` (the
  gateway verifies with the facilitator, settles on chain, calls the emulator);
* **token flow**: ``POST /api/payments``, ``POST /api/payments/{id}/x402``
  with the signature (verify + settle), then the tool call with
  ``X-Payment-Token`` (ledger + emulator) -- and that last call alone.

It prints the median (p50) and 99th percentile (p99) in milliseconds. A
report, not a test: it exits 1 only when a call does not succeed.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.x402.chain import (  # noqa: E402
    ServerThread,
    facilitator_app,
    free_port,
    start_chain,
    x402_client,
)

TOOL = "/api/tools/face-detection"
BODY = {"ImageURL": "https://example.com/face.jpg"}


def percentile(values: list[float], q: float) -> float:
    """The ``q`` quantile (0..1) by the nearest-rank method, in the values' unit."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered) + 0.5) - 1))]


def report(name: str, seconds: list[float]) -> None:
    ms = [s * 1000 for s in seconds]
    print(
        f"{name:<34} n={len(ms):<4} p50 {statistics.median(ms):8.1f} ms   "
        f"p99 {percentile(ms, 0.99):8.1f} ms"
    )


def signature_for(http: httpx.Client, client, path: str, **kwargs) -> str:
    """x402's client signs what ``path``'s 402 (or 201) offers."""
    from x402.http.utils import decode_payment_required_header, encode_payment_signature_header

    offer = http.post(path, **kwargs)
    required = decode_payment_required_header(offer.headers["payment-required"])
    return encode_payment_signature_header(client.create_payment_payload(required))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=50, help="calls of each kind")
    args = parser.parse_args()
    from eth_account import Account
    from x402.http.utils import decode_payment_required_header, encode_payment_signature_header

    chain = start_chain()
    seller, payer = Account.create().address, Account.create()
    chain.mint(payer.address, 10**12)
    client = x402_client(payer, sync=True)
    with ServerThread(facilitator_app(chain)) as fac, tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        exe = Path(sys.executable).parent / "s402gen"
        command = [str(exe), "serve", "--port", str(port), "--upstream", "emulator"]
        command += ["--ledger", ":memory:", "--x402-facilitator", fac.url]
        command += ["--x402-pay-to", seller, "--generated", str(REPO / "generated")]
        server = subprocess.Popen(
            command, cwd=tmp, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        try:
            base = f"http://127.0.0.1:{port}"
            with httpx.Client(base_url=base, timeout=60) as http:
                for _ in range(600):
                    try:
                        http.get("/api/catalog")
                        break
                    except httpx.TransportError:
                        time.sleep(0.05)
                # each signature is for a fresh nonce: all made before timing
                signatures = [
                    signature_for(http, client, TOOL, json=BODY) for _ in range(args.calls)
                ]
                direct: list[float] = []
                for signature in signatures:
                    start = time.perf_counter()
                    answer = http.post(TOOL, json=BODY, headers={"PAYMENT-SIGNATURE": signature})
                    direct.append(time.perf_counter() - start)
                    if answer.status_code != 200:
                        print(f"x402 call failed: {answer.status_code} {answer.text}")
                        return 1
                flow: list[float] = []
                token_calls: list[float] = []
                for _ in range(args.calls):
                    # time the flow as a client runs it, signing excluded: create, pay, call
                    start = time.perf_counter()
                    created = http.post("/api/payments", json={"serviceId": "face-detection"})
                    created_in = time.perf_counter() - start
                    record = created.json()
                    required = decode_payment_required_header(created.headers["payment-required"])
                    signature = encode_payment_signature_header(
                        client.create_payment_payload(required)
                    )
                    start = time.perf_counter()
                    paid = http.post(
                        f"/api/payments/{record['paymentId']}/x402",
                        headers={"PAYMENT-SIGNATURE": signature},
                    )
                    called_at = time.perf_counter()
                    answer = http.post(
                        TOOL, json=BODY, headers={"X-Payment-Token": record["token"]}
                    )
                    end = time.perf_counter()
                    flow.append(created_in + end - start)
                    token_calls.append(end - called_at)
                    if paid.status_code != 200 or answer.status_code != 200:
                        print(f"token flow failed: {paid.status_code} {answer.status_code}")
                        return 1
        finally:
            server.terminate()
            server.wait(timeout=10)
    print("x402 on loopback: py-evm chain, x402 facilitator over HTTP, s402gen serve + emulator")
    report("x402 call (verify+settle+upstream)", direct)
    report("token flow (create+pay+call)", flow)
    report("  of which the token call", token_calls)
    return 0


if __name__ == "__main__":
    sys.exit(main())
