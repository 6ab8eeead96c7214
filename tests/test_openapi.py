"""generated/openapi.json: an OpenAPI 3.1 document compiled from the catalog and served as
/openapi.json; checked by openapi-spec-validator, Redocly's linter and a client generated
by openapi-python-client that pays for a call against ``s402gen serve``."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
from fastapi.testclient import TestClient
from openapi_spec_validator import validate

from s402gen.runtime.app import create_app
from s402gen.runtime.payments import Ledger

from .conftest import GENERATED, LOOPBACK_BASE
from .node_tools import run_node_tool, running_serve

DOCUMENT_BYTES = (GENERATED / "openapi.json").read_bytes()
DOCUMENT = json.loads(DOCUMENT_BYTES)
CATALOG = json.loads((GENERATED / "catalog" / "catalog.json").read_bytes())
CONTRACT = GENERATED / "contract"


def _resolve(node: dict) -> dict:
    """``node``, or what its ``#/components/...`` reference names."""
    while "$ref" in node:
        _, kind, section, name = node["$ref"].split("/")
        node = DOCUMENT[kind][section][name]
    return node


def _validator(schema: dict) -> jsonschema.Draft202012Validator:
    """A validator of ``schema`` whose ``#/components/...`` references resolve in the document."""
    return jsonschema.Draft202012Validator({**schema, "components": DOCUMENT["components"]})


@pytest.mark.slow
def test_the_document_is_valid_openapi_3_1() -> None:
    assert DOCUMENT["openapi"].startswith("3.1.")
    validate(DOCUMENT)  # openapi-spec-validator: raises on any problem


def test_served_as_openapi_json_with_swagger_ui() -> None:
    client = TestClient(create_app(GENERATED, ledger=Ledger()), base_url=LOOPBACK_BASE)
    served = client.get("/openapi.json")
    assert served.status_code == 200 and served.content == DOCUMENT_BYTES
    assert served.headers["content-type"] == "application/json"
    assert "/openapi.json" in client.get("/docs").text


def test_every_route_with_its_schemas_tags_and_examples() -> None:
    paths = DOCUMENT["paths"]
    expected = {"/api/payments", "/api/payments/{paymentId}", "/api/payments/{paymentId}/x402"}
    expected |= {"/api/catalog", "/api/catalog/search"}
    for entry in CATALOG["services"]:
        expected |= {entry["endpoint"], entry["legacyEndpoint"]}
        tool = entry["discovery"]["toolName"]
        current, legacy = paths[entry["endpoint"]]["post"], paths[entry["legacyEndpoint"]]["post"]
        assert (current["operationId"], legacy["operationId"]) == (tool, f"{tool}_legacy")
        assert legacy["deprecated"] is True and "deprecated" not in current
        for operation in (current, legacy):
            assert operation["tags"] == [entry["category"]]
            body = operation["requestBody"]["content"]["application/json"]
            assert _resolve(body["schema"]) == entry["inputSchema"]
            assert body.get("example") == entry.get("exampleRequest")
            responses = operation["responses"]
            assert set(responses) == {"200", "400", "401", "402", "413", "415", "502", "503"}
            ok = responses["200"]["content"]["application/json"]
            assert _resolve(ok["schema"]) == entry["outputSchema"]
            assert ok["example"] == entry["exampleResponse"]
            assert "PAYMENT-RESPONSE" in responses["200"]["headers"]
            bad = responses["400"]["content"]["application/json"].get("examples", {}).values()
            assert [e["value"]["error"] for e in bad] == [
                e["error"] for e in entry["errorExamples"] if e["statusCode"] == 400
            ]
            unpaid = responses["402"]
            assert {"X-Payment-Required", "PAYMENT-REQUIRED"} <= set(unpaid["headers"])
            example = unpaid["content"]["application/json"]["example"]
            jsonschema.validate(example, CATALOG["payment"]["requiredResponse"]["bodySchema"])
            assert example["payment"]["amountCents"] == entry["pricing"]["amountCents"]
            for status in ("413", "415", "502", "503"):
                assert _resolve(responses[status])["content"]["application/json"]["schema"]
            schemes = [sorted(option) for option in operation["security"]]
            assert schemes == [  # []: unpaid, answered 402; each with the API key or without
                ["apiKey", "paymentToken"],
                ["paymentToken"],
                ["apiKey", "x402"],
                ["x402"],
                [],
            ]
    assert set(paths) == expected
    assert {tag["name"] for tag in DOCUMENT["tags"]} == {
        *(e["category"] for e in CATALOG["services"]),
        "payments",
        "catalog",
    }
    token = DOCUMENT["components"]["securitySchemes"]["paymentToken"]
    assert (token["type"], token["in"], token["name"]) == ("apiKey", "header", "X-Payment-Token")
    key = DOCUMENT["components"]["securitySchemes"]["apiKey"]
    assert (key["type"], key["scheme"]) == ("http", "bearer")  # Authorization: Bearer <key>
    for path in ("/api/payments", "/api/payments/{paymentId}"):
        for operation in paths[path].values():
            assert operation["security"] == [{"apiKey": []}, {}]
            assert "401" in operation["responses"]
    assert DOCUMENT["servers"]


def test_body_schemas_are_the_published_contract_schemas() -> None:
    schemas = DOCUMENT["components"]["schemas"]
    for path in sorted(CONTRACT.glob("*.schema.json")):
        published = json.loads(path.read_bytes())
        published.pop("$schema")
        published.pop("$defs", None)
        text = json.dumps(schemas[published["title"]]).replace("#/components/schemas/", "#/$defs/")
        assert json.loads(text) == published, path.name


def test_every_example_fits_its_schema() -> None:
    checked = 0
    for item in DOCUMENT["paths"].values():
        for operation in item.values():
            media = [operation.get("requestBody", {}).get("content", {}).get("application/json")]
            media += [
                _resolve(answer).get("content", {}).get("application/json")
                for answer in operation["responses"].values()
            ]
            for one in filter(None, media):
                values = [one["example"]] if "example" in one else []
                values += [e["value"] for e in one.get("examples", {}).values()]
                for value in values:
                    _validator(one["schema"]).validate(value)
                    checked += 1
    assert checked > 4 * len(CATALOG["services"])


@pytest.mark.slow
def test_redocly_lint_finds_no_error(tmp_path: Path) -> None:
    done = run_node_tool(
        "redocly", "lint", str(GENERATED / "openapi.json"), "--format=json", home=tmp_path
    )
    report = json.loads(done.stdout)
    errors = [p for p in report["problems"] if p["severity"] == "error"]
    assert errors == [] and done.returncode == 0, errors[:5]


@pytest.mark.slow
def test_a_generated_client_completes_a_paid_call(tmp_path: Path) -> None:
    """openapi-python-client generates a client from the document; it gets the 400, the 402,
    pays with create_payment and calls again with the token as its security scheme says."""
    generate = [sys.executable, "-m", "openapi_python_client", "generate"]
    generate += ["--path", str(GENERATED / "openapi.json"), "--meta", "none"]
    generate += ["--output-path", str(tmp_path / "server402_client")]
    done = subprocess.run(generate, capture_output=True, text=True, check=False, timeout=300)
    assert done.returncode == 0 and "Warning" not in done.stdout + done.stderr, done.stdout
    sys.path.insert(0, str(tmp_path))
    try:
        client_module = importlib.import_module("server402_client")
        face = importlib.import_module("server402_client.api.face_body.face_detection")
        pay = importlib.import_module("server402_client.api.payments.create_payment")
        models = importlib.import_module("server402_client.models")
        with running_serve(tmp_path) as base:
            client = client_module.Client(base_url=base)
            wrong = models.FaceDetectionInput(image_url="ftp://example.com/face.jpg")
            refused = face.sync_detailed(client=client, body=wrong)
            assert refused.status_code == 400
            assert refused.parsed.error == "ImageURL must be a valid http or https URL"
            body = models.FaceDetectionInput(image_url="https://example.com/face.jpg")
            unpaid = face.sync(client=client, body=body)
            assert isinstance(unpaid, models.PaymentRequired)
            assert unpaid.payment.amount_cents == 20 and unpaid.error == "payment required"
            payment = pay.sync(
                client=client, body=models.CreatePayment(service_id=unpaid.payment.service_id)
            )
            assert payment.status == "paid"
            paid_client = client_module.AuthenticatedClient(
                base_url=base, token=payment.token, auth_header_name="X-Payment-Token", prefix=""
            )
            answer = face.sync_detailed(client=paid_client, body=body)
            assert answer.status_code == 200, answer.content
            assert answer.parsed.data.additional_properties["Action"] == "DetectFace"
            assert answer.parsed.request_id.startswith("emulator-")
    finally:
        sys.path.remove(str(tmp_path))
        for name in [m for m in sys.modules if m.split(".")[0] == "server402_client"]:
            del sys.modules[name]
