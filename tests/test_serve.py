"""The served paid API: routes, the 402 flow, the ledger, the upstream through the emulator."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from pathlib import Path

import httpx
import jsonschema
import pytest
from fastapi.testclient import TestClient

from s402gen.runtime.app import create_app
from s402gen.runtime.emulator import FAIL_MARKER, FAULT_MARKER
from s402gen.runtime.payments import Ledger

from .conftest import (
    GENERATED,
    LOOPBACK_BASE,
    SEEDS,
    emulator_upstream,
    free_port,
    issued_keys,
    running_app,
)

CATALOG = json.loads((GENERATED / "catalog" / "catalog.json").read_text(encoding="utf-8"))
ENTRIES = CATALOG["services"]
FLOW = CATALOG["payment"]["flow"]
IDS = [entry["id"] for entry in ENTRIES]


class Clock:
    """A settable clock for token expiry."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def clock() -> Clock:
    return Clock()


AUTH, KEYS = issued_keys("client-a", "client-b")


@pytest.fixture(scope="module")
def client(emulator, clock) -> TestClient:
    app = create_app(
        GENERATED,
        ledger=Ledger(clock=clock),
        upstream=emulator_upstream(emulator),
        max_body_bytes=4096,
        auth=AUTH,
    )
    with TestClient(app, base_url=LOOPBACK_BASE) as test_client:
        yield test_client


def _example(entry: dict) -> dict:
    return entry.get("exampleRequest", {})


def _pay(client: TestClient, service_id: str, client_id: str = "client-a") -> dict:
    answer = client.post("/api/payments", json={"serviceId": service_id}, headers=KEYS[client_id])
    assert answer.status_code == 201, answer.text
    return answer.json()


def _call(
    client: TestClient,
    entry: dict,
    token: str | None = None,
    client_id: str = "client-a",
    body=None,
):
    headers = dict(KEYS[client_id])
    if token:
        headers["X-Payment-Token"] = token
    return client.post(
        entry["endpoint"], json=_example(entry) if body is None else body, headers=headers
    )


@pytest.mark.parametrize("entry", ENTRIES, ids=IDS)
def test_error_examples_on_endpoint_and_legacy_endpoint(client: TestClient, entry: dict) -> None:
    for example in entry["errorExamples"]:
        for path in (entry["endpoint"], entry["legacyEndpoint"]):
            answer = client.post(path, json=example["input"])
            assert answer.status_code == example["statusCode"], (path, answer.text)
            assert answer.json() == {"error": example["error"]}


@pytest.mark.parametrize("entry", ENTRIES, ids=IDS)
def test_whole_paid_flow(client: TestClient, emulator, entry: dict) -> None:
    first = _call(client, entry)
    assert first.status_code == 402
    assert first.headers["X-Payment-Required"] == "true"
    jsonschema.validate(first.json(), FLOW["requiredResponse"]["bodySchema"])
    assert first.json()["error"] == "payment required"

    payment = _pay(client, entry["internalServiceId"])  # a legacy id is accepted too
    jsonschema.validate(payment, FLOW["createPayment"]["responseSchema"])
    assert (
        payment["serviceId"] == entry["id"]
        and payment["amountCents"] == entry["pricing"]["amountCents"]
    )
    verified = client.get(f"/api/payments/{payment['paymentId']}").json()
    jsonschema.validate(verified, FLOW["verifyPayment"]["responseSchema"])
    assert verified["status"] == "paid" and verified["remainingCalls"] == 1

    calls_before = len(emulator.calls)
    paid = _call(client, entry, payment["token"])
    assert paid.status_code == 200, paid.text
    envelope = paid.json()
    jsonschema.validate(envelope, entry["outputSchema"])
    assert envelope["code"] == "200" and envelope["message"] == "success"
    assert envelope["data"]["Action"] == entry["exampleResponse"]["data"]["Action"]
    assert emulator.calls[calls_before].action == envelope["data"]["Action"]
    assert len(emulator.calls) == calls_before + 1

    again = _call(client, entry, payment["token"])
    assert again.status_code == 402
    assert again.json()["error"] == "payment token has no remaining calls"
    jsonschema.validate(again.json(), FLOW["requiredResponse"]["bodySchema"])


ENTRY = next(e for e in ENTRIES if e["id"] == "face-detection")
OTHER = next(e for e in ENTRIES if e["id"] == "face-search")


def test_expired_token(client: TestClient, clock: Clock) -> None:
    payment = _pay(client, ENTRY["id"])
    clock.now += 3601
    try:
        answer = _call(client, ENTRY, payment["token"])
    finally:
        clock.now -= 3601
    assert answer.status_code == 402 and answer.json()["error"] == "payment token expired"


def test_token_of_another_client_or_service(client: TestClient) -> None:
    payment = _pay(client, ENTRY["id"], client_id="client-a")
    refused = _call(client, ENTRY, payment["token"], client_id="client-b")
    assert (refused.status_code, refused.json()["error"]) == (
        402,
        "api key is not allowed to call this service",
    )
    anonymous = client.post(
        ENTRY["endpoint"], json=_example(ENTRY), headers={"X-Payment-Token": payment["token"]}
    )
    assert (anonymous.status_code, anonymous.json()["error"]) == (402, "api key required")
    other = _call(client, OTHER, payment["token"], client_id="client-a")
    assert (other.status_code, other.json()["error"]) == (
        402,
        "api key is not allowed to call this service",
    )
    unknown = _call(client, ENTRY, "no-such-token")
    assert (unknown.status_code, unknown.json()["error"]) == (402, "payment required")
    assert _call(client, ENTRY, payment["token"], client_id="client-a").status_code == 200


def test_bad_bodies(client: TestClient) -> None:
    path = ENTRY["endpoint"]
    json_headers = {"Content-Type": "application/json"}
    malformed = client.post(path, content=b"{not json", headers=json_headers)
    assert (malformed.status_code, malformed.json()) == (
        400,
        {"error": "request body is not valid JSON"},
    )
    array = client.post(path, content=b"[1, 2]", headers=json_headers)
    assert (array.status_code, array.json()) == (
        400,
        {"error": "request body must be a JSON object"},
    )
    big = client.post(path, content=b'{"ImageURL": "' + b"x" * 5000 + b'"}', headers=json_headers)
    assert big.status_code == 413
    text = client.post(
        path, content=b"ImageURL=x", headers={"Content-Type": "application/x-www-form-urlencoded"}
    )
    assert text.status_code == 415
    typed = client.post(
        path, json={"ImageURL": "https://example.com/a.jpg", "MaxFaceNumber": "two"}
    )
    assert (typed.status_code, typed.json()) == (
        400,
        {"error": "MaxFaceNumber must be of type number"},
    )


def test_payment_requests_are_checked(client: TestClient) -> None:
    assert client.post("/api/payments", json={}).status_code == 400
    assert client.post("/api/payments", json={"serviceId": "nope"}).status_code == 404
    body = {"serviceId": ENTRY["id"], "providerId": "paypal"}
    wrong = client.post("/api/payments", json=body, headers=KEYS["client-a"])
    assert wrong.status_code == 400
    assert client.get("/api/payments/pay_missing").status_code == 404


def test_upstream_fault_gives_the_call_back(client: TestClient, emulator) -> None:
    payment = _pay(client, ENTRY["id"])
    failing = {"ImageURL": f"https://example.com/{FAULT_MARKER}.jpg"}
    answer = _call(client, ENTRY, payment["token"], body=failing)
    assert answer.status_code == 502
    assert answer.json()["code"] == "ServiceUnavailable"
    assert answer.json()["message"] == "upstream unavailable"
    record = client.get(f"/api/payments/{payment['paymentId']}").json()
    assert record["usedCalls"] == 0 and record["remainingCalls"] == 1
    assert _call(client, ENTRY, payment["token"]).status_code == 200


def test_an_upstream_refusal_of_the_callers_input_counts(client: TestClient, emulator) -> None:
    """The upstream's InvalidImage.* (HTTP 400) names the caller's input: our 400, not given
    back, so one token cannot pay for many failing upstream calls."""
    payment = _pay(client, ENTRY["id"])
    failing = {"ImageURL": f"https://example.com/{FAIL_MARKER}.jpg"}
    answer = _call(client, ENTRY, payment["token"], body=failing)
    assert answer.status_code == 400
    assert answer.json() == {
        "error": "upstream refused the request: InvalidImage.Download: "
        "the image cannot be downloaded"
    }
    record = client.get(f"/api/payments/{payment['paymentId']}").json()
    assert record["usedCalls"] == 1 and record["remainingCalls"] == 0
    assert _call(client, ENTRY, payment["token"]).status_code == 402


def test_array_parameter_accepts_a_json_string(client: TestClient, emulator) -> None:
    entry = next(e for e in ENTRIES if e["id"] == "infrared-face-liveness-detection")
    payment = _pay(client, entry["id"])
    tasks = '[{"ImageURL": "https://example.com/ir.jpg"}]'
    answer = _call(client, entry, payment["token"], body={"Tasks": tasks})
    assert answer.status_code == 200, answer.text
    # decoded, then sent as the official SDK sends Tasks: flat (Tasks.1.ImageURL=...)
    assert emulator.calls[-1].parameters == {"Tasks.1.ImageURL": "https://example.com/ir.jpg"}
    assert emulator.calls[-1].arguments["Tasks"] == json.loads(tasks)
    bad = _call(client, entry, None, body={"Tasks": '[{"ImageURL": "not a url"}]'})
    assert bad.status_code == 400
    assert _call(client, entry, None, body={"Tasks": "[oops"}).json() == {
        "error": "Tasks must be a JSON array"
    }


def test_search_ranks_by_id_and_understands_chinese(client: TestClient) -> None:
    answer = client.get("/api/catalog/search", params={"q": "face-template-delete"}).json()
    assert answer["schemaVersion"] == "server402.catalog.search.v1"
    assert answer["services"][0]["id"] == "face-template-delete"
    assert answer["expandedTerms"] == [
        "face detection",
        "face recognition",
        "facial recognition",
        "人脸",
        "人脸检测",
        "人脸识别",
        "脸部识别",
    ]
    top = answer["services"][0]
    assert top["matchScore"] > answer["services"][1]["matchScore"]
    assert "template" in top["matchTerms"] and top["why"].startswith(
        "Matched face, template, delete"
    )
    assert set(top["quality"]) == {
        "qualityScore",
        "healthStatus",
        "successRate",
        "callCount",
        "executionCount",
        "successCount",
        "errorCount",
        "paymentRequireds",
        "lastCallAt",
    }
    chinese = client.get("/api/catalog/search", params={"q": "人脸检测", "limit": 3}).json()
    assert chinese["services"][0]["id"] == "face-detection" and len(chinese["services"]) == 3
    assert client.get("/api/catalog").json() == CATALOG


def test_doc_pages_are_served(client: TestClient) -> None:
    assert "face-detection" in client.get("/").text
    page = client.get("/tools/face-detection")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert client.get("/tools/face-detection.html").text == page.text
    assert client.get("/tools/nope").status_code == 404


def test_no_double_spend_under_concurrency(emulator) -> None:
    app = create_app(GENERATED, ledger=Ledger(), upstream=emulator_upstream(emulator))
    with running_app(app) as base:
        payment = httpx.post(f"{base}/api/payments", json={"serviceId": ENTRY["id"]}).json()
        before = len(emulator.calls)
        headers = {"X-Payment-Token": payment["token"]}

        async def burst() -> list[int]:
            async with httpx.AsyncClient(base_url=base, timeout=30) as http:
                answers = await asyncio.gather(
                    *(
                        http.post(ENTRY["endpoint"], json=_example(ENTRY), headers=headers)
                        for _ in range(50)
                    )
                )
            return [a.status_code for a in answers]

        statuses = asyncio.run(burst())
    assert sorted(statuses) == [200] + [402] * 49
    assert len(emulator.calls) == before + 1


def test_serve_command_over_real_http(tmp_path: Path) -> None:
    port = free_port()
    exe = Path(sys.executable).parent / "s402gen"
    command = [str(exe) if exe.exists() else "s402gen", "serve", "--generated", str(GENERATED)]
    command += [
        "--port",
        str(port),
        "--upstream",
        "emulator",
        "--ledger",
        str(tmp_path / "ledger.sqlite3"),
    ]
    issued = subprocess.run(
        [command[0], "keys", "create", "--ledger", str(tmp_path / "ledger.sqlite3")],
        capture_output=True,
        text=True,
        check=True,
    )  # the key on stdout, once; the ledger file holds only its digest
    key = {"Authorization": f"Bearer {issued.stdout.strip()}"}
    process = subprocess.Popen(command, cwd=tmp_path, stderr=subprocess.PIPE, text=True)
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(200):
            try:
                httpx.get(f"{base}/api/catalog", timeout=1)
                break
            except httpx.TransportError:
                time.sleep(0.05)
        with httpx.Client(base_url=base, timeout=10) as http:
            assert http.post(ENTRY["endpoint"], json={}).json() == {"error": "ImageURL is required"}
            assert http.post(ENTRY["endpoint"], json=_example(ENTRY)).status_code == 402
            anonymous = http.post("/api/payments", json={"serviceId": ENTRY["id"]})
            assert (anonymous.status_code, anonymous.json()) == (401, {"error": "api key required"})
            payment = http.post("/api/payments", json={"serviceId": ENTRY["id"]}, headers=key)
            assert payment.status_code == 201, payment.text
            payment = payment.json()
            seen = http.get(f"/api/payments/{payment['paymentId']}", headers=key).json()
            assert seen["status"] == "paid" and seen["token"] == payment["token"]
            assert "token" not in http.get(f"/api/payments/{payment['paymentId']}").json()
            headers = {"X-Payment-Token": payment["token"], **key}
            paid = http.post(ENTRY["endpoint"], json=_example(ENTRY), headers=headers)
            assert paid.status_code == 200 and paid.json()["data"]["Action"] == "DetectFace"
            assert (
                http.post(ENTRY["endpoint"], json=_example(ENTRY), headers=headers).status_code
                == 402
            )
    finally:
        process.terminate()
        process.wait(timeout=10)
    assert (tmp_path / "ledger.sqlite3").exists()


def test_ledger_schema_is_versioned(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite3"
    Ledger(path).close()
    import sqlite3

    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == 4  # 3: call states; 4: API keys
        db.execute("PRAGMA user_version = 99")
    with pytest.raises(RuntimeError, match="newer"):
        Ledger(path)


def test_each_published_payment_failure_is_answered_over_http(emulator) -> None:
    """Provoke every way a paid call can be refused, over real HTTP; the 402 answers
    are exactly the failures the live marketplace publishes (seed 003, not our output)."""
    seed = json.loads((SEEDS / "003_2aa762c7e94b4462.txt").read_text(encoding="utf-8"))
    published = seed["payment"]["retry"]["failures"]
    clock = Clock()
    app = create_app(
        GENERATED, ledger=Ledger(clock=clock), upstream=emulator_upstream(emulator), auth=AUTH
    )
    with running_app(app) as base, httpx.Client(base_url=base, timeout=10) as http:

        def pay(client_id: str) -> str:
            answer = http.post(
                "/api/payments", json={"serviceId": ENTRY["id"]}, headers=KEYS[client_id]
            )
            return answer.json()["token"]

        def call(token: str | None, client_id: str | None = "client-a", entry=ENTRY) -> str:
            headers = {"X-Payment-Token": token} if token else {}
            headers.update(KEYS[client_id] if client_id else {})
            answer = http.post(entry["endpoint"], json=_example(entry), headers=headers)
            if answer.status_code == 200:
                return "paid"
            assert answer.status_code == 402, answer.text
            jsonschema.validate(answer.json(), seed["payment"]["requiredResponse"]["bodySchema"])
            return answer.json()["error"]

        token = pay("client-a")
        answers = {
            "no token": call(None),
            "unknown token": call("no-such-token"),
            "no client id": call(token, client_id=None),
            "another client": call(token, client_id="client-b"),
            "another service": call(token, entry=OTHER),
            "first call": call(token),
            "second call": call(token),
        }
        expiring = pay("client-a")
        clock.now += 3601
        answers["expired"] = call(expiring)
    assert answers.pop("first call") == "paid"
    assert set(answers.values()) == set(published)
    assert (answers["no token"], answers["unknown token"]) == (published[0], published[0])
    assert answers["expired"] == published[1]
    assert answers["second call"] == published[2]
    assert answers["no client id"] == published[3]
    assert answers["another client"] == answers["another service"] == published[4]
