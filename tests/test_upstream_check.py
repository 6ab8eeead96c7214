"""``s402gen validate --upstream``: each service against its provider's official SDK."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from s402gen.runtime.upstreams import aliyun_sdk

from .conftest import ROOT, run_cli, write_catalog

FACEBODY = "alibabacloud-facebody20191230"
IMAGEENHAN = ROOT / "tests" / "data" / "imageenhan" / "catalog.yaml"


def _findings(tmp_path: Path, data: dict) -> tuple[int, list[dict]]:
    write_catalog(tmp_path / "catalog.yaml", data)
    code, out, _ = run_cli(
        "validate", "catalog.yaml", "--upstream", "--format", "json", cwd=tmp_path
    )
    return code, json.loads(out)["findings"]


def _service(data: dict, service_id: str) -> dict:
    return next(s for s in data["services"] if s["id"] == service_id)


def test_real_catalog_matches_the_sdk_but_for_declared_differences(
    real_catalog_data, tmp_path
) -> None:
    code, found = _findings(tmp_path, real_catalog_data)
    assert code == 0 and [d for d in found if d["rule"].startswith(("S402-E03", "S402-W03"))] == []


def test_each_kind_of_difference_is_found(real_catalog_data, tmp_path) -> None:
    search = _service(real_catalog_data, "face-search")
    search.pop("upstreamDifferences")
    search["params"]["Limitt"] = "number"  # a typo of a real parameter
    detect = _service(real_catalog_data, "face-detection")
    detect["action"] = "DetectFaces"
    code, found = _findings(tmp_path, real_catalog_data)
    rules = {(d["rule"], d["message"]) for d in found}
    assert code == 2
    assert (
        "S402-E031",
        f"action 'DetectFaces' of 'face-detection' is not in the SDK {FACEBODY}",
    ) in rules
    assert any(r == "S402-E032" and "'Limitt' of 'face-search'" in m for r, m in rules)
    assert (
        "S402-W031",
        f"'Limit' of 'face-search' is required by the SDK {FACEBODY} but optional here",
    ) in rules
    assert (
        "S402-W032",
        f"'MaxFaceNum' of 'face-search' is number here but integer in the SDK {FACEBODY}",
    ) in rules


def test_required_here_but_optional_upstream(real_catalog_data, tmp_path) -> None:
    _service(real_catalog_data, "fingerprint-extraction").pop("upstreamDifferences")
    code, found = _findings(tmp_path, real_catalog_data)
    assert code == 0
    assert [d["message"] for d in found if d["rule"] == "S402-W031"] == [
        f"'ImageURL' of 'fingerprint-extraction' is required here but optional in the SDK "
        f"{FACEBODY}"
    ]


def test_the_sdk_is_read_once_a_process(monkeypatch, tmp_path, real_catalog_data) -> None:
    """One read of client.py and models.py per SDK for the whole catalog, not one per service."""
    reads: list[tuple[str, str]] = []
    real = aliyun_sdk._source
    monkeypatch.setattr(
        aliyun_sdk,
        "_source",
        lambda package, module, dist: [
            reads.append((package, module)),
            real(package, module, dist),
        ][1],
    )
    aliyun_sdk.load.cache_clear()
    try:
        for _ in range(2):
            code, found = _findings(tmp_path, real_catalog_data)
            assert code == 0 and found == []
    finally:
        aliyun_sdk.load.cache_clear()
    assert sorted(reads) == [
        ("alibabacloud_facebody20191230", "client"),
        ("alibabacloud_facebody20191230", "models"),
        ("alibabacloud_openplatform20191219", "client"),
        ("alibabacloud_openplatform20191219", "models"),
    ]


def test_a_missing_sdk_is_a_one_line_hint(tmp_path, real_catalog_data) -> None:
    real_catalog_data["providers"]["facebody"]["sdk"] = "alibabacloud-facebody-not-installed"
    write_catalog(tmp_path / "catalog.yaml", real_catalog_data)
    code, out, err = run_cli("validate", "--upstream", cwd=tmp_path)
    assert code == 2 and out == ""
    assert err == (
        "error: the SDK alibabacloud-facebody-not-installed is not installed: "
        "pip install alibabacloud-facebody-not-installed "
        "(the SDKs of the real catalog: pip install 's402gen[upstream]')\n"
    )


def test_a_service_that_cannot_be_compared_says_why(tmp_path, real_catalog_data) -> None:
    del real_catalog_data["providers"]["openplatform"]["sdk"]
    code, found = _findings(tmp_path, real_catalog_data)
    assert code == 0
    assert [(d["rule"], d["message"]) for d in found] == [
        (
            "S402-W033",
            "'file-upload-authorization' was not compared with an SDK: "
            "provider 'openplatform' names no `sdk`",
        )
    ]


def test_a_wire_style_or_method_other_than_the_sdks_is_an_error(
    tmp_path, real_catalog_data
) -> None:
    faces = _service(real_catalog_data, "face-database-batch-add")["params"]["Faces"]
    del faces["wire"]
    del _service(real_catalog_data, "face-template-list")["upstreamMethod"]
    anime = _service(real_catalog_data, "human-anime-stylization")["params"]
    anime["AlgoType"] = {"type": "string", "wire": "json"}
    code, found = _findings(tmp_path, real_catalog_data)
    assert code == 2
    assert sorted(d["message"] for d in found if d["rule"] == "S402-E033") == [
        f"'AlgoType' of 'human-anime-stylization' is sent json here but query by the SDK "
        f"{FACEBODY} (declare `wire: query`)",
        f"'Faces' of 'face-database-batch-add' is sent flat here but json by the SDK "
        f"{FACEBODY} (declare `wire: json`)",
        f"'face-template-list' is sent POST here but GET by the SDK {FACEBODY} "
        "(set `upstreamMethod: GET`)",
    ]


def _imageenhan() -> dict:
    return yaml.safe_load(IMAGEENHAN.read_text(encoding="utf-8"))


def test_a_second_product_is_compared_with_its_own_sdk(tmp_path) -> None:
    data = _imageenhan()
    code, found = _findings(tmp_path, data)
    assert code == 0 and found == []
    _service(data, "image-resize")["action"] = "ChangeImageSizes"
    _service(data, "image-recolor")["params"]["ColourCount"] = "integer"
    _service(data, "image-style-imitation")["params"]["StyleUrl"] = "integer"
    code, found = _findings(tmp_path, data)
    sdk = "alibabacloud-imageenhan20190930"
    assert code == 2
    assert [(d["rule"], d["message"]) for d in found] == [
        ("S402-E031", f"action 'ChangeImageSizes' of 'image-resize' is not in the SDK {sdk}"),
        (
            "S402-E032",
            f"parameter 'ColourCount' of 'image-recolor' is not a parameter of RecolorImage in "
            f"the SDK {sdk} (it has: ColorCount, ColorTemplate, Mode, RefUrl, Url)",
        ),
        (
            "S402-W032",
            f"'StyleUrl' of 'image-style-imitation' is integer here but string in the SDK {sdk}",
        ),
    ]


def test_the_check_takes_under_a_second_of_cpu_on_the_real_catalog() -> None:
    """The whole process (interpreter, compile, both SDKs read), in CPU time: wall time
    depends on what else the machine runs."""
    probe = (
        "import resource, sys; sys.argv = ['s402gen', 'validate', '--upstream', '-q']\n"
        "from s402gen.cli import main\ntry:\n    main()\n"
        "except SystemExit as done:\n    assert not done.code, done.code\n"
        "r = resource.getrusage(resource.RUSAGE_SELF)\n"
        "print(r.ru_utime + r.ru_stime)"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert float(done.stdout.split()[-1]) < 1.0, done.stdout


MARKETPLACE = ROOT / "examples" / "marketplace"

# Per provider of the marketplace fixture: its services file, then (service, line as written,
# line with the mistake) for a wrong action and for a wrong parameter. openplatform has one
# service, so each mistake is checked in its own copy of the fixture.
MISTAKES = {
    "facebody": (
        "face-body.yaml",
        ("face-detection", "action: DetectFace", "action: DetectFaces"),
        ("face-database-list-entities", "EntityIdPrefix: string", "EntityPrefix: string"),
    ),
    "openplatform": (
        "face-body.yaml",
        ("file-upload-authorization", "action: AuthorizeFileUpload", "action: AuthorizeUpload"),
        ("file-upload-authorization", "RegionId: {", "Region: {"),
    ),
    "imageenhan": (
        "image-enhancement.yaml",
        ("image-resize", "action: ChangeImageSize", "action: ChangeImageSizes"),
        ("image-super-resolution", "UserData: {", "UserDatum: {"),
    ),
    "objectdet": (
        "object-detection.yaml",
        ("object-detection", "action: DetectObject", "action: DetectObjects"),
        ("workwear-detection", "Labels:", "Label:"),  # a block value: the key's line is meant
    ),
}


def _break(path: Path, service_id: str, written: str, mistake: str) -> int:
    """Replace the line of ``service_id`` in ``path`` that starts with ``written`` (text edit:
    the file's comments stay); returns its 1-based line number."""
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    start = lines.index(f"  - id: {service_id}\n")
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("  - id: ")), None)
    at = next(
        i for i in range(start + 1, end or len(lines)) if lines[i].strip().startswith(written)
    )
    lines[at] = lines[at].replace(written, mistake, 1)
    path.write_text("".join(lines), encoding="utf-8")
    return at + 1


@pytest.mark.parametrize("provider", sorted(MISTAKES))
def test_each_product_of_the_marketplace_fixture_is_checked(tmp_path, provider) -> None:
    """A wrong action and a wrong parameter in each provider's services are errors located in
    the included file and line of the mistake, naming that provider's SDK."""
    sdk = yaml.safe_load((MARKETPLACE / "catalog.yaml").read_text(encoding="utf-8"))["providers"][
        provider
    ]["sdk"]
    services_file, *mistakes = MISTAKES[provider]
    for rule, (service_id, written, mistake) in zip(("S402-E031", "S402-E032"), mistakes):
        copy = tmp_path / rule
        shutil.copytree(MARKETPLACE, copy)
        line = _break(copy / "services" / services_file, service_id, written, mistake)
        code, out, _ = run_cli(
            "validate", "--upstream", "catalog.yaml", "--format", "json", cwd=copy
        )
        found = json.loads(out)["findings"]
        assert code == 2, found
        assert [(d["rule"], d["file"], d["line"]) for d in found] == [
            (rule, f"services/{services_file}", line)
        ]
        name = mistake.split(":")[0] if rule == "S402-E032" else mistake.split()[-1]
        assert f"'{name}' of '{service_id}'" in found[0]["message"]
        assert found[0]["message"].split(" in the SDK ")[1].split()[0] == sdk
