"""End-to-end cases: tests/cases/<name>/catalog.yaml and its expected output.

Each case runs ``s402gen validate catalog.yaml`` in its folder and compares
the exit code, stderr and stdout with ``expected.txt``. Regenerate every
expected file after an intended change, then review the diff:

    S402GEN_UPDATE_CASES=1 pytest tests/test_cases.py
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from .conftest import run_cli

CASES = Path(__file__).parent / "cases"
UPDATE = os.environ.get("S402GEN_UPDATE_CASES") == "1"


def _transcript(case: Path) -> str:
    code, stdout, stderr = run_cli("validate", "catalog.yaml", cwd=case)
    return f"$ s402gen validate catalog.yaml\nexit {code}\n--- stderr\n{stderr}--- stdout\n{stdout}"


@pytest.mark.parametrize("case", sorted(p.name for p in CASES.iterdir() if p.is_dir()))
def test_case(case: str) -> None:
    folder = CASES / case
    actual = _transcript(folder)
    expected_file = folder / "expected.txt"
    if UPDATE and (not expected_file.exists() or expected_file.read_text("utf-8") != actual):
        expected_file.write_text(actual, encoding="utf-8")
        pytest.fail(f"wrote {expected_file}: review it, then run again without the variable")
    assert expected_file.exists(), f"no expected.txt: run S402GEN_UPDATE_CASES=1 pytest {__file__}"
    assert actual == expected_file.read_text(encoding="utf-8")


def test_every_error_rule_has_a_case() -> None:
    """Each validation error of the catalog is shown by at least one case."""
    from s402gen.diagnostics import Rules

    expected = "".join((p / "expected.txt").read_text(encoding="utf-8") for p in CASES.iterdir())
    rules = [r for r in vars(Rules).values() if hasattr(r, "code")]
    elsewhere = {  # shown by tests/test_cli.py: they need a build or a monkeypatched limit
        Rules.ALIAS_EXPANSION,
        Rules.NO_GENERATED_AT,
        Rules.TEMPLATE_ERROR,
        Rules.UPSTREAM_UNKNOWN_ACTION,  # tests/test_upstream_check.py: validate --upstream
        Rules.UPSTREAM_UNKNOWN_PARAMETER,
        Rules.UPSTREAM_REQUIRED,
        Rules.UPSTREAM_TYPE,
    }
    missing = [r.code for r in rules if r.code not in expected and r not in elsewhere]
    assert not missing
