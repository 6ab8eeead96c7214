"""x402's own httpx client pays a real `s402gen serve` process, whose facilitator is x402's
own, over HTTP on 127.0.0.1, settling on the local chain of this test process."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from eth_account import Account
from x402.http.clients.httpx import x402HttpxClient
from x402.http.utils import (
    decode_payment_required_header,
    decode_payment_response_header,
)

from .conftest import free_port
from .x402.chain import ServerThread, facilitator_app, start_chain, x402_client

GENERATED = Path(__file__).resolve().parents[1] / "generated"
TOOL = "/api/tools/face-detection"
BODY = {"ImageURL": "https://example.com/face.jpg"}
SECRET = "facilitator-key-s3cret"

pytestmark = pytest.mark.slow


def test_x402_client_pays_a_served_route(tmp_path: Path) -> None:
    chain = start_chain()
    seller, payer = Account.create().address, Account.create()
    chain.mint(payer.address, 1_000_000)
    with ServerThread(facilitator_app(chain, token=SECRET)) as fac:
        port = free_port()
        exe = Path(sys.executable).parent / "s402gen"
        facilitator = fac.url  # the key travels in X402_FACILITATOR_TOKEN
        command = [str(exe), "serve", "--generated", str(GENERATED), "--port", str(port)]
        command += ["--upstream", "emulator", "--ledger", str(tmp_path / "ledger.sqlite3")]
        command += ["--x402-facilitator", facilitator, "--x402-pay-to", seller]
        env = dict(os.environ, X402_FACILITATOR_TOKEN=SECRET)  # the facilitator requires it
        issued = subprocess.run(
            [str(exe), "keys", "create", "--ledger", str(tmp_path / "ledger.sqlite3")],
            capture_output=True,
            text=True,
            check=True,
        )
        key = {"Authorization": f"Bearer {issued.stdout.strip()}"}  # the pricing binds clients
        process = subprocess.Popen(
            command, cwd=tmp_path, stderr=subprocess.PIPE, text=True, env=env
        )
        try:
            base = f"http://127.0.0.1:{port}"
            for _ in range(300):
                try:
                    httpx.get(f"{base}/api/catalog", timeout=1)
                    break
                except httpx.TransportError:
                    assert process.poll() is None, process.stderr.read()
                    time.sleep(0.05)
            offer = httpx.post(base + TOOL, json=BODY, timeout=10)
            assert offer.status_code == 402 and offer.json()["payment"]["amountCents"] == 20
            assert decode_payment_required_header(offer.headers["payment-required"]).accepts

            async def pay() -> httpx.Response:
                async with x402HttpxClient(
                    x402_client(payer), base_url=base, timeout=60, headers=key
                ) as c:
                    return await c.post(TOOL, json=BODY)

            paid = asyncio.run(pay())
            assert paid.status_code == 200, paid.text
            assert paid.json()["data"]["Action"] == "DetectFace"
            settled = decode_payment_response_header(paid.headers["payment-response"])
            assert settled.success and settled.payer == payer.address
            assert chain.balance(payer.address) == 1_000_000 - 200_000
            assert chain.balance(seller) == 200_000
        finally:
            process.terminate()
            _, log = process.communicate(timeout=10)
    assert "payments: x402 (x402-base-usdc) on eip155:84532" in log
    assert SECRET not in log and "user:" not in log


def test_serve_without_pay_to_stops_with_a_finding_not_a_traceback(tmp_path: Path) -> None:
    exe = Path(sys.executable).parent / "s402gen"
    command = [str(exe), "serve", "--generated", str(GENERATED), "--upstream", "emulator"]
    command += ["--payments", "x402", "--x402-facilitator", f"http://u:{SECRET}@127.0.0.1:9/x"]
    env = {k: v for k, v in os.environ.items() if k != "X402_PAY_TO"}
    done = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, env=env)
    assert done.returncode == 2
    assert "no payTo address (use --x402-pay-to or set X402_PAY_TO)" in done.stderr
    assert "Traceback" not in done.stderr and SECRET not in done.stderr


def test_unreachable_facilitator_is_named_without_its_secret(tmp_path: Path) -> None:
    exe = Path(sys.executable).parent / "s402gen"
    facilitator = f"http://user:{SECRET}@127.0.0.1:{free_port()}/v2?apiKey={SECRET}"
    command = [str(exe), "serve", "--generated", str(GENERATED), "--upstream", "emulator"]
    command += ["--x402-facilitator", facilitator, "--x402-pay-to", Account.create().address]
    done = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "error: x402: the x402 facilitator (http://127.0.0.1:" in done.stderr
    assert "Traceback" not in done.stderr and SECRET not in done.stderr


def test_a_refused_facilitator_token_is_an_error_that_does_not_quote_it(tmp_path: Path) -> None:
    chain = start_chain()
    with ServerThread(facilitator_app(chain, token="the-right-one")) as fac:
        exe = Path(sys.executable).parent / "s402gen"
        command = [str(exe), "serve", "--generated", str(GENERATED), "--upstream", "emulator"]
        command += ["--x402-facilitator", fac.url, "--x402-pay-to", Account.create().address]
        env = dict(os.environ, X402_FACILITATOR_TOKEN=SECRET)
        done = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, env=env)
    assert done.returncode == 2
    assert f"the x402 facilitator ({fac.url}) cannot be used" in done.stderr
    assert SECRET not in done.stderr + done.stdout and "Traceback" not in done.stderr


def test_x402_pays_a_tool_over_mcp_stdio(tmp_path: Path) -> None:
    """`s402gen mcp --x402-*`, launched over stdio by the mcp SDK's client: an unpaid call's
    result carries x402's offer, x402's client signs it, and the call paying in its _meta
    settles on the local chain through x402's facilitator and answers."""
    import json

    import anyio
    from mcp import Client, StdioServerParameters
    from x402.mcp.utils import attach_payment_to_meta, extract_payment_response_from_meta
    from x402.schemas import parse_payment_required

    chain = start_chain()
    seller, payer = Account.create().address, Account.create()
    chain.mint(payer.address, 1_000_000)
    exe = Path(sys.executable).parent / "s402gen"
    with ServerThread(facilitator_app(chain, token=SECRET)) as fac:
        params = StdioServerParameters(
            command=str(exe) if exe.exists() else "s402gen",
            args=["mcp", "--generated", str(GENERATED), "--upstream", "emulator", "--ledger",
                  str(tmp_path / "ledger.sqlite3"), "--no-api-keys",
                  "--x402-facilitator", fac.url, "--x402-pay-to", seller],
            cwd=str(tmp_path),
            env={"X402_FACILITATOR_TOKEN": SECRET},
        )  # fmt: skip

        async def flow() -> tuple[Any, Any]:
            async with Client(params) as client:
                unpaid = await client.call_tool("face_detection", BODY)
                offer = parse_payment_required(json.loads(unpaid.content[1].text))
                payload = x402_client(payer, sync=True).create_payment_payload(offer)
                meta = attach_payment_to_meta({}, payload)["_meta"]
                return unpaid, await client.call_tool("face_detection", BODY, meta=meta)

        unpaid, paid = anyio.run(flow)
    assert unpaid.is_error and unpaid.structured_content["error"] == "payment required"
    assert not paid.is_error, paid.structured_content
    assert paid.structured_content["data"]["Action"] == "DetectFace"
    settled = extract_payment_response_from_meta(paid)
    assert settled is not None and settled.success and settled.payer == payer.address
    assert chain.balance(seller) == 1_000_000 - chain.balance(payer.address) > 0
