"""``s402gen validate --upstream``: the catalog against the official facebody SDK."""

from __future__ import annotations

import json
from pathlib import Path

from s402gen import upstream_check

from .conftest import run_cli, write_catalog


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
        "action 'DetectFaces' of 'face-detection' is not in the official SDK",
    ) in rules
    assert any(r == "S402-E032" and "'Limitt' of 'face-search'" in m for r, m in rules)
    assert ("S402-W031", "'Limit' of 'face-search' is required upstream but optional here") in rules
    assert (
        "S402-W032",
        "'MaxFaceNum' of 'face-search' is number here but integer upstream",
    ) in rules


def test_required_here_but_optional_upstream(real_catalog_data, tmp_path) -> None:
    _service(real_catalog_data, "fingerprint-extraction").pop("upstreamDifferences")
    code, found = _findings(tmp_path, real_catalog_data)
    assert code == 0
    assert [d["message"] for d in found if d["rule"] == "S402-W031"] == [
        "'ImageURL' of 'fingerprint-extraction' is required here but optional upstream"
    ]


def test_the_sdk_is_read_once_a_process(monkeypatch, tmp_path, real_catalog_data) -> None:
    """One read of client.py and models.py for the whole catalog, not one per service."""
    reads: list[str] = []
    real = upstream_check._sdk_source
    monkeypatch.setattr(
        upstream_check, "_sdk_source", lambda module: [reads.append(module), real(module)][1]
    )
    upstream_check.load_sdk.cache_clear()
    try:
        for _ in range(2):
            code, found = _findings(tmp_path, real_catalog_data)
            assert code == 0 and found == []
    finally:
        upstream_check.load_sdk.cache_clear()
    assert sorted(reads) == ["client", "models"]


def test_a_missing_sdk_is_a_one_line_hint(monkeypatch, tmp_path, real_catalog_data) -> None:
    monkeypatch.setattr(upstream_check, "SDK_PACKAGE", "alibabacloud_facebody_not_installed")
    upstream_check.load_sdk.cache_clear()
    try:
        write_catalog(tmp_path / "catalog.yaml", real_catalog_data)
        code, out, err = run_cli("validate", "--upstream", cwd=tmp_path)
    finally:
        upstream_check.load_sdk.cache_clear()
    assert code == 2 and out == ""
    assert err == (
        "error: the official SDK is not installed: pip install 's402gen[upstream]' "
        "(alibabacloud_facebody_not_installed)\n"
    )
