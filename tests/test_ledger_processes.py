"""No double spend across separate processes sharing one SQLite ledger file.

``s402gen serve`` may run several worker processes on one ledger. Here real
OS processes (not threads, which share the ledger's lock) each open their
own :class:`Ledger` on the same file, wait at a common start line, then try
to spend the same single-use tokens in the same order. Every token must be
spent exactly once; every other attempt must be refused with the catalog's
``payment token has no remaining calls``, never an error and never a
second success.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import s402gen
from s402gen.runtime import protocol
from s402gen.runtime.generated import load_generated
from s402gen.runtime.payments import DevProvider, Ledger, PaymentRefused

from .conftest import GENERATED

PROCESSES = 6
TOKENS = 40
USED_UP = "payment token has no remaining calls"

# Each worker: open the ledger, say "ready", wait for "go" on stdin, spend every token,
# print one JSON list of outcomes: "ok" or "refused: <text>" or "error: <type>: <text>".
WORKER = """
import json, sys
from s402gen.runtime.payments import Ledger, PaymentRefused

path, service_id, tokens = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
ledger = Ledger(path)
print("ready", flush=True)
sys.stdin.readline()
outcomes = []
for token in tokens:
    try:
        ledger.spend(token, service_id, None)
        outcomes.append("ok")
    except PaymentRefused as refused:
        outcomes.append(f"refused: {refused}")
    except Exception as error:
        outcomes.append(f"error: {type(error).__name__}: {error}")
ledger.close()
print(json.dumps(outcomes), flush=True)
"""


def _single_use_spec():
    spec = load_generated(GENERATED).specs[0]
    pricing = dataclasses.replace(spec.pricing, allow_reuse=False)
    return dataclasses.replace(spec, pricing=pricing)


def _race(path: Path, service_id: str, tokens: list[str]) -> list[list[str]]:
    """Run the workers on ``tokens``; each one's outcomes, in token order."""
    env = dict(os.environ)
    # the workers import the very s402gen this test imported (a source tree or a copy of it)
    package_root = str(Path(s402gen.__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [package_root, env.get("PYTHONPATH")]))
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, str(path), service_id, json.dumps(tokens)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for _ in range(PROCESSES)
    ]
    try:
        for worker in workers:  # the start line: every process has its connection open
            assert worker.stdout.readline() == "ready\n", worker.stderr.read()
        for worker in workers:
            worker.stdin.write("go\n")
            worker.stdin.flush()
        results = []
        for worker in workers:
            out, err = worker.communicate(timeout=60)
            assert worker.returncode == 0, err
            results.append(json.loads(out))
        return results
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
                worker.wait()


def test_single_use_tokens_are_spent_once_across_processes(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite3"
    spec = _single_use_spec()
    ledger = Ledger(path)
    payments = [
        ledger.create(spec, DevProvider(), "", spec.payment.provider_id) for _ in range(TOKENS)
    ]
    assert {p.max_calls for p in payments} == {1}
    tokens = [p.token for p in payments]

    results = _race(path, spec.service_id, tokens)

    assert USED_UP in protocol.FAILURES
    for index, token in enumerate(tokens):
        outcomes = sorted(result[index] for result in results)
        assert outcomes == ["ok"] + [f"refused: {USED_UP}"] * (PROCESSES - 1), token
        record = ledger.find_token(token)
        assert (record.used_calls, record.remaining_calls) == (1, 0)
    with pytest.raises(PaymentRefused, match=USED_UP):
        ledger.spend(tokens[0], spec.service_id, None)
    ledger.close()
