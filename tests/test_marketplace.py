"""The marketplace example (examples/marketplace/): three products, three categories, four
files. It builds and checks; its face-and-body services compile exactly as the real
catalog's (their settings now come from a category and a provider, not global defaults);
the other products get their own names, keywords, tags and example results; the doc index
is grouped by category; the included files have an editor schema, and the cache and the
pre-commit hooks notice a change in an included file."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import jsonschema
import pytest
import yaml

from .conftest import GENERATED, ROOT, run_cli

EXAMPLE = ROOT / "examples" / "marketplace"


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The example built once into a temporary folder."""
    out = tmp_path_factory.mktemp("marketplace") / "generated"
    code, _, stderr = run_cli("build", str(EXAMPLE / "catalog.yaml"), "--out", str(out), "-q")
    assert code == 0, stderr
    return out


def _entries(built: Path) -> dict[str, dict]:
    document = json.loads((built / "catalog/catalog.json").read_text(encoding="utf-8"))
    return {entry["id"]: entry for entry in document["services"]}


def test_it_builds_and_checks_clean(built: Path) -> None:
    code, _, stderr = run_cli("check", str(EXAMPLE / "catalog.yaml"), "--out", str(built))
    assert code == 0, stderr
    entries = _entries(built)
    by_category: dict[str, int] = {}
    for entry in entries.values():
        by_category[entry["category"]] = by_category.get(entry["category"], 0) + 1
    assert by_category == {"face-body": 44, "image-enhancement": 8, "object-detection": 6}
    products = {
        re.search(r'product="(\w+)"', path.read_text()).group(1)  # type: ignore[union-attr]
        for path in (built / "routes").glob("*.py")
        if path.name != "__init__.py"
    }
    assert products == {"facebody", "openplatform", "imageenhan", "objectdet"}


def test_face_services_compile_as_in_the_real_catalog(built: Path) -> None:
    """Category and provider defaults give the 44 services exactly what the real catalog's
    global defaults give them: every file of theirs is byte-identical."""
    compared = 0
    for folder in ("catalog/services", "docs/tools", "routes"):
        for real in sorted((GENERATED / folder).iterdir()):
            if real.name == "__init__.py":
                continue
            assert (built / folder / real.name).read_bytes() == real.read_bytes(), real.name
            compared += 1
    assert compared == 3 * 44


def test_scoped_defaults_reach_the_other_products(built: Path) -> None:
    entries = _entries(built)
    upscale = entries["image-super-resolution"]
    assert upscale["name"] == "Generate Super Resolution Image Image Enhancement"
    assert upscale["tags"] == ["computer-vision", "image-enhancement"]  # global, extended
    assert "visual ai" in upscale["keywords"] and "image enhancement" in upscale["keywords"]
    assert not {"face detection", "pose estimation"} & set(upscale["keywords"])
    route = (built / "routes/image_super_resolution.py").read_text(encoding="utf-8")
    assert '"/api/tools/aliyun-imageenhan-generate-super-resolution-image"' in route
    assert upscale["pricing"]["amountCents"] == 30
    result = upscale["exampleResponse"]["data"]["Result"]
    assert result == "example result from Alibaba Cloud imageenhan"  # the provider's
    detect = entries["object-detection"]
    assert detect["name"] == "Detect Object Object Detection"
    assert detect["relatedServices"] == ["main-body-detection"]  # the category's, minus itself
    assert (
        detect["exampleResponse"]["data"]["Result"] == "example result from Alibaba Cloud objectdet"
    )
    workwear = entries["workwear-detection"]  # a service's {extend: [...]} adds to the default
    assert workwear["limitations"][-1] == "The Clothes filter of the SDK is not exposed"
    assert len(workwear["limitations"]) == 5
    face = entries["face-detection"]
    assert face["exampleResponse"]["data"]["Result"] == "example result from Alibaba Cloud facebody"


def test_doc_index_groups_services_by_category(built: Path) -> None:
    html = (built / "docs/index.html").read_text(encoding="utf-8")
    sections = re.findall(r'<h2 id="category-([a-z-]+)-heading">([^<]+)</h2>', html)
    assert sections == [
        ("face-body", "Face and body analysis"),
        ("image-enhancement", "Image enhancement"),
        ("object-detection", "Object detection"),
    ]
    enhancement = html.split('id="category-image-enhancement"')[1].split("</section>")[0]
    assert enhancement.count('<li class="card"') == 8 and "image-colorize.html" in enhancement


def test_included_files_have_an_editor_schema(built: Path) -> None:
    whole = json.loads((built / "catalog.schema.json").read_text(encoding="utf-8"))
    part = json.loads((built / "catalog-part.schema.json").read_text(encoding="utf-8"))
    jsonschema.validate(yaml.safe_load((EXAMPLE / "catalog.yaml").read_text("utf-8")), whole)
    files = sorted((EXAMPLE / "services").glob("*.yaml"))
    assert len(files) == 3
    for path in files:
        text = path.read_text(encoding="utf-8")
        assert text.startswith("# yaml-language-server: $schema=../generated/catalog-part.schema")
        jsonschema.validate(yaml.safe_load(text), part)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"defaults": {}}, part)  # only what an included file may hold
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"services": [{"id": "x", "action": "DetectFace", "tagz": []}]}, part)


def test_a_catalog_in_one_file_has_no_part_schema() -> None:
    assert not (GENERATED / "catalog-part.schema.json").exists()


def test_check_sees_a_change_in_an_included_file(tmp_path: Path) -> None:
    """The cache key covers included files: after an edit there, check reports drift."""
    project = tmp_path / "marketplace"
    shutil.copytree(EXAMPLE, project, ignore=shutil.ignore_patterns("generated"))
    assert run_cli("build", "-q", cwd=project)[0] == 0
    assert run_cli("check", "-q", cwd=project)[0] == 0  # answered from the cache
    part = project / "services" / "object-detection.yaml"
    part.write_text(part.read_text("utf-8").replace("主体检测", "主体检测定位"), "utf-8")
    code, stdout, _ = run_cli("check", "-q", cwd=project)
    assert code == 1 and "主体检测定位" in stdout


def test_a_service_defined_in_two_files_names_both(tmp_path: Path) -> None:
    project = tmp_path / "marketplace"
    shutil.copytree(EXAMPLE, project, ignore=shutil.ignore_patterns("generated"))
    again = project / "services" / "zz-more.yaml"
    again.write_text(
        "services:\n  - id: image-colorize\n    provider: imageenhan\n"
        "    action: ColorizeImage\n    summaryZh: 上色。\n    tagz: []\n",
        encoding="utf-8",
    )
    code, _, stderr = run_cli("validate", "catalog.yaml", cwd=project)
    assert code == 2
    assert "services/zz-more.yaml:6:5: error: unknown key 'tagz'" in stderr
    again.write_text(again.read_text("utf-8").replace("    tagz: []\n", ""), "utf-8")
    code, _, stderr = run_cli("validate", "catalog.yaml", cwd=project)
    assert code == 2
    first = "services/image-enhancement.yaml:"
    assert re.search(
        rf"services/zz-more.yaml:2:9: error: id 'image-colorize' is already used by the "
        rf"service at {first}\d+ \[S402-E011 duplicate-id\]",
        stderr,
    ), stderr


def test_precommit_hooks_run_when_an_included_file_changes() -> None:
    """pre-commit runs a hook when ``re.search(files, path)`` matches a staged path."""
    hooks = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text("utf-8"))
    for hook in hooks:
        for path in ("catalog.yaml", "services/ocr.yaml", "a/b/c.yml", "templates/x.jinja"):
            assert re.search(hook["files"], path), (hook["id"], path)
        for path in ("README.md", "generated/catalog/catalog.json", "s402gen/cli.py"):
            assert not re.search(hook["files"], path), (hook["id"], path)


# --- served end to end: HTTP and MCP, through the emulator -----------------------------

#: One service of each category, with the upstream version its product answers at.
CALLED = {
    "face-detection": ("DetectFace", "2019-12-30"),
    "image-super-resolution": ("GenerateSuperResolutionImage", "2019-09-30"),
    "object-detection": ("DetectObject", "2019-12-30"),
}


@pytest.mark.slow
def test_served_and_paid_end_to_end_over_http_and_mcp(built: Path) -> None:
    import anyio
    import httpx
    from mcp import Client

    from s402gen.runtime.app import create_app
    from s402gen.runtime.emulator import start_emulator
    from s402gen.runtime.generated import load_generated
    from s402gen.runtime.payments import Ledger
    from s402gen.runtime.upstream import AlibabaCloudUpstream, Credentials

    from .conftest import running_app

    entries = _entries(built)
    emulator = start_emulator(load_generated(built).specs)
    upstream = AlibabaCloudUpstream(
        Credentials("test-key", "test-secret"), endpoint=emulator.endpoints, protocol="http"
    )
    try:
        with running_app(create_app(built, ledger=Ledger(), upstream=upstream)) as base:
            with httpx.Client(base_url=base, timeout=30) as http:
                for service_id, (action, version) in CALLED.items():
                    body = entries[service_id]["exampleRequest"]
                    unpaid = http.post(f"/api/tools/{service_id}", json=body)
                    assert unpaid.status_code == 402, unpaid.text
                    paid_for = http.post("/api/payments", json={"serviceId": service_id}).json()
                    answer = http.post(
                        f"/api/tools/{service_id}",
                        json=body,
                        headers={"X-Payment-Token": paid_for["token"]},
                    )
                    assert answer.status_code == 200, answer.text
                    assert answer.json()["data"]["Action"] == action
                    call = emulator.calls[-1]
                    assert (call.action, call.version) == (action, version)
                    assert call.parameters == {k: str(v) for k, v in body.items()}

                found = http.get(
                    "/api/catalog/search", params={"q": "upscale", "category": "image-enhancement"}
                ).json()
                assert found["filters"] == {"limit": 10, "category": "image-enhancement"}
                assert found["expandedTerms"] == ["enlarge", "super resolution"]
                assert {e["category"] for e in found["services"]} == {"image-enhancement"}

            async def over_mcp() -> None:
                async with Client(f"{base}/mcp") as client:
                    tools = (await client.list_tools()).tools
                    assert len(tools) == 58 + 2
                    arguments = entries["image-colorize"]["exampleRequest"]
                    unpaid = await client.call_tool("image_colorize", arguments)
                    assert unpaid.is_error
                    assert unpaid.structured_content["payment"]["serviceId"] == "image-colorize"
                    payment = await client.call_tool(
                        "create_payment", {"serviceId": "image-colorize"}
                    )
                    token = payment.structured_content["token"]
                    paid = await client.call_tool(
                        "image_colorize", {**arguments, "paymentToken": token}
                    )
                    assert not paid.is_error, paid.structured_content
                    assert paid.structured_content["data"]["Action"] == "ColorizeImage"
                    assert emulator.calls[-1].version == "2019-09-30"

            anyio.run(over_mcp)
    finally:
        emulator.stop()


def test_search_expands_per_category_and_filters_by_category(built: Path) -> None:
    from s402gen.runtime.generated import load_generated
    from s402gen.runtime.search import CatalogSearch

    generated = load_generated(built)
    search = CatalogSearch(generated.catalog, generated.categories)
    pose = search.search("pose estimation", limit=10)  # ("pose" is in every "exposed" too)
    assert {e.category for e in pose.services} == {"face-body"}
    upscale = search.search("upscale", limit=50)  # only image-enhancement's synonyms know it
    assert upscale.expanded_terms == ["enlarge", "super resolution"]
    assert upscale.services[0].id in {"image-super-resolution", "image-make-super-resolution"}
    assert {e.category for e in upscale.services} == {"image-enhancement"}
    face = search.search("face")  # face-body's synonyms do not reach the other categories
    assert "face detection" in face.expanded_terms
    assert all(e.category == "face-body" for e in face.services)
    only = search.search("detect", limit=50, category="object-detection")
    assert only.filters == {"limit": 50, "category": "object-detection"}
    assert sorted(e.id for e in only.services) == sorted(
        generated.categories.categories[2].services
    )
    assert search.search("detect", category="no-such-category").total == 0


def _hints(text: str) -> dict[str, dict]:
    from s402gen.pipeline import compile_text

    compiled = compile_text(text, "catalog.yaml", environ={})
    assert compiled.ok, [d.format() for d in compiled.diagnostics]
    tools = json.loads(compiled.files["mcp/tools.json"])
    return {tool["name"]: tool["annotations"] for tool in tools}


def test_mcp_hints_follow_the_catalog_fields_with_an_explicit_override() -> None:
    from .conftest import SMALL_CATALOG

    text = SMALL_CATALOG.read_text(encoding="utf-8")
    before = _hints(text)  # only the global idempotent: true, so the verbs decide, as before
    assert before["face_database_batch_add"]["idempotentHint"] is False
    assert before["face_detection"]["readOnlyHint"] is True
    said = text.replace(
        "    action: BatchAddFaces\n", "    action: BatchAddFaces\n    idempotent: true\n"
    ).replace(
        "    action: DetectFace\n",
        "    action: DetectFace\n    readOnly: false\n    destructive: true\n",
    )
    after = _hints(said)
    assert after["face_database_batch_add"]["idempotentHint"] is True
    assert (
        after["face_detection"]["readOnlyHint"],
        after["face_detection"]["destructiveHint"],
    ) == (
        False,
        True,
    )
    overridden = said.replace(
        "    readOnly: false\n", "    readOnly: false\n    annotations: {readOnlyHint: true}\n"
    )
    assert _hints(overridden)["face_detection"]["readOnlyHint"] is True
    scoped = text.replace(  # a provider's defaults state it for its services
        "    legacyIdPrefix: aliyun-facebody-\n",
        "    legacyIdPrefix: aliyun-facebody-\n    defaults: {idempotent: true}\n",
        1,
    )
    assert _hints(scoped)["face_database_batch_add"]["idempotentHint"] is True


def test_schema_command_prints_the_part_schema(built: Path) -> None:
    code, stdout, _ = run_cli("schema", "--part")
    assert code == 0
    assert json.loads(stdout) == json.loads((built / "catalog-part.schema.json").read_text("utf-8"))


def test_an_inherited_value_is_reported_where_it_is_written() -> None:
    """A finding about a value a service inherits points at the category's or provider's
    defaults that hold it, not at the global defaults."""
    from s402gen.pipeline import compile_text

    from .conftest import SMALL_CATALOG

    text = SMALL_CATALOG.read_text(encoding="utf-8") + (
        "\ncategories:\n  face-body:\n    label: Face and body\n    defaults:\n"
        "      relatedServices: [face-serch]\n"
    )
    compiled = compile_text(text, "catalog.yaml", environ={})
    unknown = [d for d in compiled.diagnostics if d.rule.name == "unknown-related-service"]
    assert unknown and all(d.location.line == text.count("\n") for d in unknown)
    assert "related service 'face-serch'" in unknown[0].message
