"""The doc site in a real browser: Debian's chromium, driven by Playwright.

Every page is opened both served by ``s402gen serve`` and from disk (file://). The
search box filters as you type, a service page's links navigate, no page logs a console
error or fails a request, axe-core (from tests/node) finds no violation, light or dark,
desktop or phone width. ``S402GEN_UPDATE_SCREENSHOTS=1 pytest tests/test_browser.py``
rewrites the README's screenshots under docs/.

Needs ``apt-get install chromium`` (Playwright cannot download its own browser here) and
``npm ci --prefix tests/node``.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Iterator

import pytest

from .conftest import GENERATED, ROOT
from .test_docs import serving

pytestmark = pytest.mark.slow

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
#: Chromium as root in a sandbox with no network but the loopback (see the env notes).
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-quic",
    "--disable-sync",
]
AXE = Path(__file__).parent / "node" / "node_modules" / "axe-core" / "axe.min.js"
CATALOG = json.loads((GENERATED / "catalog" / "catalog.json").read_text("utf-8"))
IDS = [entry["id"] for entry in CATALOG["services"]]
PAGE = "face-detection"
PHONE = {"width": 390, "height": 844}


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail("chromium is missing: apt-get update && apt-get install -y chromium")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def served() -> Iterator[str]:
    with serving() as base:
        yield base


@pytest.fixture(params=["served", "file"])
def site(request, served: str) -> dict[str, str]:
    """The index URL and a service page URL, served or from disk."""
    if request.param == "served":
        return {"index": f"{served}/", "page": f"{served}/tools/{PAGE}.html"}
    docs = (GENERATED / "docs").resolve()
    return {
        "index": docs.joinpath("index.html").as_uri(),
        "page": docs.joinpath(f"tools/{PAGE}.html").as_uri(),
    }


class Watched:
    """A page whose console errors, uncaught exceptions and failed requests are kept."""

    def __init__(self, browser, **options) -> None:
        self.page = browser.new_page(**options)
        self.problems: list[str] = []
        self.page.on(
            "console",
            lambda m: m.type == "error" and self.problems.append(f"console: {m.text}"),
        )
        self.page.on("pageerror", lambda e: self.problems.append(f"exception: {e}"))
        self.page.on("requestfailed", lambda r: self.problems.append(f"failed: {r.url}"))
        self.page.on(
            "response",
            lambda r: r.status >= 400 and self.problems.append(f"{r.status}: {r.url}"),
        )

    def visible_ids(self) -> list[str]:
        return self.page.eval_on_selector_all(
            "[data-service]", "cards => cards.filter(c => !c.hidden).map(c => c.dataset.service)"
        )

    def close(self) -> None:
        self.page.close()


@pytest.fixture
def watched(browser) -> Iterator[Watched]:
    page = Watched(browser)
    yield page
    page.close()


def _keywords(service_id: str) -> str:
    entry = next(e for e in CATALOG["services"] if e["id"] == service_id)
    return " ".join(entry["keywords"])


def test_search_filters_as_you_type(watched: Watched, site: dict[str, str]) -> None:
    page = watched.page
    page.goto(site["index"])
    assert watched.visible_ids() == IDS
    search = page.get_by_label("Search services")
    search.press_sequentially("活体")  # Chinese: the liveness services
    liveness = watched.visible_ids()
    assert liveness and set(liveness) < set(IDS)
    assert {i for i in IDS if "活体" in _keywords(i)} <= set(liveness)
    assert "face-detection" not in liveness
    assert page.locator("#search-status").inner_text() == f"{len(liveness)} of 44 services match"
    search.fill("")
    search.press_sequentially("masked comparison")  # English, every word must match
    assert watched.visible_ids() == ["masked-face-comparison"]
    search.fill("no such service zzz")
    assert watched.visible_ids() == []
    assert page.locator("#no-results").is_visible()
    assert not page.locator("section.category").first.is_visible()
    search.fill("")
    assert watched.visible_ids() == IDS and not page.locator("#no-results").is_visible()
    assert watched.problems == []


def test_service_page_links_navigate(watched: Watched, site: dict[str, str]) -> None:
    page = watched.page
    page.goto(site["index"])
    page.get_by_role("link", name="Detect Face Face And Body Analysis").click()
    page.wait_for_load_state()
    assert page.locator("h1").inner_text() == "Detect Face Face And Body Analysis"
    entry = next(e for e in CATALOG["services"] if e["id"] == PAGE)
    related = next(e for e in CATALOG["services"] if e["id"] == entry["relatedServices"][0])
    page.locator(".related").get_by_role("link", name=related["name"]).click()
    page.wait_for_load_state()
    assert page.url.endswith(f"/tools/{related['id']}.html")
    assert page.locator("h1").inner_text() == related["name"]
    page.locator("a.tag").click()  # the category: back to the index, at its section
    page.wait_for_load_state()
    assert page.url.endswith(f"index.html#category-{entry['category']}")
    assert page.locator(f"#category-{entry['category']}").is_visible()
    page.goto(site["page"])
    page.get_by_role("link", name="Server402 marketplace").click()
    page.wait_for_load_state()
    assert page.locator("h1").inner_text() == "Paid API services"
    assert watched.problems == []


def test_examples_show_the_serving_gateway_address(watched: Watched, served: str) -> None:
    watched.page.goto(f"{served}/tools/{PAGE}.html")
    curl = watched.page.locator("pre.example").first.inner_text()
    assert curl.startswith(f"BASE={served}\n")


def _axe(page) -> list[dict]:
    page.add_script_tag(content=AXE.read_text("utf-8"))
    result = page.evaluate("axe.run(document, {resultTypes: ['violations']})")
    return [
        {"rule": v["id"], "nodes": [n["target"] for n in v["nodes"]]} for v in result["violations"]
    ]


def test_no_page_logs_an_error_or_breaks_axe(browser, served: str) -> None:
    if not AXE.exists():
        pytest.fail(f"{AXE} is missing: run `npm ci --prefix tests/node`")
    watched = Watched(browser)
    try:
        for path in ["/", *(f"/tools/{i}.html" for i in IDS)]:
            watched.page.goto(served + path)
            assert _axe(watched.page) == [], path
        assert watched.problems == []
    finally:
        watched.close()


@pytest.mark.parametrize("scheme", ["light", "dark"])
@pytest.mark.parametrize(
    "viewport", [PHONE, {"width": 1280, "height": 900}], ids=["phone", "desktop"]
)
def test_pages_read_well_in_each_scheme_and_width(browser, served, scheme, viewport) -> None:
    watched = Watched(browser, color_scheme=scheme, viewport=viewport)
    try:
        for path in ("/", f"/tools/{PAGE}.html"):
            watched.page.goto(served + path)
            assert _axe(watched.page) == [], path  # colour contrast included
            overflow = watched.page.evaluate(
                "document.documentElement.scrollWidth - window.innerWidth"
            )
            assert overflow <= 0, (path, overflow)  # no sideways scrolling of the page
            background = watched.page.evaluate("getComputedStyle(document.body).backgroundColor")
            dark = background == "rgb(13, 17, 23)"
            assert dark == (scheme == "dark"), background
        assert watched.problems == []
    finally:
        watched.close()


def test_screenshots(browser, served: str, tmp_path: Path) -> None:
    """The README's screenshots; rewritten under docs/ with S402GEN_UPDATE_SCREENSHOTS=1."""
    update = os.environ.get("S402GEN_UPDATE_SCREENSHOTS") == "1"
    folder = ROOT / "docs" if update else tmp_path
    shots = {
        "doc-index.png": ("/?q=face%20comparison", {"width": 1100, "height": 760}, "light"),
        "doc-service-page.png": (f"/tools/{PAGE}.html", {"width": 1100, "height": 1900}, "dark"),
    }
    for name, (path, viewport, scheme) in shots.items():
        page = browser.new_page(viewport=viewport, color_scheme=scheme)
        page.goto(served + path)
        page.screenshot(path=str(folder / name))
        page.close()
        assert (folder / name).stat().st_size > 10_000
