"""``s402gen import``: a catalog JSON back into catalog.yaml.

The round trip on seed 003: import, write the YAML, compile it with
``compile_catalog``, and compare each compiled catalog entry with the seed's,
runtime fields aside. The only differences allowed are the deliberate ones
of tests/seed_differences.py; of those, the import meets exactly one: the
face-template-list error example that the compiler rejects (S402-E025).
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner, Result

from s402gen import compile_catalog
from s402gen.import_cli import import_command

from .conftest import CATALOG, SEEDS, write_catalog
from .seed_differences import ABSENT, differences_for

SEED = SEEDS / "003_2aa762c7e94b4462.txt"
SEED_DATA = json.loads(SEED.read_text(encoding="utf-8"))
RUNTIME_FIELDS = ("quality", "matchScore", "matchTerms", "why")
#: Services that seed 003's relatedServices name but do not hold.
MISSING = ("face-database-add-face", "face-database-create-entity")
IMPORTED_DIFFERENCE = ("face-template-list", ("errorExamples",))


FACEBODY = "facebody:2019-12-30:facebody.cn-shanghai.aliyuncs.com"


def run(*args: Any) -> Result:
    """``s402gen import ARGS`` in-process (the command is not necessarily registered yet),
    with ``--provider`` naming facebody unless ARGS name a provider."""
    given = [str(arg) for arg in args]
    if not any(arg.startswith("--provider") for arg in given):
        given += ["--provider", FACEBODY]
    return CliRunner().invoke(import_command, given)


def compiled(path: Path) -> dict[str, Any]:
    """The catalog.json that ``compile_catalog`` makes of ``path`` (which must be valid)."""
    result = compile_catalog(path, environ={})
    assert result.ok, [d.format() for d in result.diagnostics]
    return json.loads(result.files["catalog/catalog.json"])


def static(entry: dict) -> dict:
    return {key: value for key, value in entry.items() if key not in RUNTIME_FIELDS}


def _get(doc: Any, path: tuple) -> Any:
    for part in path:
        try:
            doc = doc[part]
        except (KeyError, IndexError, TypeError):
            return ABSENT
    return doc


def _set(doc: Any, path: tuple, value: Any) -> None:
    for part in path[:-1]:
        doc = doc[part]
    if value is ABSENT:
        del doc[path[-1]]
    else:
        doc[path[-1]] = value


def expected_entry(seed: dict, ours: dict) -> tuple[dict, list[tuple]]:
    """The seed entry with our value at each declared difference where they differ, and those."""
    expected, met = copy.deepcopy(static(seed)), []
    for diff in differences_for(seed["id"]):
        if _get(ours, diff.path) != _get(seed, diff.path):
            assert _get(seed, diff.path) == diff.seed_value
            _set(expected, diff.path, _get(ours, diff.path))
            met.append((seed["id"], diff.path))
    return expected, met


@pytest.fixture(scope="module")
def imported(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Result]:
    """Seed 003 imported, the services its relatedServices name taken from catalog.yaml."""
    out = tmp_path_factory.mktemp("import") / "catalog.yaml"
    result = run(SEED, "--output", out, "--related-from", CATALOG)
    assert result.exit_code == 0, result.stderr
    return out, result


@pytest.fixture(scope="module")
def entries(imported: tuple[Path, Result]) -> dict[str, dict]:
    return {entry["id"]: entry for entry in compiled(imported[0])["services"]}


@pytest.mark.parametrize("seed", SEED_DATA["services"], ids=lambda s: s["id"])
def test_round_trip_reproduces_every_static_field(seed: dict, entries: dict) -> None:
    expected, _ = expected_entry(seed, entries[seed["id"]])
    assert entries[seed["id"]] == expected


def test_only_the_rejected_error_example_differs(entries: dict, imported) -> None:
    met = [
        m for seed in SEED_DATA["services"] for m in expected_entry(seed, entries[seed["id"]])[1]
    ]
    assert met == [IMPORTED_DIFFERENCE]
    stderr = imported[1].stderr
    assert (
        "003_2aa762c7e94b4462.txt:1:1: warning: service 'face-template-list' errorExamples[0]: {}"
        in stderr
    )
    assert "S402-E025" in stderr
    assert "# errorExamples[0]: {} promises 400" in imported[0].read_text(encoding="utf-8")


def test_catalog_wide_values_round_trip(imported) -> None:
    catalog = compiled(imported[0])
    assert catalog["generatedAt"] == SEED_DATA["generatedAt"]
    assert catalog["payment"] == SEED_DATA["payment"]
    assert [e["id"] for e in catalog["services"]] == [
        *(s["id"] for s in SEED_DATA["services"]),
        *MISSING,
    ]


def test_related_services_are_pulled_from_the_source(entries: dict, imported) -> None:
    source = {e["id"]: e for e in compiled(CATALOG)["services"]}
    for service_id in MISSING:
        assert entries[service_id] == source[service_id]
    text = imported[0].read_text(encoding="utf-8")
    assert "# --- from catalog.yaml ---" in text
    assert imported[1].stdout == f"wrote {imported[0]}: 10 services (+2 from {CATALOG})\n"


def test_yaml_factors_shared_values(imported) -> None:
    text = imported[0].read_text(encoding="utf-8")
    assert text.startswith("# Imported by `s402gen import` from 003_2aa762c7e94b4462.txt")
    doc = yaml.safe_load(text)
    first = SEED_DATA["services"][0]
    defaults = doc["defaults"]
    for key in ("category", "tags", "limitations", "complexity", "typicalResponseTime", "sla"):
        assert defaults[key] == first[key], key
    assert defaults["useCases"] == first["useCases"][1:]
    assert defaults["keywords"] == first["keywords"][2:8]
    assert defaults["requiredContext"] == ["aliyun-credentials"]
    assert defaults["outputSchema"] == first["outputSchema"]
    assert defaults["inputSchemaDescription"] == first["inputSchema"]["description"]
    assert defaults["taskTemplate"] == "the visual analysis task described by action {summary}"
    assert doc["providers"] == {
        "facebody": {
            "product": "facebody",
            "version": "2019-12-30",
            "endpoint": "facebody.cn-shanghai.aliyuncs.com",
            "labelZh": "阿里云人脸人体",
            "legacyIdPrefix": "aliyun-facebody-",
        }
    }
    policy = {key: value for key, value in first["pricing"].items() if key != "policyId"}
    assert doc["pricingPolicies"] == {"aliyun-viapi": policy}
    assert doc["paymentProviders"] == {"x402-base-usdc": {"provider": "x402_facilitator"}}
    services = {svc["id"]: svc for svc in doc["services"]}
    shared = {"category", "tags", "limitations", "complexity", "typicalResponseTime", "sla"}
    shared |= {"cacheable", "idempotent", "outputFormat", "outputSchema", "pricingPolicy"}
    shared |= {"paymentProvider", "provider", "legacyId", "name", "toolName", "requiredContext"}
    shared |= {"relatedServices", "exampleRequest"}
    for service_id, svc in services.items():
        assert not shared & set(svc), service_id
    # the image URL schema is a preset, named by the services as a plain string
    assert doc["presets"]["image-url"]["format"] == "uri"
    users = [s for s in services.values() if "image-url" in s.get("params", {}).values()]
    assert len(users) >= 4
    # only the rejected error example needs an explicit (now empty) list
    assert [s["id"] for s in services.values() if "errorExamples" in s] == ["face-template-list"]
    assert services["face-template-list"]["errorExamples"] == []
    # titles and summaries come from the keywords and the task phrase
    assert services["face-template-delete"]["titleZh"] == "删除人脸融合模板"
    assert services["face-template-delete"]["summaryZh"] == "删除图像人脸融合模板。"
    detection = services["face-detection"]
    assert detection["task"] == "detecting face location, pose, landmarks, and quality"
    assert detection["keywords"] == ["face attributes", "face landmarks", "face quality"]
    # parameters in the order that gives inputTypes [object, boolean, string, uri, number]
    assert list(detection["params"]) == ["Landmark", "ImageURL", "MaxFaceNumber", "Pose", "Quality"]


def test_related_services_are_pulled_from_the_included_files_of_a_source(
    tmp_path: Path, real_catalog_data: dict, imported
) -> None:
    """A catalog.yaml split with ``include:`` is read whole: the services the seed's
    relatedServices name live in an included file (and so does every other)."""
    root = copy.deepcopy(real_catalog_data)
    services = root.pop("services")
    root["include"] = ["services/*.yaml"]
    root["services"] = []
    (tmp_path / "services").mkdir()
    write_catalog(tmp_path / "services" / "all.yaml", {"services": services})
    source = write_catalog(tmp_path / "catalog.yaml", root)
    out = tmp_path / "imported.yaml"
    result = run(SEED, "--output", out, "--related-from", source)
    assert result.exit_code == 0, result.stderr
    assert result.stdout == f"wrote {out}: 10 services (+2 from {source})\n"
    assert out.read_text(encoding="utf-8").replace(str(source), str(CATALOG)) == imported[
        0
    ].read_text(encoding="utf-8")


def test_a_related_source_that_does_not_compile_is_reported_where_it_is_wrong(
    tmp_path: Path, real_catalog_data: dict
) -> None:
    """Its own findings, each at its line (not wrapped in one message at 1:1), then the
    import's."""
    real_catalog_data["services"][2]["required"] = ["Missing"]
    source = write_catalog(tmp_path / "catalog.yaml", real_catalog_data)
    result = run(SEED, "--related-from", source, "--format", "json")
    assert result.exit_code == 2
    findings = json.loads(result.stdout)["findings"]
    assert [(f["name"], f["file"]) for f in findings] == [
        ("unknown-required-parameter", str(source)),
        ("invalid-import-input", str(source)),
    ]
    assert findings[0]["line"] > 1 and "Missing" in findings[0]["message"]


def test_unknown_related_services_are_left_out_and_reported(tmp_path: Path) -> None:
    out = tmp_path / "catalog.yaml"
    result = run(SEED, "-o", out)
    assert result.exit_code == 0, result.stderr
    ours = {entry["id"]: entry for entry in compiled(out)["services"]}
    assert list(ours) == [s["id"] for s in SEED_DATA["services"]]
    text = out.read_text(encoding="utf-8")
    for seed in SEED_DATA["services"]:
        kept = [r for r in seed["relatedServices"] if r not in MISSING]
        assert ours[seed["id"]]["relatedServices"] == kept
        expected, _ = expected_entry(seed, ours[seed["id"]])
        assert ours[seed["id"]] == {**expected, "relatedServices": kept}
        left_out = f"'{seed['id']}' relatedServices: left out {', '.join(MISSING)} (S402-E017)"
        assert f"003_2aa762c7e94b4462.txt:1:1: warning: service {left_out}" in result.stderr
    assert text.count("# relatedServices: left out") == len(SEED_DATA["services"])


def test_import_of_the_whole_compiled_catalog_round_trips(tmp_path: Path) -> None:
    source = tmp_path / "catalog.json"
    source.write_text(json.dumps(compiled(CATALOG), ensure_ascii=False), encoding="utf-8")
    out = tmp_path / "catalog.yaml"
    result = run(source, "-o", out)
    assert result.exit_code == 0, result.stderr
    assert compiled(out)["services"] == compiled(CATALOG)["services"]
    # the upstream of the openplatform service and summaryZh of a service with its own task
    # are not in the catalog JSON: both are reported for review, nothing else
    warnings = [line for line in result.stderr.splitlines() if ": warning: " in line]
    assert len(warnings) == 2, warnings
    assert "providers.facebody-2" in warnings[0] and "'face-detection' summaryZh" in warnings[1]


def test_one_service_alone_round_trips(tmp_path: Path) -> None:
    seed = next(s for s in SEED_DATA["services"] if s["id"] == "face-detection")
    source = tmp_path / "one.json"
    source.write_text(json.dumps({**SEED_DATA, "services": [seed]}), encoding="utf-8")
    out = tmp_path / "catalog.yaml"
    assert run(source, "-o", out).exit_code == 0
    ours = compiled(out)["services"][0]
    assert ours == {**static(seed), "relatedServices": []}  # none of them is in the file


def test_what_catalog_yaml_cannot_hold_is_reported(tmp_path: Path) -> None:
    data = copy.deepcopy(SEED_DATA)
    search = next(s for s in data["services"] if s["id"] == "face-search")
    search["useCases"][1] = search["discovery"]["useCases"][1] = "Search a face database"
    search["inputSchema"]["properties"]["Limit"]["default"] = 5
    source = tmp_path / "edited.json"
    source.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    out = tmp_path / "catalog.yaml"
    result = run(source, "-o", out, "--related-from", CATALOG)
    assert result.exit_code == 0, result.stderr
    prefix = f"{source}:1:1: warning: service 'face-search' "
    assert prefix + "inputSchema.properties.Limit.default: not expressible" in result.stderr
    gives = 'the compiled catalog gives "Call one focused visual AI capability directly with'
    assert prefix + f"useCases[1]: {gives}" in result.stderr
    assert prefix + f"discovery.useCases[1]: {gives}" in result.stderr
    assert f"  # useCases[1]: {gives}" in out.read_text(encoding="utf-8")
    compiled(out)  # still a valid catalog


def test_output_is_deterministic(tmp_path: Path) -> None:
    first, second = run(SEED), run(SEED)
    assert first.exit_code == second.exit_code == 0
    assert first.stdout_bytes == second.stdout_bytes
    script = "from s402gen.import_cli import import_command; import_command()"
    outputs = []
    for seed in ("0", "1"):
        env = {**os.environ, "PYTHONHASHSEED": seed, "S402GEN_CACHE_DIR": "off"}
        process = subprocess.run(
            [sys.executable, "-c", script, str(SEED), "--provider", FACEBODY],
            env=env,
            capture_output=True,
            check=False,
        )
        assert process.returncode == 0, process.stderr
        outputs.append(process.stdout)
    assert outputs[0] == outputs[1] == first.stdout_bytes


def _write(path: Path, content: Any) -> Path:
    text = content if isinstance(content, str) else json.dumps(content)
    path.write_text(text, encoding="utf-8")
    return path


def _entry_without(key: str) -> dict:
    entry = copy.deepcopy(SEED_DATA["services"][0])
    del entry[key]
    return {**SEED_DATA, "services": [entry]}


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "not JSON: Expecting property name"),
        ([], "[] is not of type 'object'"),
        ({**SEED_DATA, "schemaVersion": "v0"}, "schemaVersion: 'server402.catalog.search.v1' was"),
        ({"schemaVersion": SEED_DATA["schemaVersion"]}, "'services' is a required property"),
        ({**SEED_DATA, "services": []}, "services: [] should be non-empty"),
        (_entry_without("keywords"), "services[0]: 'keywords' is a required property"),
        ({**SEED_DATA, "services": [1]}, "services[0]: 1 is not of type 'object'"),
        (
            {**SEED_DATA, "services": SEED_DATA["services"][:1] * 2},
            "services[1].id: 'face-template-delete' is repeated",
        ),
    ],
    ids=[
        "not-json",
        "not-object",
        "schema-version",
        "no-services",
        "empty",
        "entry",
        "item",
        "dup",
    ],
)
def test_bad_input_exits_2_with_a_clear_message(tmp_path: Path, content: Any, message: str) -> None:
    source = _write(tmp_path / "bad.json", content)
    result = run(source, "-o", tmp_path / "out.yaml")
    assert result.exit_code == 2
    assert isinstance(result.exception, SystemExit)
    assert f"{source}:1:1: error: {message}" in result.stderr
    assert "Traceback" not in result.output
    assert result.stdout == "" and not (tmp_path / "out.yaml").exists()


def test_import_errors_are_findings(tmp_path: Path) -> None:
    missing = tmp_path / "missing.json"
    result = run(missing)
    assert result.exit_code == 2
    assert result.stderr == (
        f"{missing}:1:1: error: cannot read: No such file or directory "
        "[S402-E050 invalid-import-input]\n"
    )
    binary = tmp_path / "binary.json"
    binary.write_bytes(b"\xff\xfe\x00")
    assert f"{binary}:1:1: error: cannot read:" in run(binary).stderr
    existing = _write(tmp_path / "catalog.yaml", "keep me\n")
    result = run(SEED, "-o", existing, "--format", "json")
    assert result.exit_code == 2
    [finding] = json.loads(result.stdout)["findings"]
    assert (finding["name"], finding["file"]) == ("import-output-not-written", str(existing))
    assert finding["message"] == "exists; use --force to overwrite it"
    keyword_id = json.loads(
        SEED.read_text(encoding="utf-8").replace("face-template-delete", "import")
    )
    result = run(_write(tmp_path / "keyword.json", keyword_id))
    assert result.exit_code == 2 and result.stderr == (
        f"{tmp_path / 'keyword.json'}:1:1: error: the imported catalog does not compile: "
        "route module name 'import' of service 'import' is a Python keyword "
        "[S402-E044 python-keyword-id] [S402-E051 imported-catalog-does-not-compile]\n"
    )
    assert existing.read_text(encoding="utf-8") == "keep me\n"
    assert run(SEED, "-o", existing, "--force").exit_code == 0
    bad_source = _write(tmp_path / "source.json", {"schemaVersion": "v0", "services": []})
    result = run(SEED, "--related-from", bad_source)
    assert result.exit_code == 2 and result.stderr.startswith(f"{bad_source}:1:1: error: ")


def test_import_warnings_are_findings(tmp_path: Path) -> None:
    result = run(SEED, "--format", "json")
    assert result.exit_code == 0
    document = json.loads(result.stdout)
    assert document["text"].startswith("# Imported by `s402gen import`")
    names = {(f["name"], f["level"]) for f in document["findings"]}
    assert names == {("import-field-not-reproduced", "warning")}
    left_out = [f for f in document["findings"] if "errorExamples[0]" in f["message"]]
    assert [f["services"] for f in left_out] == [["face-template-list"]]


def test_help_names_the_exit_codes() -> None:
    result = run("--help")
    assert result.exit_code == 0
    assert "Exit codes:" in result.stdout and "  2   FILE or SOURCE unreadable" in result.stdout


def test_import_does_not_guess_the_provider(tmp_path: Path) -> None:
    refused = CliRunner().invoke(import_command, [str(SEED)])
    assert refused.exit_code == 2
    assert "import does not guess it: pass --provider PRODUCT:VERSION:ENDPOINT" in refused.stderr
    assert "[S402-E050 invalid-import-input]" in refused.stderr
    malformed = run(SEED, "--provider", "facebody")
    assert malformed.exit_code == 2 and "is not PRODUCT:VERSION:ENDPOINT" in malformed.stderr
    out = tmp_path / "catalog.yaml"
    other = "imageenhan:2019-09-30:imageenhan.cn-shanghai.aliyuncs.com"
    done = run(SEED, "--provider", other, "-o", out, "--related-from", CATALOG)
    assert done.exit_code == 0, done.stderr
    data = yaml.safe_load(out.read_text(encoding="utf-8"))
    assert data["defaults"]["provider"] == "imageenhan"
    assert data["providers"]["imageenhan"]["version"] == "2019-09-30"
    assert data["providers"]["imageenhan"]["endpoint"] == "imageenhan.cn-shanghai.aliyuncs.com"


def _entry_with(path: tuple, value: Any) -> dict:
    data = copy.deepcopy(SEED_DATA)
    _set(data["services"][0], path, value)
    return data


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (
            ("pricing", "maxCalls"),
            "3",
            "services[0].pricing.maxCalls: '3' is not of type 'integer'",
        ),
        (("sla", "uptime"), 99.5, "services[0].sla.uptime: 99.5 is not of type 'string'"),
        (
            ("errorExamples", 0, "statusCode"),
            "400",
            "services[0].errorExamples[0].statusCode: '400' is not of type 'integer'",
        ),
        (("discovery", "aliases"), "x", "services[0].discovery.aliases: 'x' is not of type"),
        # JSON Schema takes 1.0 for an integer; the contract's models do not
        (
            ("pricing", "amountCents"),
            1.0,
            "services[0].pricing.amountCents: Input should be a valid integer (got 1.0)",
        ),
    ],
    ids=["max-calls", "uptime", "status-code", "aliases", "float-cents"],
)
def test_a_nested_type_error_is_a_located_finding(
    tmp_path: Path, path: tuple, value: Any, message: str
) -> None:
    source = _write(tmp_path / "bad.json", _entry_with(path, value))
    result = run(source, "-o", tmp_path / "out.yaml")
    assert result.exit_code == 2 and isinstance(result.exception, SystemExit)
    assert f"{source}:1:1: error: {message}" in result.stderr
    assert "[S402-E050 invalid-import-input]" in result.stderr
    assert "Traceback" not in result.output and not (tmp_path / "out.yaml").exists()


def test_fields_the_import_does_not_need_may_be_missing_or_unknown(tmp_path: Path) -> None:
    """An entry read through the contract's models still needs only what the import reads."""
    seed = copy.deepcopy(next(s for s in SEED_DATA["services"] if s["id"] == "face-detection"))
    for key in ("discovery", "canonicalId", "inputTypes", "outputTypes"):
        del seed[key]
    del seed["errorExamples"][0]["statusCode"]
    seed["vendorNote"] = "kept out of catalog.yaml"
    source = _write(tmp_path / "partial.json", {**SEED_DATA, "services": [seed]})
    out = tmp_path / "catalog.yaml"
    result = run(source, "-o", out)
    assert result.exit_code == 0, result.stderr
    assert "service 'face-detection' vendorNote: not expressible in catalog.yaml" in result.stderr
    ours = compiled(out)["services"][0]
    assert ours["discovery"]["toolName"] == "face_detection"
    assert ours["errorExamples"][0]["statusCode"] == 400
