"""Issue 14, "free paid calls" and "anyone who learns a payment id gets its token": the dev
provider refused with a real upstream, one Host/Origin policy for the REST API and /mcp
(DNS rebinding), and client API keys that bind payments and hide tokens from other keys."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import anyio
import pytest
from fastapi.testclient import TestClient

from s402gen.runtime.app import create_app
from s402gen.runtime.auth import ClientAuth, HostPolicy
from s402gen.runtime.keys import KeyStore, key_digest
from s402gen.runtime.payments import Ledger

from .conftest import (
    GENERATED,
    LOOPBACK_BASE,
    issued_keys,
    run_cli,
    running_app,
    write_catalog,
)

CATALOG = json.loads((GENERATED / "catalog" / "catalog.json").read_bytes())
ENTRY = next(s for s in CATALOG["services"] if s["id"] == "face-detection")
BODY = ENTRY["exampleRequest"]
UNREACHABLE = {"ALIBABA_CLOUD_ACCESS_KEY_ID": "AK-test", "ALIBABA_CLOUD_ACCESS_KEY_SECRET": "x"}
MCP_CALL = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}
MCP_HEADERS = {"Accept": "application/json, text/event-stream"}


class _Upstream:
    """Answers every call like the service's example, and counts the calls."""

    def __init__(self) -> None:
        self.calls = 0

    def call(self, spec: Any, arguments: Any) -> Any:
        from s402gen.runtime.upstream import UpstreamAnswer

        self.calls += 1
        return UpstreamAnswer(200, {"RequestId": "r-1", "Data": {"Action": spec.upstream.action}})


# ---------------------------------------------------------------------------
# the dev payment provider with a real upstream


class Started(list):
    """What would have been served; ``during(app)``, when set, runs while it is served."""

    during: Any = None


@pytest.fixture
def started(monkeypatch: pytest.MonkeyPatch) -> Started:
    """Stands in for uvicorn and the stdio loop: records what would have been served."""
    import uvicorn

    apps = Started()

    def run(app: Any, **options: Any) -> None:
        apps.append(app)
        if apps.during is not None:
            apps.during(app)

    monkeypatch.setattr(uvicorn, "run", run)

    async def stdio(server: Any) -> None:
        apps.append(server)

    monkeypatch.setattr("s402gen.runtime.mcp_server.serve_stdio", stdio)
    for name, value in UNREACHABLE.items():
        monkeypatch.setenv(name, value)
    return apps


@pytest.mark.parametrize("command", ["serve", "mcp"])
def test_dev_payments_with_a_real_upstream_are_refused(
    command: str, started: list[Any], tmp_path: Path
) -> None:
    ledger = str(tmp_path / "ledger.sqlite3")
    args = [command, "--generated", str(GENERATED), "--upstream", "aliyun", "--ledger", ledger]
    code, out, err = run_cli(*args)
    assert code == 2 and started == []  # exits.Exit.INVALID, before anything listens
    lines = err.strip().splitlines()
    assert lines == [
        "error: the dev payment provider makes every paid call free: refusing to serve the "
        "real upstream (aliyun) with it (use --payments x402, --upstream emulator, "
        "or --allow-dev-payments)"
    ]
    code, _, err = run_cli(*args, "--allow-dev-payments")
    assert code == 0 and len(started) == 1, err  # asked for explicitly: served


# ---------------------------------------------------------------------------
# one Host/Origin policy for the REST API and /mcp (DNS rebinding)


def _app(**kwargs: Any) -> Any:
    return create_app(GENERATED, ledger=Ledger(), upstream=_Upstream(), **kwargs)


@pytest.mark.parametrize(
    ("path", "body", "headers"),
    [
        ("/api/payments", {"serviceId": ENTRY["id"]}, {}),
        (ENTRY["endpoint"], BODY, {}),
        ("/mcp", MCP_CALL, MCP_HEADERS),
    ],
    ids=["payments", "paid-call", "mcp"],
)
def test_dns_rebinding_is_refused_on_rest_and_mcp(path: str, body: dict, headers: dict) -> None:
    with TestClient(_app(), base_url=LOOPBACK_BASE) as http:
        rebound = http.post(path, json=body, headers={**headers, "Host": "evil.example:8402"})
        assert rebound.status_code == 421, rebound.text
        cross = http.post(path, json=body, headers={**headers, "Origin": "http://evil.example"})
        assert cross.status_code == 403, cross.text
        same = {**headers, "Origin": "http://127.0.0.1:8402"}
        assert http.post(path, json=body, headers=same).status_code in (200, 201, 402)
        assert http.post(path, json=body, headers=headers).status_code in (200, 201, 402)


def test_allowed_hosts_are_one_list_for_rest_and_mcp() -> None:
    policy = HostPolicy.for_hosts(["api.example.com", "gw.internal:*"])
    base = "http://api.example.com"
    with TestClient(_app(host_policy=policy), base_url=base) as http:
        assert http.get("/api/catalog").status_code == 200
        assert http.post("/mcp", json=MCP_CALL, headers=MCP_HEADERS).status_code == 200
        for path in ("/api/catalog", "/mcp"):
            for host in ("127.0.0.1:8402", "api.example.com.evil.example", "gw.internal"):
                assert http.get(path, headers={"Host": host}).status_code == 421, (path, host)
        mcp = http.post("/mcp", json=MCP_CALL, headers={**MCP_HEADERS, "Host": "gw.internal:9"})
        assert mcp.status_code == 200
    settings = policy.mcp_settings()  # the SDK's own check gets the very same lists
    assert settings.allowed_hosts == list(policy.allowed_hosts)
    assert settings.enable_dns_rebinding_protection


def test_binding_beyond_loopback_warns_and_still_checks_hosts(
    started: list[Any], tmp_path: Path
) -> None:
    args = ["serve", "--generated", str(GENERATED), "--upstream", "emulator", "--host", "0.0.0.0"]
    statuses: list[int] = []

    def during(app: Any) -> None:
        with TestClient(app, base_url="http://192.0.2.7:8402") as http:  # a LAN address
            statuses.append(http.get("/api/catalog").status_code)
            statuses.append(http.post("/mcp", json=MCP_CALL, headers=MCP_HEADERS).status_code)

    started.during = during
    code, _, err = run_cli(*args, "--ledger", str(tmp_path / "l.sqlite3"))
    assert code == 0, err
    assert (
        "warning: listening on 0.0.0.0, beyond loopback; answering Host 127.0.0.1:8402, "
        "localhost:8402, [::1]:8402 (--allowed-host NAME[:PORT] for the names clients use)"
    ) in err
    assert statuses == [421, 421]  # the MCP check stays on, as the REST one
    code, _, err = run_cli(*args, "--allowed-host", "192.0.2.7:8402", "--ledger", ":memory:")
    assert code == 0, err
    assert statuses[2:] == [200, 200]


# ---------------------------------------------------------------------------
# API keys


def test_keys_are_stored_as_digests_and_revoked_by_the_cli(tmp_path: Path) -> None:
    ledger = str(tmp_path / "ledger.sqlite3")
    code, key, err = run_cli("keys", "create", "--name", "alice", "--ledger", ledger)
    assert code == 0 and key.startswith("s402_") and len(key.strip()) == 5 + 43, err
    key = key.strip()
    assert "shown once" in err
    raw = Path(ledger).read_bytes()
    assert key.encode() not in raw and key[5:].encode() not in raw  # only the digest is kept
    with sqlite3.connect(ledger) as db:
        (digest,) = db.execute("SELECT key_hash FROM api_keys").fetchone()
    assert digest == key_digest(key)
    code, listed, _ = run_cli("keys", "list", "--ledger", ledger)
    key_id = listed.split()[0]
    assert code == 0 and key_id.startswith("key_") and "active" in listed and "alice" in listed
    assert key not in listed
    store = KeyStore(ledger)
    assert store.authenticate(key).key_id == key_id
    code, revoked, _ = run_cli("keys", "revoke", key_id, "--ledger", ledger)
    assert code == 0 and "revoked" in revoked
    assert store.authenticate(key) is None
    code, _, err = run_cli("keys", "revoke", "key_nope", "--ledger", ledger)
    assert code == 2 and "no API key 'key_nope'" in err and "Traceback" not in err


def _keyed_client(*names: str) -> tuple[TestClient, dict[str, dict[str, str]], _Upstream]:
    auth, keys = issued_keys(*names)
    upstream = _Upstream()
    app = create_app(GENERATED, ledger=Ledger(), upstream=upstream, auth=auth)
    return TestClient(app, base_url=LOOPBACK_BASE), keys, upstream


def test_a_binding_pricing_needs_a_key_and_a_bad_key_is_refused() -> None:
    http, keys, upstream = _keyed_client("a")
    with http:
        for path, body in (("/api/payments", {"serviceId": ENTRY["id"]}),):
            anonymous = http.post(path, json=body)
            assert anonymous.status_code == 401 and anonymous.json() == {
                "error": "api key required"
            }
            assert anonymous.headers["WWW-Authenticate"] == "Bearer"
        for bad in ("Bearer s402_not-a-key", "Basic dXNlcjpwYXNz", "Bearer "):
            refused = http.post("/api/payments", json={"serviceId": ENTRY["id"]},
                                headers={"Authorization": bad})  # fmt: skip
            assert refused.status_code == 401
            assert refused.json() == {"error": "api key is not allowed to call this service"}
            call = http.post(ENTRY["endpoint"], json=BODY, headers={"Authorization": bad})
            assert call.status_code == 401
        assert http.post(ENTRY["endpoint"], json=BODY).status_code == 402  # the price, anonymous
        assert upstream.calls == 0


def test_a_payment_token_is_never_shown_to_another_key() -> None:
    http, keys, upstream = _keyed_client("a", "b")
    with http:
        created = http.post("/api/payments", json={"serviceId": ENTRY["id"]}, headers=keys["a"])
        assert created.status_code == 201
        payment = created.json()
        token, url = payment["token"], f"/api/payments/{payment['paymentId']}"
        assert payment["clientId"].startswith("key_")
        assert http.get(url, headers=keys["a"]).json()["token"] == token
        for other in (keys["b"], {}):
            seen = http.get(url, headers=other)
            assert seen.status_code == 200 and "token" not in seen.json()
            assert token not in seen.text
        # b (or anyone) holding the token: refused, and the 402 shows not a's payment
        for other, failure in ((keys["b"], "api key is not allowed to call this service"),
                               ({}, "api key required")):  # fmt: skip
            stolen = http.post(ENTRY["endpoint"], json=BODY,
                               headers={**other, "X-Payment-Token": token})  # fmt: skip
            assert stolen.status_code == 402 and stolen.json()["error"] == failure
            assert payment["paymentId"] not in stolen.text and token not in stolen.text
        assert upstream.calls == 0
        paid = http.post(
            ENTRY["endpoint"], json=BODY, headers={**keys["a"], "X-Payment-Token": token}
        )
        assert paid.status_code == 200 and upstream.calls == 1


def test_anonymous_payments_only_where_the_pricing_does_not_bind(
    tmp_path: Path, real_catalog_data: dict
) -> None:
    real_catalog_data["pricingPolicies"]["aliyun-viapi"]["bindClient"] = False
    out = tmp_path / "generated"
    code, _, err = run_cli(
        "build", str(write_catalog(tmp_path / "catalog.yaml", real_catalog_data)), "--out", str(out)
    )
    assert code == 0, err
    auth, keys = issued_keys("a")
    app = create_app(out, ledger=Ledger(), upstream=_Upstream(), auth=auth)
    with TestClient(app, base_url=LOOPBACK_BASE) as http:
        created = http.post("/api/payments", json={"serviceId": ENTRY["id"]})
        assert created.status_code == 201 and created.json()["clientId"] == ""
        token = created.json()["token"]
        assert (
            http.post(ENTRY["endpoint"], json=BODY, headers={"X-Payment-Token": token}).status_code
            == 200
        )


def test_mcp_over_http_takes_the_bearer_key() -> None:
    """create_payment over /mcp binds the payment to the request's key; another key's
    verify_payment does not see the token; no key where the pricing binds: refused."""
    from mcp import Client
    from mcp.client.streamable_http import streamable_http_client

    auth, keys = issued_keys("a", "b")
    app = create_app(GENERATED, ledger=Ledger(), upstream=_Upstream(), auth=auth)

    async def tool(base: str, headers: dict, name: str, arguments: dict) -> Any:
        import httpx2  # the MCP SDK's own HTTP client

        async with httpx2.AsyncClient(headers=headers) as http:
            async with Client(streamable_http_client(f"{base}/mcp", http_client=http)) as client:
                return await client.call_tool(name, arguments)

    with running_app(app) as base:
        created = anyio.run(tool, base, keys["a"], "create_payment", {"serviceId": ENTRY["id"]})
        record = created.structured_content
        assert not created.is_error and record["clientId"].startswith("key_")
        ask = {"paymentId": record["paymentId"]}
        mine = anyio.run(tool, base, keys["a"], "verify_payment", ask).structured_content
        theirs = anyio.run(tool, base, keys["b"], "verify_payment", ask).structured_content
        assert mine["token"] == record["token"] and "token" not in theirs
        anonymous = anyio.run(tool, base, {}, "create_payment", {"serviceId": ENTRY["id"]})
        assert anonymous.is_error and anonymous.structured_content == {"error": "api key required"}
        stolen = anyio.run(
            tool, base, keys["b"], "face_detection", {**BODY, "paymentToken": record["token"]}
        )
        assert stolen.is_error
        assert stolen.structured_content["error"] == "api key is not allowed to call this service"
        assert record["token"] not in json.dumps(stolen.structured_content)


def test_default_app_is_anonymous_and_rejects_keys_it_cannot_check() -> None:
    """create_app without a key store (tests, embedding): everyone anonymous, any key refused."""
    assert ClientAuth().anonymous and ClientAuth().keys is None
    with TestClient(_app(), base_url=LOOPBACK_BASE) as http:
        assert http.post("/api/payments", json={"serviceId": ENTRY["id"]}).status_code == 201
        keyed = http.post("/api/payments", json={"serviceId": ENTRY["id"]},
                          headers={"Authorization": "Bearer s402_x"})  # fmt: skip
        assert keyed.status_code == 401


def test_serve_reads_keys_from_its_ledger(started: list[Any], tmp_path: Path) -> None:
    ledger = str(tmp_path / "ledger.sqlite3")
    _, key, _ = run_cli("keys", "create", "--ledger", ledger)
    args = ["serve", "--generated", str(GENERATED), "--upstream", "emulator", "--ledger", ledger]
    statuses: list[int] = []

    def during(app: Any) -> None:
        with TestClient(app, base_url=LOOPBACK_BASE) as http:
            body = {"serviceId": ENTRY["id"]}
            statuses.append(http.post("/api/payments", json=body).status_code)
            bearer = {"Authorization": f"Bearer {key.strip()}"}
            statuses.append(http.post("/api/payments", json=body, headers=bearer).status_code)

    started.during = during
    code, _, err = run_cli(*args)
    assert code == 0, err
    assert statuses == [401, 201]


@pytest.mark.parametrize("value", ["http://api.example.com", "api.example.com/x", "a b", ""])
def test_an_allowed_host_that_is_not_a_host_is_a_clear_error(
    value: str, started: list[Any]
) -> None:
    args = [
        "serve",
        "--generated",
        str(GENERATED),
        "--upstream",
        "emulator",
        "--ledger",
        ":memory:",
    ]
    code, _, err = run_cli(*args, "--allowed-host", value)
    assert code == 2 and started == [] and "Traceback" not in err
    assert err.strip().splitlines() == [
        f"error: --allowed-host {value!r} is not NAME[:PORT] (e.g. api.example.com, "
        "10.0.0.5:8402, [::1]:*)"
    ]


def test_mcp_over_stdio_refuses_a_key_the_ledger_does_not_hold(
    started: list[Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ledger = str(tmp_path / "ledger.sqlite3")
    args = ["mcp", "--generated", str(GENERATED), "--upstream", "emulator", "--ledger", ledger]
    monkeypatch.setenv("S402GEN_API_KEY", "s402_not-issued-here")
    code, _, err = run_cli(*args)
    assert code == 2 and started == []
    assert err.strip().splitlines()[-1] == (
        f"error: S402GEN_API_KEY is not an active key of {ledger} (s402gen keys list)"
    )
    _, key, _ = run_cli("keys", "create", "--ledger", ledger)
    monkeypatch.setenv("S402GEN_API_KEY", key.strip())
    code, _, err = run_cli(*args)
    assert code == 0 and len(started) == 1, err
