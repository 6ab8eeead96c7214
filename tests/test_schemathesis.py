"""schemathesis against a running ``s402gen serve`` (emulator upstream, a real API key):
every operation of its ``/openapi.json`` answered without a 5xx, each response with a
documented status, content type and schema. A bounded budget (:data:`EXAMPLES` an
operation, the generation phase only), so that it stays a test; the adversarial run of
issue 14 used 20,427 cases."""

from __future__ import annotations

import itertools
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Iterator

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from .conftest import GENERATED, free_port, wait_until_serving

#: Examples an operation and mode (about 50 operations: the services, payments, catalog;
#: positive and, for POSTs, negative): small, so the run stays under a minute when busy.
EXAMPLES = 3
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
#: A paid call may end in the documented 502 (an upstream fault; the call is given back).
#: Known finding: the emulator refuses some requests the input schemas allow (odd keys in
#: array items: "list indexes must count from 1"). A required array sent empty is refused
#: by the gateway before charging (``vanishes`` of the upstream protocol).
PAID_CHECKS = CHECKS[1:]
KEY: dict[str, str] = {}
BASE: list[str] = []


@pytest.fixture(scope="module")
def served_schema(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """The OpenAPI document of a real ``s402gen serve`` process, stopped by its pid after."""
    workdir = tmp_path_factory.mktemp("schemathesis")
    ledger = str(workdir / "ledger.sqlite3")
    exe = shutil.which("s402gen") or str(Path(sys.executable).parent / "s402gen")
    issued = subprocess.run([exe, "keys", "create", "--ledger", ledger], capture_output=True,
                            text=True, check=True)  # fmt: skip
    KEY["Authorization"] = f"Bearer {issued.stdout.strip()}"
    port = free_port()
    command = [exe, "serve", "--generated", str(GENERATED), "--upstream", "emulator"]
    command += ["--ledger", ledger, "--port", str(port)]
    log = (workdir / "serve.log").open("wb")
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    BASE[:] = [base]
    try:
        wait_until_serving(process, base, workdir / "serve.log")
        schema = schemathesis.openapi.from_url(f"{base}/openapi.json")
        schema.config.update(base_url=base)
        yield schema
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()
    log_text = (workdir / "serve.log").read_text(errors="replace")
    assert "Traceback" not in log_text, log_text[-4000:]


def _paid(path: str) -> dict[str, str]:
    """A fresh payment token for the service of a tool path (the key's own payment)."""
    service_id = path.rsplit("/", 1)[1]
    answer = httpx.post(f"{BASE[0]}/api/payments", json={"serviceId": service_id}, headers=KEY)
    assert answer.status_code == 201, answer.text
    return {"X-Payment-Token": answer.json()["token"]}


@pytest.mark.slow
def test_every_operation_answers_as_documented(served_schema) -> None:
    """No 5xx, and a documented status, content type and body schema for every answer,
    with the API key: valid requests to a tool paid with a fresh token (the emulator's
    answers checked against each service's output schema), invalid ones unpaid (400).
    Anonymous callers (401, 402) are checked in test_gateway_auth. Each operation and mode
    gets its own Hypothesis run; failures are collected, so one run names them all."""
    failures: dict[str, str] = {}
    statuses: dict[int, int] = {}
    operations = [result.ok() for result in served_schema.get_all_operations()]
    assert len(operations) > 80  # every service and its legacy alias, payments, catalog
    # a legacy alias is the same handler as its service's route: one of the two is enough
    operations = [op for op in operations if not op.definition.raw.get("deprecated")]
    assert len(operations) > 40

    for operation, mode in itertools.product(operations, GenerationMode):
        if mode is GenerationMode.NEGATIVE and operation.method.upper() != "POST":
            continue  # nothing to break but a path id or a query, which any string fits
        paid = mode is GenerationMode.POSITIVE and operation.path.startswith("/api/tools/")

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
            derandomize=True,  # the same cases every run
            database=None,
        )
        def run(case) -> None:
            headers = {**KEY, **(_paid(operation.path) if paid else {})}
            checks = PAID_CHECKS if paid else CHECKS
            answer = case.call_and_validate(headers=headers, checks=checks, timeout=30)
            statuses[answer.status_code] = statuses.get(answer.status_code, 0) + 1
            if answer.status_code >= 500:  # only the upstream's refusal, as documented
                assert paid and answer.status_code == 502, answer.text
                assert answer.json()["error"] == "upstream error", answer.text

        try:
            run()
        except (Exception, BaseExceptionGroup) as exc:  # noqa: BLE001 - one line an operation
            failures[f"{operation.label} ({mode.value})"] = f"{type(exc).__name__}: {exc}"[:2000]
    assert not failures, "\n\n".join(f"{label}: {text}" for label, text in failures.items())
    print("statuses:", sorted(statuses.items()))  # shown with -s
    assert statuses.get(200, 0) > 40 and statuses.get(400, 0) > 0, statuses  # paid and refused
