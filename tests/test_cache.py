"""The input cache answers ``check`` only while every input is unchanged.

Each test builds, edits one input the cache key must cover, and expects
``check`` to notice: a key that ignored the edited input would find the
previous entry, see the output folder still matching its manifest, and
answer ``up to date`` without compiling.
"""

from __future__ import annotations

import os
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


@pytest.mark.parametrize(
    "library", ["jinja2", "orjson", "black", "pyyaml", "pydantic", "jsonschema"]
)
def test_key_covers_the_versions_of_the_libraries_that_shape_the_text(
    small_project: Path, monkeypatch: pytest.MonkeyPatch, library: str
) -> None:
    catalog = small_project / "catalog.yaml"
    before = cache.input_key(catalog, None, {})
    real_version = cache.metadata.version

    def version(name: str) -> str:
        return "0.0.0-test" if name == library else real_version(name)

    monkeypatch.setattr(cache.metadata, "version", version)
    assert cache.input_key(catalog, None, {}) != before


def test_key_covers_the_catalog_name(small_project: Path, monkeypatch) -> None:
    """Diagnostics name the catalog file: the same bytes under another name are another key."""
    monkeypatch.chdir(small_project)
    (small_project / "copy.yaml").write_bytes((small_project / "catalog.yaml").read_bytes())
    assert cache.input_key(Path("copy.yaml"), None, {}) != cache.input_key(
        Path("catalog.yaml"), None, {}
    )


def test_store_then_lookup_round_trips(tmp_path: Path) -> None:
    entry = cache.Entry("ab" * 32, 3, (("warning", "catalog.yaml:1:1: warning: x"),))
    cache.store(tmp_path, "k" * 64, entry)
    assert cache.lookup(tmp_path, "k" * 64) == entry
    assert cache.lookup(tmp_path, "j" * 64) is None
    assert cache.lookup(None, "k" * 64) is None and cache.lookup(tmp_path, None) is None
    assert sorted(p.name for p in tmp_path.iterdir()) == ["k" * 64 + ".json"]  # no temp file


def test_unreadable_entries_are_misses(tmp_path: Path) -> None:
    for key, text in {
        "a": "not json",
        "b": "{}",
        "c": '{"manifestSha256": "m", "files": 0, "diagnostics": 3}',
        "d": '{"manifest": "m", "diagnostics": []}',  # an older layout
    }.items():
        (tmp_path / f"{key}.json").write_text(text, encoding="utf-8")
        assert cache.lookup(tmp_path, key) is None


def test_store_keeps_the_newest_entries(tmp_path: Path) -> None:
    entry = cache.Entry("m", 0, ())
    count = cache.MAX_ENTRIES + 2
    for age in range(count):  # the newest has the smallest name: name order is not age order
        key = f"{count - age:03d}"
        cache.store(tmp_path, key, entry)
        os.utime(tmp_path / f"{key}.json", (age, age))
    kept = sorted(p.stem for p in tmp_path.glob("*.json"))
    assert cache.MAX_ENTRIES == 64
    assert kept == [f"{count - age:03d}" for age in range(count - 1, 1, -1)]
    assert len(kept) == cache.MAX_ENTRIES


def test_store_creates_missing_folders(tmp_path: Path) -> None:
    folder = tmp_path / "a" / "b"
    cache.store(folder, "k", cache.Entry("m", 0, ()))
    assert cache.lookup(folder, "k") == cache.Entry("m", 0, ())


def test_no_key_never_hits(tmp_path: Path) -> None:
    """An unreadable input gives no key: even an entry stored as "None" is not used."""
    (tmp_path / "None.json").write_text('{"manifest": "m", "diagnostics": []}')
    assert cache.lookup(tmp_path, None) is None


def test_key_ignores_bytecode_in_the_template_folder(templated_project: Path) -> None:
    mine = templated_project / "mine"
    before = _key(templated_project, mine)
    (mine / "__pycache__").mkdir()
    (mine / "__pycache__" / "helpers.cpython-311.pyc").write_bytes(b"\0bytecode")
    assert _key(templated_project, mine) == before


def test_empty_source_date_epoch_is_unset(small_project: Path) -> None:
    catalog = small_project / "catalog.yaml"
    unset = cache.input_key(catalog, None, {})
    assert cache.input_key(catalog, None, {"SOURCE_DATE_EPOCH": ""}) == unset


def test_key_when_a_library_is_not_installed(
    small_project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    catalog = small_project / "catalog.yaml"
    before = cache.input_key(catalog, None, {})
    real_version = cache.metadata.version

    def version(name: str) -> str:
        if name == "orjson":
            raise cache.metadata.PackageNotFoundError(name)
        return real_version(name)

    monkeypatch.setattr(cache.metadata, "version", version)
    missing = cache.input_key(catalog, None, {})
    assert missing is not None and missing != before


def test_store_never_raises(tmp_path: Path) -> None:
    blocked = tmp_path / "a-file"
    blocked.write_text("not a folder")
    cache.store(blocked, "k", cache.Entry("m", 0, ()))  # cannot create the folder: ignored
    cache.store(None, "k", cache.Entry("m", 0, ()))
    cache.store(tmp_path, None, cache.Entry("m", 0, ()))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file"]
