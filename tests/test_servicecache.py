"""The per-service cache of validate and derive: a cached compile equals an uncached one.

Every compile here is compared with one without the cache: the same findings
(text, rule, location, hint, services) and the same IR (what every generated
file is rendered from), and through the CLI the same output bytes. The cache
must be reused (only an edited service is derived again) and never trusted
when it should not be: an edit to a shared section, an edit that introduces
an error in a cached service, a corrupt or foreign cache file.
"""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from s402gen import derive, servicecache
from s402gen.incremental import ir_digest
from s402gen.pipeline import Compilation, compile_catalog

from .conftest import CATALOG, run_cli, write_catalog

CASES = Path(__file__).parent / "cases"
CODE = "test-code-key"


def compiled(path: Path, folder: Path | None) -> Compilation:
    """``path`` compiled with the service cache in ``folder`` (``None``: without one)."""
    cache = servicecache.cache_at(folder, path, CODE) if folder is not None else None
    return compile_catalog(path, display_name=path.name, environ={}, cache=cache)


def same(result: Compilation, expected: Compilation) -> None:
    """``result`` found and derived exactly what ``expected`` did."""
    assert [d.format() for d in result.diagnostics] == [d.format() for d in expected.diagnostics]
    assert result.diagnostics == expected.diagnostics  # rule, location, hint, services
    assert result.catalog == expected.catalog
    if result.catalog is not None and result.digests:  # kept with the IR: the IR's own
        assert result.digests == [ir_digest(svc) for svc in result.catalog.services]


@pytest.fixture
def derived(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The ids of the services derived from now on (not taken from the cache)."""
    ids: list[str] = []
    original = derive._Deriver.service

    def counting(self, index, svc):
        ids.append(svc.id)
        return original(self, index, svc)

    monkeypatch.setattr(derive._Deriver, "service", counting)
    return ids


@pytest.mark.parametrize("case", sorted(p.name for p in CASES.iterdir() if p.is_dir()))
def test_every_case_finds_the_same_with_the_cache(case: str, tmp_path: Path) -> None:
    catalog = CASES / case / "catalog.yaml"
    expected = compiled(catalog, None)
    same(compiled(catalog, tmp_path), expected)  # the cache empty: filled
    same(compiled(catalog, tmp_path), expected)  # taken from the cache


def edit_and_compare(
    tmp_path: Path, data: dict, edit, derived: list[str]
) -> tuple[Compilation, list[str]]:
    """Compile ``data`` (cache filled), apply ``edit`` to it, compile again with the cache
    and without; asserts they agree. Returns the cached result and what it derived."""
    catalog = write_catalog(tmp_path / "catalog.yaml", data)
    folder = tmp_path / "cache"
    compiled(catalog, folder)
    edited = copy.deepcopy(data)
    edit(edited)
    write_catalog(catalog, edited)
    derived.clear()
    result = compiled(catalog, folder)
    again = list(derived)
    same(result, compiled(catalog, None))
    return result, again


def test_only_the_edited_service_is_derived_again(
    tmp_path: Path, real_catalog_data: dict, derived: list[str]
) -> None:
    def edit(data: dict) -> None:
        data["services"][3]["action"] += "Edited"

    result, again = edit_and_compare(tmp_path, real_catalog_data, edit, derived)
    assert result.ok
    assert again == [real_catalog_data["services"][3]["id"]]


def test_lines_moved_by_an_edit_are_located_again(
    tmp_path: Path, real_catalog_data: dict, derived: list[str]
) -> None:
    # every service below the first one moves down; their warnings must follow them
    for svc in real_catalog_data["services"][5:]:
        svc.pop("titleZh", None)  # no-chinese-title: one warning per service

    def edit(data: dict) -> None:
        data["services"][0]["keywords"] = ["one", "two", "three"]

    result, again = edit_and_compare(tmp_path, real_catalog_data, edit, derived)
    warned = [d for d in result.diagnostics if d.rule.name == "no-chinese-title"]
    assert len(warned) == len(real_catalog_data["services"]) - 5
    assert again == [real_catalog_data["services"][0]["id"]]


@pytest.mark.parametrize(
    "key, value, rule",
    [
        ("exampleRequest", {"NotAParameter": 1}, "unknown-example-parameter"),  # an ir rule
        ("required", ["Missing"], "unknown-required-parameter"),  # a model rule
        ("outputSchema", {"type": "array"}, "invalid-output-schema"),
    ],
)
def test_an_error_introduced_in_a_cached_service_is_found(
    key: str, value, rule: str, tmp_path: Path, real_catalog_data: dict, derived: list[str]
) -> None:
    def edit(data: dict) -> None:
        data["services"][7][key] = value

    result, _ = edit_and_compare(tmp_path, real_catalog_data, edit, derived)
    assert not result.ok
    assert rule in {d.rule.name for d in result.diagnostics}


def test_an_error_fixed_again_leaves_no_finding(
    tmp_path: Path, real_catalog_data: dict, derived: list[str]
) -> None:
    broken = copy.deepcopy(real_catalog_data)
    broken["services"][2]["exampleRequest"] = {"NotAParameter": 1}

    def fix(data: dict) -> None:
        data["services"][2] = copy.deepcopy(real_catalog_data["services"][2])

    result, again = edit_and_compare(tmp_path, broken, fix, derived)
    assert result.ok
    assert again == [real_catalog_data["services"][2]["id"]]


@pytest.mark.parametrize(
    "section",
    ["defaults", "providers", "presets", "pricingPolicies", "paymentProviders", "catalog"],
)
def test_an_edit_to_a_shared_section_reaches_every_service(
    section: str, tmp_path: Path, real_catalog_data: dict, derived: list[str]
) -> None:
    def edit(data: dict) -> None:
        shared = data[section]
        if section == "defaults":
            shared["nameSuffix"] = "Edited API"
            shared["outputSchema"] = {"type": "object", "properties": {"x": {"type": "nope"}}}
        elif section == "catalog":
            shared["marketplace"] = "Edited marketplace"
        else:
            first = next(iter(shared.values()))
            key = {"providers": "version", "presets": "description"}.get(section)
            if key is not None:
                first[key] = "2030-01-01"
            elif section == "pricingPolicies":
                first["amountCents"] = 7
            else:
                first["tokenName"] = "Edited"

    result, again = edit_and_compare(tmp_path, real_catalog_data, edit, derived)
    if result.ok:  # derived again, every one (an invalid catalog stops before derive)
        assert len(again) == len(real_catalog_data["services"])


def test_a_removed_or_added_service_is_reported_the_same(
    tmp_path: Path, real_catalog_data: dict, derived: list[str]
) -> None:
    def edit(data: dict) -> None:
        removed = data["services"].pop(4)
        data["services"].append(copy.deepcopy(data["services"][0]))  # duplicate id and more
        data["services"].append(removed)

    result, _ = edit_and_compare(tmp_path, real_catalog_data, edit, derived)
    assert any(d.rule.name == "duplicate-id" for d in result.diagnostics)


def inserted(data: dict, at: int) -> str:
    """Insert at ``at`` a new service made from the fourth one; returns its id."""
    svc = copy.deepcopy(data["services"][3])
    for key in ("legacyId", "toolName"):
        svc.pop(key, None)
    svc["id"], svc["action"] = "inserted-service", svc["action"] + "Inserted"
    data["services"].insert(at, svc)
    return svc["id"]


FAULTS = {  # set in the services below the insertion: what they report, by rule
    "warning": ("titleZh", None, "no-chinese-title"),
    "ir-error": ("exampleRequest", {"NotAParameter": 1}, "unknown-example-parameter"),
    "model-error": ("required", ["Missing"], "unknown-required-parameter"),
}


@pytest.mark.parametrize("fault", sorted(FAULTS))
@pytest.mark.parametrize("at", [0, 6])
def test_a_service_inserted_above_others_leaves_their_entries_valid(
    at: int, fault: str, tmp_path: Path, real_catalog_data: dict, derived: list[str]
) -> None:
    """The position is not in a service's key: the services below an insertion move, are
    renumbered and located again (their findings at their new place: ``same`` compares
    them with an uncached compile's) and are not derived again."""
    key, value, rule = FAULTS[fault]
    for svc in real_catalog_data["services"][7:9]:
        if value is None:
            svc.pop(key, None)
        else:
            svc[key] = value
    new: list[str] = []

    result, again = edit_and_compare(
        tmp_path, real_catalog_data, lambda data: new.append(inserted(data, at)), derived
    )
    assert sum(d.rule.name == rule for d in result.diagnostics) == 2
    assert again == (new if result.ok or fault == "ir-error" else [])


def test_services_moved_or_removed_are_not_derived_again(
    tmp_path: Path, real_catalog_data: dict, derived: list[str]
) -> None:
    def edit(data: dict) -> None:
        services = data["services"]
        services[0], services[-1] = services[-1], services[0]
        del services[4]

    result, again = edit_and_compare(tmp_path, real_catalog_data, edit, derived)
    assert result.ok
    assert again == []


def test_findings_across_services_are_found_when_one_service_changes(
    tmp_path: Path, real_catalog_data: dict, derived: list[str]
) -> None:
    first, other = real_catalog_data["services"][0], real_catalog_data["services"][6]

    def edit(data: dict) -> None:
        data["services"][6]["toolName"] = first.get("toolName") or first["id"].replace("-", "_")
        data["services"][6]["relatedServices"] = ["no-such-service"]

    result, again = edit_and_compare(tmp_path, real_catalog_data, edit, derived)
    names = {d.rule.name for d in result.diagnostics}
    assert {"duplicate-tool-name", "unknown-related-service"} <= names
    assert again == [other["id"]]


def corrupt(folder: Path, how: str) -> None:
    """Damage the one cache file under ``folder``."""
    (file,) = (folder / servicecache.FOLDER).iterdir()
    data = bytearray(file.read_bytes())
    if how == "flip":  # in the entries: their batch fails its sha256
        data[len(data) // 2] ^= 0xFF
    elif how == "truncate":
        del data[len(data) // 3 :]
    elif how == "format":
        data[:5] = b"xxxxx"
    elif how == "footer":  # the index's sha256
        data[-1] ^= 0xFF
    elif how == "garbage-with-checksum":  # a consistent file whose index is not a cache's
        import hashlib

        raw = b"not a pickle"
        start = len(servicecache.FORMAT)
        footer = servicecache._FOOTER.pack(start, len(raw), hashlib.sha256(raw).digest())
        data = bytearray(servicecache.FORMAT + raw + footer)
    file.write_bytes(bytes(data))


@pytest.mark.parametrize("how", ["flip", "truncate", "format", "footer", "garbage-with-checksum"])
def test_a_corrupt_cache_is_ignored(
    how: str, tmp_path: Path, real_catalog_data: dict, derived: list[str]
) -> None:
    catalog = write_catalog(tmp_path / "catalog.yaml", real_catalog_data)
    folder = tmp_path / "cache"
    compiled(catalog, folder)
    corrupt(folder, how)
    derived.clear()
    same(compiled(catalog, folder), compiled(catalog, None))
    count = len(real_catalog_data["services"])
    assert len(derived) == 2 * count  # nothing taken: both derived everything
    derived.clear()
    same(compiled(catalog, folder), compiled(catalog, None))  # the cache is whole again
    assert len(derived) == count


def test_many_edits_append_to_the_file_then_write_it_anew(
    tmp_path: Path, real_catalog_data: dict, derived: list[str]
) -> None:
    catalog = write_catalog(tmp_path / "catalog.yaml", real_catalog_data)
    folder = tmp_path / "cache"
    compiled(catalog, folder)
    (file,) = (folder / servicecache.FOLDER).iterdir()
    sizes = [file.stat().st_size]
    data = copy.deepcopy(real_catalog_data)
    for round_ in range(4):
        data["services"][round_]["action"] += "Edited"
        write_catalog(catalog, data)
        derived.clear()
        same(compiled(catalog, folder), compiled(catalog, None))
        assert derived.count(data["services"][round_]["id"]) == 2  # cached, then uncached
        assert len(derived) == len(data["services"]) + 1
        sizes.append(file.stat().st_size)
    assert sizes == sorted(sizes) and sizes[-1] > sizes[0]  # appended
    del data["services"][3:]  # most entries no longer used: the file is written anew
    write_catalog(catalog, data)
    same(compiled(catalog, folder), compiled(catalog, None))
    assert file.stat().st_size < sizes[0] / 2
    derived.clear()
    same(compiled(catalog, folder), compiled(catalog, None))
    assert len(derived) == 3  # only the uncached compile derived anything


def test_a_cache_of_other_code_is_not_used(
    tmp_path: Path, real_catalog_data: dict, derived: list[str]
) -> None:
    catalog = write_catalog(tmp_path / "catalog.yaml", real_catalog_data)
    folder = tmp_path / "cache"
    compiled(catalog, folder)
    other = servicecache.Cache(servicecache.cache_at(folder, catalog, CODE).file, "other code")
    derived.clear()
    compile_catalog(catalog, environ={}, cache=other)
    assert len(derived) == len(real_catalog_data["services"])


def test_build_with_the_cache_writes_what_a_build_without_it_writes(
    tmp_path: Path, real_catalog_data: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Through the CLI: an edit that breaks a service, then one that fixes it and edits
    the defaults; each build's findings and files equal those of an uncached build."""
    from .test_incremental import snapshot

    catalog = tmp_path / "catalog.yaml"
    steps = [copy.deepcopy(real_catalog_data) for _ in range(3)]
    steps[1]["services"][5]["exampleRequest"] = {"Nope": 1}
    steps[2]["defaults"]["nameSuffix"] = "Edited API"
    steps[2]["services"][0].pop("titleZh")
    for data in steps:
        write_catalog(catalog, data)
        cached = run_cli("build", "catalog.yaml", "--out", "out", cwd=tmp_path)
        with monkeypatch.context() as scoped:
            scoped.setenv("S402GEN_CACHE_DIR", "off")
            cold = run_cli("build", "catalog.yaml", "--out", "cold", cwd=tmp_path)
        assert cached[0] == cold[0]
        assert cached[2] == cold[2]  # findings, to the byte
        if cold[0] == 0:
            assert snapshot(tmp_path / "out") == snapshot(tmp_path / "cold")


@pytest.mark.parametrize(
    "command", [("validate",), ("check", "--out", "out", "--format", "json")], ids=" ".join
)
def test_validate_and_a_json_check_take_the_service_cache(
    command: tuple[str, ...],
    tmp_path: Path,
    real_catalog_data: dict,
    derived: list[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The commands that take no whole-run hit still reuse the per-service cache: after a
    first run, an edit that breaks one service derives only that one again, and the exit
    code, report and findings equal those of an uncached run."""
    write_catalog(tmp_path / "catalog.yaml", real_catalog_data)
    assert run_cli(*command, "catalog.yaml", cwd=tmp_path)[0] in (0, 1)
    edited = copy.deepcopy(real_catalog_data)
    edited["services"][5]["exampleRequest"] = {"Nope": 1}
    write_catalog(tmp_path / "catalog.yaml", edited)
    derived.clear()
    cached = run_cli(*command, "catalog.yaml", cwd=tmp_path)
    assert derived == [edited["services"][5]["id"]]
    with monkeypatch.context() as scoped:
        scoped.setenv("S402GEN_CACHE_DIR", "off")
        uncached = run_cli(*command, "catalog.yaml", cwd=tmp_path)
    assert cached == uncached
    assert "S402-E" in cached[1] + cached[2]  # the broken example is reported


def test_the_real_catalog_is_unchanged_by_the_cache(tmp_path: Path) -> None:
    same(compiled(CATALOG, tmp_path), compiled(CATALOG, None))
    same(compiled(CATALOG, tmp_path), compiled(CATALOG, None))


def test_repeated_edits_keep_the_file_bounded(tmp_path: Path, real_catalog_data: dict) -> None:
    """Each append leaves the index before it behind: the file is written anew before
    what is no longer used outweighs what is."""
    catalog = write_catalog(tmp_path / "catalog.yaml", real_catalog_data)
    folder = tmp_path / "cache"
    compiled(catalog, folder)
    (file,) = (folder / servicecache.FOLDER).iterdir()
    first = file.stat().st_size
    data = copy.deepcopy(real_catalog_data)
    sizes = []
    for round_ in range(22):  # the real catalog: written anew after about 19 edits
        data["services"][1]["action"] = f"Edited{round_}"
        write_catalog(catalog, data)
        compiled(catalog, folder)
        sizes.append(file.stat().st_size)
    assert max(sizes) <= 2.2 * first
    assert any(later < earlier for earlier, later in zip(sizes, sizes[1:]))  # written anew
    same(compiled(catalog, folder), compiled(catalog, None))


def test_the_ir_pickles_field_by_field_and_back_equal() -> None:
    """Every IR class is a slotted frozen dataclass pickled as its class called with its
    fields (:class:`s402gen.runtime.spec.Slotted`), which holds only while every field
    is an ``__init__`` argument: a compiled service comes back from pickle equal."""
    import dataclasses
    import pickle

    from s402gen import ir
    from s402gen.runtime import spec

    classes = [
        cls
        for module in (ir, spec)
        for cls in vars(module).values()
        if dataclasses.is_dataclass(cls) and cls.__module__ == module.__name__
    ]
    assert len(classes) >= 14
    for cls in classes:
        assert issubclass(cls, spec.Slotted) and "__slots__" in vars(cls), cls
        assert cls.__match_args__ == tuple(f.name for f in dataclasses.fields(cls)), cls
    compiled = compile_catalog(CATALOG)
    assert compiled.catalog is not None
    for svc in compiled.catalog.services:
        again = pickle.loads(pickle.dumps(svc, protocol=pickle.HIGHEST_PROTOCOL))
        assert again == svc and ir_digest(again) == ir_digest(svc)
    assert pickle.loads(pickle.dumps(compiled.catalog)) == compiled.catalog
