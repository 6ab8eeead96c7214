"""Compatibility with the live marketplace: the seeds in tests/seeds/.

Every static field of seed 003's ten catalog entries, its payment block, and
the text of the four doc pages (in order; the doc site adds sections between the
live ones) must be reproduced, except the deliberate
differences of tests/seed_differences.py, each checked to be exactly where
it is declared and to be caught by the compiler when put back.
"""

from __future__ import annotations

import copy
import json
from html.parser import HTMLParser
from pathlib import Path

import pytest

from s402gen import compile_catalog
from s402gen.runtime.contract import CatalogDocument
from s402gen.runtime.search import CATEGORIES_FILE, CatalogSearch, Categories

from .conftest import CATALOG, SEEDS, write_catalog
from .seed_differences import ABSENT, DEFECTS, differences_for

RUNTIME_FIELDS = ("quality", "matchScore", "matchTerms", "why")
SEARCH = json.loads((SEEDS / "003_2aa762c7e94b4462.txt").read_text(encoding="utf-8"))
DOC_SEEDS = {
    "000_c71cc259b4a778f0.txt": "fingerprint-extraction",
    "001_3116513ad92ab47b.txt": "face-comparison",
    "002_d068adfda71955de.txt": "infrared-face-liveness-detection",
}
ALT_DOC_SEED = ("004_1d87ec8d04e1bd00.txt", "masked-face-comparison")


@pytest.fixture(scope="module")
def files() -> dict[str, str]:
    result = compile_catalog(CATALOG)
    assert result.ok, [d.format() for d in result.diagnostics]
    return result.files


@pytest.fixture(scope="module")
def entries(files: dict[str, str]) -> dict[str, dict]:
    catalog = json.loads(files["catalog/catalog.json"])
    return {entry["id"]: entry for entry in catalog["services"]}


def _get(doc, path):
    for part in path:
        try:
            doc = doc[part]
        except (KeyError, IndexError):
            return ABSENT
    return doc


def _set(doc, path, value):
    for part in path[:-1]:
        doc = doc[part]
    doc[path[-1]] = value


def _patched_seed(seed: dict, ours: dict, service_id: str) -> dict:
    """The seed with our values at the declared differences, after checking each one."""
    patched = copy.deepcopy(seed)
    for diff in differences_for(service_id):
        if _get(seed, diff.path) is ABSENT and _get(ours, diff.path) is ABSENT:
            continue  # the difference lies in a part this document does not show
        assert _get(seed, diff.path) == diff.seed_value, (service_id, diff.path)
        assert _get(ours, diff.path) != diff.seed_value, (service_id, diff.path)
        _set(patched, diff.path, _get(ours, diff.path))
    return patched


def test_search_answers_the_seed_query_like_the_live_marketplace(files: dict[str, str]) -> None:
    """Seed 003 is the live search's answer to one query: our search over our catalog
    answers the same query with the same document keys, total, expanded terms, filters,
    number of results and top hit, and lists every service the seed shows."""
    catalog = json.loads(files["catalog/catalog.json"])
    document = CatalogDocument.model_validate(catalog)
    categories = Categories.model_validate_json(files[CATEGORIES_FILE])  # the synonyms
    found = CatalogSearch(document, categories).search(
        SEARCH["query"], limit=SEARCH["filters"]["limit"]
    )
    answer = found.to_json()
    assert list(answer) == list(SEARCH)
    assert answer["total"] == SEARCH["total"] == len(catalog["services"])
    assert answer["expandedTerms"] == SEARCH["expandedTerms"]
    assert answer["filters"] == SEARCH["filters"]
    assert len(answer["services"]) == len(SEARCH["services"])
    assert answer["services"][0]["id"] == SEARCH["services"][0]["id"]
    assert {s["id"] for s in SEARCH["services"]} <= {e["id"] for e in catalog["services"]}


@pytest.mark.parametrize("seed_entry", SEARCH["services"], ids=lambda s: s["id"])
def test_catalog_entry_equals_seed(seed_entry: dict, entries: dict[str, dict]) -> None:
    seed = {k: v for k, v in seed_entry.items() if k not in RUNTIME_FIELDS}
    ours = entries[seed["id"]]
    assert ours == _patched_seed(seed, ours, seed["id"])


def test_payment_block_equals_seed(files: dict[str, str]) -> None:
    catalog = json.loads(files["catalog/catalog.json"])
    assert catalog["payment"] == SEARCH["payment"]
    assert catalog["schemaVersion"] == SEARCH["schemaVersion"]
    assert catalog["total"] == 44


def test_every_declared_difference_is_a_real_one(entries: dict[str, dict]) -> None:
    seeds = {s["id"]: s for s in SEARCH["services"]}
    for defect in DEFECTS:
        for diff in defect.differences:
            if diff.service in seeds:
                assert _get(seeds[diff.service], diff.path) == diff.seed_value
            assert _get(entries[diff.service], diff.path) != diff.seed_value


class _PageText(HTMLParser):
    """Visible text of a page: tags stripped, <head> skipped, source line breaks kept."""

    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self.in_head = False

    def handle_starttag(self, tag, attrs):
        self.in_head |= tag == "head"

    def handle_endtag(self, tag):
        if tag == "head":
            self.in_head = False

    def handle_data(self, data):
        if not self.in_head:
            self.parts.append(data)


def _lines(text: str) -> list[str]:
    """Whitespace-normalized non-empty lines."""
    return [" ".join(line.split()) for line in text.splitlines() if line.strip()]


def page_lines(html: str) -> list[str]:
    parser = _PageText()
    parser.feed(html)
    return _lines("".join(parser.parts))


def _split_schema(lines: list[str]) -> tuple[list[str], dict]:
    """The lines before the schema block, and the block (lines after it are ignored)."""
    start = lines.index("{")
    block, _ = json.JSONDecoder().raw_decode("\n".join(lines[start:]))
    return lines[:start], block


SEED_SECTIONS = ("Invocation", "Payment", "Schema And Examples")


def _sections(lines: list[str]) -> list[list[str]]:
    """``lines`` cut before each of the live page's section headings."""
    cuts = [0, *(lines.index(heading) for heading in SEED_SECTIONS), len(lines)]
    return [lines[a:b] for a, b in zip(cuts, cuts[1:])]


def _runs_in_order(runs: list[list[str]], lines: list[str]) -> bool:
    """Each run occurs in ``lines`` unbroken, after the previous one (the doc site adds
    sections and lines between the live page's, never inside one or in another order)."""
    position = 0
    for run in runs:
        starts = range(position, len(lines) - len(run) + 1)
        start = next((i for i in starts if lines[i : i + len(run)] == run), None)
        if start is None:
            return False
        position = start + len(run)
    return True


def _expected_lines(seed_lines: list[str], ours: dict, service_id: str) -> list[str]:
    head, block = _split_schema(seed_lines)
    patched = _patched_seed(block, ours, service_id)
    return head + _lines(json.dumps(patched, ensure_ascii=False, indent=2, sort_keys=True))


@pytest.mark.parametrize("seed_file", sorted(DOC_SEEDS))
def test_doc_page_text_equals_seed(seed_file: str, files, entries) -> None:
    service_id = DOC_SEEDS[seed_file]
    seed_lines = _lines((SEEDS / seed_file).read_text(encoding="utf-8"))
    ours = page_lines(files[f"docs/tools/{service_id}.html"])
    expected = _expected_lines(seed_lines, entries[service_id], service_id)
    assert _runs_in_order(_sections(expected), ours), (expected, ours)


def test_doc_page_matches_alternative_extraction(files, entries) -> None:
    """Seed 004 is another text extraction of the same layout: the invocation list
    first with its items run together ("value- Label"), the intro after it, then the
    invocation values and the first payment paragraph concatenated, then the rest.
    Each block must equal ours, line for line, in order."""
    seed_file, service_id = ALT_DOC_SEED
    raw = _lines((SEEDS / seed_file).read_text(encoding="utf-8"))
    seed: list[str] = []
    for line in raw:
        seed.extend(part.strip() for part in line.split("- ") if part.strip())
    ours = page_lines(files[f"docs/tools/{service_id}.html"])
    invocation = ours[ours.index("Invocation") : ours.index("Payment")]
    intro = ours[ours.index("Paid API service") : ours.index("Paid API service") + 3]
    payment_intro, payment_hint = ours[ours.index("Payment") + 1 : ours.index("Payment") + 3]
    assert seed[: len(invocation)] == invocation
    rest = seed[len(invocation) :]
    assert rest[:2] == [intro[0], intro[2]]  # the extraction drops the <h1> name
    values = "".join(invocation[2:-2:2])  # every invocation value but the price
    assert rest[2] == values + payment_intro
    assert rest[3] == payment_hint
    head, block = _split_schema(rest[3:])
    assert head == [payment_hint]
    _, our_block = _split_schema(ours)
    assert our_block == _patched_seed(block, entries[service_id], service_id)


@pytest.mark.parametrize("defect", DEFECTS, ids=lambda d: d.name)
def test_compiler_catches_defect_when_put_back(defect, real_catalog_data, tmp_path: Path) -> None:
    defect.put_back(real_catalog_data)
    result = compile_catalog(write_catalog(tmp_path / "catalog.yaml", real_catalog_data))
    flagged = [d for d in result.diagnostics if d.rule == defect.rule]
    assert flagged, [d.format() for d in result.diagnostics]
    services = {diff.service for diff in defect.differences}
    for diagnostic in flagged:
        assert any(f"'{s}'" in diagnostic.message for s in services), diagnostic.format()
    if result.ok:  # a warning: the output is then the live data again
        seeds = {s["id"]: s for s in SEARCH["services"]}
        catalog = json.loads(result.files["catalog/catalog.json"])
        for entry in catalog["services"]:
            for diff in defect.differences:
                if diff.service == entry["id"] and entry["id"] in seeds:
                    assert _get(entry, diff.path) == diff.seed_value
