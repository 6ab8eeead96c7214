"""The runtime at catalog scale: FTS5 search, one tool route, lazy entries, MCP discovery."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import anyio
import httpx
import pytest
from fastapi.testclient import TestClient
from mcp import Client, StdioServerParameters

from s402gen.runtime import jsonio, protocol
from s402gen.runtime.app import TOOL_ROUTE, create_app
from s402gen.runtime.contract import CatalogDocument
from s402gen.runtime.generated import load_generated
from s402gen.runtime.mcp_server import build_mcp_server, load_tools
from s402gen.runtime.payments import Ledger
from s402gen.runtime.recent import Recent
from s402gen.runtime.search import CatalogSearch
from s402gen.runtime.service import ServiceRuntime

from .conftest import GENERATED, LOOPBACK_BASE, emulator_upstream, running_app

CATALOG_BYTES = (GENERATED / "catalog" / "catalog.json").read_bytes()
CATALOG = json.loads(CATALOG_BYTES)
ENTRIES = {entry["id"]: entry for entry in CATALOG["services"]}


def _with_texts(texts: dict[str, str]) -> CatalogDocument:
    """The real catalog with only the services of ``texts``, each with that searchText
    and no aliases."""
    document = CatalogDocument.model_validate(CATALOG)
    services = []
    for entry in document.services:
        if entry.id in texts:
            discovery = entry.discovery.model_copy(
                update={"search_text": texts[entry.id], "aliases": []}
            )
            services.append(entry.model_copy(update={"discovery": discovery, "category": "x"}))
    return document.model_copy(update={"services": services})


def test_search_matches_words_from_their_start_not_inside_them() -> None:
    """``pose`` is inside ``exposed``: the old substring scan listed every service for it."""
    document = _with_texts(
        {
            "face-detection": "binary file upload is not exposed by this adapter",
            "body-posture-estimation": "pose estimation of a body",
            "face-search": "detection of faces",
        }
    )
    search = CatalogSearch(document)
    pose = search.search("pose")
    assert [e.id for e in pose.services] == ["body-posture-estimation"] and pose.total == 1
    assert pose.services[0].match_terms == ["pose"]
    detect = search.search("detect")  # a word's start still matches: detect finds detection
    assert [e.id for e in detect.services] == ["face-search"]


def test_a_phrase_needs_its_words_separated_by_spaces() -> None:
    document = _with_texts(
        {"face-detection": "face-template here", "face-search": "a face template here"}
    )
    answer = CatalogSearch(document).search("face template")
    assert [(e.id, e.match_terms) for e in answer.services] == [
        ("face-search", ["face template", "face", "template"]),
        ("face-detection", ["face", "template"]),
    ]


def test_chinese_matches_inside_longer_text_short_and_long() -> None:
    document = _with_texts(
        {"face-detection": "阿里云人脸检测服务", "face-search": "人体分析", "face-blur": "face"}
    )
    search = CatalogSearch(document)
    assert [e.id for e in search.search("人脸检测").services] == ["face-detection"]
    assert [e.id for e in search.search("人脸").services] == ["face-detection"]  # 2 characters
    assert {e.id for e in search.search("人").services} == {"face-detection", "face-search"}
    assert search.search("检测服务器").total == 0


@pytest.mark.parametrize("category", [None, "face-body", "nope"])
def test_the_fast_answer_is_the_search_document(category: str | None) -> None:
    """``answer_json`` (the app's) equals the search document's own JSON, quality included."""
    generated = load_generated(GENERATED)
    search = generated.search()
    quality = ServiceRuntime(generated.specs, ledger=Ledger(), upstream=None).stats.quality
    assert search.answer_json("face", 10, quality, category, wait=False) is None  # not yet ranked
    for query in ("face", "人脸检测", "delete template", "", "zzz"):
        for limit in (1, 10, 500):
            for scores in (quality, None):  # key order too: the answers' bytes are equal
                expected = search.search(query, limit, scores, category).to_json()
                answer = search.answer_json(query, limit, scores, category)
                assert json.dumps(answer) == json.dumps(expected)
                remembered = search.answer_json(query, limit, scores, category, wait=False)
                assert json.dumps(remembered) == json.dumps(expected)


def test_a_kept_answer_is_the_fresh_answer_until_a_listed_service_is_called() -> None:
    """``answer_body`` keeps the bytes it sent: equal to a fresh search's JSON, reused while
    no listed service's quality changed, made again (with the new quality) once one did."""
    generated = load_generated(GENERATED)
    search = generated.search()
    stats = ServiceRuntime(generated.specs, ledger=Ledger(), upstream=None).stats
    for query, limit, category in (("face", 10, None), ("人脸检测", 3, "face-body"), ("", 1, "")):
        fresh = jsonio.dumps(search.search(query, limit, stats.quality, category).to_json())
        first = search.answer_body(query, limit, stats.quality, category, version=stats.version)
        key = search.key(f" {query} ", limit, category)
        assert first == fresh and search.cached_body(key, True, stats.version) is first
        assert search.cached_body(key, False) is None  # an answer without quality: another
        listed = json.loads(first)["services"][0]["id"]
        stats.record(listed, "success", 0.0)
        assert search.cached_body(key, True, stats.version) is None
        again = search.answer_body(query, limit, stats.quality, category, version=stats.version)
        assert again == jsonio.dumps(search.search(query, limit, stats.quality, category).to_json())
        assert json.loads(again)["services"][0]["quality"]["callCount"] == stats.version(listed)
    unversioned = search.answer_body("face", 2, stats.quality)  # quality, no version: not kept
    assert search.cached_body(search.key("face", 2), True, stats.version) is None
    assert unversioned == jsonio.dumps(search.search("face", 2, stats.quality).to_json())


def test_kept_answers_stay_within_their_byte_budget() -> None:
    kept = Recent(100, budget=10, weigh=len)
    for n in range(8):
        kept.put(n, b"abcd")
    assert [n for n in range(8) if kept.get(n) is not None] == [6, 7]
    assert kept.put("big", b"x" * 11) and kept.get("big") is None and kept.get(7) == b"abcd"


def test_a_repeated_search_is_answered_before_fastapi_with_the_same_bytes(emulator) -> None:
    """The second request of a query string is answered from the kept bytes without the
    FastAPI handler (a failing handler is not reached); headers and body are the
    first answer's; a paid call to a listed service makes the next answer fresh."""
    app = create_app(GENERATED, ledger=Ledger(), upstream=emulator_upstream(emulator))
    client = TestClient(app, base_url=LOOPBACK_BASE)
    path = "/api/catalog/search?q=%E4%BA%BA%E8%84%B8%E6%A3%80%E6%B5%8B&limit=2"
    first = client.get(path)
    search = app.state.search
    answer_body = search.answer_body
    search.answer_body = None  # FastAPI's handler would fail now
    second = client.get(path)
    assert second.status_code == first.status_code == 200
    assert second.content == first.content
    assert [(k, v) for k, v in second.headers.items() if k != "date"] == [
        (k, v) for k, v in first.headers.items() if k != "date"
    ]
    search.answer_body = answer_body
    assert client.get("/api/catalog/search?q=face&limit=x").status_code == 422  # as before
    assert client.get("/api/catalog/search?q=face&limit=x").status_code == 422
    top = first.json()["services"][0]
    assert top["id"] == "face-detection" and top["quality"]["callCount"] == 0
    token = client.post("/api/payments", json={"serviceId": "face-detection"}).json()["token"]
    paid = client.post(
        top["endpoint"], json=top["exampleRequest"], headers={protocol.PAYMENT_HEADER: token}
    )
    assert paid.status_code == 200
    after = client.get(path).json()
    assert after["services"][0]["quality"]["callCount"] == 1
    assert after == {**first.json(), "services": after["services"]}


def test_the_answers_before_fastapi_are_fastapis(emulator, monkeypatch) -> None:
    """A search that needs neither SQLite nor the disk is answered before FastAPI parses its
    query string (by starlette's QueryParams, as FastAPI does): status, headers and bytes
    are those of FastAPI's handler, repeated names, odd limits and all."""
    from s402gen.runtime import app as app_module

    strings = [
        "q=face", "q=face+123", "q=face&limit=3", "q=face&limit=003", "q=face&limit=%2B3",
        "q=face&limit=3.0", "q=face&limit=", "q=face&limit=x", "q=a&q=face", "",
        "q=face&category=face-body", "q=face&category=", "category=face-body&q=face+9",
        "q=%E4%BA%BA%E8%84%B8+7", "q=face&limit=999999", "q=face&limit=1234567",
        "q=face&foo=bar", "q=%ZZ", "limit=2&limit=5&q=face", "q=face%00+7", "q=+face+&limit=0",
    ]  # fmt: skip

    def answers(fast: bool) -> list:
        if not fast:
            monkeypatch.setattr(app_module._EarlySearchAnswers, "_answer", lambda self, qs: None)
        client = TestClient(
            create_app(GENERATED, ledger=Ledger(), upstream=emulator_upstream(emulator)),
            base_url=LOOPBACK_BASE,
        )
        found = []
        for string in strings * 2:  # new, then answered before
            answer = client.get("/api/catalog/search?" + string)
            headers = [(k, v) for k, v in answer.headers.items() if k != "date"]
            found.append((string, answer.status_code, headers, answer.content))
        monkeypatch.undo()
        return found

    assert answers(True) == answers(False)


def test_the_mcp_sdk_is_imported_on_the_first_mcp_request_not_at_start() -> None:
    """Importing the mcp SDK is ~0.7 s of ``serve``'s start: the app imports it when
    ``/mcp`` is first asked (tests of MCP over HTTP show that it then answers)."""
    code = (
        "import sys\n"
        "from s402gen.runtime.app import create_app\n"
        "from s402gen.runtime.payments import Ledger\n"
        "from s402gen.runtime.serve import missing_dependency\n"
        f"assert missing_dependency() is None\n"
        f"create_app({str(GENERATED)!r}, ledger=Ledger(), upstream=None)\n"
        "print(sorted(m for m in sys.modules if m == 'mcp' or m.startswith('mcp.')))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"


def test_route_modules_compile_once_into_the_cache_never_into_generated(
    tmp_path, private_cache
) -> None:
    copy = tmp_path / "generated"
    shutil.copytree(GENERATED, copy)
    first = load_generated(copy).specs
    cached = list((private_cache / "bytecode").rglob("face_detection*.pyc"))
    assert len(cached) == 1 and not list(copy.rglob("__pycache__"))
    module = copy / "routes" / "face_detection.py"
    text = module.read_text(encoding="utf-8")
    stat = module.stat()
    changed = text.replace("amount_cents=20,", "amount_cents=21,")
    assert changed != text and len(changed) == len(text)
    module.write_text(changed, encoding="utf-8")
    os.utime(module, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # same size, same time
    again = {s.service_id: s for s in load_generated(copy).specs}
    assert {s.service_id: s for s in first}["face-detection"].pricing.amount_cents == 20
    assert again["face-detection"].pricing.amount_cents == 21  # the hash caught the edit


def test_without_a_cache_nothing_is_written(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("S402GEN_CACHE_DIR", "off")
    copy = tmp_path / "generated"
    shutil.copytree(GENERATED, copy)
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    assert len(load_generated(copy).specs) == len(CATALOG["services"])
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before


def test_one_route_serves_every_tool_endpoint_and_legacy_endpoint(emulator) -> None:
    app = create_app(GENERATED, ledger=Ledger(), upstream=emulator_upstream(emulator))
    tool_routes = [r.path for r in app.routes if getattr(r, "path", "").startswith("/api/tools")]
    assert tool_routes == [TOOL_ROUTE]  # was two routes a service
    client = TestClient(app, base_url=LOOPBACK_BASE)
    entry = ENTRIES["face-detection"]
    for path in (entry["endpoint"], entry["legacyEndpoint"]):
        unpaid = client.post(path, json=entry["exampleRequest"])
        assert unpaid.status_code == 402
        assert unpaid.json()["payment"]["serviceId"] == "face-detection"
    token = client.post("/api/payments", json={"serviceId": "face-detection"}).json()["token"]
    paid = client.post(
        entry["legacyEndpoint"],
        json=entry["exampleRequest"],
        headers={protocol.PAYMENT_HEADER: token},
    )
    assert paid.status_code == 200 and paid.json()["data"]["Action"] == "DetectFace"
    missing = client.post("/api/tools/no-such-service", json={})
    assert missing.status_code == 404 and missing.json() == {"detail": "Not Found"}


def test_catalog_is_served_from_disk_and_answers_read_whole_entries(emulator) -> None:
    generated = load_generated(GENERATED)
    assert "catalog" not in vars(generated)  # catalog.json is not parsed whole at start
    client = TestClient(
        create_app(generated, ledger=Ledger(), upstream=emulator_upstream(emulator)),
        base_url=LOOPBACK_BASE,
    )
    assert client.get("/api/catalog").content == CATALOG_BYTES
    answer = client.get("/api/catalog/search", params={"q": "liveness", "limit": 3}).json()
    for found in answer["services"]:
        runtime = {k: found.pop(k) for k in ("quality", "matchScore", "matchTerms", "why")}
        assert found == ENTRIES[found["id"]] and runtime["matchScore"] > 0


@pytest.mark.slow
def test_search_runs_off_the_event_loop(emulator) -> None:
    """While a search is held inside its worker thread, other requests are answered."""
    app = create_app(
        GENERATED, ledger=Ledger(), upstream=emulator_upstream(emulator), warm_search=False
    )  # its warming would read the entries the test holds
    search = app.state.search
    entered, release = threading.Event(), threading.Event()
    read_entry = search._entry

    def held_entry(position: int):
        entered.set()
        release.wait(30)
        return read_entry(position)

    search._entry = held_entry
    with running_app(app) as base:
        answers: list[httpx.Response] = []
        searching = threading.Thread(
            target=lambda: answers.append(
                httpx.get(f"{base}/api/catalog/search?q=face", timeout=60)
            )
        )
        searching.start()
        try:
            assert entered.wait(30)
            other = httpx.get(f"{base}/tools/face-detection", timeout=30)
            assert other.status_code == 200 and not answers  # the search is still held
        finally:
            release.set()
            searching.join(60)
        assert answers[0].status_code == 200
        assert answers[0].json()["services"][0]["id"] == "face-detection"


async def _discovery_flow(client: Client) -> None:
    listed = await client.list_tools()
    assert [t.name for t in listed.tools] == [
        protocol.SEARCH_TOOL,
        protocol.CALL_TOOL,
        protocol.CREATE_PAYMENT_TOOL,
        protocol.VERIFY_PAYMENT_TOOL,
    ]
    assert listed.next_cursor is None
    found = await client.call_tool(protocol.SEARCH_TOOL, {"query": "人脸检测", "limit": 2})
    assert not found.is_error
    top = found.structured_content["services"][0]
    assert top["id"] == "face-detection" and top["matchScore"] > 0
    assert len(found.structured_content["services"]) == 2
    arguments = {"serviceId": top["id"], "arguments": top["exampleRequest"]}
    unpaid = await client.call_tool(protocol.CALL_TOOL, arguments)
    assert unpaid.is_error and unpaid.structured_content["error"] == "payment required"
    assert unpaid.structured_content["payment"]["serviceId"] == "face-detection"
    payment = await client.call_tool(protocol.CREATE_PAYMENT_TOOL, {"serviceId": top["id"]})
    token = payment.structured_content["token"]
    paid = await client.call_tool(protocol.CALL_TOOL, {**arguments, "paymentToken": token})
    assert not paid.is_error and paid.structured_content["data"]["Action"] == "DetectFace"
    again = await client.call_tool(protocol.CALL_TOOL, {**arguments, "paymentToken": token})
    assert again.structured_content["error"] == "payment token has no remaining calls"
    bad = await client.call_tool(protocol.CALL_TOOL, {"serviceId": "face-detection"})
    assert bad.structured_content == {"error": "ImageURL is required"}
    unknown = await client.call_tool(protocol.CALL_TOOL, {"serviceId": "nope"})
    assert unknown.is_error and unknown.structured_content == {"error": "unknown service 'nope'"}


def test_mcp_discovery_mode_in_memory(emulator) -> None:
    generated = load_generated(GENERATED)
    runtime = ServiceRuntime(generated.specs, ledger=Ledger(), upstream=emulator_upstream(emulator))
    server = build_mcp_server(load_tools(GENERATED), runtime, search=generated.search())

    async def scenario() -> None:
        async with Client(server) as client:
            await _discovery_flow(client)

    anyio.run(scenario)


def test_mcp_discovery_searches_share_the_search_threads(emulator) -> None:
    """MCP's search tool runs under the limiter it is given (``create_app`` gives the one of
    ``/api/catalog/search``): held by others, a search waits for it."""
    generated = load_generated(GENERATED)
    runtime = ServiceRuntime(generated.specs, ledger=Ledger(), upstream=emulator_upstream(emulator))
    threads = anyio.CapacityLimiter(1)
    server = build_mcp_server(
        load_tools(GENERATED), runtime, search=generated.search(), search_threads=threads
    )

    async def scenario() -> None:
        found: list = []
        async with Client(server) as client:
            holder = object()
            await threads.acquire_on_behalf_of(holder)
            async with anyio.create_task_group() as group:

                async def search() -> None:
                    found.append(await client.call_tool(protocol.SEARCH_TOOL, {"query": "face"}))

                group.start_soon(search)
                await anyio.sleep(0.3)
                assert found == []  # waiting for the thread the holder has
                threads.release_on_behalf_of(holder)
        assert found and not found[0].is_error

    anyio.run(scenario)


def test_the_app_gives_mcp_discovery_the_rest_search_limiter(
    emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    from s402gen.runtime import mcp_server

    given: dict = {}
    build = mcp_server.build_mcp_server

    def capture(*args, **kwargs):
        given.update(kwargs)
        return build(*args, **kwargs)

    monkeypatch.setattr(mcp_server, "build_mcp_server", capture)
    app = create_app(
        GENERATED, ledger=Ledger(), upstream=emulator_upstream(emulator), mcp_discovery=True
    )
    (route,) = [r for r in app.router.routes if getattr(r, "path", "") == "/mcp"]
    route.endpoint._make()  # what /mcp's first request makes
    assert given["search"] is app.state.search
    assert given["search_threads"] is app.state.search_threads


@pytest.mark.slow
def test_mcp_discovery_mode_over_http(emulator) -> None:
    app = create_app(
        GENERATED, ledger=Ledger(), upstream=emulator_upstream(emulator), mcp_discovery=True
    )
    with running_app(app) as base:

        async def scenario() -> None:
            async with Client(f"{base}/mcp") as client:
                await _discovery_flow(client)

        anyio.run(scenario)


@pytest.mark.slow
def test_mcp_discovery_mode_over_stdio(tmp_path) -> None:
    """``s402gen mcp --discovery``, launched by the SDK's stdio client, with the emulator."""
    exe = Path(sys.executable).parent / "s402gen"
    params = StdioServerParameters(
        command=str(exe) if exe.exists() else "s402gen",
        args=["mcp", "--discovery", "--generated", str(GENERATED), "--upstream", "emulator"]
        + ["--ledger", ":memory:", "--no-api-keys"],
        cwd=str(tmp_path),
    )

    async def scenario() -> None:
        async with Client(params) as client:
            await _discovery_flow(client)

    anyio.run(scenario)
