"""The payment records the runtime answers, field by field, against published sources.

The key set is the live marketplace's payment record schema (seed 003, not
our own output); the values are those of the service's entry in the
committed catalog JSON, and times are ISO 8601 UTC seconds of a fixed clock.
"""

from __future__ import annotations

import json
import time

import pytest
from fastapi.testclient import TestClient

from s402gen.runtime.app import create_app
from s402gen.runtime.payments import DevProvider, Ledger

from .conftest import GENERATED, LOOPBACK_BASE, SEEDS, issued_keys

SEED = json.loads((SEEDS / "003_2aa762c7e94b4462.txt").read_text(encoding="utf-8"))
RECORD_KEYS = set(SEED["payment"]["flow"]["createPayment"]["responseSchema"]["properties"])
CATALOG = json.loads((GENERATED / "catalog" / "catalog.json").read_text(encoding="utf-8"))
ENTRY = next(e for e in CATALOG["services"] if e["id"] == "face-detection")
NOW = 86400.0  # 1970-01-02T00:00:00Z
TTL = 3600


class _NoUpstream:
    """Every test here stops at the payment: reaching the upstream is a failure."""

    def call(self, spec, arguments):
        raise AssertionError("the upstream must not be called")


@pytest.fixture
def client(tmp_path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("TZ", "Asia/Shanghai")  # a local time that is not UTC
    time.tzset()
    ledger = Ledger(tmp_path / "ledger.sqlite3", clock=lambda: NOW, ttl=TTL)
    provider = DevProvider(clock=lambda: NOW)
    app = create_app(GENERATED, ledger=ledger, upstream=_NoUpstream(), provider=provider, auth=AUTH)
    with TestClient(app, base_url=LOOPBACK_BASE) as test_client:
        yield test_client
    monkeypatch.undo()
    time.tzset()


AUTH, KEYS = issued_keys("client-a")


def _what_is_paid_for(entry: dict) -> dict:
    return {
        "serviceId": entry["id"],
        "internalServiceId": entry["internalServiceId"],
        "providerId": entry["payment"]["providerId"],
        "amountCents": entry["pricing"]["amountCents"],
        "currency": entry["pricing"]["currency"],
        "billingMode": entry["pricing"]["billingMode"],
        "maxCalls": entry["pricing"]["maxCalls"],
    }


def test_payment_required_names_what_to_pay(client: TestClient) -> None:
    answer = client.post(ENTRY["endpoint"], json=ENTRY["exampleRequest"])
    assert answer.status_code == 402
    assert answer.json() == {
        "error": "payment required",
        "payment": {
            **_what_is_paid_for(ENTRY),
            "provider": "dev",  # served by the dev provider, the 402 says so (issue 10)
            "status": "payment_required",
        },
    }


def test_created_and_verified_records_have_the_published_fields(client: TestClient) -> None:
    created = client.post(
        "/api/payments", json={"serviceId": ENTRY["id"]}, headers=KEYS["client-a"]
    )
    assert created.status_code == 201
    record = created.json()
    assert set(record) == RECORD_KEYS
    assert {key: record[key] for key in _what_is_paid_for(ENTRY)} == _what_is_paid_for(ENTRY)
    assert record["status"] == "paid" and record["provider"] == "dev"
    assert record["payTo"] == "dev:server402"
    assert record["clientId"] == AUTH.keys.list()[0].key_id  # the key's id, never the key
    assert (record["usedCalls"], record["remainingCalls"]) == (0, 1)
    assert record["paidAt"] == "1970-01-02T00:00:00Z"
    assert record["expiresAt"] == "1970-01-02T01:00:00Z"
    verified = client.get(f"/api/payments/{record['paymentId']}", headers=KEYS["client-a"])
    assert verified.status_code == 200 and verified.json() == record

    spent = client.post(
        ENTRY["endpoint"],
        json={},  # refused as a bad request before the upstream, after nothing is spent
        headers={**KEYS["client-a"], "X-Payment-Token": record["token"]},
    )
    assert spent.status_code == 400
    assert client.get(f"/api/payments/{record['paymentId']}").json()["usedCalls"] == 0
