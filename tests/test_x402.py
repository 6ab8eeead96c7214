"""Real x402 payments on a local chain: py-evm in process, TestUSDC (EIP-3009), x402's own
facilitator (in process here), x402's own client, and the gateway's real app."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from fastapi.testclient import TestClient
from x402.http.utils import (
    decode_payment_required_header,
    decode_payment_response_header,
    encode_payment_signature_header,
)
from x402conf import harness

from s402gen.runtime.app import create_app
from s402gen.runtime.payments import Ledger
from s402gen.runtime.upstream import UpstreamAnswer
from s402gen.runtime.x402 import Overrides, X402Gateway, load_offers

from .conftest import LOOPBACK_BASE, run_cli, write_catalog
from .x402.chain import NETWORK, USDC, Chain, facilitator, start_chain, x402_client

GENERATED = Path(__file__).resolve().parents[1] / "generated"
TOOL = "/api/tools/face-detection"
BODY = {"ImageURL": "https://example.com/face.jpg"}
PRICE_UNITS = 20 * 10**4  # 20 cents of a 6-decimal USD token


class SwitchableUpstream:
    """An upstream that answers, or fails like Alibaba Cloud throttling, on demand."""

    def __init__(self) -> None:
        self.fail = False
        self.calls = 0

    def call(self, spec: Any, arguments: Any) -> UpstreamAnswer:
        self.calls += 1
        if self.fail:  # Alibaba Cloud's throttling answer, as its aliyun-rpc protocol reads it
            message = "Request was denied due to flow control."
            return UpstreamAnswer(
                400, {"Code": "Throttling", "Message": message, "RequestId": "rq-1"}
            )
        return UpstreamAnswer(200, {"RequestId": "rq-ok", "Data": {"FaceCount": 1}})


@pytest.fixture(scope="module")
def chain() -> Chain:
    return start_chain()


@pytest.fixture(scope="module")
def seller() -> str:
    return Account.create().address


@pytest.fixture(scope="module")
def upstream() -> SwitchableUpstream:
    return SwitchableUpstream()


@pytest.fixture(scope="module")
def app(chain: Chain, seller: str, upstream: SwitchableUpstream) -> Any:
    gateway = X402Gateway(
        load_offers(GENERATED), overrides=Overrides(pay_to=seller), facilitator=facilitator(chain)
    )
    return create_app(GENERATED, ledger=Ledger(), upstream=upstream, x402=gateway)


@pytest.fixture
def http(app: Any) -> TestClient:
    return TestClient(app, base_url=LOOPBACK_BASE)


@pytest.fixture
def payer(chain: Chain) -> Any:
    account = Account.create()
    chain.mint(account.address, 1_000_000)
    return account


def _signature(http: TestClient, account: Any, path: str = TOOL, **kwargs: Any) -> str:
    """x402's own client signs what the route's 402 asks for."""
    offer = http.post(path, json=BODY, **kwargs)
    assert offer.status_code in (402, 201), offer.text
    required = decode_payment_required_header(offer.headers["payment-required"])
    payload = x402_client(account, sync=True).create_payment_payload(required)
    return encode_payment_signature_header(payload)


def _rows(app: Any, sql: str, params: tuple = ()) -> list[tuple]:
    """Rows of a query on the app's ledger, whatever database it is in."""
    with app.state.runtime.ledger._store.transaction() as tx:
        return tx.all(sql, params)


def test_every_paid_route_answers_an_x402_402_beside_the_marketplace_body(
    http: TestClient, app: Any, seller: str
) -> None:
    catalog = {e["id"]: e for e in app.state.generated.catalog.to_json()["services"]}
    assert catalog and len(app.state.runtime.specs) == len(catalog)
    for spec in app.state.runtime.specs:
        entry = catalog[spec.service_id]
        answer = http.post(spec.endpoint, json=entry.get("exampleRequest") or {})
        assert answer.status_code == 402, (spec.service_id, answer.text)
        body = answer.json()
        assert body["error"] == "payment required"
        assert body["payment"]["amountCents"] == entry["pricing"]["amountCents"]
        required = decode_payment_required_header(answer.headers["payment-required"])
        (offer,) = required.accepts
        assert (offer.scheme, offer.network, offer.asset) == ("exact", NETWORK, USDC)
        assert offer.amount == str(entry["pricing"]["amountCents"] * 10**4)
        assert offer.pay_to == seller and offer.extra == {"name": "USDC", "version": "2"}
        assert required.resource.url.endswith(spec.endpoint)
        assert required.extensions["bazaar"]["info"]["input"]["method"] == "POST"
        response = {
            "status": answer.status_code,
            "headers": {k.lower(): v for k, v in answer.headers.items()},
            "body": answer.content,
        }
        failed = [c for c in harness.check_402(response) if not c["pass"]]
        assert not [c for c in failed if c["severity"] != "warning"], (spec.service_id, failed)


def test_generated_bazaar_extension_is_what_x402_declares(app: Any) -> None:
    """The compiler writes the extension without importing x402; x402's own builder agrees."""
    from x402.extensions.bazaar import declare_discovery_extension
    from x402.extensions.bazaar.resource_service import OutputConfig

    offer = load_offers(GENERATED)["services"]["face-detection"]
    entry = next(
        e for e in app.state.generated.catalog.to_json()["services"] if e["id"] == "face-detection"
    )
    declared = declare_discovery_extension(
        input=entry["exampleRequest"],
        input_schema=entry["inputSchema"],
        body_type="json",
        output=OutputConfig(example=entry["exampleResponse"], schema=entry["outputSchema"]),
    )
    declared["bazaar"]["info"]["input"]["method"] = "POST"  # x402's HTTP server adds it
    assert offer["extensions"] == declared


def test_x402_client_pays_the_tool_route_on_chain(
    http: TestClient, app: Any, chain: Chain, seller: str, payer: Any
) -> None:
    before = chain.balance(seller)
    signature = _signature(http, payer)
    answer = http.post(TOOL, json=BODY, headers={"PAYMENT-SIGNATURE": signature})
    assert answer.status_code == 200, answer.text
    assert answer.json()["data"] == {"Action": "DetectFace", "Result": {"FaceCount": 1}}
    settled = decode_payment_response_header(answer.headers["payment-response"])
    assert settled.success and settled.network == NETWORK
    assert chain.w3.eth.get_transaction_receipt(settled.transaction)["status"] == 1
    assert chain.balance(payer.address) == 1_000_000 - PRICE_UNITS
    assert chain.balance(seller) == before + PRICE_UNITS
    assert "x-payment-token" not in answer.headers  # maxCalls 1: nothing left to spend
    # the ledger keeps the money trail
    row = _rows(
        app,
        "SELECT status, used_calls, tx_hash, payer, network, settled_amount FROM payments "
        "WHERE tx_hash = ?",
        (settled.transaction,),
    )
    assert row == [("paid", 1, settled.transaction, payer.address, NETWORK, str(PRICE_UNITS))]

    # the same signature again: refused, never served, never charged twice
    calls = app.state.runtime.upstream.calls
    replay = http.post(TOOL, json=BODY, headers={"PAYMENT-SIGNATURE": signature})
    assert replay.status_code == 402
    assert decode_payment_required_header(replay.headers["payment-required"]).error == (
        "payment signature already used"
    )
    assert app.state.runtime.upstream.calls == calls
    assert chain.balance(payer.address) == 1_000_000 - PRICE_UNITS


def test_unfunded_payer_is_refused_and_leaves_no_record(
    http: TestClient, app: Any, chain: Chain
) -> None:
    broke = Account.create()
    count = _rows(app, "SELECT count(*) FROM payments")[0]
    answer = http.post(TOOL, json=BODY, headers={"PAYMENT-SIGNATURE": _signature(http, broke)})
    assert answer.status_code == 402
    error = decode_payment_required_header(answer.headers["payment-required"]).error
    assert error == "invalid_exact_evm_insufficient_balance"
    after = _rows(app, "SELECT count(*) FROM payments")[0]
    assert after == count


def test_body_is_checked_before_any_payment(http: TestClient, chain: Chain, payer: Any) -> None:
    signature = _signature(http, payer)
    answer = http.post(TOOL, json={}, headers={"PAYMENT-SIGNATURE": signature})
    assert answer.status_code == 400 and answer.json() == {"error": "ImageURL is required"}
    assert chain.balance(payer.address) == 1_000_000


def test_upstream_failure_after_settlement_gives_a_free_retry_token(
    http: TestClient, chain: Chain, payer: Any, upstream: SwitchableUpstream
) -> None:
    signature = _signature(http, payer)
    upstream.fail = True
    try:
        failed = http.post(TOOL, json=BODY, headers={"PAYMENT-SIGNATURE": signature})
    finally:
        upstream.fail = False
    assert failed.status_code == 502
    assert chain.balance(payer.address) == 1_000_000 - PRICE_UNITS  # settled first
    token = failed.headers["x-payment-token"]
    assert failed.json()["payment"]["token"] == token
    assert failed.json()["payment"]["status"] == "paid"
    retried = http.post(TOOL, json=BODY, headers={"X-Payment-Token": token})
    assert retried.status_code == 200, retried.text
    assert chain.balance(payer.address) == 1_000_000 - PRICE_UNITS  # the retry was free
    assert http.post(TOOL, json=BODY, headers={"X-Payment-Token": token}).status_code == 402


def test_token_flow_completed_by_an_x402_payment(
    http: TestClient, chain: Chain, seller: str, payer: Any
) -> None:
    created = http.post("/api/payments", json={"serviceId": "face-detection"})
    assert created.status_code == 201
    record = created.json()
    assert record["status"] == "pending" and record["payTo"] == seller
    required = decode_payment_required_header(created.headers["payment-required"])
    assert required.accepts[0].amount == str(PRICE_UNITS)
    pay_url = f"/api/payments/{record['paymentId']}/x402"
    assert required.resource.url.endswith(pay_url)
    # a pending token does not pay
    pending = http.post(TOOL, json=BODY, headers={"X-Payment-Token": record["token"]})
    assert pending.status_code == 402
    unpaid = http.post(pay_url)
    assert unpaid.status_code == 402 and "payment-required" in unpaid.headers

    payload = x402_client(payer, sync=True).create_payment_payload(required)
    paid = http.post(
        pay_url, headers={"PAYMENT-SIGNATURE": encode_payment_signature_header(payload)}
    )
    assert paid.status_code == 200, paid.text
    assert paid.json()["status"] == "paid"
    assert decode_payment_response_header(paid.headers["payment-response"]).success
    assert chain.balance(payer.address) == 1_000_000 - PRICE_UNITS
    assert http.get(f"/api/payments/{record['paymentId']}").json()["status"] == "paid"
    again = http.post(
        pay_url, headers={"PAYMENT-SIGNATURE": encode_payment_signature_header(payload)}
    )
    assert again.status_code == 402  # paid once; nothing settles twice
    assert chain.balance(payer.address) == 1_000_000 - PRICE_UNITS
    used = http.post(TOOL, json=BODY, headers={"X-Payment-Token": record["token"]})
    assert used.status_code == 200, used.text


def test_dev_provider_says_so_in_its_402(chain: Chain) -> None:
    dev = TestClient(create_app(GENERATED, upstream=SwitchableUpstream()), base_url=LOOPBACK_BASE)
    answer = dev.post(TOOL, json=BODY)
    assert answer.status_code == 402 and answer.json()["payment"]["provider"] == "dev"
    assert "payment-required" not in answer.headers


def test_max_calls_above_one_returns_a_token_for_the_rest(
    tmp_path: Path, real_catalog_data: dict, chain: Chain, payer: Any
) -> None:
    """A catalog whose pricing sells 3 calls a payment, and whose provider names payTo
    itself: the paid call's answer carries the token that pays for the other two."""
    seller = Account.create().address
    real_catalog_data["pricingPolicies"]["aliyun-viapi"].update(maxCalls=3, allowReuse=True)
    provider = real_catalog_data["paymentProviders"]["x402-base-usdc"]
    provider["payTo"] = seller
    out = tmp_path / "generated"
    catalog = write_catalog(tmp_path / "catalog.yaml", real_catalog_data)
    code, _, err = run_cli("build", str(catalog), "--out", str(out))
    assert code == 0, err
    gateway = X402Gateway(load_offers(out), facilitator=facilitator(chain), environ={})
    http = TestClient(
        create_app(out, upstream=SwitchableUpstream(), x402=gateway), base_url=LOOPBACK_BASE
    )
    paid = http.post(TOOL, json=BODY, headers={"PAYMENT-SIGNATURE": _signature(http, payer)})
    assert paid.status_code == 200, paid.text
    assert chain.balance(seller) == PRICE_UNITS  # one price buys the three calls
    token = paid.headers["x-payment-token"]
    for _ in range(2):
        assert http.post(TOOL, json=BODY, headers={"X-Payment-Token": token}).status_code == 200
    spent = http.post(TOOL, json=BODY, headers={"X-Payment-Token": token})
    assert spent.status_code == 402
    assert spent.json()["error"] == "payment token has no remaining calls"
    assert chain.balance(payer.address) == 1_000_000 - PRICE_UNITS


def test_x402_payment_travels_inside_an_mcp_call(app: Any, chain: Chain, payer: Any) -> None:
    """x402's MCP transport: the offer as a result text with `accepts`, the payment in the
    call's _meta["x402/payment"], the settlement in the result's _meta. x402's own client
    signs and its MCP helpers attach and read (its session wrapper targets mcp 1.x)."""
    import json

    import anyio
    from mcp import Client
    from x402.mcp import MCP_PAYMENT_META_KEY
    from x402.mcp.utils import (
        attach_payment_to_meta,
        extract_payment_response_from_meta,
    )
    from x402.schemas import parse_payment_required

    from s402gen.runtime.mcp_server import build_mcp_server, load_tools

    server = build_mcp_server(load_tools(GENERATED), app.state.runtime)

    async def flow() -> tuple[Any, Any]:
        async with Client(server) as client:
            unpaid = await client.call_tool("face_detection", BODY)
            assert unpaid.is_error and unpaid.structured_content["error"] == "payment required"
            offer = parse_payment_required(json.loads(unpaid.content[1].text))
            assert offer.resource.url == "mcp://tool/face_detection"
            payload = x402_client(payer, sync=True).create_payment_payload(offer)
            meta = attach_payment_to_meta({}, payload)["_meta"]
            assert MCP_PAYMENT_META_KEY in meta
            paid = await client.call_tool("face_detection", BODY, meta=meta)
            replay = await client.call_tool("face_detection", BODY, meta=meta)
            return paid, replay

    paid, replay = anyio.run(flow)
    assert not paid.is_error, paid.structured_content
    assert paid.structured_content["data"]["Result"] == {"FaceCount": 1}
    settled = extract_payment_response_from_meta(paid)
    assert settled is not None and settled.success and settled.payer == payer.address
    assert chain.balance(payer.address) == 1_000_000 - PRICE_UNITS
    assert replay.is_error
    assert json.loads(replay.content[1].text)["error"] == "payment signature already used"


def test_mcp_create_payment_is_paid_through_verify_payment(
    app: Any, chain: Chain, payer: Any
) -> None:
    """MCP's token flow: create_payment answers pending with payTo and the x402 offer;
    verify_payment with the x402 payment in _meta settles it; the token then pays."""
    import json

    import anyio
    from mcp import Client
    from x402.mcp.utils import attach_payment_to_meta
    from x402.schemas import parse_payment_required

    from s402gen.runtime.mcp_server import build_mcp_server, load_tools

    server = build_mcp_server(load_tools(GENERATED), app.state.runtime)

    async def flow() -> tuple[Any, Any, Any]:
        async with Client(server) as client:
            created = await client.call_tool("create_payment", {"serviceId": "face-detection"})
            record = created.structured_content
            assert record["status"] == "pending" and record["payTo"].startswith("0x")
            offer = parse_payment_required(json.loads(created.content[1].text))
            payload = x402_client(payer, sync=True).create_payment_payload(offer)
            meta = attach_payment_to_meta({}, payload)["_meta"]
            verified = await client.call_tool(
                "verify_payment", {"paymentId": record["paymentId"]}, meta=meta
            )
            used = await client.call_tool(
                "face_detection", {**BODY, "paymentToken": record["token"]}
            )
            return record, verified, used

    record, verified, used = anyio.run(flow)
    assert verified.structured_content["status"] == "paid", verified.structured_content
    assert chain.balance(payer.address) == 1_000_000 - PRICE_UNITS
    assert not used.is_error and used.structured_content["data"]["Action"] == "DetectFace"


def test_pay_to_is_checked_and_served_in_checksum_form(chain: Chain) -> None:
    """x402's facilitator refuses a lowercase EVM address; a bad one is a setup error."""
    from s402gen.runtime.x402 import X402Error

    seller = Account.create().address
    offers = load_offers(GENERATED)
    gateway = X402Gateway(
        offers, overrides=Overrides(pay_to=seller.lower()), facilitator=facilitator(chain)
    )
    assert gateway.pay_to("face-detection") == seller
    with pytest.raises(X402Error, match="payTo '0x12' is not an EVM address"):
        X402Gateway(offers, overrides=Overrides(pay_to="0x12"), facilitator=facilitator(chain))


def test_one_signature_sent_many_times_at_once_settles_and_serves_once(
    http: TestClient, app: Any, chain: Chain, payer: Any
) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from s402gen.runtime.service import PaymentNeeded

    runtime = app.state.runtime
    spec = runtime.spec("face-detection")
    signature = _signature(http, payer)
    calls = runtime.upstream.calls

    def attempt(_: int) -> str:
        try:
            runtime.call_paid(spec, BODY, signature, None)
            return "paid"
        except PaymentNeeded as exc:
            return exc.x402_error

    with ThreadPoolExecutor(6) as pool:
        outcomes = sorted(pool.map(attempt, range(6)))
    assert outcomes == ["paid"] + ["payment signature already used"] * 5
    assert runtime.upstream.calls == calls + 1
    assert chain.balance(payer.address) == 1_000_000 - PRICE_UNITS


def test_ledger_version_1_is_migrated_keeping_its_payments(tmp_path: Path) -> None:
    import sqlite3

    from s402gen.runtime.ledger_schema import MIGRATIONS

    path = tmp_path / "ledger.sqlite3"
    with sqlite3.connect(path) as db:  # a ledger as s402gen wrote it before the money trail
        db.executescript(MIGRATIONS[0].sql("sqlite")[0] + ";PRAGMA user_version = 1;")
        db.execute(
            "INSERT INTO payments VALUES ('pay_1', 'face-detection', 'legacy', 'x402-base-usdc', "
            "'dev', 20, 'USD', 'per_call', 1, 0, 'paid', 'tok', '', 1, 'dev:server402', 0, 9e9, 0)"
        )
    ledger = Ledger(path)
    kept = ledger.get("pay_1")
    assert kept is not None and kept.status == "paid" and kept.tx_hash is None
    assert ledger.claim_signature("sig") and not ledger.claim_signature("sig")
    ledger.close()
