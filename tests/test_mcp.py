"""The MCP server, driven by the official SDK's client: in memory, over stdio, over HTTP."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import anyio
import jsonschema
import pytest
from mcp import Client, StdioServerParameters
from mcp.shared.exceptions import MCPError
from mcp.shared.tool_name_validation import validate_tool_name

from s402gen.runtime.app import create_app
from s402gen.runtime.generated import load_generated
from s402gen.runtime.mcp_server import build_mcp_server, load_tools
from s402gen.runtime.payments import Ledger
from s402gen.runtime.service import ServiceRuntime
from s402gen.runtime.upstream import AlibabaCloudUpstream, Credentials

from .conftest import GENERATED, emulator_upstream, run_cli, running_app

TOOLS_JSON = json.loads((GENERATED / "mcp" / "tools.json").read_text(encoding="utf-8"))
CATALOG = json.loads((GENERATED / "catalog" / "catalog.json").read_text(encoding="utf-8"))
ENTRIES = {entry["discovery"]["toolName"]: entry for entry in CATALOG["services"]}
REQUIRED_BODY = CATALOG["payment"]["requiredResponse"]["bodySchema"]


@pytest.fixture(scope="module")
def server(emulator):
    specs = load_generated(GENERATED).specs
    runtime = ServiceRuntime(specs, ledger=Ledger(), upstream=emulator_upstream(emulator))
    return build_mcp_server(load_tools(GENERATED), runtime)


def _dump(tools) -> list[dict]:
    return [tool.model_dump(by_alias=True, exclude_none=True) for tool in tools]


async def _checked(client: Client, tool: str, arguments: dict):
    """``tools/call``, with every result (``isError`` too) checked by the SDK's own validator
    against the tool's ``outputSchema``, as the TypeScript SDK checks them."""
    result = await client.call_tool(tool, arguments)
    await client.session.validate_tool_result(tool, result)
    return result


async def _flow(client: Client, tool: str) -> None:
    """Missing arguments, payment required, pay, paid call, used-up token."""
    entry = ENTRIES[tool]
    for example in entry["errorExamples"]:
        refused = await _checked(client, tool, example["input"])
        assert refused.is_error and refused.structured_content == {"error": example["error"]}
    arguments = entry.get("exampleRequest", {})
    unpaid = await _checked(client, tool, arguments)
    assert unpaid.is_error
    jsonschema.validate(unpaid.structured_content, REQUIRED_BODY)
    assert unpaid.structured_content["error"] == "payment required"
    assert unpaid.structured_content["payment"]["serviceId"] == entry["id"]

    payment = await _checked(client, "create_payment", {"serviceId": entry["id"]})
    assert not payment.is_error, payment.structured_content
    token = payment.structured_content["token"]
    verified = await _checked(
        client, "verify_payment", {"paymentId": payment.structured_content["paymentId"]}
    )
    assert verified.structured_content["status"] == "paid"

    paid = await _checked(client, tool, {**arguments, "paymentToken": token})
    # the client itself validates structuredContent against the tool's outputSchema
    assert not paid.is_error, paid.structured_content
    assert paid.structured_content["data"]["Action"] == entry["exampleResponse"]["data"]["Action"]
    assert json.loads(paid.content[0].text) == paid.structured_content

    again = await _checked(client, tool, {**arguments, "paymentToken": token})
    assert again.is_error
    assert again.structured_content["error"] == "payment token has no remaining calls"


def _assert_listed_tools(tools) -> None:
    """tools/list: the committed generated/mcp/tools.json, read as plain JSON, and what
    a client needs of two tools, written out by hand."""
    assert _dump(tools) == TOOLS_JSON
    services = [entry["discovery"]["toolName"] for entry in CATALOG["services"]]
    assert [t.name for t in tools] == services + ["create_payment", "verify_payment"]
    for tool in tools:
        assert validate_tool_name(tool.name).is_valid
    listed = {tool.name: tool for tool in tools}
    face = listed["face_detection"]
    assert face.title == "Detect Face Face And Body Analysis"
    assert face.input_schema["required"] == ["ImageURL"]
    assert set(face.input_schema["properties"]) == {
        "ImageURL",
        "Landmark",
        "MaxFaceNumber",
        "Pose",
        "Quality",
        "paymentToken",
    }
    assert face.input_schema["properties"]["ImageURL"]["format"] == "uri"
    success, *failures = face.output_schema["anyOf"]
    assert success["required"] == ["requestId", "data"]
    assert REQUIRED_BODY in failures  # the catalog's own 402 body schema
    assert (face.annotations.read_only_hint, face.annotations.destructive_hint) == (True, False)
    pay = listed["create_payment"]
    assert pay.input_schema["required"] == ["serviceId"]
    assert "token" in pay.output_schema["anyOf"][0]["properties"]
    assert (pay.annotations.read_only_hint, pay.annotations.idempotent_hint) == (False, False)
    assert listed["verify_payment"].input_schema["required"] == ["paymentId"]


def test_in_memory_tools_are_the_generated_ones(server) -> None:
    async def scenario() -> None:
        async with Client(server) as client:
            _assert_listed_tools((await client.list_tools()).tools)

    anyio.run(scenario)


@pytest.mark.parametrize("tool", sorted(ENTRIES))
def test_in_memory_paid_flow_for_every_tool(server, tool: str) -> None:
    async def scenario() -> None:
        async with Client(server) as client:
            await _flow(client, tool)

    anyio.run(scenario)


def test_stdio_server_process(tmp_path: Path) -> None:
    exe = Path(sys.executable).parent / "s402gen"
    ledger = str(tmp_path / "ledger.sqlite3")
    code, key, log = run_cli("keys", "create", "--name", "stdio client", "--ledger", ledger)
    assert code == 0 and key.startswith("s402_"), log
    params = StdioServerParameters(
        command=str(exe) if exe.exists() else "s402gen",
        args=["mcp", "--generated", str(GENERATED), "--upstream", "emulator", "--ledger", ledger],
        cwd=str(tmp_path),
        env={"S402GEN_API_KEY": key.strip()},  # the client's key, over stdio
    )

    async def scenario() -> None:
        async with Client(params) as client:
            _assert_listed_tools((await client.list_tools()).tools)
            await _flow(client, "face_detection")
            await _flow(client, "face_database_batch_add")

    anyio.run(scenario)


def test_streamable_http_on_a_running_app(emulator) -> None:
    app = create_app(GENERATED, ledger=Ledger(), upstream=emulator_upstream(emulator))
    with running_app(app) as base:

        async def scenario() -> None:
            async with Client(f"{base}/mcp") as client:
                tools = (await client.list_tools()).tools
                assert [t.name for t in tools] == [t["name"] for t in TOOLS_JSON]
                await _flow(client, "face_detection")

        anyio.run(scenario)


def test_unknown_tool_is_a_json_rpc_error(server) -> None:
    """The spec's example (server/tools, "Error Handling"): -32602, not an ``isError`` result."""

    async def scenario() -> None:
        async with Client(server) as client:
            with pytest.raises(MCPError) as raised:
                await client.call_tool("no_such_tool", {})
            assert raised.value.code == -32602
            assert raised.value.message == "Unknown tool: no_such_tool"
            missing = await _checked(client, "create_payment", {})  # a known tool still answers
            assert missing.structured_content == {"error": "serviceId is required"}
            unknown = await _checked(client, "verify_payment", {"paymentId": "pay_x"})
            assert unknown.is_error and unknown.structured_content["error"].startswith("unknown")

    anyio.run(scenario)


def test_upstream_failure_fits_the_output_schema(emulator) -> None:
    """A 502-like failure (the upstream has no credentials) is ``isError`` content the schema
    lists, and the call is given back to the token."""
    specs = load_generated(GENERATED).specs
    upstream = AlibabaCloudUpstream(
        Credentials("test-key", "wrong-secret"), endpoint="127.0.0.1:9", protocol="http"
    )
    runtime = ServiceRuntime(specs, ledger=Ledger(), upstream=upstream)

    async def scenario() -> None:
        async with Client(build_mcp_server(load_tools(GENERATED), runtime)) as client:
            payment = await _checked(client, "create_payment", {"serviceId": "face-detection"})
            token = payment.structured_content["token"]
            arguments = {**ENTRIES["face_detection"]["exampleRequest"], "paymentToken": token}
            failed = await _checked(client, "face_detection", arguments)
            assert failed.is_error
            assert failed.structured_content["error"] == "upstream error"
            assert set(failed.structured_content) == {"error", "code", "message", "requestId"}
            verified = await _checked(
                client, "verify_payment", {"paymentId": payment.structured_content["paymentId"]}
            )
            assert verified.structured_content["remainingCalls"] == 1

    anyio.run(scenario)
