"""What a compile keeps in memory: shared where it can be, made only when asked for.

(The figures are in ``bench/load_bench.py``; these tests hold the behaviour.)
"""

from __future__ import annotations

from pathlib import Path

from s402gen.load import load_text
from s402gen.pipeline import compile_text
from s402gen.structure import parse_model

SMALL = Path(__file__).parent / "cases" / "valid-small" / "catalog.yaml"
REAL = Path(__file__).parents[1] / "catalog.yaml"


def test_a_shorthand_parameter_is_one_model_for_every_use() -> None:
    text = REAL.read_text(encoding="utf-8")
    authored, findings = parse_model(load_text(text, "catalog.yaml"))
    assert authored is not None and not findings
    uses: dict[tuple, list] = {}
    for service in authored.services:
        for parameter in service.params.values():
            if parameter.model_fields_set in ({"preset"}, {"type"}):  # written as a string
                uses.setdefault((parameter.preset, parameter.type), []).append(parameter)
    assert max(len(same) for same in uses.values()) > 1
    assert all(p is same[0] for same in uses.values() for p in same)


def test_a_shorthand_parameter_that_is_wrong_is_still_located() -> None:
    text = SMALL.read_text(encoding="utf-8").replace(
        "      MaxFaceNumber: {type: integer, minimum: 1}", "      MaxFaceNumber: no-such-preset"
    )
    compiled = compile_text(text, "catalog.yaml")
    assert not compiled.ok
    assert any(
        "no-such-preset" in d.message and d.location.line == 79 for d in compiled.diagnostics
    ), [d.format() for d in compiled.diagnostics]


def test_a_valid_catalog_makes_no_location_tables() -> None:
    compiled_source = load_text(SMALL.read_text(encoding="utf-8"), "catalog.yaml").source
    assert compiled_source._tables is None
    assert compiled_source.value(("services", 0)).line > 1  # made when first asked for
    assert compiled_source._tables is not None
