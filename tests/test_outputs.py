"""The generated artifacts: snapshots, and checks that each one is usable as what it is."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import black
import jsonschema
import pytest
import yaml
from mcp.shared.tool_name_validation import validate_tool_name
from mcp.types import Tool

from s402gen import compile_catalog
from s402gen.runtime.spec import RouteSpec

from .conftest import CATALOG, GENERATED, SEEDS, SMALL_CATALOG
from .test_seeds import page_lines

SMALL = compile_catalog(SMALL_CATALOG)
assert SMALL.ok, [d.format() for d in SMALL.diagnostics]
REAL = compile_catalog(CATALOG)
assert REAL.ok, [d.format() for d in REAL.diagnostics]
SEARCH_SERVICES = json.loads((SEEDS / "003_2aa762c7e94b4462.txt").read_text(encoding="utf-8"))[
    "services"
]
SEED_ENTRY = SEARCH_SERVICES[0]
RUNTIME_FIELDS = {"quality", "matchScore", "matchTerms", "why"}


@pytest.mark.parametrize("path", sorted(SMALL.files))
def test_small_catalog_snapshot(path: str, snapshot) -> None:
    assert SMALL.files[path] == snapshot


def test_committed_generated_matches_catalog() -> None:
    """generated/ on main is what catalog.yaml compiles to (the CI drift check)."""
    on_disk = {
        p.relative_to(GENERATED).as_posix(): p.read_text(encoding="utf-8")
        for p in GENERATED.rglob("*")
        if p.is_file()
    }
    assert on_disk == REAL.files


def _route_modules(files: dict[str, str]) -> list[str]:
    return sorted(p for p in files if p.startswith("routes/") and p != "routes/__init__.py")


@pytest.mark.parametrize("files", [SMALL.files, REAL.files], ids=["small", "real"])
def test_route_modules_are_black_stable(files: dict[str, str]) -> None:
    for path in [p for p in files if p.endswith(".py")]:
        assert black.format_str(files[path], mode=black.Mode()) == files[path], path


def test_every_route_module_imports_and_declares_its_service(tmp_path: Path) -> None:
    """Each compiled route module imports on its own and declares the service the author
    wrote in catalog.yaml (read as plain YAML); for the services the live marketplace
    shows (seed 003), its method, legacy endpoint, price and token rules are the live ones."""
    authored = yaml.safe_load(CATALOG.read_text(encoding="utf-8"))["services"]
    routes = tmp_path / "routes"
    routes.mkdir()
    for path in [p for p in REAL.files if p.startswith("routes/")]:
        (tmp_path / path).write_text(REAL.files[path], encoding="utf-8")
    package = _import(routes / "__init__.py", "generated_routes")
    specs: list[RouteSpec] = [
        _import(routes / f"{name}.py", f"generated_routes.{name}").SPEC for name in package.MODULES
    ]
    assert all(isinstance(spec, RouteSpec) for spec in specs)
    assert [spec.service_id for spec in specs] == [service["id"] for service in authored]
    for spec, service in zip(specs, authored):
        assert spec.endpoint == f"/api/tools/{service['id']}"
        assert spec.upstream.action == service["action"]
        assert set(spec.input_schema["properties"]) == set(service.get("params", {}))
        assert set(spec.input_schema.get("required", [])) == set(service.get("required", []))
        for param in spec.messages.required:
            assert spec.messages.required[param] == f"{param} is required"
            assert spec.messages.invalid_url[param] == f"{param} must be a valid http or https URL"
    by_id = {spec.service_id: spec for spec in specs}
    for live in SEARCH_SERVICES:
        spec = by_id[live["id"]]
        assert (spec.method, spec.legacy_id) == (live["method"], live["internalServiceId"])
        assert spec.legacy_endpoint == live["legacyEndpoint"]
        pricing = spec.pricing
        assert live["pricing"] == {
            "amountCents": pricing.amount_cents,
            "currency": pricing.currency,
            "policyId": pricing.policy_id,
            "settleMode": pricing.settle_mode,
            "billingMode": pricing.billing_mode,
            "maxCalls": pricing.max_calls,
            "allowReuse": pricing.allow_reuse,
            "bindClient": pricing.bind_client,
        }
        assert spec.upstream.action == live["exampleResponse"]["data"]["Action"]


def _import(path: Path, name: str):
    module_spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(module_spec)
    sys.modules[name] = module
    try:
        module_spec.loader.exec_module(module)
    finally:
        del sys.modules[name]
    return module


def test_mcp_tools_validate_with_the_official_sdk() -> None:
    tools = json.loads(REAL.files["mcp/tools.json"])
    catalog = json.loads(REAL.files["catalog/catalog.json"])
    services = [e["discovery"]["toolName"] for e in catalog["services"]]
    assert [t["name"] for t in tools] == services + ["create_payment", "verify_payment"]
    for raw in tools[len(services) :]:  # the payment tools
        assert validate_tool_name(Tool.model_validate(raw).name).is_valid
    for raw, entry in zip(tools, catalog["services"]):
        tool = Tool.model_validate(raw)
        assert validate_tool_name(tool.name).is_valid, tool.name
        assert tool.input_schema["properties"]["paymentToken"]["type"] == "string"
        assert "paymentToken" not in tool.input_schema.get("required", [])
        jsonschema.Draft202012Validator.check_schema(tool.input_schema)
        success, *failures = tool.output_schema["anyOf"]  # every structuredContent it returns
        assert tool.output_schema["type"] == "object" and success == entry["outputSchema"]
        assert catalog["payment"]["requiredResponse"]["bodySchema"] in failures
        hints = tool.annotations
        assert hints.destructive_hint is entry["id"].endswith(
            ("-delete", "-delete-face", "-delete-entity")
        )
        assert hints.open_world_hint is True


def _json_type(value) -> str:
    return {dict: "object", list: "array", str: "string", bool: "boolean", int: "integer"}.get(
        type(value), type(value).__name__
    )


def test_every_catalog_entry_has_the_fields_and_types_of_the_seed() -> None:
    expected = {k: _json_type(v) for k, v in SEED_ENTRY.items() if k not in RUNTIME_FIELDS}
    discovery = {k: _json_type(v) for k, v in SEED_ENTRY["discovery"].items()}
    for entry in json.loads(REAL.files["catalog/catalog.json"])["services"]:
        fields = {k: _json_type(v) for k, v in entry.items()}
        if "exampleRequest" not in fields:  # a service with no required parameter
            assert not entry["inputSchema"]["required"]
            fields["exampleRequest"] = "object"
        assert fields == expected, entry["id"]
        assert {k: _json_type(v) for k, v in entry["discovery"].items()} == discovery


def test_doc_pages_escape_every_value() -> None:
    page = SMALL.files["docs/tools/face-detection.html"]
    assert "Test &lt;Market&gt; &amp; Co" in page
    assert "finding &#34;faces&#34; &amp; &lt;landmarks&gt;" in page
    assert "<landmarks>" not in page
    assert 'finding "faces" & <landmarks>' in "\n".join(page_lines(page))
    index = SMALL.files["docs/index.html"]
    assert 'href="tools/face-detection.html"' in index and "&lt;Market&gt;" in index


def test_catalog_json_is_utf8_without_escapes() -> None:
    text = REAL.files["catalog/catalog.json"]
    assert "阿里云人脸人体" in text and "\\u" not in text and text.endswith("}\n")


def test_catalog_yaml_validates_against_its_editor_schema() -> None:
    import yaml

    from .conftest import CATALOG

    schema = json.loads(REAL.files["catalog.schema.json"])
    jsonschema.Draft202012Validator.check_schema(schema)
    text = CATALOG.read_text(encoding="utf-8")
    assert text.startswith("# yaml-language-server: $schema=generated/catalog.schema.json\n")
    jsonschema.validate(yaml.safe_load(text), schema)
    wrong = yaml.safe_load(text)
    wrong["services"][0]["sumaryZh"] = wrong["services"][0].pop("summaryZh")
    assert not jsonschema.Draft202012Validator(schema).is_valid(wrong)


def test_editor_schema_documents_every_key() -> None:
    schema = json.loads(REAL.files["catalog.schema.json"])
    undocumented = []
    for name, definition in [("Catalog", schema), *schema["$defs"].items()]:
        for key, prop in definition.get("properties", {}).items():
            if "description" not in prop or "examples" not in prop:
                undocumented.append(f"{name}.{key}")
    assert not undocumented
