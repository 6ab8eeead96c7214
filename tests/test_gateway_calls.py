"""The paid call's upstream leg (issue 14): whose fault a failure is, what comes back, and
that one payment pays for at most one upstream run. Through the real Alibaba Cloud SDK
against the emulator."""

from __future__ import annotations

import dataclasses

import pytest
from fastapi.testclient import TestClient

from s402gen.runtime import jsonio
from s402gen.runtime.app import create_app
from s402gen.runtime.emulator import (
    HUGE_MARKER,
    LIST_MARKER,
    SLOW_MARKER,
    SLOW_SECONDS,
    TEST_CREDENTIALS,
)
from s402gen.runtime.generated import load_generated
from s402gen.runtime.payments import Ledger
from s402gen.runtime.upstream import MAX_UPSTREAM_BODY_BYTES, AlibabaCloudUpstream

from .conftest import GENERATED, LOOPBACK_BASE

SPECS = {spec.service_id: spec for spec in load_generated(GENERATED).specs}
FACE = SPECS["face-detection"]


def _client(emulator, specs_dir=GENERATED, **upstream_options) -> TestClient:
    upstream = AlibabaCloudUpstream(
        TEST_CREDENTIALS, endpoint=emulator.endpoints, protocol="http", **upstream_options
    )
    return TestClient(
        create_app(specs_dir, ledger=Ledger(), upstream=upstream), base_url=LOOPBACK_BASE
    )


def _paid_call(client: TestClient, spec, body: dict) -> tuple[object, dict]:
    """The call's answer and the payment's record after it."""
    payment = client.post("/api/payments", json={"serviceId": spec.service_id}).json()
    answer = client.post(spec.endpoint, json=body, headers={"X-Payment-Token": payment["token"]})
    return answer, client.get(f"/api/payments/{payment['paymentId']}").json()


@pytest.mark.parametrize("marker", [LIST_MARKER, HUGE_MARKER], ids=["list-body", "huge-body"])
def test_a_malformed_or_oversized_answer_is_a_fault_and_not_charged(emulator, marker) -> None:
    with _client(emulator) as client:
        answer, record = _paid_call(client, FACE, {"ImageURL": f"https://e.com/{marker}.jpg"})
    assert answer.status_code == 502, answer.text[:200]
    assert answer.json()["message"] == "upstream unavailable"
    assert len(answer.content) < 1000  # the 8 MiB body went nowhere
    assert record["usedCalls"] == 0 and record["remainingCalls"] == 1


def test_the_body_bound_is_one_constant() -> None:
    assert AlibabaCloudUpstream(TEST_CREDENTIALS).max_body_bytes == MAX_UPSTREAM_BODY_BYTES


def test_an_answer_off_the_output_schema_is_a_fault_and_not_charged(emulator, tmp_path) -> None:
    """The service's outputSchema is checked before charging: here it asks for
    ``data.Result.Faces``, which the emulator's answer does not have."""
    from s402gen.runtime.service import ServiceRuntime

    strict = dataclasses.replace(
        FACE,
        output_schema={
            "type": "object",
            "required": ["data"],
            "properties": {
                "data": {
                    "type": "object",
                    "properties": {"Result": {"type": "object", "required": ["Faces"]}},
                }
            },
        },
    )
    upstream = AlibabaCloudUpstream(TEST_CREDENTIALS, endpoint=emulator.endpoints, protocol="http")
    runtime = ServiceRuntime([strict], ledger=Ledger(), upstream=upstream)
    from s402gen.runtime.service import UpstreamFailed

    payment = runtime.create_payment(strict.service_id, None, None)
    with pytest.raises(UpstreamFailed) as failed:
        runtime.call(strict, {"ImageURL": "https://e.com/a.jpg"}, payment.token, None)
    assert failed.value.code == "UpstreamAnswerInvalid"
    assert runtime.ledger.get(payment.payment_id).remaining_calls == 1
    # the generated specs carry the catalog's own output schema
    assert FACE.output_schema["required"] == ["requestId", "data"]


def test_an_integer_beyond_64_bits_goes_upstream_exactly(emulator) -> None:
    """2**70 went upstream as ``1.1805916207174113e+21`` (orjson read it as a float)."""
    spec = SPECS["action-recognition"]  # Type: integer
    big = 2**70
    with _client(emulator) as client:
        payment = client.post("/api/payments", json={"serviceId": spec.service_id}).json()
        answer = client.post(
            spec.endpoint,
            content=b'{"Type": %d}' % big,
            headers={"X-Payment-Token": payment["token"], "Content-Type": "application/json"},
        )
    assert answer.status_code == 200, answer.text
    assert emulator.calls[-1].parameters["Type"] == str(big)
    assert emulator.calls[-1].arguments["Type"] == big
    assert jsonio.loads(answer.content)["data"]["Result"]["Parameters"]["Type"] == str(big)


def test_exact_json_both_ways() -> None:
    assert jsonio.loads(b'{"n": 1180591620717411303424}') == {"n": 2**70}
    assert jsonio.dumps({"n": 2**70, "x": 0.1}) == b'{"n":1180591620717411303424,"x":0.1}'
    for bad in (b'{"n": NaN}', b'{"n": 1e400}', b"[" * 100_000, b"1" * 5000):
        with pytest.raises(jsonio.JsonError):
            jsonio.loads(bad)


def test_a_number_a_float_cannot_hold_is_refused_not_sent_as_inf(emulator) -> None:
    with _client(emulator) as client:
        answer = client.post(
            SPECS["action-recognition"].endpoint,
            content=b'{"Type": 1, "VideoUrl": "https://e.com/v.mp4", "x": 1e400}',
            headers={"Content-Type": "application/json"},
        )
    assert (answer.status_code, answer.json()) == (400, {"error": "request body is not valid JSON"})


def test_a_502_body_names_no_host_or_port(tmp_path) -> None:
    """Nothing listens on port 9: the SDK's error text names 127.0.0.1:9; the answer must not."""
    upstream = AlibabaCloudUpstream(TEST_CREDENTIALS, endpoint="127.0.0.1:9", protocol="http")
    with TestClient(
        create_app(GENERATED, ledger=Ledger(), upstream=upstream), base_url=LOOPBACK_BASE
    ) as client:
        answer, record = _paid_call(client, FACE, {"ImageURL": "https://e.com/a.jpg"})
    assert answer.status_code == 502
    assert answer.json()["message"] == "upstream unavailable"
    assert "127.0.0.1" not in answer.text and ":9" not in answer.text
    assert record["remainingCalls"] == 1  # never connected: given back


@pytest.mark.slow
def test_a_slow_upstream_runs_once_per_payment(emulator) -> None:
    """The read times out while the upstream still completes the call: the call is not
    given back, so the same token cannot start a second upstream run."""
    body = {"ImageURL": f"https://e.com/{SLOW_MARKER}.jpg"}
    timeout_ms = int(SLOW_SECONDS * 1000) // 4
    with _client(emulator, timeout_ms=timeout_ms) as client:
        before = len(emulator.calls)
        payment = client.post("/api/payments", json={"serviceId": FACE.service_id}).json()
        headers = {"X-Payment-Token": payment["token"]}
        first = client.post(FACE.endpoint, json=body, headers=headers)
        assert first.status_code == 502
        assert first.json()["code"] == "UpstreamNoAnswer"
        retried = client.post(FACE.endpoint, json=body, headers=headers)
        assert retried.status_code == 402
    assert len(emulator.calls) - before == 1  # one upstream run for one payment


def test_the_sdk_never_retries() -> None:
    client = AlibabaCloudUpstream(TEST_CREDENTIALS)._client("127.0.0.1:9")
    assert client._retry_options.retryable is False


def test_a_required_list_the_wire_cannot_carry_is_refused_before_charging(emulator) -> None:
    """``{"Tasks": []}`` passes the input schema but flattens to no parameter at all, so the
    upstream would refuse the call as incomplete (and it counted as the caller's): it is a
    400 with the catalog's own message, the token unspent and the upstream never asked."""
    spec = SPECS["face-liveness-detection"]
    assert spec.input_schema["required"] == ["Tasks"] and not spec.upstream.wire  # flat
    before = len(emulator.calls)
    with _client(emulator) as client:
        answer, record = _paid_call(client, spec, {"Tasks": []})
    assert answer.status_code == 400
    assert answer.json() == {"error": spec.messages.missing}
    assert record["usedCalls"] == 0 and record["remainingCalls"] == 1
    assert len(emulator.calls) == before
