"""Search rankings against the rules ranked plainly: every matching service scored in a dict
(each term's FTS5 rowids as a set), all sorted by score then catalog order.

The search sums its scores otherwise (bit-sliced ints, the best picked level by level) and
keeps rankings, statements and answers between queries: on many queries x limits x
categories, each answer (ids, scores, ``matchTerms``, ``total``) must be the plain one, and
the bytes the app sends must be the search document's own JSON.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest
import yaml

from s402gen.runtime import jsonio
from s402gen.runtime.generated import Generated, load_generated
from s402gen.runtime.payments import Ledger
from s402gen.runtime.search import (
    SCORE_ALIAS,
    SCORE_EXPANDED,
    SCORE_ID,
    SCORE_PHRASE,
    SCORE_TEXT,
    CatalogSearch,
)
from s402gen.runtime.search_index import (
    ALIAS_SQL,
    CATEGORY_SQL,
    quote,
    unicode61_tokens,
    words,
)
from s402gen.runtime.service import ServiceRuntime

from .conftest import GENERATED, ROOT, run_cli

#: Queries of the kinds the gateway gets: words, phrases, ids, Chinese, mixed, numbers
#: appended (as serve_bench's "every query new" load), punctuation and FTS5 syntax.
QUERIES = (
    "face", "face detection", "人脸检测", "活体", "liveness", "body pose", "face-template-delete",
    "image enhance", "人脸", "compare two faces", "detect", "skin", "face 7", "face 123",
    "人脸 2", "2 人脸", "body pose 41", "detect 9", "compare two faces 3", "人脸检测 1",
    "upscale", "enhance", "object", "vehicle", "检测", "增强", "car parking", "pose estimation",
    "face template", "face-template", "FACE", "  face  ", "", "x", "de", "a", "the", "1", "2 3",
    '"face"', "face*", "face OR body", "NEAR(face body)", "face\ue000detection", "-", "é",
    "café face", "face 人脸 detection", "人", "检测服务器", "api tools", "/api/tools/face-search",
    "face_detection", "face-detection", "face-detection x", "recognize faces in a photo",
    "人脸，检测", "「人脸」", "人脸、", "，", "人脸😀检测", "人脸€检测", "人脸\u200b检测", "人\xad脸",
)  # fmt: skip
LIMITS = (1, 3, 10, 50)


def _plain(search: CatalogSearch, query: str, limit: int, category: str | None) -> tuple:
    """``(total, [(id, score, matchTerms)])`` by the rules, without the search's ranking."""
    query, limit, category = search.key(query, limit, category)
    if not query:
        return None  # every service in catalog order: no scores to sum

    def rows(sql: str, parameters: tuple) -> set[int]:
        return {rowid for (rowid,) in search.index.query(sql, parameters)}

    def text(term: str) -> set[int] | None:  # every statement run (none skipped)
        found = []
        if ascii_words := re.findall(r"[a-z0-9]+", term):
            table = "words" if len(ascii_words) == 1 else "phrases"
            phrase = " + ".join(quote(w) for w in ascii_words) + " *"
            found.append(rows(f"SELECT rowid FROM {table} WHERE {table} MATCH ?", (phrase,)))
        for other in re.findall(r"[^\x00-\x7f]+", term):
            if len(other) >= 3:
                found.append(rows("SELECT rowid FROM cjk WHERE cjk MATCH ?", (quote(other),)))
            else:
                found.append(rows("SELECT rowid FROM cjk WHERE instr(text, ?) > 0", (other,)))
        return set.intersection(*found) if found else None

    members = {c: rows(CATEGORY_SQL, (c,)) for c in {*search.synonyms, category} if c}
    ids = {
        n
        for n, row in enumerate(search.index.rows, 1)
        if query.lower() in (row.id, row.tool_name, row.internal_service_id)
    }
    scored: list[tuple[int, str | None, set[int]]] = [(SCORE_ID, None, ids)]
    query_words = words(query)
    phrase = " ".join(query_words)
    if phrase and (found := text(phrase)) is not None:
        scored.append((SCORE_PHRASE, phrase, found))
    for word in dict.fromkeys(query_words):
        label = word if word != phrase else None
        tokens = unicode61_tokens(word)  # each token among the aliases' (no positions kept)
        alias = rows(ALIAS_SQL, (" ".join(quote(t) for t in tokens),)) if tokens else set()
        scored.append((SCORE_ALIAS, label, alias))
        if (found := text(word)) is not None:
            scored.append((SCORE_TEXT, label, found - alias))
    for category_id, terms in search.expand(query).items():
        for term in terms:
            if (found := text(term.lower())) is not None:
                scored.append((SCORE_EXPANDED, term, found & members[category_id]))
    scores: dict[int, int] = {}
    for weight, _, found in scored:
        for rowid in found:
            scores[rowid] = scores.get(rowid, 0) + weight
    if category:
        scores = {r: score for r, score in scores.items() if r in members[category]}
    best = sorted(scores, key=lambda r: (-scores[r], r))[:limit]
    ranked = [
        (search.index.rows[r - 1].id, scores[r], [t for _, t, f in scored if t and r in f])
        for r in best
    ]
    return len(scores), ranked


def _check(generated: Generated, queries: tuple[str, ...], categories: list) -> int:
    """Every query x limit x category answers the plain ranking; the bytes of the app's
    answer are the search document's. The number of answers checked."""
    search = generated.search()
    stats = ServiceRuntime(generated.specs, ledger=Ledger(), upstream=None).stats
    for row in generated.rows[::7]:  # some services with calls: their quality differs
        stats.record(row.id, "success", 1.0)
    checked = 0
    for query in queries:
        for limit in LIMITS:
            for category in categories:
                document = search.search(query, limit, stats.quality, category)
                expected = _plain(search, query, limit, category)
                if expected is not None:
                    got = [(e.id, e.match_score, e.match_terms) for e in document.services]
                    assert (document.total, got) == expected, (query, limit, category)
                body = search.answer_body(
                    query, limit, stats.quality, category, version=stats.version
                )
                assert body == jsonio.dumps(document.to_json()), (query, limit, category)
                checked += 1
    return checked


def _build(catalog: Path, folder: Path) -> Path:
    """``s402gen build catalog`` into ``folder``; the generated folder."""
    out = folder / "generated"
    code, _, stderr = run_cli("build", str(catalog), "--out", str(out), "-q")
    assert code == 0, stderr
    return out


def _categories(generated: Generated) -> list[str | None]:
    declared = generated.categories.categories if generated.categories else []
    return [None, "nope", *(c.id for c in declared)]


def test_rankings_are_the_plain_rankings_at_44_services() -> None:
    generated = load_generated(GENERATED)
    numbered = tuple(f"{q} {n}" for q in QUERIES[:12] for n in (1, 2, 17, 300, 4567))
    assert _check(generated, QUERIES + numbered, _categories(generated)) > 1000


def test_rankings_are_the_plain_rankings_with_three_categories(tmp_path: Path) -> None:
    """The marketplace example: each category's synonyms reach only its services."""
    generated = load_generated(_build(ROOT / "examples" / "marketplace" / "catalog.yaml", tmp_path))
    assert len(_categories(generated)) == 5
    _check(generated, QUERIES, _categories(generated))


@pytest.mark.slow
def test_rankings_are_the_plain_rankings_at_2000_services(tmp_path: Path) -> None:
    """bench.py's synthetic catalog: 2,000 services, ties among copies of each service."""
    sys.path.insert(0, str(ROOT / "bench"))
    from bench import synthetic_catalog

    real = yaml.safe_load((ROOT / "catalog.yaml").read_text(encoding="utf-8"))
    catalog = tmp_path / "catalog.yaml"
    catalog.write_text(
        yaml.safe_dump(synthetic_catalog(real, 2000), allow_unicode=True, sort_keys=False),
        encoding="utf-8",
    )
    generated = load_generated(_build(catalog, tmp_path))
    _check(generated, QUERIES[:30], _categories(generated))


@pytest.mark.parametrize(
    "change",
    [
        lambda e: e,
        lambda e: {k: v for k, v in e.items() if k != "payment"},  # no quality's place
        lambda e: {**{k: v for k, v in e.items() if k != "payment"}, "payment": e["payment"]},
        lambda e: {"payment": e["payment"], **e},  # payment first
        lambda e: {**e, "sla": {"big": 2**70}},  # written by jsonio.dumps' fallback
        lambda e: {**e, "why": "kept"},  # a key the answer sets: its place is the entry's
        lambda e: {"id": e["id"], "quality": 1, **e},
    ],
)
def test_spliced_answer_bytes_are_the_answer_json_written(change) -> None:
    """answer_body splices each entry's kept bytes around its quality: the same bytes as
    the whole answer's JSON value written by jsonio.dumps, whatever the entry's keys."""
    generated = load_generated(GENERATED)
    entries = [change(generated.entry(n).to_json()) for n in range(len(generated.rows))]

    class Entry:  # what the search reads of an entry: its JSON value
        def __init__(self, value: dict) -> None:
            self.value = value

        def to_json(self) -> dict:
            return self.value

    search = CatalogSearch.from_rows(
        generated.document, generated.rows, lambda n: Entry(entries[n]), generated.categories
    )
    stats = ServiceRuntime(generated.specs, ledger=Ledger(), upstream=None).stats
    stats.record(generated.rows[0].id, "success", 1.0)
    for query, limit in (("face", 10), ("人脸检测 2", 3), ("", 1)):
        for quality in (stats.quality, None):
            body = search.answer_body(query, limit, quality, version=stats.version)
            assert body == jsonio.dumps(search.answer_json(query, limit, quality)), query
            if query == "" and quality is not None and "payment" in entries[0]:
                assert json.loads(body)["services"][0]["quality"]["callCount"] == 1


def test_a_new_query_of_kept_statements_needs_no_sqlite() -> None:
    """A word no service has costs no statement (FTS5's own terms show it matches nothing),
    so a new query of known terms and such a word is answered without SQLite, where the
    app asks (``wait=False``: its event loop); one needing a statement is not."""
    generated = load_generated(GENERATED)
    search, fresh = generated.search(), generated.search()
    search.answer_body("face", 10)
    run = search.index.query

    def no_sqlite(sql: str, parameters: object) -> list:
        raise AssertionError(f"SQLite ran {sql}")

    search.index.query = no_sqlite  # type: ignore[method-assign]
    for query in ("face 98765", "FACE 12345 zzzqqq", " face  qqq "):
        body = search.answer_body(query, 10, wait=False)
        assert body is not None and body == fresh.answer_body(query, 10), query
    assert search.answer_body("face detection", 10, wait=False) is None  # a new phrase
    assert search.answer_body("", 10, wait=False) is None
    assert search.answer_body("face " * 20 + "9", 10, wait=False) is None  # a long query
    search.index.query = run  # type: ignore[method-assign]
    assert search.answer_body("face detection", 10) == fresh.answer_body("face detection", 10)


def test_a_query_word_split_by_punctuation_is_searched_not_a_503() -> None:
    """A Chinese word with Chinese punctuation inside (``人脸，检测``) is several tokens to FTS5:
    quoted whole among the aliases, a phrase query the aliases table cannot run made every
    such search answer 503 "payment ledger busy"."""
    from fastapi.testclient import TestClient

    from s402gen.runtime.app import create_app

    from .conftest import LOOPBACK_BASE

    with TestClient(create_app(GENERATED, ledger=Ledger()), base_url=LOOPBACK_BASE) as client:
        answer = client.get("/api/catalog/search", params={"q": "人脸，检测"})
    assert answer.status_code == 200, answer.text
    assert answer.json()["services"][0]["id"] == "face-detection"


def test_unicode61_tokens_split_as_sqlites_tokenizer() -> None:
    """A word is one token to FTS5 exactly when unicode61_tokens finds one (quoted in a
    table keeping no positions, several tokens are a phrase SQLite refuses)."""
    import sqlite3

    db = sqlite3.connect(":memory:")
    db.execute(
        "CREATE VIRTUAL TABLE t USING fts5(x, content='', detail='none', "
        "tokenize='unicode61 remove_diacritics 0')"
    )
    for char in "😀€\u200b\xad\u0301_+々〇\ue000\u3000，-'a1é\x07":
        word = f"人脸{char}检测"
        try:
            db.execute("SELECT rowid FROM t WHERE t MATCH ?", (quote(word),)).fetchall()
            one = True
        except sqlite3.OperationalError:
            one = False
        assert one == (len(unicode61_tokens(word)) == 1), repr(char)


def test_a_query_longer_than_max_query_chars_is_refused() -> None:
    """A query over MAX_QUERY_CHARS answers FastAPI's 422 (it is not searched, on the event
    loop or in a thread); one of exactly that length is searched."""
    from fastapi.testclient import TestClient

    from s402gen.runtime.app import create_app
    from s402gen.runtime.search import MAX_QUERY_CHARS

    from .conftest import LOOPBACK_BASE

    with TestClient(create_app(GENERATED, ledger=Ledger()), base_url=LOOPBACK_BASE) as client:
        for _ in range(2):  # the second time, the early path has the first's key kept
            too_long = client.get("/api/catalog/search", params={"q": "人" * (MAX_QUERY_CHARS + 1)})
            assert too_long.status_code == 422, too_long.text
        fits = client.get("/api/catalog/search", params={"q": "face " * (MAX_QUERY_CHARS // 5)})
    assert fits.status_code == 200 and fits.json()["services"]
