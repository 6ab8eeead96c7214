"""The upstream emulator: keyed on (product, version, action), signatures recomputed, SDK wire only."""

from __future__ import annotations

import dataclasses

import httpx
import pytest
from fastapi.testclient import TestClient

from s402gen.runtime.app import create_app
from s402gen.runtime.emulator import (
    FAIL_IN_200_MARKER,
    TEST_CREDENTIALS,
    start_emulator,
)
from s402gen.runtime.generated import load_generated
from s402gen.runtime.payments import Ledger
from s402gen.runtime.spec import RouteSpec
from s402gen.runtime.upstream import AlibabaCloudUpstream, Credentials, UpstreamAnswer
from s402gen.runtime.upstreams.aliyun_rpc import PROTOCOL

from .conftest import GENERATED, LOOPBACK_BASE
from .test_wire import REAL, SECOND_PRODUCT
from .wire_recorder import arguments, recorder

SPECS = {spec.service_id: spec for _, spec in REAL + SECOND_PRODUCT}


@pytest.fixture(scope="module")
def emulator():
    running = start_emulator(SPECS.values())
    yield running
    running.stop()


def _call(emulator, spec: RouteSpec, credentials: Credentials = TEST_CREDENTIALS, **endpoint):
    client = AlibabaCloudUpstream(
        credentials, endpoint=endpoint.get("endpoint", emulator.endpoints), protocol="http"
    )
    return client.call(spec, arguments(spec))


def test_every_service_of_two_products_is_served(emulator) -> None:
    assert set(emulator.endpoints) == {"facebody", "openplatform", "imageenhan"}
    assert len(set(emulator.endpoints.values())) == 3
    for spec in SPECS.values():
        answer = _call(emulator, spec)
        assert answer.status == 200, (spec.service_id, answer.body)
        assert PROTOCOL.interpret(answer).result["Action"] == spec.upstream.action
        call = emulator.calls[-1]
        assert (call.product, call.version, call.action) == (
            spec.upstream.product,
            spec.upstream.version,
            spec.upstream.action,
        )
        assert call.arguments == arguments(spec)  # read back in each parameter's style


def test_the_product_is_part_of_the_key(emulator) -> None:
    resize = SPECS["image-resize"]
    answer = _call(emulator, resize, endpoint=emulator.endpoints["facebody"])
    assert (answer.status, answer.body["Code"]) == (400, "InvalidAction.NotFound")


@pytest.mark.parametrize(
    ("credentials", "code"),
    [
        (Credentials("test-key", "wrong-secret"), "SignatureDoesNotMatch"),
        (Credentials("other-key", "test-secret"), "InvalidAccessKeyId.NotFound"),
    ],
)
def test_a_wrong_signature_is_refused(emulator, credentials, code) -> None:
    answer = _call(emulator, SPECS["face-detection"], credentials)
    assert (answer.status, answer.body["Code"]) == (403, code)


def _signed_request(spec: RouteSpec) -> tuple[str, dict[str, str], bytes]:
    """A request the OpenAPI client signed with the test credentials: (target, headers, body)."""
    with recorder() as (endpoint, seen):
        AlibabaCloudUpstream(TEST_CREDENTIALS, endpoint=endpoint, protocol="http").call(
            spec, arguments(spec)
        )
    request = seen[0]
    query = httpx.QueryParams(list(request.query))
    target = request.path + (f"?{query}" if request.query else "")
    return target, request.headers, request.body


def test_the_signature_covers_body_and_signed_headers(emulator) -> None:
    spec = SPECS["face-detection"]
    target, headers, body = _signed_request(spec)
    base = f"http://{emulator.endpoints['facebody']}"

    def send(headers: dict[str, str], body: bytes) -> httpx.Response:
        headers = {k: v for k, v in headers.items() if k != "content-length"}  # host as signed
        return httpx.post(base + target, headers=headers, content=body)

    assert send(headers, body).status_code == 200  # the request as signed
    tampered = body.replace(b"imageurl-1", b"imageurl-2")
    assert tampered != body
    assert send(headers, tampered).json()["Code"] == "SignatureDoesNotMatch"
    assert send({**headers, "x-acs-action": "DetectFace"}, body).status_code == 200
    retargeted = {**headers, "x-acs-action": "RecognizeFace"}
    assert send(retargeted, body).json()["Code"] == "SignatureDoesNotMatch"
    unsigned = {k: v for k, v in headers.items() if k != "authorization"}
    assert send(unsigned, body).json()["Code"] == "IncompleteSignature"


def _rewired(spec: RouteSpec, **wire: str) -> RouteSpec:
    return dataclasses.replace(spec, upstream=dataclasses.replace(spec.upstream, wire=wire))


@pytest.mark.parametrize(
    ("service", "wire", "message"),
    [
        ("face-database-batch-add", {}, "Faces is not sent as the SDK sends it (json)"),
        (
            "infrared-face-liveness-detection",
            {"Tasks": "json"},
            "Tasks is not sent as the SDK sends it (flat)",
        ),
        (
            "human-anime-stylization",
            {},
            "AlgoType came in the body: the SDK sends it query",
        ),
        ("image-recolor", {"ColorTemplate": "json"}, "ColorTemplate is not sent as the SDK"),
    ],
)
def test_a_wire_format_the_sdk_would_not_send_is_refused(emulator, service, wire, message):
    answer = _call(emulator, _rewired(SPECS[service], **wire))
    assert (answer.status, answer.body["Code"]) == (400, "InvalidParameter")
    assert answer.body["Message"].startswith(message)


def test_an_error_inside_http_200_is_an_error_the_caller_caused(emulator) -> None:
    spec = SPECS["face-detection"]
    answer = AlibabaCloudUpstream(
        TEST_CREDENTIALS, endpoint=emulator.endpoints, protocol="http"
    ).call(spec, {"ImageURL": f"https://example.com/{FAIL_IN_200_MARKER}.jpg"})
    assert answer.status == 200 and answer.body["Code"] == "InvalidImage.Content"
    app = create_app(
        GENERATED,
        ledger=Ledger(),
        upstream=AlibabaCloudUpstream(
            TEST_CREDENTIALS, endpoint=emulator.endpoints, protocol="http"
        ),
    )
    with TestClient(app, base_url=LOOPBACK_BASE) as client:
        payment = client.post("/api/payments", json={"serviceId": spec.service_id}).json()
        headers = {"X-Payment-Token": payment["token"]}
        body = {"ImageURL": f"https://example.com/{FAIL_IN_200_MARKER}.jpg"}
        failed = client.post(spec.endpoint, json=body, headers=headers)
        assert failed.status_code == 400  # InvalidImage.*: the caller's image, not a fault
        assert "InvalidImage.Content" in failed.json()["error"]
        record = client.get(f"/api/payments/{payment['paymentId']}").json()
        assert record["usedCalls"] == 1 and record["remainingCalls"] == 0


@pytest.mark.parametrize(
    ("status", "body", "code"),
    [
        (200, {"RequestId": "r", "Data": {"x": 1}}, None),
        (200, {"RequestId": "r", "Code": "200", "Data": {"x": 1}}, None),
        (200, {"RequestId": "r", "Code": "Throttling", "Message": "slow down"}, "Throttling"),
        (200, {"RequestId": "r", "Success": False, "Message": "no"}, "HTTP200"),
        (500, {"RequestId": "r"}, "HTTP500"),
    ],
)
def test_the_protocol_decides_success(status, body, code) -> None:
    from s402gen.runtime.upstream import UpstreamError

    if code is None:
        result = PROTOCOL.interpret(UpstreamAnswer(status, body))
        assert (result.request_id, result.result) == ("r", {"x": 1})
    else:
        with pytest.raises(UpstreamError) as raised:
            PROTOCOL.interpret(UpstreamAnswer(status, body))
        assert (raised.value.code, raised.value.request_id) == (code, "r")


def test_generated_specs_load_the_same_wire() -> None:
    generated = {s.service_id: s for s in load_generated(GENERATED).specs}
    assert {k: v.upstream for k, v in generated.items()} == {
        k: v.upstream for k, v in SPECS.items() if k in generated
    }
