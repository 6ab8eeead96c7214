"""Hostile YAML: bombs, deep nesting and huge scalars are located errors, found fast.

The loader (:func:`s402gen.load.load_text`) bounds what a document composes to
while it composes: nesting depth, scalar length, expanded nodes and expanded
characters (aliases copied out), and aliases inside their own anchor. Each
test here failed before those bounds: a hang of seconds and hundreds of MB,
an ``internal error``, a 160 MB build, or a segmentation fault.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import s402gen.yaml_bounds as bounds
from s402gen.diagnostics import CatalogError, Rules
from s402gen.load import load_text
from s402gen.pipeline import compile_text

from .conftest import run_cli, run_process

SMALL = Path(__file__).parent / "cases" / "valid-small" / "catalog.yaml"
PARAMETER = "      MaxFaceNumber: {type: integer, minimum: 1}"


def _small_with(parameter: str) -> str:
    text = SMALL.read_text(encoding="utf-8")
    assert PARAMETER in text
    return text.replace(PARAMETER, "      MaxFaceNumber: " + parameter)


def _rules(text: str) -> list:
    with pytest.raises(CatalogError) as caught:
        load_text(text, "hostile.yaml")
    return [(d.rule, d.location.line) for d in caught.value.diagnostics]


def _billion_laughs() -> str:
    lines = ['a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for previous, name in zip("abcdefgh", "bcdefghi"):
        lines.append(f"{name}: &{name} [{', '.join(['*' + previous] * 9)}]")
    return "\n".join(lines) + "\n"


def test_billion_laughs_stops_at_the_first_anchor_over_the_bound() -> None:
    # g expands to 9**7 = 4.8 million nodes; old code built 2 million nodes first (5 s, 500 MB)
    assert _rules(_billion_laughs()) == [(Rules.ALIAS_EXPANSION, 7)]


def test_an_amplifying_alias_under_the_node_bound_is_refused() -> None:
    """A few aliases of a long string: few nodes, 20 MB of text (old: valid, then copied into
    every generated file of the service)."""
    text = f'k: &k "{"k" * 2000}"\nl: &l [{", ".join(["*k"] * 100)}]\n'
    text += f"u: [{', '.join(['*l'] * 100)}]\n"
    assert _rules(text) == [(Rules.EXPANSION_TOO_LARGE, 3)]


@pytest.mark.parametrize("depth", [65, 10_000, 1_000_000])
def test_deep_flow_nesting_is_refused_at_the_first_node_too_deep(depth: int) -> None:
    # libyaml's composer crashed the interpreter (SIGSEGV) at about 100,000
    text = "a: " + "[" * depth + "]" * depth + "\n"
    with pytest.raises(CatalogError) as caught:
        load_text(text, "deep.yaml")
    (found,) = caught.value.diagnostics
    assert found.rule is Rules.NESTING_TOO_DEEP
    assert (found.location.line, found.location.column) == (1, 3 + bounds.MAX_DEPTH)


def test_nesting_at_the_bound_loads() -> None:
    depth = bounds.MAX_DEPTH
    doc = load_text("[" * depth + "]" * depth, "ok.yaml").data
    for _ in range(depth - 1):
        (doc,) = doc
    assert doc == []


def test_a_huge_scalar_is_refused() -> None:
    """An 8 MB description [S402-E091 scalar-too-long] (old: valid, a 160 MB build)."""
    text = SMALL.read_text(encoding="utf-8").replace(
        'task: finding "faces" & <landmarks>', "task: " + "T" * 8_000_000
    )
    assert _rules(text) == [(Rules.SCALAR_TOO_LONG, 75)]


def test_an_alias_inside_its_own_anchor_is_refused() -> None:
    assert _rules("a: &a [1, *a]\n") == [(Rules.RECURSIVE_ALIAS, 1)]
    assert _rules("a: &a {b: {c: *a}}\n") == [(Rules.RECURSIVE_ALIAS, 1)]


@pytest.mark.parametrize(
    "parameter",
    [
        "{type: array, example: " + "[" * 300 + "1" + "]" * 300 + "}",
        "{type: array, items: " * 300 + "{type: string}" + "}" * 300,
    ],
    ids=["example", "items"],
)
def test_examples_and_schemas_nested_300_deep_are_located_errors(
    parameter: str, tmp_path: Path
) -> None:
    """Old: the example validated; the items schema was ``internal error: RecursionError``."""
    (tmp_path / "catalog.yaml").write_text(_small_with(parameter), encoding="utf-8")
    for command in (["validate"], ["build", "--out", "out"]):
        code, _, stderr = run_cli(*command, "catalog.yaml", cwd=tmp_path)
        assert code == 2
        assert "catalog.yaml:79:" in stderr and "[S402-E090 nesting-too-deep]" in stderr
        assert "internal error" not in stderr
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("kind", ["example", "items"])
def test_schemas_and_examples_nested_up_to_the_bound_build(kind: str) -> None:
    """What the bound lets through, every later stage handles (no RecursionError)."""
    room = bounds.MAX_DEPTH - 5  # the catalog's own levels above a parameter
    if kind == "example":
        parameter = "{type: array, example: " + "[" * room + "1" + "]" * room + "}"
    else:
        half = room // 2
        parameter = "{type: array, items: " * half + "{type: string}" + "}" * half
    compiled = compile_text(_small_with(parameter), "catalog.yaml")
    assert compiled.ok, [d.format() for d in compiled.diagnostics]
    assert compiled.files


@pytest.mark.slow
@pytest.mark.parametrize("command", ["validate", "build"])
def test_a_million_deep_document_is_an_error_not_a_crash(command: str, tmp_path: Path) -> None:
    """As a real process: the old loader died of SIGSEGV (exit -11) in libyaml, in the
    compile and, for a catalog naming ``include``, in build's cache key (a second loader)."""
    deep = "[" * 1_000_000 + "]" * 1_000_000
    (tmp_path / "catalog.yaml").write_text(f"include: []\na: {deep}\n")
    result = run_process(command, "catalog.yaml", cwd=tmp_path)
    assert result.returncode == 2, result.stderr[-500:]
    assert "catalog.yaml:2:" in result.stderr and "nesting-too-deep" in result.stderr
