"""The input cache answers ``check`` only while every input is unchanged.

Each test builds, edits one input the cache key must cover, and expects
``check`` to notice: a key that ignored the edited input would find the
previous entry, see the output folder still matching its manifest, and
answer ``up to date`` without compiling.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from s402gen import cache

from .conftest import run_cli

ROUTE_TEMPLATE = (
    "SERVICE_ID = {{ spec.service_id | py }}\nPRICE = {{ spec.pricing.amount_cents }}\n"
)


@pytest.fixture
def templated_project(small_project: Path) -> Path:
    """The small project built once with a user route template, cache filled."""
    mine = small_project / "mine"
    mine.mkdir()
    (mine / "route.py.jinja").write_text(ROUTE_TEMPLATE, encoding="utf-8")
    assert run_cli("build", "--templates", "mine", cwd=small_project)[0] == 0
    assert run_cli("check", "--templates", "mine", cwd=small_project)[0] == 0
    return small_project


def test_edited_user_template_makes_check_fail(templated_project: Path, private_cache) -> None:
    assert len(list(private_cache.glob("*.json"))) == 1  # check above was answered from it
    template = templated_project / "mine" / "route.py.jinja"
    template.write_text(ROUTE_TEMPLATE.replace("PRICE", "AMOUNT_CENTS"), encoding="utf-8")
    code, _, err = run_cli("check", "--templates", "mine", cwd=templated_project)
    assert (
        code == 1
        and "generated/routes/face_detection.py:" in err
        and "[S402-E045 generated-file-changed]" in err
    )
    assert run_cli("build", "--templates", "mine", cwd=templated_project)[0] == 0
    route = (templated_project / "generated/routes/face_detection.py").read_text()
    assert route == 'SERVICE_ID = "face-detection"\nAMOUNT_CENTS = 105\n'
    assert run_cli("check", "--templates", "mine", cwd=templated_project)[0] == 0


def test_added_user_template_makes_check_fail(templated_project: Path) -> None:
    """A new file in the template folder overrides a packaged template."""
    (templated_project / "mine" / "doc_index.html.jinja").write_text("index\n", encoding="utf-8")
    code, _, err = run_cli("check", "--templates", "mine", cwd=templated_project)
    assert (
        code == 1
        and "generated/docs/index.html:" in err
        and "[S402-E045 generated-file-changed]" in err
    )


def test_check_without_the_user_templates_fails(templated_project: Path) -> None:
    code, _, err = run_cli("check", cwd=templated_project)
    assert (
        code == 1
        and "generated/routes/face_detection.py:" in err
        and "[S402-E045 generated-file-changed]" in err
    )


def _key(project: Path, templates: Path | None) -> str | None:
    return cache.input_key(project / "catalog.yaml", templates, {})


def test_key_covers_every_input(templated_project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    mine = templated_project / "mine"
    base = _key(templated_project, mine)
    assert base is not None and len(base) == 64
    assert _key(templated_project, mine) == base  # deterministic
    assert _key(templated_project, None) != base
    (mine / "route.py.jinja").write_text(ROUTE_TEMPLATE + "# edit\n", encoding="utf-8")
    edited = _key(templated_project, mine)
    assert edited not in (None, base)
    (mine / "route.py.jinja").rename(mine / "other.py.jinja")  # same bytes, another name
    assert _key(templated_project, mine) not in (None, base, edited)
    epoch = cache.input_key(templated_project / "catalog.yaml", None, {"SOURCE_DATE_EPOCH": "1"})
    assert epoch != _key(templated_project, None)
    catalog = templated_project / "catalog.yaml"
    before = _key(templated_project, None)
    catalog.write_text(catalog.read_text(encoding="utf-8") + "\n", encoding="utf-8")
    assert _key(templated_project, None) != before
    assert _key(templated_project / "missing", None) is None  # an unreadable catalog


def test_cache_dir_follows_the_environment(tmp_path: Path) -> None:
    assert cache.cache_dir({"S402GEN_CACHE_DIR": str(tmp_path)}) == tmp_path
    assert cache.cache_dir({"S402GEN_CACHE_DIR": "off"}) is None
    assert cache.cache_dir({"S402GEN_CACHE_DIR": ""}) is None
    xdg = {"XDG_CACHE_HOME": str(tmp_path)}
    assert cache.cache_dir(xdg) == tmp_path / "s402gen"
    assert cache.cache_dir({}) == Path.home() / ".cache" / "s402gen"
