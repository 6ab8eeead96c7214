"""The loader's two paths agree: libyaml's C composer with plain values (fast) and the
bounded Python composer with every location (located) give the same tree, and the
locations the fast path finds later are the located path's. Whatever the fast path leaves
(a finding, a bound) is reported by the located path, so errors are where they were."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

import s402gen.load as load_module
import s402gen.yaml_bounds as yaml_bounds
from s402gen.diagnostics import CatalogError, Rules
from s402gen.load import load_catalog, load_text
from s402gen.yaml_tree import Unusual

ROOT = Path(__file__).resolve().parents[1]
CATALOGS = sorted(
    [ROOT / "catalog.yaml", *(ROOT / "tests" / "cases").glob("*/**/*.yaml")],
    key=str,
)

#: Documents whose every path the fast path must load as the located one does.
EDGES = {
    "merge-then-explicit": "base: &b {a: 1, b: 2}\nx:\n  <<: *b\n  b: 3\n",
    "explicit-then-merge": "base: &b {a: 1, b: 2}\nx:\n  b: 3\n  <<: *b\n  c: 4\n",
    "merge-list": "p: &p {a: 1}\nq: &q {a: 2, b: 2}\nx: {<<: [*p, *q], c: 3}\n",
    "nested-merge": "t: &t {a: 0, z: 9}\ns: &s {<<: *t, a: 1}\nx: {<<: *s}\n",
    "aliases": "a: &a [x, {y: &y z}]\nb: [*a, *a, *y]\nc: {k: *a}\n",
    "scalars": "a: [1, -2, 0x1F, 1.5e+3, .inf2, true, no, ~, null, '', '1:20', \"020\"]\n",
    "tags": "a: !!str 5\nb: !!int '7'\nc: !!float 1\nd: !!null ''\n",
    "keys": "'1': a\n\"t\": b\n? complex\n: c\n",
    "block": "a: |\n  x\n  y\nb: >-\n  p\n  q\nc: plain\n  folded\n",
    "unicode": "名字: 人脸\nemoji: '😀'\n",
    "empty-values": "a:\nb: []\nc: {}\nd: [~]\n",
    "stars": "a: '*not an alias*'\nb: x*y\nc: [1, 2]\n",
    "plain-scalars": "[yes, No, ~, null, 1, -1, +.5, .inf0, 0x1F, a b, ÿ, 人, x: y, 'q', \"~\"]\n",
    "anchored-keys": "k: &k key\nm: {*k : 1}\nn: &n 5\no: [*n, *n]\n",
    "bound-scalar": "[" * 62 + "{k: [v]}" + "]" * 62,  # 64 collections deep, v at 65
}


def _located(text: str, name: str = "doc.yaml") -> tuple[dict, dict, object]:
    return load_module._with_gc_paused(load_module._located_tree, text, name)


@pytest.mark.parametrize("path", CATALOGS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_catalog_loads_the_same_on_both_paths(path: Path) -> None:
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        pytest.skip("not UTF-8: refused before loading")
    try:
        located = _located(text)
    except CatalogError as exc:
        with pytest.raises(CatalogError) as caught:
            load_text(text, "doc.yaml")
        assert caught.value.diagnostics == exc.diagnostics
        return
    except yaml.YAMLError:  # pragma: no cover - the located path reports every YAML error
        raise
    doc = load_text(text, "doc.yaml")
    assert doc.data == located[2]
    assert (doc.source.values, doc.source.keys) == located[:2]


@pytest.mark.parametrize("name", sorted(EDGES))
def test_edge_documents_load_the_same_on_both_paths(name: str) -> None:
    text = EDGES[name]
    values, keys, data = _located(text)
    doc = load_text(text, "doc.yaml")
    assert doc.data == data
    assert list(_walk(doc.data)) == list(_walk(data))  # key order too
    assert doc.source.values == values and doc.source.keys == keys


def _walk(value: object, path: tuple = ()):
    yield path, type(value).__name__
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _walk(item, path + (key,))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _walk(item, path + (index,))


def test_a_valid_catalog_takes_the_fast_path_and_locates_on_demand(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    text = (ROOT / "catalog.yaml").read_text(encoding="utf-8")
    expected = _located(text)

    def refuse(*args: object) -> None:
        raise AssertionError("the located path ran")

    monkeypatch.setattr(load_module, "_located_tree", refuse)
    doc = load_text(text, "catalog.yaml")
    assert doc.source._tables is None  # nothing located yet
    where = doc.source.key(("services", 3, "id"))
    assert (where.line, where.column) == expected[1][("services", 3, "id")]
    assert doc.source._locate is None  # the text is let go once located


@pytest.mark.parametrize(
    "text",
    [
        "a: 1\na: 2\n",  # duplicate key
        "a: 020\n",  # YAML 1.1 octal
        "1: x\n",  # non-string key
        "a: {<<: 3}\n",  # merge of a scalar
        "a: 2001-12-14\n",  # a date, not JSON
        "a: &a [1, *a]\n",  # recursive alias
        "a: *missing\n",  # undefined alias
        "a: [1\n",  # syntax
        "a: " + "[" * 65 + "]" * 65 + "\n",  # too deep
        "a: " + "[" * 64 + "{k: v}" + "]" * 64 + "\n",  # a mapping at depth 65
        "a: " + "x" * 100_001 + "\n",  # scalar too long
        "a: !!timestamp 2001-12-14 x\n",  # text that does not fit its tag (was a crash)
        "a: [!!int x, !!float y, !!bool z]\n",
    ],
)
def test_the_fast_path_leaves_findings_to_the_located_path(text: str) -> None:
    with pytest.raises(Unusual):
        load_module._plain_tree(text)
    with pytest.raises(CatalogError) as fast:
        load_text(text, "doc.yaml")
    with pytest.raises(CatalogError) as located:
        _located(text)
    assert fast.value.diagnostics == located.value.diagnostics


def test_a_billion_laughs_is_measured_not_expanded_by_the_fast_path() -> None:
    lines = ['a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for previous, name in zip("abcdefgh", "bcdefghi"):
        lines.append(f"{name}: &{name} [{', '.join(['*' + previous] * 9)}]")
    loader, root = load_module._compose_fast("\n".join(lines[:3]))  # 9**3: under the bound
    loader.dispose()
    with pytest.raises(Unusual):
        load_module._compose_fast("\n".join(lines))


def test_a_scalar_that_does_not_fit_its_tag_is_a_located_error() -> None:
    """PyYAML's constructor raises AttributeError, ValueError or KeyError there: it was an
    internal error (found by tests/test_properties.py)."""
    with pytest.raises(CatalogError) as caught:
        load_text("a: 1\nb: [!!int x, !!timestamp 2001-12-14 y]\n", "doc.yaml")
    assert [(d.rule, str(d.location), d.message) for d in caught.value.diagnostics] == [
        (Rules.YAML_SYNTAX, "doc.yaml:2:5", "invalid YAML: 'x' is not a valid !!int"),
        (
            Rules.YAML_SYNTAX,
            "doc.yaml:2:14",
            "invalid YAML: '2001-12-14 y' is not a valid !!timestamp",
        ),
    ]


def test_the_fast_path_copies_an_alias_and_stops_a_bomb_before_copying() -> None:
    data = load_module._plain_tree("a: &a [1, {b: 2}]\nc: *a\n")
    assert data == {"a": [1, {"b": 2}], "c": [1, {"b": 2}]}
    assert data["c"] is not data["a"] and data["c"][1] is not data["a"][1]  # as the graph did
    lines = ['a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for previous, name in zip("abcdefgh", "bcdefghi"):
        lines.append(f"{name}: &{name} [{', '.join(['*' + previous] * 9)}]")
    with pytest.raises(Unusual):
        load_module._plain_tree("\n".join(lines))


@pytest.mark.parametrize("builder", ["_plain_tree", "_compose_fast"])
def test_a_million_deep_document_stops_both_fast_paths_at_the_bound(builder: str) -> None:
    """libyaml's composer recursed in C and crashed (SIGSEGV) about 100,000 deep; the event
    builder keeps its own stack, the C composer's hook stops two levels past the bound."""
    text = "a: " + "[" * 1_000_000 + "]" * 1_000_000 + "\n"
    with pytest.raises(Unusual):
        getattr(load_module, builder)(text)


def test_the_fast_resolver_tags_as_pyyaml_does() -> None:
    fast = yaml_bounds.fast_loader(load_module._Loader)("")
    plain = load_module._Loader("")
    values = ["", "x", "yes", "No", "~", "null", "1", "-1", "+.5", ".inf", "0x1F", "<<", "=",
              "2001-12-14", "a b", "ÿ", "人", "!x", "&x", "*x", "'q'"]  # fmt: skip
    for value in values:
        for implicit in ((True, False), (False, True), (False, False)):
            assert fast.resolve(yaml.ScalarNode, value, implicit) == plain.resolve(
                yaml.ScalarNode, value, implicit
            ), (value, implicit)
    fast.dispose()
    plain.dispose()


def test_included_files_keep_their_locations(tmp_path: Path) -> None:
    (tmp_path / "more").mkdir()
    (tmp_path / "catalog.yaml").write_text(
        "include: [more/*.yaml]\ncategories: {a: {label: A}}\nservices:\n  - id: one\n",
        encoding="utf-8",
    )
    (tmp_path / "more" / "b.yaml").write_text(
        "categories:\n  b: {label: B}\n  a: {label: again}\nservices:\n  - id: two\n"
        "    params: {x: 1}\n",
        encoding="utf-8",
    )
    doc = load_catalog(str(tmp_path / "catalog.yaml"), "catalog.yaml")
    assert [d.rule for d in doc.problems] == [Rules.DUPLICATE_DEFINITION]
    assert "already defined at catalog.yaml:2:" in doc.problems[0].message
    part = str(Path("more") / "b.yaml")
    assert str(doc.source.key(("services", 1, "params", "x"))) == f"{part}:6:14"
    assert str(doc.source.value(("services", 1, "params", "x", 3))) == f"{part}:6:17"
    assert str(doc.source.key(("categories", "b"))) == f"{part}:2:3"
    assert str(doc.source.value(("services", 0, "id"))) == "catalog.yaml:4:9"
    assert str(doc.source.value(("services",))) == "catalog.yaml:4:3"
