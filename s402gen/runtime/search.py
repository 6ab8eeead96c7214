"""Catalog search: rank the compiled catalog's services for a query, English or Chinese.

Answers in the ``server402.catalog.search.v1`` format: the query, the terms
it expanded to, and per service a ``matchScore``, the ``matchTerms`` that
scored and a ``why`` sentence. Query expansions come from the catalog: each
category's ``synonyms`` (:class:`Categories`), applied to that category's
services only; ``category`` filters the answer.

The engine is SQLite FTS5, one in-memory database built at start from the
catalog (:mod:`~s402gen.runtime.search_index`, which says how words, phrases
and Chinese match). A query scores :data:`SCORE_ID` when it is a service's id,
:data:`SCORE_PHRASE` where its words appear as a phrase, :data:`SCORE_ALIAS` per
word among the aliases' words (else :data:`SCORE_TEXT` per word in the text) and
:data:`SCORE_EXPANDED` per expanded term; ties go in catalog order.

Each term's rowids are kept, as the bits of an int, for the recent statements
(a new query's terms are mostly those of earlier ones); the scores of every
matched service are summed at once by int operations on those bits
(:class:`~s402gen.runtime.search_index.Scores`), and the best ``limit`` picked
score level by score level. The rankings of recent queries are kept, and only
the answered page's entries are read (:meth:`CatalogSearch.answer_body`). The
recent answers are kept as the JSON bytes sent (:meth:`CatalogSearch.answer_body`),
reused while the listed services' ``quality`` is unchanged. A new query whose
statements are all kept needs no SQLite: the app ranks it on its event loop.
"""

from __future__ import annotations

import itertools
import threading
from typing import Any, Callable, Iterable, Sequence

import orjson
from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel

from . import jsonio
from .contract import CatalogDocument, CatalogEntry, Quality
from .recent import Recent
from .search_index import (
    CATEGORY_SQL,
    IndexBusy,
    Scores,
    SearchIndex,
    SearchRow,
    Statement,
    words,
)
from .search_warm import WARM_MATCH_BYTES, Listed, PackedEntries, why

#: Where a build writes the declared categories (:class:`Categories`), under ``generated/``.
CATEGORIES_FILE = "catalog/categories.json"


class CategoryInfo(BaseModel):
    """One declared category as published in :data:`CATEGORIES_FILE`: its labels, its
    services (ids, catalog order) and its search ``synonyms``: a query word (English, a
    whole word) or Chinese text (anywhere in the query) adds the terms it maps to."""

    model_config = ConfigDict(
        extra="forbid", frozen=True, alias_generator=to_camel, populate_by_name=True
    )

    id: str
    label: str
    label_zh: str
    description: str
    synonyms: dict[str, list[str]]
    services: list[str]


class Categories(BaseModel):
    """The content of :data:`CATEGORIES_FILE` (absent when the catalog declares none)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    categories: list[CategoryInfo]

    def to_json(self) -> dict:
        """The JSON value, keys camelCase."""
        return self.model_dump(by_alias=True, mode="json")


SCORE_ID = 200  # the query is the service id (or its tool name)
SCORE_PHRASE = 50  # the whole query appears in the name, keywords or searchText
SCORE_ALIAS = 20  # a query word is one of the aliases' words
SCORE_TEXT = 5  # a query word appears in the searchText
SCORE_EXPANDED = 3  # an expanded term appears in the searchText
DEFAULT_LIMIT = 10
MAX_LIMIT = 50
#: Longest query (characters) searched; a longer one is refused (HTTP 422, an MCP error):
#: a 2 MB query ran seconds of SQL under the index's lock and kept megabytes.
MAX_QUERY_CHARS = 256
#: Rankings kept per search (query, limit, category): a repeated query costs no SQL.
RANK_CACHE_SIZE = 1024
#: Listed entries kept as bytes per search (:meth:`CatalogSearch.answer_body`), and those
#: bytes in all: ~750 entries at 2,000 services (each ~11 kB).
LISTED_CACHE_SIZE = 2048
LISTED_CACHE_BYTES = 8 << 20
#: Statements whose rowids are kept (:meth:`CatalogSearch._rows`), and their bytes in all
#: (one bit a service: 250 bytes a statement at 2,000 services).
MATCH_CACHE_SIZE = 4096
MATCH_CACHE_BYTES = 4 << 20
#: Listed services' ``quality`` kept as bytes, per version (:meth:`CatalogSearch.answer_body`).
QUALITY_CACHE_SIZE = 4096
#: Bytes of recent answers kept ready to send (:meth:`CatalogSearch.answer_body`): ~70
#: answers of 10 results at 2,000 services (each whole entry ~11 kB).
BODY_CACHE_BYTES = 8 << 20

#: A new query of at most this many words is ranked where asked (the event loop) when every
#: statement it needs has its rowids kept: no SQLite, ~0.1-0.3 ms (:meth:`CatalogSearch._rank`).
LOOP_WORDS = 16
#: Statements such a query may run where asked all the same (:meth:`CatalogSearch._rank`),
#: each an index lookup (~0.1-2.5 ms at 2,000 services): a new phrase's statement there
#: costs less than a worker thread's trips for the GIL under a busy loop (~5 ms each).
LOOP_STATEMENTS = 2

#: A search's normalized arguments: the query stripped, the limit clamped, no category
#: as ``None`` (:meth:`CatalogSearch.key`).
SearchKey = tuple[str, int, "str | None"]


def _int_bytes(bits: int) -> int:
    return bits.bit_length() // 8 + 1


#: A ranking: the expansions, the total and ``(position, score, matchTerms)`` best first.
_Ranking = tuple[dict[str, list[str]], int, list[tuple[int, int, list[str]]]]


class _NeedsSQLite(Exception):
    """A ranking asked not to wait needs a statement whose rowids are not kept (its one
    argument; ``None``: the empty query's)."""


#: A ranking's listed entries: the expansions, the total and
#: ``(position, entry, score, matchTerms)``.
_Listing = tuple[dict[str, list[str]], int, list[tuple[int, "Listed", int, list[str]]]]


class CatalogSearch:
    """Search over a compiled catalog document (catalog.json) and its categories.

    ``CatalogSearch(document, categories)`` indexes ``document.services``. The
    app uses :meth:`from_rows` instead, with only the indexed fields in memory
    and ``entry(position)`` reading a whole entry when an answer lists it.
    """

    def __init__(self, catalog: CatalogDocument, categories: Categories | None = None):
        services = catalog.services
        self._setup(
            catalog.model_copy(update={"services": []}),
            [SearchRow.of(entry) for entry in services],
            services.__getitem__,
            categories,
        )

    @classmethod
    def from_rows(
        cls,
        document: CatalogDocument,
        rows: Sequence[SearchRow],
        entry: Callable[[int], CatalogEntry],
        categories: Categories | None = None,
    ) -> "CatalogSearch":
        """A search over ``rows`` (catalog order); ``document`` gives an answer's other
        fields; ``entry(position)`` is the whole entry at a catalog position."""
        search = cls.__new__(cls)
        search._setup(document, rows, entry, categories)
        return search

    def _setup(
        self,
        document: CatalogDocument,
        rows: Sequence[SearchRow],
        entry: Callable[[int], CatalogEntry],
        categories: Categories | None,
    ) -> None:
        self.catalog = document
        self.synonyms = {c.id: c.synonyms for c in (categories.categories if categories else [])}
        self.index = SearchIndex(rows)
        self._entry = entry
        # the catalog does not change while served: a repeated query is not ranked again
        self._ranks = Recent(RANK_CACHE_SIZE)
        self._entries = Recent(LISTED_CACHE_SIZE, LISTED_CACHE_BYTES, Listed.weight)
        self._match_cache = Recent(MATCH_CACHE_SIZE, MATCH_CACHE_BYTES, _int_bytes)
        self._bodies = Recent(RANK_CACHE_SIZE, BODY_CACHE_BYTES, lambda kept: len(kept[0]))
        self._qualities = Recent(QUALITY_CACHE_SIZE)  # (service id, version): quality's bytes
        # read ahead by warm(): every entry packed, every one-word statement's rowids
        self._packed = PackedEntries()
        #: set by :meth:`warm` once every entry is packed (until then an answer may need the
        #: disk, and statements run on the loop for it would be run for nothing)
        self._every_entry_packed = False
        self._warmed: dict[Statement, int] = {}
        self._document_json = document.to_json()

    def _rank(self, key: SearchKey, wait: bool = True, statements: int = 0) -> _Ranking | None:
        """The ranking of ``key`` (kept for the recent ones). ``wait=False``: ``None`` when
        it needs SQLite (a statement whose rowids are not kept, or the empty query) or the
        query has more than :data:`LOOP_WORDS` words; but up to ``statements`` statements
        that look their rows up in an index (:meth:`SearchIndex.indexed`) are run here,
        when no other thread is running one."""
        found = self._ranks.get(key)
        if found is None:
            query, limit, category = key
            if not wait and (not query or len(words(query)) > LOOP_WORDS):
                return None
            expansions = self.expand(query)
            while True:
                try:
                    ranked = self._ranked(query, expansions, limit, category, wait)
                    break
                except _NeedsSQLite as needs:
                    statement = needs.args[0]
                    if statement is None or statements <= 0 or not self.index.indexed(statement):
                        return None
                    try:
                        self._match_cache.put(statement, self.index.select(statement, False))
                    except IndexBusy:
                        return None
                    statements -= 1
            found = self._ranks.put(key, (expansions, *ranked))
        return found

    def expand(self, query: str) -> dict[str, list[str]]:
        """Per category, the terms its synonyms add for ``query`` (sorted, as the live
        catalog lists them); categories that add none are left out."""
        lowered = query.lower()
        query_words = words(lowered)
        found: dict[str, list[str]] = {}
        for category, synonyms in self.synonyms.items():
            terms: set[str] = set()
            for trigger, more in synonyms.items():
                key = trigger.lower()
                if (key in query_words) if key.isascii() else (key in lowered):
                    terms.update(more)
            if terms:
                found[category] = sorted(terms)
        return found

    def _ranked(
        self,
        query: str,
        expansions: dict[str, list[str]],
        limit: int,
        category: str | None,
        wait: bool = True,
    ) -> tuple[int, list[tuple[int, int, list[str]]]]:
        """The number of matching services and the first ``limit`` of them, best first:
        ``(position, score, matchTerms)``. Raises :class:`_NeedsSQLite` if ``wait`` is false
        and a statement's rowids are not kept."""
        filters = " WHERE rowid IN (SELECT rowid FROM services WHERE category = ?)"  # no query
        if not query:
            if not wait:
                raise _NeedsSQLite(None)
            where, params = (filters, [category]) if category else ("", [])
            (total,) = self.index.query(f"SELECT count(*) FROM services{where}", params)[0]
            found = self.index.query(
                f"SELECT rowid FROM services{where} ORDER BY rowid LIMIT ?", [*params, limit]
            )
            return total, [(rowid - 1, 0, []) for (rowid,) in found]
        query_words = words(query)
        phrase = " ".join(query_words)
        labels: list[str | None] = []
        # (label index, weight, rowids as bits): the ids' part (-1) labels nothing
        parts: list[tuple[int, int, int]] = [(-1, SCORE_ID, self.index.ids(query.lower()))]

        def text(term: str) -> int | None:
            statements = self.index.text_match(term)
            if not statements:
                return None
            rows = self._rows(statements[0], wait)
            for statement in statements[1:]:
                rows &= self._rows(statement, wait)
            return rows

        def add(rows: int | None, weight: int, label: str | None) -> None:
            if rows is not None:
                parts.append((len(labels), weight, rows))
            labels.append(label)

        if phrase:
            add(text(phrase), SCORE_PHRASE, phrase)
        for word in dict.fromkeys(query_words):
            alias = self._rows(self.index.alias_match(word), wait)
            parts.append((len(labels), SCORE_ALIAS, alias))
            found = text(word)  # scores only where the word is not an alias's
            add(
                None if found is None else found & ~alias,
                SCORE_TEXT,
                word if word != phrase else None,
            )
        for category_id, terms in expansions.items():
            members = self._category(category_id, wait)
            for term in terms:
                found = text(term.lower())
                add(None if found is None else found & members, SCORE_EXPANDED, term)
        scores = Scores()
        matched = 0
        for _, weight, rows in parts:
            if rows:
                scores.add(rows, weight)
                matched |= rows
        if category:
            matched &= self._category(category, wait)
        ranked = []
        for rowid, score in scores.best(matched, limit):
            terms = [
                label
                for index, _, rows in parts
                if index >= 0 and (label := labels[index]) is not None and rows >> rowid & 1
            ]
            ranked.append((rowid - 1, score, terms))
        return matched.bit_count(), ranked

    def _rows(self, statement: Statement | None, wait: bool = True) -> int:
        """The rowids that ``statement`` selects (none for ``None``), as the bits of an int,
        kept for the recent statements (:data:`MATCH_CACHE_BYTES` in all): the terms of a
        new query are mostly those of earlier ones. Raises :class:`_NeedsSQLite` if
        ``wait`` is false and they are not kept."""
        if statement is None:
            return 0
        found = self._warmed.get(statement)
        if found is None:
            found = self._match_cache.get(statement)
        if found is None:
            if not wait:
                raise _NeedsSQLite(statement)
            found = self._match_cache.put(statement, self.index.select(statement))
        return found

    def warm(self, stop: threading.Event | None = None) -> None:
        """Read ahead what new queries need, so that their answers need neither SQLite nor
        the disk (or less of it): the rowids of each statement the categories' synonyms add
        and each a one-word query of one of the index's terms runs
        (:meth:`~s402gen.runtime.search_index.SearchIndex.term_statements`;
        :data:`~s402gen.runtime.search_warm.WARM_MATCH_BYTES` in all), then every catalog
        entry as a search answer lists it, packed (:class:`~.search_warm.PackedEntries`).

        Answers do not change: the same statements on the same index, the same entries
        (the generated folder is not rebuilt under a running gateway: an entry packed is
        what its file held then).
        The app runs it in a thread after start (~0.3 s CPU for the statements and ~0.8 s
        for the entries at 2,000 services; :func:`~.search_warm.warm_in_background`) and
        it returns early once ``stop`` is set. Raises
        :class:`~s402gen.runtime.generated.GeneratedError` if an entry's file is gone.
        """
        kept = 0
        expanded: list[Statement | None] = []  # what a query's synonyms add
        for category, synonyms in self.synonyms.items():
            expanded.append((CATEGORY_SQL, (category,)))
            for term in dict.fromkeys(t for terms in synonyms.values() for t in terms):
                expanded += self.index.text_match(term.lower())
        statements = [s for s in dict.fromkeys(expanded) if s is not None]
        for statement in itertools.chain(statements, self.index.term_statements()):
            if stop is not None and stop.is_set():
                return
            if kept >= WARM_MATCH_BYTES:
                break
            if statement not in self._warmed:
                self._warmed[statement] = rows = self.index.select(statement)
                kept += _int_bytes(rows) + 100
        for position in range(len(self.index.rows)):
            if (stop is not None and stop.is_set()) or self._packed.full():
                return
            if position not in self._packed:
                self._packed.put(position, Listed.of(self._entry(position).to_json()))
        self._every_entry_packed = True

    def _category(self, category: str, wait: bool = True) -> int:
        """The rowids of ``category``'s services, as bits (:meth:`_rows`)."""
        return self._rows((CATEGORY_SQL, (category,)), wait)

    def search(
        self,
        query: str,
        limit: int = DEFAULT_LIMIT,
        quality: Callable[[str], Quality] | None = None,
        category: str | None = None,
    ) -> CatalogDocument:
        """The search answer for ``query``; ``limit`` is clamped to 1..:data:`MAX_LIMIT`;
        ``category`` (an id) keeps only that category's services (none when unknown).

        ``quality(service_id)`` adds each result's runtime ``quality``. Blocks
        while SQLite runs: the app calls it off the event loop.
        """
        query, limit, category = self.key(query, limit, category)
        ranking = self._rank((query, limit, category))
        assert ranking is not None  # it waits for SQLite
        expansions, total, ranked = ranking
        services = [
            self._result(self._entry(position), score, terms, quality)
            for position, score, terms in ranked
        ]
        head = self._head((query, limit, category), expansions, total)
        return self.catalog.model_copy(
            update={
                "query": query,
                "expanded_terms": head["expandedTerms"],
                "filters": head["filters"],
                "total": total,
                "services": services,
            }
        )

    @staticmethod
    def key(query: str, limit: int = DEFAULT_LIMIT, category: str | None = None) -> SearchKey:
        """The normalized arguments of a search (two searches with the same key answer the
        same): ``query`` stripped (without the phrase marker), ``limit`` clamped to
        1..:data:`MAX_LIMIT`, an empty ``category`` as ``None``."""
        return query.strip().replace("\ue000", ""), max(1, min(limit, MAX_LIMIT)), category or None

    def answer_json(
        self,
        query: str,
        limit: int = DEFAULT_LIMIT,
        quality: Callable[[str], Quality] | None = None,
        category: str | None = None,
        *,
        wait: bool = True,
        statements: int = 0,
    ) -> dict[str, Any] | None:
        """``search(...).to_json()``, built from each listed entry's JSON (``entry(position)``
        read again: the app's are kept by :meth:`~s402gen.runtime.generated.Generated.entry`)
        instead of copying the entries' models: :meth:`answer_body`'s answer as a value
        (the app sends :meth:`answer_body`'s bytes; the tests hold them to this).

        With ``wait=False``, ``None`` unless the answer needs neither SQLite nor the disk:
        its ranking is kept, or the rowids of every statement it needs (a query of at
        most :data:`LOOP_WORDS` words), and every listed entry is among the recent ones.
        The app then builds it on the event loop (~0.1-0.5 ms); else it calls again in
        a thread. Up to ``statements`` of the statements it needs run here all the same,
        when each is an index lookup and the index is free (:meth:`_rank`); the app
        allows :data:`LOOP_STATEMENTS`.
        """
        key = self.key(query, limit, category)
        listing = self._listing(key, wait, statements)
        return None if listing is None else self._document(key, listing, quality)

    def answer_body(
        self,
        query: str,
        limit: int = DEFAULT_LIMIT,
        quality: Callable[[str], Quality] | None = None,
        category: str | None = None,
        *,
        version: Callable[[str], int] | None = None,
        wait: bool = True,
        statements: int = 0,
    ) -> bytes | None:
        """:meth:`answer_json` as the JSON bytes sent (``jsonio.dumps``), kept for the recent
        answers (:data:`BODY_CACHE_BYTES` in all) and answered again by :meth:`cached_body`.

        ``version(service_id)`` (:meth:`~s402gen.runtime.service.Stats.version`) changes
        whenever ``quality(service_id)`` may: a kept answer is reused while it is the same
        for every service listed. With ``quality`` but no ``version`` nothing is kept.
        ``wait=False``: ``None`` when the answer needs SQLite or the disk (as answer_json,
        and ``statements`` as there).
        """
        key = self.key(query, limit, category)
        found = self.cached_body(key, quality is not None, version)
        if found is not None:
            return found
        listing = self._listing(key, wait, statements)
        if listing is None:
            return None
        stamps: list[tuple[str, int]] = []
        body = self._spliced(key, listing, quality, version, stamps)
        if body is None:  # an entry orjson cannot write: the whole answer as jsonio writes it
            if not wait:
                return None  # its entries' models are read again: the disk
            stamps.clear()
            body = jsonio.dumps(self._document(key, listing, quality, version, stamps))
        if quality is None or version is not None:
            self._bodies.put((*key, quality is not None), (body, tuple(stamps)))
        return body

    def cached_body(
        self, key: SearchKey, quality: bool = True, version: Callable[[str], int] | None = None
    ) -> bytes | None:
        """The kept answer (:meth:`answer_body`) of the search of ``key`` (:meth:`key`), with
        ``quality`` or without, if still the same: ``version(service_id)`` unchanged for
        every listed service; else ``None``. Needs neither SQLite nor the disk."""
        found = self._bodies.get((*key, quality))
        if found is None:
            return None
        body, stamps = found
        if quality and (version is None or any(version(s) != n for s, n in stamps)):
            return None
        return body

    def _listing(self, key: SearchKey, wait: bool, statements: int = 0) -> _Listing | None:
        """The ranking of ``key`` and its listed entries; with ``wait=False``, ``None`` when
        they need SQLite (:meth:`_rank`, and ``statements`` there, which run only once
        every entry is packed: until then the entries may need the disk anyway) or the disk
        (an entry neither kept nor packed by :meth:`warm`)."""
        ranking = self._rank(key, wait, statements if self._every_entry_packed else 0)
        if ranking is None:
            return None
        expansions, total, ranked = ranking
        listed = []
        for position, score, terms in ranked:
            entry = self._entries.get(position)
            if entry is None:
                entry = self._packed.get(position)  # in memory, unpacked: no disk
                if entry is None and not wait:
                    return None
                if entry is None:
                    entry = Listed.of(self._entry(position).to_json())
                self._entries.put(position, entry)
            listed.append((position, entry, score, terms))
        return expansions, total, listed

    def _head(self, key: SearchKey, expansions: dict[str, list[str]], total: int) -> dict:
        """The answer's fields but ``services``."""
        query, limit, category = key
        filters: dict[str, Any] = {"limit": limit}
        if category:
            filters["category"] = category
        return {
            **self._document_json,
            "query": query,
            "expandedTerms": sorted({t for terms in expansions.values() for t in terms}),
            "filters": filters,
            "total": total,
        }

    def _document(
        self,
        key: SearchKey,
        listing: _Listing,
        quality: Callable[[str], Quality] | None,
        version: Callable[[str], int] | None = None,
        stamps: list[tuple[str, int]] | None = None,
    ) -> dict[str, Any]:
        """The answer's JSON value; with ``version``, appends to ``stamps`` each listed
        service's version, read before its quality."""
        expansions, total, listed = listing
        services = []
        for position, entry, score, terms in listed:
            item: dict[str, Any] = {}
            for name, value in self._entry(position).to_json().items():
                item[name] = value
                if name == "payment" and quality is not None:  # quality's place in the entry
                    if version is not None and stamps is not None:
                        stamps.append((entry.id, version(entry.id)))
                    item["quality"] = quality(entry.id).to_json()
            item.update(entry.matched(score, terms))
            services.append(item)
        return {**self._head(key, expansions, total), "services": services}

    def _spliced(
        self,
        key: SearchKey,
        listing: _Listing,
        quality: Callable[[str], Quality] | None,
        version: Callable[[str], int] | None,
        stamps: list[tuple[str, int]],
    ) -> bytes | None:
        """``jsonio.dumps(self._document(...))``, each listed entry's bytes spliced from its
        kept halves (:class:`Listed`) instead of written again; ``None`` when an entry or
        the answer's other fields need ``jsonio.dumps``' fallback."""
        expansions, total, listed = listing
        services = []
        for _, entry, score, terms in listed:
            if entry.head is None:
                return None
            parts = [entry.head]
            if entry.tail is not None and quality is not None:
                if version is None:
                    written = orjson.dumps(quality(entry.id).to_json())
                else:  # the same version, the same quality: its bytes are kept
                    stamp = (entry.id, version(entry.id))
                    stamps.append(stamp)
                    written = self._qualities.get(stamp)
                    if written is None:
                        written = orjson.dumps(quality(entry.id).to_json())
                        self._qualities.put(stamp, written)
                parts += (b',"quality":', written, entry.tail)
            elif entry.tail is not None:
                parts.append(entry.tail)
            parts += (b",", orjson.dumps(entry.matched(score, terms))[1:])
            services.append(orjson.Fragment(b"".join(parts)))
        try:
            return orjson.dumps({**self._head(key, expansions, total), "services": services})
        except TypeError:  # an integer beyond 64 bits
            return None

    @staticmethod
    def _result(
        entry: CatalogEntry,
        score: int,
        terms: Iterable[str],
        quality: Callable[[str], Quality] | None,
    ) -> CatalogEntry:
        terms = list(terms)
        pricing = entry.pricing
        return entry.model_copy(
            update={
                "quality": quality(entry.id) if quality is not None else None,
                "match_score": score,
                "match_terms": terms,
                "why": why(
                    terms, entry.name, pricing.amount_cents, pricing.currency, pricing.policy_id
                ),
            }
        )
