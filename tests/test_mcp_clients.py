"""The MCP server as outside clients see it: the official MCP Inspector CLI (TypeScript SDK)
over stdio (``s402gen mcp``) and streamable HTTP (``/mcp`` of ``s402gen serve``), the
official conformance suite against ``/mcp``, and ``tools/list`` paging a large catalog."""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
import sys
from pathlib import Path

import anyio
import pytest
import yaml
from mcp import Client
from mcp.shared.exceptions import MCPError

from s402gen.runtime.app import create_app
from s402gen.runtime.mcp_server import PAGE_SIZE
from s402gen.runtime.payments import Ledger

from .conftest import CATALOG, GENERATED, ROOT, run_cli, running_app, write_catalog
from .node_tools import run_node_tool, running_serve

pytestmark = pytest.mark.slow

ENTRY = next(
    entry
    for entry in json.loads((GENERATED / "catalog" / "catalog.json").read_bytes())["services"]
    if entry["id"] == "face-detection"
)
TOOLS = json.loads((GENERATED / "mcp" / "tools.json").read_bytes())
TOOL_IS_ERROR = 5  # the Inspector CLI's exit code for a result with isError: true


def _first_json(text: str) -> dict:
    """The first JSON document the Inspector printed (it may print an error line after it)."""
    value, _ = json.JSONDecoder().raw_decode(text.lstrip())
    return value


def _inspector(target: list[str], home: Path, *args: str):
    done = run_node_tool("mcp-inspector", "--cli", *target, *args, home=home)
    return done.returncode, done.stdout, done.stderr


def _inspector_session(target: list[str], home: Path) -> None:
    """List (no portability problem under --strict), missing arguments, 402, pay, paid call."""
    code, out, err = _inspector(target, home, "--method", "tools/list", "--strict")
    assert code == 0, err
    assert [tool["name"] for tool in _first_json(out)["tools"]] == [t["name"] for t in TOOLS]

    tool = ["--method", "tools/call", "--tool-name", ENTRY["discovery"]["toolName"]]
    code, out, err = _inspector(target, home, *tool)
    assert code == TOOL_IS_ERROR, err  # a tool error, not "does not match the output schema"
    assert _first_json(out)["structuredContent"] == {"error": "ImageURL is required"}

    arguments = [f"{key}={value}" for key, value in ENTRY["exampleRequest"].items()]
    code, out, err = _inspector(target, home, *tool, "--tool-arg", *arguments)
    assert code == TOOL_IS_ERROR, err
    unpaid = _first_json(out)["structuredContent"]
    assert unpaid["error"] == "payment required"
    assert unpaid["payment"]["amountCents"] == ENTRY["pricing"]["amountCents"]

    pay = ["--method", "tools/call", "--tool-name", "create_payment"]
    code, out, err = _inspector(target, home, *pay, "--tool-arg", f"serviceId={ENTRY['id']}")
    assert code == 0, err
    token = _first_json(out)["structuredContent"]["token"]
    paid_arguments = [*arguments, f"paymentToken={token}"]
    code, out, err = _inspector(target, home, *tool, "--tool-arg", *paid_arguments)
    assert code == 0, err
    paid = _first_json(out)
    assert paid["isError"] is False
    assert paid["structuredContent"]["data"]["Action"] == ENTRY["exampleResponse"]["data"]["Action"]
    assert json.loads(paid["content"][0]["text"]) == paid["structuredContent"]


def test_inspector_cli_over_stdio(tmp_path: Path) -> None:
    exe = shutil.which("s402gen") or str(Path(sys.executable).parent / "s402gen")
    ledger = tmp_path / "ledger.sqlite3"  # one ledger for the processes the Inspector starts
    target = [exe, "mcp", "--generated", str(GENERATED), "--upstream", "emulator"]
    target += ["--no-api-keys"]  # the Inspector pays anonymously (keys: test_gateway_auth)
    _inspector_session([*target, "--ledger", str(ledger)], tmp_path)


def test_inspector_cli_over_streamable_http(tmp_path: Path) -> None:
    with running_serve(tmp_path) as base:
        _inspector_session([f"{base}/mcp"], tmp_path)


#: Conformance scenarios that apply to a tools-only server, and must pass.
APPLICABLE = ("server-initialize", "ping", "tools-list", "dns-rebinding-protection")
#: The check that only warns: the /mcp transport is stateless (no Mcp-Session-Id to resume).
WARNED = {"server-sse-multiple-streams-session"}
#: Scenarios that do not apply, with the error that shows why: they call the fixture tools of
#: the suite's reference server (``test_simple_text``, ``test_image_content``, ...), or a
#: capability a tools-only server does not offer (resources, prompts, logging, completion).
NOT_APPLICABLE = {
    **dict.fromkeys(
        (
            "tools-call-simple-text",
            "tools-call-image",
            "tools-call-audio",
            "tools-call-embedded-resource",
            "tools-call-mixed-content",
            "tools-call-error",
            "tools-call-with-progress",
            "tools-call-sampling",
            "tools-call-elicitation",
            "elicitation-sep1034-defaults",
            "elicitation-sep1330-enums",
        ),
        "MCP error -32602: Unknown tool: test_",
    ),
    **dict.fromkeys(
        (
            "logging-set-level",
            "tools-call-with-logging",
            "completion-complete",
            "resources-list",
            "resources-read-text",
            "resources-read-binary",
            "resources-templates-read",
            "resources-subscribe",
            "resources-unsubscribe",
            "prompts-list",
            "prompts-get-simple",
            "prompts-get-with-args",
            "prompts-get-embedded-resource",
            "prompts-get-with-image",
        ),
        "MCP error -32601: Method not found",
    ),
}


def test_conformance_suite_against_mcp(tmp_path: Path) -> None:
    results = tmp_path / "results"
    with running_serve(tmp_path) as base:
        done = run_node_tool(
            "conformance", "server", "--url", f"{base}/mcp", "-o", str(results), home=tmp_path
        )
    checks: dict[str, list[dict]] = {}
    for folder in sorted(results.iterdir()):
        scenario = re.sub(r"-\d{4}-\d\d-\d\dT[\d-]+Z$", "", folder.name.removeprefix("server-"))
        checks[scenario] = json.loads((folder / "checks.json").read_bytes())
    assert set(checks) == {*APPLICABLE, "server-sse-multiple-streams", *NOT_APPLICABLE}, done.stdout
    for scenario in APPLICABLE:
        assert checks[scenario] and all(c["status"] == "SUCCESS" for c in checks[scenario]), (
            scenario,
            checks[scenario],
        )
    assert {c["id"]: c["status"] for c in checks["server-sse-multiple-streams"]} == dict.fromkeys(
        WARNED, "WARNING"
    )
    for scenario, reason in NOT_APPLICABLE.items():
        (check,) = checks[scenario]
        assert check["status"] == "FAILURE" and reason in check["errorMessage"], (scenario, check)


def _synthetic(size: int) -> dict:
    """bench's synthetic catalog: the real one with ``size`` services (see bench/README.md)."""
    spec = importlib.util.spec_from_file_location("s402gen_bench", ROOT / "bench" / "bench.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    return bench.synthetic_catalog(yaml.safe_load(CATALOG.read_text(encoding="utf-8")), size)


def test_tools_list_pages_a_large_catalog(tmp_path: Path) -> None:
    size = 2 * PAGE_SIZE + 50  # three pages of tools (the payment tools come last)
    catalog = write_catalog(tmp_path / "catalog.yaml", _synthetic(size))
    code, _, err = run_cli("build", str(catalog), "--out", str(tmp_path / "generated"), "-q")
    assert code == 0, err
    expected = [t["name"] for t in json.loads((tmp_path / "generated/mcp/tools.json").read_bytes())]
    assert len(expected) == size + 2
    app = create_app(tmp_path / "generated", ledger=Ledger())
    with running_app(app) as base:

        async def scenario() -> None:
            async with Client(f"{base}/mcp") as client:
                pages, cursor = [], None
                while True:
                    page = await client.list_tools(cursor=cursor)
                    pages.append([tool.name for tool in page.tools])
                    cursor = page.next_cursor
                    if cursor is None:
                        break
                assert [len(page) for page in pages] == [PAGE_SIZE, PAGE_SIZE, size + 2 - 200]
                assert [name for page in pages for name in page] == expected
                with pytest.raises(MCPError) as raised:
                    await client.list_tools(cursor="not-a-cursor")
                assert raised.value.code == -32602

        anyio.run(scenario)
