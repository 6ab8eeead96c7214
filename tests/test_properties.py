"""Property tests: random and mutated catalogs never break the compiler.

Catalogs are made by mutating real ones (tests/cases/valid-small, the
examples/marketplace root with its included files): values replaced by
random JSON (control characters, unicode, huge numbers, deep nesting), keys
renamed or deleted, values wrapped, and YAML text cut or spliced with
hostile snippets (aliases, tags, flow nesting). For each, ``validate`` and
``build`` run as the CLI (click's runner in-process; a few as real
processes) and must: raise nothing (no traceback, no ``internal error``),
exit 0, 1 or 2, locate every error (``file:line:col``), write nothing
outside ``--out``, and finish within the example deadline.

Profiles (``S402GEN_PROPERTY_PROFILE``): ``ci`` (default: 150 catalogs, each
validated and built, about 30 s on a loaded 2-core machine) and ``bench``
(``S402GEN_PROPERTY_EXAMPLES``, default 10,000: ``bench/properties_bench.py``).
The deadline (``S402GEN_PROPERTY_DEADLINE_S``, 45 s by default: validate and
build together) is the time bound; on a quiet machine set it to a few seconds.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
import tempfile
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from s402gen.cli import main

from .conftest import run_process

ROOT = Path(__file__).resolve().parents[1]
SMALL = ROOT / "tests" / "cases" / "valid-small" / "catalog.yaml"
MARKETPLACE = ROOT / "examples" / "marketplace"

_COMMON = dict(
    database=None,  # nothing kept between runs (no .hypothesis/ folder)
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    derandomize=False,
)
#: The time bound of one example (validate and build), in seconds: generous, since a shared
#: CI machine stalls a build for seconds; a hang (the old loader's) runs past any bound.
DEADLINE = timedelta(seconds=float(os.environ.get("S402GEN_PROPERTY_DEADLINE_S", "45")))
settings.register_profile("ci", max_examples=150, deadline=DEADLINE, print_blob=True, **_COMMON)
settings.register_profile(
    "bench",
    max_examples=int(os.environ.get("S402GEN_PROPERTY_EXAMPLES", "10000")),
    deadline=DEADLINE,
    print_blob=True,
    **_COMMON,
)
PROFILE = os.environ.get("S402GEN_PROPERTY_PROFILE", "ci")

#: Text that has broken parsers, templates, paths or shells somewhere.
HOSTILE_TEXT = [
    "", " ", "\x00", "a\r\nX-Injected: 1", "\x1b[31m", "\u202eevil", "\u200b", "\ufeff",
    "{p:path}", "../../etc/passwd", "/abs", "C:\\x", "{{ 7*7 }}", "{% include 'x' %}",
    "<script>alert(1)</script>", "'; DROP TABLE x;--", "%s%n", "${HOME}", "$(id)", "`id`",
    "020", "1:20", "0b11", "1_000", "yes", "~", "null", ".nan", "-.inf", "1e400",
    "x" * 300, "é" * 200, "人脸" * 50, "𝔘𝔫𝔦𝔠𝔬𝔡𝔢", "*alias", "&anchor", "!!python/object:os.system",
    "face-detection", "DetectFace", "ImageURL", "image-url", "USD", "https://example.com/a.jpg",
    "^(a+)+$", "(a)\\1", "[", "{", "#", ": ", "- ",
]  # fmt: skip

#: YAML that stresses the loader, spliced into a catalog's text.
HOSTILE_YAML = [
    "&a [1, *a]", "*nowhere", "!!binary aGk=", "!!set {a, b}", "!!timestamp 2001-12-14",
    "!!python/name:os.system", "<<: *x", "? [a, b]\n  : c", "{a: 1, a: 2}", "\t", "%YAML 1.1\n---",
    "---\n---", "[" * 80 + "]" * 80, "'unterminated", '"\\xZZ"', "020", "1:20:30", "&x {a: &y [*x]}",
    "k: &k " + '"' + "k" * 500 + '"\nl: [' + ", ".join(["*k"] * 50) + "]",
]  # fmt: skip

KEYS = [
    "id", "action", "params", "required", "type", "items", "enum", "minimum", "maximum",
    "pattern", "example", "exampleRequest", "errorExamples", "outputSchema", "legacyId",
    "toolName", "provider", "pricingPolicy", "currency", "maxCalls", "allowReuse", "endpoint",
    "version", "legacyIdPrefix", "generatedAt", "include", "defaults", "description", "$ref",
]  # fmt: skip

_text = st.one_of(
    st.sampled_from(HOSTILE_TEXT),
    st.text(st.characters(blacklist_categories=("Cs",)), max_size=20),
)
_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    _text,
)
_values = st.recursive(
    _scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.one_of(st.sampled_from(KEYS), _text), inner, max_size=4),
    ),
    max_leaves=12,
)


def _paths(tree: Any, prefix: tuple = ()) -> list[tuple]:
    """Every path into ``tree`` (dict keys and list indexes), the root first."""
    found = [prefix]
    if isinstance(tree, dict):
        for key, value in tree.items():
            found += _paths(value, prefix + (key,))
    elif isinstance(tree, list):
        for index, value in enumerate(tree):
            found += _paths(value, prefix + (index,))
    return found


def _parent(tree: Any, path: tuple) -> Any:
    for step in path[:-1]:
        tree = tree[step]
    return tree


@st.composite
def mutated_trees(draw: Any, base: Any) -> Any:
    """``base`` (a loaded catalog) with 1 to 4 random mutations."""
    tree = json.loads(json.dumps(base))
    for _ in range(draw(st.integers(1, 4))):
        paths = _paths(tree)[1:]
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent, last = _parent(tree, path), path[-1]
        ops = ["replace", "delete", "rename", "wrap", "nest", "schema", "text", "copy"]
        op = draw(st.sampled_from(ops))
        if op == "replace":
            parent[last] = draw(_values)
        elif op == "delete":
            del parent[last]
        elif op == "rename" and isinstance(parent, dict):
            parent[draw(st.one_of(st.sampled_from(KEYS), _text))] = parent.pop(last)
        elif op == "wrap":
            parent[last] = draw(st.sampled_from([[parent[last]], {"x": parent[last]}]))
        elif op == "nest":  # deep nesting, around and past the loader's bound
            value = parent[last]
            for _ in range(draw(st.integers(1, 400))):
                value = [value]
            parent[last] = value
        elif op == "schema":  # an array schema nested deep (once a RecursionError)
            value = {"type": "string"}
            for _ in range(draw(st.integers(1, 300))):
                value = {"type": "array", "items": value}
            parent[last] = value
        elif op == "text":
            parent[last] = str(parent[last]) + draw(_text)
        elif op == "copy" and isinstance(parent, list):
            parent.append(json.loads(json.dumps(parent[last])))
    if draw(st.booleans()):  # and often a hostile parameter of a service
        services = [s for s in tree.get("services") or [] if isinstance(s, dict)]
        if isinstance(tree, dict) and services:
            service = draw(st.sampled_from(services))
            if isinstance(service.get("params"), dict):
                service["params"][draw(st.sampled_from(["ImageURL", "P", "Q"]))] = draw(_params)
    return tree


def _nested_items(depth: int) -> dict:
    value: dict = {"type": "string"}
    for _ in range(depth):
        value = {"type": "array", "items": value}
    return value


#: Parameter schemas that once broke the compiler or published nonsense.
_params = st.one_of(
    st.integers(1, 300).map(_nested_items),
    st.integers(1, 300).map(lambda n: {"type": "array", "example": json.loads("[" * n + "]" * n)}),
    st.sampled_from(
        [
            {"type": "string", "enum": []},
            {"type": "integer", "enum": [1, "two"]},
            {"type": "integer", "minimum": 10, "maximum": 1},
            {"type": "string", "pattern": "^(a+)+$", "example": "a" * 40 + "!"},
            {"type": "string", "pattern": "(a)\\1"},
            {"type": "string", "example": "a\x00b"},
            {"type": "number", "example": 1e308, "minimum": -(2**63)},
        ]
    ),
    _values,
)


def _dump(tree: Any) -> str:
    """The YAML text of a mutated ``tree``. PyYAML's representer recurses three frames a
    level, so the deepest mutations (lists 400 deep, past the loader's bound) need more
    than Python's default recursion limit to be written at all; the CLI under test then
    reads them with its own limits."""
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, 10_000))
    try:
        return yaml.safe_dump(tree, allow_unicode=True, sort_keys=False, width=10_000)
    finally:
        sys.setrecursionlimit(limit)


@st.composite
def spliced_text(draw: Any, text: str) -> str:
    """``text`` with a slice cut out or a hostile YAML snippet put in at a random place."""
    at = draw(st.integers(0, len(text)))
    if draw(st.booleans()):
        return text[:at] + text[at + draw(st.integers(1, 200)) :]
    return text[:at] + draw(st.sampled_from(HOSTILE_YAML)) + text[at:]


def _base(name: str) -> Path:
    return SMALL if name == "small" else MARKETPLACE / "catalog.yaml"


def catalogs() -> Any:
    """``(base name, catalog text)``: a mutated tree, or mutated text, of a real catalog."""
    loaded = {name: yaml.safe_load(_base(name).read_text("utf-8")) for name in ("small", "market")}
    texts = {name: _base(name).read_text("utf-8") for name in ("small", "market")}
    names = st.sampled_from(["small", "market"])
    trees = names.flatmap(lambda n: mutated_trees(loaded[n]).map(lambda t: (n, _dump(t))))
    raw = names.flatmap(lambda n: spliced_text(texts[n]).map(lambda t: (n, t)))
    return st.one_of(trees, trees, raw)


def _project(folder: Path, base: str, text: str) -> None:
    if base == "market":
        shutil.copytree(MARKETPLACE / "services", folder / "services")
    (folder / "catalog.yaml").write_text(text, encoding="utf-8")


def _snapshot(folder: Path) -> dict[str, bytes]:
    """Every file and symlink under ``folder`` but ``out/``, with its bytes."""
    found = {}
    for path in sorted(folder.rglob("*")):
        relative = path.relative_to(folder).as_posix()
        if relative == "out" or relative.startswith("out/"):
            continue
        found[relative] = path.read_bytes() if path.is_file() else b"<dir>"
    return found


LOCATED = re.compile(r"^\S.*:\d+:\d+: (error|warning): ")


def _check_output(code: int, stdout: str, stderr: str) -> None:
    assert code in (0, 1, 2), (code, stdout[-2000:], stderr[-2000:])
    for text in (stdout, stderr):
        assert "Traceback" not in text and "internal error" not in text, text[-3000:]
    for line in stderr.splitlines():
        if ": error:" in line or ": warning:" in line:
            assert LOCATED.match(line), line


def _check_findings(stdout: str) -> None:
    """Every finding of ``validate --format json`` names a file, a line and a column."""
    for finding in json.loads(stdout)["findings"]:
        assert finding["file"] and finding["line"] >= 1 and finding["column"] >= 1, finding


def _invoke(folder: Path, *args: str) -> tuple[int, str, str]:
    runner = CliRunner()
    old = Path.cwd()
    os.chdir(folder)
    try:
        result = runner.invoke(main, list(args), env={"S402GEN_CACHE_DIR": "off"})
    finally:
        os.chdir(old)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr


def _property(base: str, text: str, invoke: Any) -> None:
    with tempfile.TemporaryDirectory(prefix="s402gen-prop-") as name:
        folder = Path(name)
        _project(folder, base, text)
        before = _snapshot(folder)
        code, stdout, stderr = invoke(folder, "validate", "catalog.yaml", "--format", "json")
        _check_output(code, stdout, stderr)
        if stdout.strip():  # a usage error prints no document
            _check_findings(stdout)
        code, stdout, stderr = invoke(folder, "build", "catalog.yaml", "--out", "out")
        _check_output(code, stdout, stderr)
        event(f"build exit {code}")
        assert _snapshot(folder) == before, "build wrote outside --out"
        if code != 0:
            assert not (folder / "out").exists() or not any((folder / "out").iterdir())


@settings(settings.get_profile(PROFILE))
@given(catalogs())
def test_mutated_catalogs_never_break_validate_or_build(case: tuple[str, str]) -> None:
    _property(*case, _invoke)


def _process(folder: Path, *args: str) -> tuple[int, str, str]:
    result = run_process(*args, cwd=folder, env={"S402GEN_CACHE_DIR": "off"})
    return result.returncode, result.stdout, result.stderr


@pytest.mark.slow
@settings(settings.get_profile(PROFILE), max_examples=6)
@given(catalogs())
def test_mutated_catalogs_as_real_processes(case: tuple[str, str]) -> None:
    """The same property through the console script: exit codes and output as a user sees."""
    _property(*case, _process)
