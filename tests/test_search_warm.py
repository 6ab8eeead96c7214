"""The search's read-ahead after start (:meth:`CatalogSearch.warm`) and the statements a
search may run on the event loop: answers stay byte-for-byte the same, warming spares
SQLite and the disk, the app starts it without waiting for it, and it stops when asked."""

from __future__ import annotations

import threading

import pytest

from s402gen.runtime.generated import load_generated
from s402gen.runtime.payments import Ledger
from s402gen.runtime.search import LOOP_STATEMENTS, CatalogSearch
from s402gen.runtime.search_warm import Listed, PackedEntries

from .conftest import GENERATED, LOOPBACK_BASE

#: One-word queries (their statements and the synonyms' are warmed) and others.
ONE_WORD = ("face", "detect", "liveness", "7", "upscale", "vehicle", "FACE", "enhance")
OTHERS = ("face 7", "body pose 41", "人脸检测 2", "compare two faces", "增强", "", "zzqq")


def _search(reads: list[int] | None = None) -> CatalogSearch:
    """A search over the built example catalog; ``reads`` collects the entries read."""
    generated = load_generated(GENERATED)

    def entry(position: int):
        if reads is not None:
            reads.append(position)
        return generated.entry(position)

    return CatalogSearch.from_rows(generated.document, generated.rows, entry, generated.categories)


def _no_sqlite(search: CatalogSearch) -> None:
    def refuse(sql: str, parameters: object, wait: bool = True) -> list:
        raise AssertionError(f"SQLite ran {sql}")

    search.index.query = refuse  # type: ignore[method-assign]


def test_warming_answers_new_one_word_queries_without_sqlite_or_the_disk() -> None:
    """After warm(), a new one-word query of the index's terms (and its synonyms' terms) is
    answered where asked (``wait=False``: the event loop) from memory, with the bytes a
    search that never warmed sends."""
    reads: list[int] = []
    warmed, fresh = _search(reads), _search()
    warmed.warm()
    assert sorted(set(reads)) == list(range(len(warmed.index.rows)))  # every entry, once
    reads.clear()
    _no_sqlite(warmed)
    for limit in (1, 10, 50):
        for query in ONE_WORD:
            body = warmed.answer_body(query, limit, wait=False)
            assert body is not None, query
            assert body == fresh.answer_body(query, limit), query
    assert reads == []


def test_warming_does_not_change_any_answer() -> None:
    """Every kind of query, with and without a category, answers the same bytes warmed."""
    warmed, fresh = _search(), _search()
    warmed.warm()
    categories = [None, *warmed.synonyms]
    for query in ONE_WORD + OTHERS:
        for category in categories:
            assert warmed.answer_body(query, 10, category=category) == fresh.answer_body(
                query, 10, category=category
            ), (query, category)


def test_a_stopped_warming_keeps_nothing() -> None:
    """warm() returns at once when its stop event is set: nothing read ahead."""
    reads: list[int] = []
    search = _search(reads)
    stop = threading.Event()
    stop.set()
    search.warm(stop)
    assert reads == []
    assert search.answer_body("face", 10, wait=False) is None  # still needs SQLite


def test_the_loop_runs_a_few_index_statements_when_the_index_is_free() -> None:
    """With ``statements``, a search asked not to wait runs that many statements that look
    rows up in an index (a new phrase's) itself, and answers as a waiting search does; not
    when the index is in use (another thread's statement), nor a short Chinese word's
    statement, which reads every row."""
    search, fresh = _search(), _search()
    search.warm()
    assert search.answer_body("body pose", 10, wait=False) is None  # the phrase's statement
    busy = search.index._lock  # another thread running a statement
    with busy:
        assert search.answer_body("body pose", 10, wait=False, statements=1) is None
    body = search.answer_body("body pose", 10, wait=False, statements=1)
    assert body is not None and body == fresh.answer_body("body pose", 10)
    assert search.answer_body("增强", 10, wait=False, statements=LOOP_STATEMENTS) is None
    cold = _search()  # "face" needs more statements than that
    assert cold.answer_body("face", 10, wait=False, statements=LOOP_STATEMENTS) is None


def test_packed_entries_keep_their_bytes_within_the_budget() -> None:
    """An entry packed comes back with the same fields and bytes; none beyond the budget,
    and none without bytes (written from the model)."""
    search = _search()
    search.answer_body("face", 50)
    listed = [search._entries.get(n) for n in range(len(search.index.rows))]
    listed = [e for e in listed if e is not None]
    assert len(listed) > 3
    packed = PackedEntries(budget=10**9)
    for n, entry in enumerate(listed):
        packed.put(n, entry)
    assert [packed.get(n) for n in range(len(listed))] == listed
    small = PackedEntries(budget=1)
    small.put(0, listed[0])
    small.put(1, listed[1])
    assert small.get(0) == listed[0] and small.get(1) is None and small.full()
    no_bytes = Listed(listed[0].id, listed[0].name, listed[0].pricing, None, None)
    packed.put(len(listed), no_bytes)
    assert len(listed) not in packed


@pytest.mark.parametrize("warm", [True, False])
def test_the_app_warms_after_start_without_waiting(warm: bool, monkeypatch) -> None:
    """The app's lifespan starts warm() in a thread and serves at once (a warming that has
    not finished does not hold searches back), then stops and joins it at shutdown;
    ``warm_search=False`` starts none."""
    from fastapi.testclient import TestClient

    from s402gen.runtime.app import create_app

    started, release = threading.Event(), threading.Event()

    def slow_warm(self: CatalogSearch, stop: threading.Event | None = None) -> None:
        started.set()
        while not release.is_set() and not (stop is not None and stop.is_set()):
            release.wait(0.01)

    monkeypatch.setattr(CatalogSearch, "warm", slow_warm)
    app = create_app(GENERATED, ledger=Ledger(), warm_search=warm)
    with TestClient(app, base_url=LOOPBACK_BASE) as client:
        answer = client.get("/api/catalog/search", params={"q": "face detection"})
        assert answer.status_code == 200
        assert answer.json()["services"][0]["id"] == "face-detection"
        warming = app.state.search_warming
        if warm:
            assert started.wait(10) and warming.is_alive()
        else:
            assert warming is None and not started.is_set()
    if warm:
        assert not warming.is_alive()  # stopped and joined at shutdown, though not released


def test_warming_runs_at_a_short_switch_interval_and_restores_it() -> None:
    """The warming thread's file reads and statements each give up the GIL and take it back
    from a busy loop: it runs with Python's switch interval at WARM_SWITCH_INTERVAL_S, and
    the interval is back as it was when it ends."""
    import sys

    from s402gen.runtime.search_warm import WARM_SWITCH_INTERVAL_S, warm_in_background

    seen: list[float] = []

    class Warmer:
        def warm(self, stop: threading.Event | None = None) -> None:
            seen.append(sys.getswitchinterval())

    before = sys.getswitchinterval()
    thread, _ = warm_in_background(Warmer())
    thread.join(10)
    assert seen == [pytest.approx(min(before, WARM_SWITCH_INTERVAL_S))]
    assert sys.getswitchinterval() == before


def test_a_failed_warming_is_logged_and_restores_the_switch_interval(caplog) -> None:
    """An entry's file gone mid-warming stops the warming, logged; the server goes on (its
    answers read the entries as before and report a missing one themselves)."""
    import sys

    from s402gen.runtime.generated import GeneratedError
    from s402gen.runtime.search_warm import warm_in_background

    class Warmer:
        def warm(self, stop: threading.Event | None = None) -> None:
            raise GeneratedError("generated/ is not a complete s402gen output: gone.json")

    before = sys.getswitchinterval()
    thread, _ = warm_in_background(Warmer())
    thread.join(10)
    assert sys.getswitchinterval() == before
    assert "search warming stopped" in caplog.text and "gone.json" in caplog.text


def test_overlapping_warmings_put_the_switch_interval_back_as_it_was() -> None:
    """Two apps of one process may warm at once: the one that ends last, having found the
    short interval the first set, still puts back the interval before both."""
    import sys

    from s402gen.runtime.search_warm import WARM_SWITCH_INTERVAL_S, warm_in_background

    first_may_end, second_started = threading.Event(), threading.Event()

    class First:
        def warm(self, stop: threading.Event | None = None) -> None:
            first_may_end.wait(10)

    class Second:
        def warm(self, stop: threading.Event | None = None) -> None:
            second_started.set()
            first_may_end.wait(10)
            first.join(10)  # ends after the first

    before = sys.getswitchinterval()
    first, _ = warm_in_background(First())
    second, _ = warm_in_background(Second())
    assert second_started.wait(10)
    assert sys.getswitchinterval() == pytest.approx(min(before, WARM_SWITCH_INTERVAL_S))
    first_may_end.set()
    second.join(10)
    assert not first.is_alive() and not second.is_alive()
    assert sys.getswitchinterval() == before


def test_a_short_prefix_is_not_run_on_the_loop() -> None:
    """A last word shorter than SHORT_PREFIX, as a prefix, merges the postings of many terms
    (5-14 ms at 10,000 services): the loop leaves its statement to a thread."""
    from s402gen.runtime.search_index import SHORT_PREFIX

    search, fresh = _search(), _search()
    search.warm()
    (short,) = search.index.text_match("body p")
    (long,) = search.index.text_match("body pose")
    assert len("p") < SHORT_PREFIX <= len("pose")
    assert not search.index.indexed(short) and search.index.indexed(long)
    assert search.answer_body("body p", 10, wait=False, statements=LOOP_STATEMENTS) is None
    assert search.answer_body("body p", 10) == fresh.answer_body("body p", 10)


def test_the_loop_runs_no_statement_before_every_entry_is_packed() -> None:
    """Until warming has packed every entry, an answer may need the disk: the loop would run
    its statements for nothing, the search going to a thread anyway."""
    search = _search()
    run: list = []
    select = search.index.select

    def counting(statement, wait=True):
        run.append(statement)
        return select(statement, wait)

    search.index.select = counting  # type: ignore[method-assign]
    assert search.answer_body("body pose", 10, wait=False, statements=LOOP_STATEMENTS) is None
    assert run == []
    search.warm()
    run.clear()
    assert search.answer_body("body pose", 10, wait=False, statements=LOOP_STATEMENTS)
    assert run  # the phrase's statement, on the loop
