"""What a compile keeps in memory: shared where it can be, made only when asked for.

(The figures are in ``bench/load_bench.py``; these tests hold the behaviour.)
"""

from __future__ import annotations

from pathlib import Path

import pytest

from s402gen.load import load_text
from s402gen.pipeline import compile_text
from s402gen.structure import parse_model

from .conftest import run_cli

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


@pytest.mark.parametrize("command", ["build", "check"])
def test_the_ir_is_let_go_before_the_stat_index_is_made(
    command: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The stat index is the last thing a build or a clean check makes, and with the IR of
    every service still held it was the run's peak: no service's IR may be alive then."""
    import weakref

    from s402gen import pipeline, statcache

    (tmp_path / "catalog.yaml").write_bytes(SMALL.read_bytes())
    assert run_cli("build", "catalog.yaml", "--out", "out", cwd=tmp_path)[0] == 0
    (tmp_path / "cache").mkdir()
    monkeypatch.setenv("S402GEN_CACHE_DIR", str(tmp_path / "cache"))  # a cold cache: no hit
    services: list[weakref.ref] = []
    compiled, record = pipeline.compile_catalog, statcache.record

    def compiling(*args, **kwargs):
        result = compiled(*args, **kwargs)
        services.extend(weakref.ref(svc) for svc in result.catalog.services)
        return result

    alive: list[int] = []

    def recording(*args, **kwargs):
        alive.append(sum(ref() is not None for ref in services))
        return record(*args, **kwargs)

    monkeypatch.setattr(pipeline, "compile_catalog", compiling)
    monkeypatch.setattr(statcache, "record", recording)
    code = run_cli(command, "catalog.yaml", "--out", "out", cwd=tmp_path)[0]
    assert code == 0
    assert services and alive == [0]
