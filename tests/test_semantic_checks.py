"""The semantic checks of issue 13 beyond their end-to-end cases (tests/cases/)."""

from __future__ import annotations

from pathlib import Path

from s402gen.diagnostics import Rules
from s402gen.pipeline import compile_text
from s402gen.runtime.validation import schema_validator

SMALL = Path(__file__).parent / "cases" / "valid-small" / "catalog.yaml"


def test_a_catastrophic_pattern_runs_in_linear_time_at_the_gateway() -> None:
    """``^(a+)+$`` on 40 a's and a '!' takes 2**40 steps in Python's re (the old engine hung);
    RE2 answers at once, with jsonschema's own message."""
    validator = schema_validator({"type": "string", "pattern": "^(a+)+$"})
    (error,) = validator.iter_errors("a" * 40 + "!")
    assert error.message == f"{'a' * 40 + '!'!r} does not match '^(a+)+$'"
    assert not list(validator.iter_errors("a" * 40))


def test_newlines_are_text_in_descriptions_but_not_in_names() -> None:
    text = SMALL.read_text(encoding="utf-8")
    multiline = text.replace(
        "description: Faces to add; a JSON string is accepted too.",
        'description: "Faces to add;\\na JSON string\\tis accepted too."',
    )
    assert compile_text(multiline, "catalog.yaml").ok
    named = text.replace("titleZh: 人脸检测定位", 'titleZh: "人脸\\n检测定位"')
    rules = [d.rule for d in compile_text(named, "catalog.yaml").diagnostics]
    assert rules == [Rules.CONTROL_CHARACTER]


def test_an_id_that_fits_the_file_system_passes() -> None:
    """250 characters: docs/tools/<id>.html is 255 bytes, the most a name may have."""
    text = SMALL.read_text(encoding="utf-8")
    long_id = "f" * 250
    fits = text.replace("- id: face-template-list", f"- id: {long_id}\n    toolName: long_one")
    fits = fits.replace("[face-detection, face-template-list]", "[face-detection]")
    compiled = compile_text(fits, "catalog.yaml")
    assert compiled.ok, [d.format() for d in compiled.diagnostics]
    assert f"docs/tools/{long_id}.html" in compiled.files
