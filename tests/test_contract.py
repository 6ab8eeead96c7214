"""The output contract: its published JSON Schemas hold the live data, the build and the gateway.

The schemas are read from ``generated/contract/`` (what the build publishes),
not recomputed from the models, so a test here fails when the published file
and what the compiler and the runtime produce drift apart.
"""

from __future__ import annotations

import copy
import json
import shutil
from dataclasses import replace

import jsonschema
import pytest
from fastapi.testclient import TestClient

from s402gen import compile_catalog, import_input, render
from s402gen.runtime import contract
from s402gen.runtime.app import create_app
from s402gen.runtime.emulator import start_emulator
from s402gen.runtime.generated import GeneratedError, load_generated
from s402gen.runtime.payments import DevProvider, Ledger, payment_required
from s402gen.runtime.search import CatalogSearch
from s402gen.runtime.upstream import AlibabaCloudUpstream, Credentials

from .conftest import CATALOG, GENERATED, LOOPBACK_BASE, SEEDS

SEED = json.loads((SEEDS / "003_2aa762c7e94b4462.txt").read_text(encoding="utf-8"))


def _validator(name: str) -> jsonschema.Draft202012Validator:
    path = GENERATED / "contract" / f"{name}.schema.json"
    schema = json.loads(path.read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker())


def _errors(name: str, document: object) -> list[str]:
    return [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
        for e in _validator(name).iter_errors(document)
    ]


def test_seed_003_validates_against_the_published_catalog_schema() -> None:
    assert _errors("catalog-document", SEED) == []
    for entry in SEED["services"]:  # runtime fields included: a search answer is a document
        assert _errors("catalog-entry", entry) == []


@pytest.mark.parametrize(
    "breakage, where",
    [
        (lambda e: e["pricing"].pop("maxCalls"), "pricing"),
        (lambda e: e.update(cacheable="yes"), "cacheable"),
        (lambda e: e["discovery"].update(toolname="face_detect"), "discovery"),
        (lambda e: e["errorExamples"][0].update(statusCode="400"), "errorExamples/0/statusCode"),
        (lambda e: e["pricing"].update(amountCents=-1), "pricing/amountCents"),
    ],
    ids=["missing-key", "wrong-type", "unknown-key", "nested-wrong-type", "negative-price"],
)
def test_the_catalog_schema_rejects_a_broken_entry(breakage, where: str) -> None:
    entry = copy.deepcopy(SEED["services"][0])
    breakage(entry)
    document = {**SEED, "services": [entry]}
    problems = _errors("catalog-document", document)
    assert problems and all(p.startswith(f"services/0/{where}") for p in problems), problems
    assert _errors("catalog-entry", entry)
    with pytest.raises(Exception) as raised:  # the model refuses it as the schema does
        contract.CatalogEntry.model_validate(entry)
    assert type(raised.value).__name__ == "ValidationError"


def test_every_built_catalog_document_and_entry_fits_the_contract() -> None:
    files = compile_catalog(CATALOG).files
    catalog = json.loads(files["catalog/catalog.json"])
    assert _errors("catalog-document", catalog) == []
    entries = [json.loads(text) for path, text in files.items() if "/services/" in path]
    assert len(entries) == len(catalog["services"]) == catalog["total"]
    for entry in entries:
        assert _errors("catalog-entry", entry) == []
        assert _errors("success-envelope", entry["exampleResponse"]) == []


def test_the_embedded_payment_schemas_are_the_models_in_the_live_style() -> None:
    """catalog.json embeds the live format's plain schemas; they list the models' fields."""
    flow = SEED["payment"]["flow"]
    record = contract.contract_schema(contract.PaymentRecord)
    assert sorted(flow["createPayment"]["responseSchema"]["properties"]) == sorted(
        record["properties"]
    )
    assert flow["requiredResponse"]["bodySchema"]["required"] == ["error", "payment"]
    assert contract.payment_block().to_json() == SEED["payment"]


def test_calls_per_payment_is_max_calls_only_with_reuse() -> None:
    spec = load_generated(GENERATED).specs[0]
    reuse = replace(spec, pricing=replace(spec.pricing, max_calls=5, allow_reuse=True))
    single = replace(spec, pricing=replace(spec.pricing, max_calls=5, allow_reuse=False))
    assert payment_required(reuse).max_calls == 5
    assert payment_required(single).max_calls == 1
    ledger = Ledger()
    assert ledger.create(reuse, DevProvider(), "", "p").record().remaining_calls == 5
    assert ledger.create(single, DevProvider(), "", "p").record().remaining_calls == 1


@pytest.fixture(scope="module")
def client():
    generated = load_generated(GENERATED)
    emulator = start_emulator(generated.specs)
    upstream = AlibabaCloudUpstream(
        Credentials("test-key", "test-secret"), endpoint=emulator.endpoints, protocol="http"
    )
    try:
        with TestClient(
            create_app(GENERATED, upstream=upstream), base_url=LOOPBACK_BASE
        ) as test_client:
            yield test_client
    finally:
        emulator.stop()


def test_the_gateway_answers_through_the_contract(client: TestClient) -> None:
    entry = next(e for e in SEED["services"] if e["id"] == "face-detection")
    unpaid = client.post(entry["endpoint"], json=entry["exampleRequest"])
    assert unpaid.status_code == 402
    assert _errors("payment-required", unpaid.json()) == []
    assert unpaid.json()["payment"]["status"] == "payment_required"

    request = {"serviceId": entry["id"]}
    assert _errors("create-payment", request) == []
    created = client.post("/api/payments", json=request)
    assert created.status_code == 201 and _errors("payment-record", created.json()) == []

    token = created.json()["token"]
    paid = client.post(
        entry["endpoint"], json=entry["exampleRequest"], headers={"X-Payment-Token": token}
    )
    assert paid.status_code == 200, paid.text
    assert _errors("success-envelope", paid.json()) == []

    spent = client.post(
        entry["endpoint"], json=entry["exampleRequest"], headers={"X-Payment-Token": token}
    )
    assert spent.status_code == 402 and _errors("payment-required", spent.json()) == []
    assert spent.json()["payment"]["usedCalls"] == 1  # the token's own record this time

    answer = client.get("/api/catalog/search", params={"q": "face detection"}).json()
    assert _errors("catalog-document", answer) == []
    assert answer["services"][0]["quality"]["callCount"] >= 2


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("description", 5, "services[0].description: 5 is not of type 'string'"),
        ("endpointAliases", "/api/tools/x", "services[0].endpointAliases: '/api/tools/x' is not"),
        ("cacheable", "yes", "services[0].cacheable: 'yes' is not of type 'boolean'"),
    ],
)
def test_the_import_reads_entries_through_the_contract(field: str, value, message: str) -> None:
    """The import's input schema is the contract's: a field it does not need is still typed."""
    entry = {**SEED["services"][0], field: value}
    problems = import_input.document_problems({**SEED, "services": [entry]})
    assert any(p.startswith(message) for p in problems), problems
    assert import_input.document_problems(SEED) == []
    required = import_input.ENTRY_SCHEMA["required"]
    assert (
        "endpointAliases" not in required
        and "quality" not in import_input.ENTRY_SCHEMA["properties"]
    )


def test_to_json_is_pydantics_dump_in_the_same_key_order() -> None:
    """The fast serializer of the contract gives exactly what pydantic would."""
    compiled = compile_catalog(CATALOG)
    catalog = render.catalog_document(compiled.catalog)
    quality = contract.Quality.model_validate(SEED["services"][7]["quality"])
    answer = CatalogSearch(catalog).search("face", quality=lambda service_id: quality)
    documents = [catalog, contract.payment_block(), answer]
    for document in documents:
        assert json.dumps(document.to_json()) == json.dumps(document.model_dump(by_alias=True))
    record = contract.PaymentRecord.model_validate(_a_record())
    assert json.dumps(record.to_json()) == json.dumps(record.model_dump(by_alias=True))
    assert "paidAt" not in record.to_json() and "paymentId" in record.to_json()


def _a_record() -> dict:
    return {
        "paymentId": "pay_1",
        "serviceId": "face-detection",
        "internalServiceId": "aliyun-facebody-detect-face",
        "providerId": "x402-base-usdc",
        "provider": "dev",
        "amountCents": 20,
        "currency": "USD",
        "billingMode": "per_call",
        "maxCalls": 1,
        "usedCalls": 0,
        "remainingCalls": 1,
        "status": "pending",
        "token": "t",
        "clientId": "",
        "payTo": "dev:server402",
        "expiresAt": "2026-06-03T12:06:21Z",
    }


def test_the_gateway_refuses_a_catalog_that_does_not_fit_the_contract(tmp_path) -> None:
    copy_dir = tmp_path / "generated"
    shutil.copytree(GENERATED, copy_dir)
    catalog_path = copy_dir / "catalog" / "catalog.json"
    document = json.loads(catalog_path.read_text(encoding="utf-8"))
    del document["services"][3]["discovery"]["toolName"]
    catalog_path.write_text(json.dumps(document), encoding="utf-8")
    with pytest.raises(
        GeneratedError, match=r"does not fit the contract: .*services\.3\.discovery"
    ):
        load_generated(copy_dir)
