"""A user's templates: sandboxed, and every way they can fail is a located template error.

Before: a template including itself, one with a syntax error, a filter that
raised and a non-UTF-8 file were ``internal error``s, and a template could
reach Python internals (``''.__class__.__mro__[1].__subclasses__()`` rendered
the interpreter's classes into the output).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from .conftest import run_cli

ROUTE = "route.py.jinja"

BROKEN = {
    "includes-itself": ('X = 1\n{% include "route.py.jinja" %}\n', "include or call each other"),
    "syntax-error": ("X = 1\n{% if %}\n", "Expected an expression"),
    "filter-raises": ('X = 1\nY = {{ spec | py(level="x") }}\n', "TypeError"),
    "division-by-zero": ("X = 1\nY = {{ 1 // 0 }}\n", "ZeroDivisionError"),
    "not-utf-8": (b"X = 1\n# caf\xe9 \xff\n", "not UTF-8"),
    "reaches-python": (
        "X = 1\nY = \"{{ ''.__class__.__mro__[1].__subclasses__() }}\"\n",
        "unsafe",
    ),
    "changes-data": ("X = 1\n{{ spec.input_schema.clear() }}\n", "unsafe"),
    "undefined-include": ('X = 1\n{% include "nope.jinja" %}\n', "nope.jinja"),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_a_broken_template_is_a_located_error(case: str, small_project: Path) -> None:
    text, message = BROKEN[case]
    mine = small_project / "mine"
    mine.mkdir()
    path = mine / ROUTE
    path.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8"))
    code, out, err = run_cli("build", "--templates", "mine", cwd=small_project)
    assert code == 2, err
    assert f"mine/{ROUTE}:2:1: error: template error: " in err, err
    assert message in err and "[S402-E009 template-error]" in err
    assert "internal error" not in err and "Traceback" not in err
    assert not (small_project / "generated").exists()


def test_a_streamed_template_that_fails_midway_is_located(small_project: Path) -> None:
    """catalog.json is rendered in chunks: a failure inside its loop is still at its line."""
    mine = small_project / "mine"
    mine.mkdir()
    (mine / "catalog.json.jinja").write_text(
        "[\n{% for entry in entries %}\n{{ entry.name.__class__ }}\n{% endfor %}\n]\n"
    )
    code, _, err = run_cli("build", "--templates", "mine", cwd=small_project)
    assert code == 2 and "mine/catalog.json.jinja:3:1: error: template error: " in err, err
    assert not (small_project / "generated").exists()


def test_a_sandboxed_template_still_formats_the_data(small_project: Path) -> None:
    """The sandbox lets a template read the data and filter it."""
    mine = small_project / "mine"
    mine.mkdir()
    (mine / ROUTE).write_text(
        '# {{ spec.service_id | upper }}: {{ spec.input_schema["properties"] | length }}'
        " parameter(s)\nSERVICE_ID = {{ spec.service_id | py }}\n"
    )
    code, _, err = run_cli("build", "--templates", "mine", cwd=small_project)
    assert code == 0, err
    route = (small_project / "generated" / "routes" / "face_detection.py").read_text()
    assert route == '# FACE-DETECTION: 2 parameter(s)\nSERVICE_ID = "face-detection"\n'


def test_a_template_including_itself_stops_under_a_high_recursion_limit(
    small_project: Path,
) -> None:
    """With the interpreter's limit raised (as some tools do), the C stack overflowed first:
    a segmentation fault. A user's template gets its own, lower bound."""
    import sys

    mine = small_project / "mine"
    mine.mkdir()
    (mine / ROUTE).write_text(BROKEN["includes-itself"][0])
    old = sys.getrecursionlimit()
    sys.setrecursionlimit(200_000)
    try:
        code, _, err = run_cli("build", "--templates", "mine", cwd=small_project)
    finally:
        sys.setrecursionlimit(old)
    assert code == 2 and "include or call each other without end" in err
    assert sys.getrecursionlimit() == old
