"""The streamed aggregate files are exactly what their packaged Jinja templates write.

With the packaged templates, catalog.json, tools.json, openapi.json,
offers.json and the search data are written by :mod:`s402gen.aggregates`,
member by member; a user template folder holding copies of the packaged
templates sends every file through Jinja instead. Both must give the same
bytes, for the real catalog.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import orjson
import pytest

from s402gen import jsonstream
from s402gen.config import packaged_templates
from s402gen.pipeline import compile_catalog

from .conftest import CATALOG


def files_of(catalog: Path, templates: Path | None) -> dict[str, str]:
    result = compile_catalog(catalog, templates=templates)
    assert result.ok, result.diagnostics
    return result.files


def test_streamed_files_equal_the_jinja_rendering(tmp_path: Path) -> None:
    copies = tmp_path / "copies"
    shutil.copytree(packaged_templates(), copies)
    streamed = files_of(CATALOG, None)
    through_jinja = files_of(CATALOG, copies)
    assert streamed.keys() == through_jinja.keys()
    for path in ("catalog/catalog.json", "mcp/tools.json", "openapi.json", "x402/offers.json"):
        assert streamed[path] == through_jinja[path], path
    assert streamed == through_jinja


VALUES = [
    {},
    [],
    {"a": {}, "b": [], "c": [{}], "d": '中文\n"q"', "e": 1.5, "f": None, "g": True},
    [[1, [2, {"x": [3]}]], {"k": {"l": {}}}],
]


def lazy(value):
    """``value`` with every container made lazy."""
    if isinstance(value, dict):
        return jsonstream.Items((k, lazy(v)) for k, v in value.items())
    if isinstance(value, list):
        return jsonstream.Elements(lazy(v) for v in value)
    return value


@pytest.mark.parametrize("value", VALUES)
@pytest.mark.parametrize("level", [0, 1, 3])
def test_chunks_give_orjson_text(value, level: int) -> None:
    expected = orjson.dumps(value, option=orjson.OPT_INDENT_2).decode()
    expected = expected.replace("\n", "\n" + "  " * level)
    assert b"".join(jsonstream.chunks(lazy(value), level)).decode() == expected
    assert jsonstream.materialize(lazy(value)) == value


def test_materialize_keeps_a_repeated_key_in_place_with_its_last_value() -> None:
    made = jsonstream.materialize(jsonstream.Items([("a", 1), ("b", 2), ("a", 3)]))
    plain = {"a": 1, "b": 2}
    plain["a"] = 3
    assert list(made.items()) == list(plain.items())
