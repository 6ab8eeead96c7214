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


#: Rules that no ``s402gen validate`` case here can show, each with the tests that show it
#: (``file::function``); every one of them must exist and name the rule.
COVERED_ELSEWHERE = {
    "alias-expansion-limit": ["test_cli.py::test_alias_expansion_is_limited"],  # a huge file
    "scalar-too-long": ["test_hostile_yaml.py::test_a_huge_scalar_is_refused"],  # 8 MB
    "no-generated-at": ["test_cli.py::test_generated_at_from_source_date_epoch"],  # env
    "template-error": ["test_cli.py::test_broken_user_templates_are_errors_with_their_location"],
    "upstream-unknown-action": ["test_upstream_check.py::test_each_kind_of_difference_is_found"],
    "upstream-unknown-parameter": ["test_upstream_check.py::test_each_kind_of_difference_is_found"],
    "upstream-required-mismatch": [
        "test_upstream_check.py::test_required_here_but_optional_upstream"
    ],
    "upstream-type-mismatch": ["test_upstream_check.py::test_each_kind_of_difference_is_found"],
    "upstream-wire-mismatch": [
        "test_upstream_check.py::test_a_wire_style_or_method_other_than_the_sdks_is_an_error"
    ],
    "upstream-not-compared": [
        "test_upstream_check.py::test_a_service_that_cannot_be_compared_says_why"
    ],
    "generated-file-changed": ["test_cli.py::test_check_reports_changed_missing_and_orphan_files"],
    "generated-file-missing": ["test_cli.py::test_check_reports_changed_missing_and_orphan_files"],
    "generated-file-orphaned": ["test_cli.py::test_check_reports_changed_missing_and_orphan_files"],
    "invalid-import-input": ["test_import.py::test_import_errors_are_findings"],
    "imported-catalog-does-not-compile": ["test_import.py::test_import_errors_are_findings"],
    "import-output-not-written": ["test_import.py::test_import_errors_are_findings"],
    "import-field-not-reproduced": ["test_import.py::test_import_warnings_are_findings"],
    "unreadable-ref": ["test_breaking.py::test_bad_ref_exits_2"],
    "invalid-configuration": ["test_cli.py::test_pyproject_settings"],
    "unsafe-output-folder": [
        "test_output_options.py::test_an_output_folder_that_must_not_be_written_is_refused"
    ],
    "unsafe-output-path": ["test_write_safety.py::test_a_symlinked_subfolder_receives_no_writes"],
    "file-not-written-by-s402gen": ["test_cli.py::test_foreign_manifest_is_not_trusted"],
    "generated-file-edited": [
        "test_output_options.py::test_hand_edited_generated_files_are_named_and_kept_without_force"
    ],
    "foreign-output-folder": [
        "test_output_options.py::test_an_output_folder_of_foreign_files_without_a_manifest_is_refused"
    ],
    "input-not-a-regular-file": [
        "test_output_options.py::test_a_catalog_that_is_not_a_small_regular_file_is_refused_fast"
    ],
    "input-too-large": [
        "test_output_options.py::test_a_catalog_that_is_not_a_small_regular_file_is_refused_fast"
    ],
}


def _shown_by_cases(folder: Path) -> str:
    return "".join(p.read_text(encoding="utf-8") for p in sorted(folder.glob("*/expected.txt")))


def test_every_rule_has_an_end_to_end_case() -> None:
    """Each rule is shown by a case here (``validate``) or in tests/breaking_cases
    (``diff``), or by the tests :data:`COVERED_ELSEWHERE` names; every rule the
    validate registry holds is one of them."""
    from s402gen.diagnostics import all_rules
    from s402gen.validate import REGISTRY

    shown = _shown_by_cases(CASES) + _shown_by_cases(CASES.parent / "breaking_cases")
    missing = [
        f"{r.code} {r.name}"
        for r in all_rules()
        if f"[{r.code} {r.name}]" not in shown and r.name not in COVERED_ELSEWHERE
    ]
    assert not missing
    names = {r.name for r in all_rules()}
    assert set(COVERED_ELSEWHERE) <= names
    validate_cases = _shown_by_cases(CASES)
    unshown = [
        f"{r.code} {r.name}"
        for r in REGISTRY
        if f"[{r.code} {r.name}]" not in validate_cases and r.name not in COVERED_ELSEWHERE
    ]
    assert not unshown, "registered rules without a case in tests/cases/"
    assert set(REGISTRY) <= set(all_rules())


def test_a_rule_has_one_function() -> None:
    from s402gen.diagnostics import Rules
    from s402gen.validate import REGISTRY, rule

    assert REGISTRY[Rules.DUPLICATE_ID].check.__name__ == "duplicate_id"
    with pytest.raises(ValueError, match="S402-E011 duplicate-id is already registered"):
        rule(Rules.DUPLICATE_ID)(lambda ctx: [])


@pytest.mark.parametrize("rule_name", sorted(COVERED_ELSEWHERE))
def test_rules_covered_elsewhere_are_covered(rule_name: str) -> None:
    """Each exempted rule's covering tests exist and name the rule (its code or name)."""
    import importlib
    import inspect

    from s402gen.diagnostics import Rules, rule_named

    rule = rule_named(rule_name)
    assert rule is not None
    attribute = next(f"Rules.{key}" for key, value in vars(Rules).items() if value == rule)
    for test in COVERED_ELSEWHERE[rule_name]:
        file, function = test.split("::")
        module = importlib.import_module(f"tests.{file.removesuffix('.py')}")
        source = inspect.getsource(getattr(module, function))
        named = (rule.code, rule.name, attribute)
        assert any(word in source for word in named), f"{test} does not name {rule_name}"
