"""Catalog search: rank the compiled catalog's services for a query, English or Chinese.

Answers in the ``server402.catalog.search.v1`` format: the query, the terms
it expanded to, and per service a ``matchScore``, the ``matchTerms`` that
scored and a ``why`` sentence. Query expansions come from the catalog: each
category's ``synonyms`` (:class:`Categories`), applied to that category's
services only; ``category`` filters the answer.

The engine is SQLite FTS5 (Python's own ``sqlite3``), one in-memory database
built at start from the catalog (:class:`SearchIndex`). English and other
space-separated words go through the ``unicode61`` tokenizer:

- ``aliases``: each alias's words (an exact word scores :data:`SCORE_ALIAS`);
- ``words``: ``searchText``; a query word matches the *start* of a word, so
  ``detect`` finds ``detection`` but ``pose`` no longer finds ``exposed``;
- ``phrases``: ``searchText`` with every run of punctuation kept as a marker
  token, so a phrase of query words matches only where the text has those
  words separated by spaces (``face template`` matches ``face template``,
  not ``face-template``), as the substring scan it replaces did.

Chinese has no spaces to split on: ``cjk`` (tokenizer ``trigram``) holds the
non-ASCII runs of ``searchText`` and a Chinese word matches as a substring;
words shorter than three characters use ``instr`` over the same column
(SQLite 3.40's trigram ``LIKE`` misses short non-ASCII patterns).

Each term is one SQL statement or the intersection of a few, whose rowids are
kept, as the bits of an int, for the recent statements (a new query's terms are
mostly those of earlier ones); the scores (:data:`SCORE_ID` ...) of every
matched service are summed at once by int operations on those bits
(:class:`_Scores`), and the best ``limit`` picked score level by score level.
The rankings of recent queries are kept, and only the answered page's entries
are read (:meth:`CatalogSearch.answer_json`). The
recent answers are kept as the JSON bytes sent (:meth:`CatalogSearch.answer_body`),
reused while the listed services' ``quality`` is unchanged.
"""

from __future__ import annotations

import re
import sqlite3
import threading
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Sequence

import orjson
from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel

from . import jsonio
from .contract import CatalogDocument, CatalogEntry, Quality
from .recent import Recent
from .spec import price_label

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


_WORD = re.compile(r"[a-z0-9]+|[^\x00-\x7f]+")
_NON_ASCII = re.compile(r"[^\x00-\x7f]+")
#: A run of anything but ASCII letters, digits and spaces: a phrase does not reach across it.
_BREAK = re.compile(r"[^a-z0-9\s]+")
_MARKER = " \ue000 "  # a private-use character: a token of its own to unicode61, never a query's

SCORE_ID = 200  # the query is the service id (or its tool name)
SCORE_PHRASE = 50  # the whole query appears in the name, keywords or searchText
SCORE_ALIAS = 20  # a query word is one of the aliases' words
SCORE_TEXT = 5  # a query word appears in the searchText
SCORE_EXPANDED = 3  # an expanded term appears in the searchText
DEFAULT_LIMIT = 10
MAX_LIMIT = 50
#: Rankings kept per search (query, limit, category): a repeated query costs no SQL.
RANK_CACHE_SIZE = 1024
#: Listed entries kept as JSON per search (:meth:`CatalogSearch.answer_json`).
ENTRY_JSON_CACHE_SIZE = 128
#: Statements whose rowids are kept (:meth:`CatalogSearch._rows`), and their bytes in all
#: (one bit a service: 250 bytes a statement at 2,000 services).
MATCH_CACHE_SIZE = 4096
MATCH_CACHE_BYTES = 4 << 20
#: Bytes of recent answers kept ready to send (:meth:`CatalogSearch.answer_body`): ~70
#: answers of 10 results at 2,000 services (each whole entry ~11 kB).
BODY_CACHE_BYTES = 8 << 20

#: A search's normalized arguments: the query stripped, the limit clamped, no category
#: as ``None`` (:meth:`CatalogSearch.key`).
SearchKey = tuple[str, int, "str | None"]
_TRIGRAM = 3  # the trigram tokenizer matches strings of at least 3 characters


def _int_bytes(bits: int) -> int:
    return bits.bit_length() // 8 + 1


def _words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


@dataclass(frozen=True)
class SearchRow:
    """What the index needs of one catalog entry (``discovery`` fields, lowercase or not)."""

    id: str
    tool_name: str
    internal_service_id: str
    category: str
    aliases: tuple[str, ...]
    search_text: str

    @classmethod
    def of(cls, entry: CatalogEntry) -> "SearchRow":
        """The row of a catalog entry."""
        d = entry.discovery
        return cls(
            entry.id,
            d.tool_name,
            entry.internal_service_id,
            entry.category,
            tuple(d.aliases),
            d.search_text,
        )


_ID_SQL = "SELECT rowid FROM ids WHERE key = ?"
_ALIAS_SQL = "SELECT rowid FROM aliases WHERE aliases MATCH ?"
_CATEGORY_SQL = "SELECT rowid FROM services WHERE category = ?"


def _quote(token: str) -> str:
    """An FTS5 string: double quotes, inner quotes doubled."""
    return '"' + token.replace('"', '""') + '"'


_SCHEMA = """
CREATE TABLE services (rowid INTEGER PRIMARY KEY, category TEXT NOT NULL);
CREATE INDEX services_category ON services (category, rowid);
CREATE TABLE ids (key TEXT NOT NULL, rowid INTEGER NOT NULL);
CREATE INDEX ids_key ON ids (key);
CREATE VIRTUAL TABLE aliases USING fts5(
    alias, content='', detail='none', tokenize='unicode61 remove_diacritics 0');
CREATE VIRTUAL TABLE words USING fts5(
    text, content='', detail='none', tokenize='unicode61 remove_diacritics 0');
CREATE VIRTUAL TABLE phrases USING fts5(
    phrase, content='', detail='full', tokenize='unicode61 remove_diacritics 0');
CREATE VIRTUAL TABLE cjk USING fts5(text, tokenize='trigram');
"""


class SearchIndex:
    """The FTS5 database of a catalog's rows (rowid = catalog position + 1).

    One connection, used by one thread at a time (a lock): SQLite releases the
    GIL while it runs, and the app runs queries off the event loop.
    """

    def __init__(self, rows: Sequence[SearchRow]):
        self.rows = rows
        self._db = sqlite3.connect(":memory:", check_same_thread=False, isolation_level=None)
        self._lock = threading.Lock()
        db = self._db
        db.executescript(_SCHEMA)
        db.execute("BEGIN")
        db.executemany(
            "INSERT INTO services VALUES (?, ?)",
            ((n, row.category) for n, row in enumerate(rows, 1)),
        )
        db.executemany(
            "INSERT INTO ids VALUES (?, ?)",
            (
                (key, n)
                for n, row in enumerate(rows, 1)
                for key in dict.fromkeys((row.id, row.tool_name, row.internal_service_id))
            ),
        )
        db.executemany(
            "INSERT INTO aliases (rowid, alias) VALUES (?, ?)",
            ((n, "\n".join(row.aliases)) for n, row in enumerate(rows, 1)),
        )
        db.executemany(
            "INSERT INTO words (rowid, text) VALUES (?, ?)",
            ((n, row.search_text.lower()) for n, row in enumerate(rows, 1)),
        )
        db.executemany(
            "INSERT INTO phrases (rowid, phrase) VALUES (?, ?)",
            ((n, _BREAK.sub(_MARKER, row.search_text.lower())) for n, row in enumerate(rows, 1)),
        )
        db.executemany(
            "INSERT INTO cjk (rowid, text) VALUES (?, ?)",
            (
                (n, "\n".join(_NON_ASCII.findall(row.search_text.lower())))
                for n, row in enumerate(rows, 1)
            ),
        )
        db.execute("COMMIT")

    def query(self, sql: str, parameters: Sequence[object]) -> list[tuple]:
        """Run one statement; its rows."""
        with self._lock:
            return self._db.execute(sql, parameters).fetchall()


def _text_match(term: str) -> list[tuple[str, tuple[object, ...]]]:
    """The statements (SQL, parameters) whose rowids all hold ``term`` (lowercase) in their
    searchText: the term matches their intersection; none when it has no word to look for.

    An ASCII term is a phrase of whole words, the last one a prefix; a term with
    no ASCII letter or digit is a substring of the text's non-ASCII runs; a term
    mixing both needs both parts (each matched as above).
    """
    ascii_words = re.findall(r"[a-z0-9]+", term)
    parts: list[tuple[str, tuple[object, ...]]] = []
    if ascii_words:
        quoted = " + ".join(_quote(w) for w in ascii_words) + " *"
        table = "words" if len(ascii_words) == 1 else "phrases"
        parts.append((f"SELECT rowid FROM {table} WHERE {table} MATCH ?", (quoted,)))
    for other in _NON_ASCII.findall(term):
        if len(other) >= _TRIGRAM:
            parts.append(("SELECT rowid FROM cjk WHERE cjk MATCH ?", (_quote(other),)))
        else:
            parts.append(("SELECT rowid FROM cjk WHERE instr(text, ?) > 0", (other,)))
    return parts


#: A ranking's listed entries: the expansions, the total and ``(entry, score, matchTerms)``.
_Listing = tuple[dict[str, list[str]], int, list[tuple["_Listed", int, list[str]]]]
#: Keys a search answer adds to a listed entry: an entry holding one is written whole.
_ADDED = frozenset({"quality", "matchScore", "matchTerms", "why"})


@dataclass(frozen=True)
class _Listed:
    """A catalog entry as answers list it: its JSON value and, to splice answers' bytes, its
    bytes (orjson's) cut where ``quality`` goes: ``head`` (from ``{`` through ``payment``'s
    value, no closing brace) and ``tail`` (the keys after it, each after a comma); ``tail``
    is ``None`` without a ``payment`` key (``head`` is then the whole entry but ``}``), and
    ``head`` is ``None`` when orjson cannot write the entry or it holds an :data:`_ADDED` key.
    """

    json: dict[str, Any]
    head: bytes | None
    tail: bytes | None

    @classmethod
    def of(cls, entry: dict[str, Any]) -> "_Listed":
        """The listed form of an entry's JSON value."""
        names = list(entry)
        if not names or _ADDED.intersection(names):
            return cls(entry, None, None)
        cut = names.index("payment") + 1 if "payment" in entry else len(names)
        try:
            head = orjson.dumps({name: entry[name] for name in names[:cut]})[:-1]
            rest = orjson.dumps({name: entry[name] for name in names[cut:]})[1:-1]
        except TypeError:  # an integer beyond 64 bits: jsonio.dumps' fallback writes it
            return cls(entry, None, None)
        tail = None if "payment" not in entry else b"," + rest if rest else b""
        return cls(entry, head, tail)

    @property
    def id(self) -> str:
        """The service id."""
        return self.json["id"]

    def matched(self, score: int, terms: list[str]) -> dict[str, Any]:
        """The fields a search answer appends: ``matchScore``, ``matchTerms`` and ``why``."""
        pricing = self.json["pricing"]
        why = _why(
            terms, self.json["name"], pricing["amountCents"], pricing["currency"],
            pricing["policyId"],
        )  # fmt: skip
        return {"matchScore": score, "matchTerms": list(terms), "why": why}


class _Scores:
    """Every row's sum of weights, bit-sliced: slice ``j`` is an int whose bit ``r`` is bit
    ``j`` of row ``r``'s score, so adding a weight to a set of rows (an int of their bits)
    costs a few int operations per bit of the weight, whatever the number of rows."""

    def __init__(self) -> None:
        self.slices: list[int] = []

    def add(self, rows: int, weight: int) -> None:
        """Add ``weight`` (>= 0) to the score of each row in ``rows`` (a ripple-carry add)."""
        slices, carry, j = self.slices, 0, 0
        while weight or carry:
            if j == len(slices):
                slices.append(0)
            bit = slices[j]
            if weight & 1:
                slices[j] = bit ^ rows ^ carry
                carry = (bit & rows) | (carry & (bit ^ rows))
            else:
                slices[j] = bit ^ carry
                carry &= bit
            weight >>= 1
            j += 1

    def best(self, rows: int, limit: int) -> list[tuple[int, int]]:
        """The first ``limit`` of ``rows`` by score, highest first, then by rowid:
        ``(rowid, score)``."""
        found: list[tuple[int, int]] = []
        while rows and len(found) < limit:
            # the highest score among rows: its bits from the top, and the rows that have it
            level, score = rows, 0
            for j in reversed(range(len(self.slices))):
                if higher := level & self.slices[j]:
                    level, score = higher, score | 1 << j
            rows ^= level
            while level and len(found) < limit:
                lowest = level & -level
                level ^= lowest
                found.append((lowest.bit_length() - 1, score))
        return found


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
        self._entries = Recent(ENTRY_JSON_CACHE_SIZE)
        self._match_cache = Recent(MATCH_CACHE_SIZE, MATCH_CACHE_BYTES, _int_bytes)
        self._bodies = Recent(RANK_CACHE_SIZE, BODY_CACHE_BYTES, lambda kept: len(kept[0]))
        self._document_json = document.to_json()

    def _rank(
        self, query: str, limit: int, category: str | None
    ) -> tuple[dict[str, list[str]], int, list[tuple[int, int, list[str]]]]:
        key = (query, limit, category)
        found = self._ranks.get(key)
        if found is None:
            found = self._ranks.put(key, self._rank_uncached(query, limit, category))
        return found

    def _listed(self, position: int) -> _Listed:
        found = self._entries.get(position)
        if found is None:
            found = self._entries.put(position, _Listed.of(self._entry(position).to_json()))
        return found

    def _rank_uncached(
        self, query: str, limit: int, category: str | None
    ) -> tuple[dict[str, list[str]], int, list[tuple[int, int, list[str]]]]:
        expansions = self.expand(query)
        return expansions, *self._ranked(query, expansions, limit, category)

    def expand(self, query: str) -> dict[str, list[str]]:
        """Per category, the terms its synonyms add for ``query`` (sorted, as the live
        catalog lists them); categories that add none are left out."""
        lowered = query.lower()
        words = _words(lowered)
        found: dict[str, list[str]] = {}
        for category, synonyms in self.synonyms.items():
            terms: set[str] = set()
            for trigger, more in synonyms.items():
                key = trigger.lower()
                if (key in words) if key.isascii() else (key in lowered):
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
    ) -> tuple[int, list[tuple[int, int, list[str]]]]:
        """The number of matching services and the first ``limit`` of them, best first:
        ``(position, score, matchTerms)``."""
        filters = " WHERE rowid IN (SELECT rowid FROM services WHERE category = ?)"  # no query
        if not query:
            where, params = (filters, [category]) if category else ("", [])
            (total,) = self.index.query(f"SELECT count(*) FROM services{where}", params)[0]
            found = self.index.query(
                f"SELECT rowid FROM services{where} ORDER BY rowid LIMIT ?", [*params, limit]
            )
            return total, [(rowid - 1, 0, []) for (rowid,) in found]
        words = _words(query)
        phrase = " ".join(words)
        labels: list[str | None] = []
        # (label index, weight, rowids as bits): the ids' part (-1) labels nothing
        parts: list[tuple[int, int, int]] = [(-1, SCORE_ID, self._rows(_ID_SQL, (query.lower(),)))]

        def text(term: str) -> int | None:
            statements = _text_match(term)
            if not statements:
                return None
            rows = self._rows(*statements[0])
            for statement in statements[1:]:
                rows &= self._rows(*statement)
            return rows

        def add(rows: int | None, weight: int, label: str | None) -> None:
            if rows is not None:
                parts.append((len(labels), weight, rows))
            labels.append(label)

        if phrase:
            add(text(phrase), SCORE_PHRASE, phrase)
        for word in dict.fromkeys(words):
            alias = self._rows(_ALIAS_SQL, (_quote(word),))
            parts.append((len(labels), SCORE_ALIAS, alias))
            found = text(word)  # scores only where the word is not an alias's
            add(
                None if found is None else found & ~alias,
                SCORE_TEXT,
                word if word != phrase else None,
            )
        for category_id, terms in expansions.items():
            members = self._category(category_id)
            for term in terms:
                found = text(term.lower())
                add(None if found is None else found & members, SCORE_EXPANDED, term)
        scores = _Scores()
        matched = 0
        for _, weight, rows in parts:
            if rows:
                scores.add(rows, weight)
                matched |= rows
        if category:
            matched &= self._category(category)
        ranked = []
        for rowid, score in scores.best(matched, limit):
            terms = [
                label
                for index, _, rows in parts
                if index >= 0 and (label := labels[index]) is not None and rows >> rowid & 1
            ]
            ranked.append((rowid - 1, score, terms))
        return matched.bit_count(), ranked

    def _rows(self, sql: str, parameters: tuple[object, ...]) -> int:
        """The rowids that ``sql`` selects, as the bits of an int (rowid ``r`` is bit ``r``),
        kept for the recent statements (:data:`MATCH_CACHE_BYTES` in all): the terms of a
        new query are mostly those of earlier ones."""
        key = (sql, *parameters)
        found = self._match_cache.get(key)
        if found is None:
            bits = bytearray(len(self.index.rows) // 8 + 1)
            for (rowid,) in self.index.query(sql, parameters):
                bits[rowid >> 3] |= 1 << (rowid & 7)
            found = self._match_cache.put(key, int.from_bytes(bits, "little"))
        return found

    def _category(self, category: str) -> int:
        """The rowids of ``category``'s services, as bits (:meth:`_rows`)."""
        return self._rows(_CATEGORY_SQL, (category,))

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
        expansions, total, ranked = self._rank(query, limit, category)
        services = [
            self._result(self._entry(position), score, terms, quality)
            for position, score, terms in ranked
        ]
        filters: dict[str, object] = {"limit": limit}
        if category:
            filters["category"] = category
        return self.catalog.model_copy(
            update={
                "query": query,
                "expanded_terms": sorted({t for terms in expansions.values() for t in terms}),
                "filters": filters,
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
    ) -> dict[str, Any] | None:
        """``search(...).to_json()``, built from each listed entry's JSON (kept for the
        recent entries) instead of copying and serializing the entries' models again.

        With ``wait=False``, ``None`` unless the ranking and every listed entry are
        among the recent ones: then the answer needs neither SQLite nor the disk, and
        the app builds it on the event loop (~0.5 ms); else it calls again in a thread.
        """
        return self._answer(self.key(query, limit, category), quality, wait)

    def answer_body(
        self,
        query: str,
        limit: int = DEFAULT_LIMIT,
        quality: Callable[[str], Quality] | None = None,
        category: str | None = None,
        *,
        version: Callable[[str], int] | None = None,
        wait: bool = True,
    ) -> bytes | None:
        """:meth:`answer_json` as the JSON bytes sent (``jsonio.dumps``), kept for the recent
        answers (:data:`BODY_CACHE_BYTES` in all) and answered again by :meth:`cached_body`.

        ``version(service_id)`` (:meth:`~s402gen.runtime.service.Stats.version`) changes
        whenever ``quality(service_id)`` may: a kept answer is reused while it is the same
        for every service listed. With ``quality`` but no ``version`` nothing is kept.
        ``wait=False``: ``None`` when the answer needs SQLite or the disk (as answer_json).
        """
        key = self.key(query, limit, category)
        found = self.cached_body(key, quality is not None, version)
        if found is not None:
            return found
        listing = self._listing(key, wait)
        if listing is None:
            return None
        stamps: list[tuple[str, int]] = []
        body = self._spliced(key, listing, quality, version, stamps)
        if body is None:  # an entry orjson cannot write: the whole answer as jsonio writes it
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

    def _answer(
        self, key: SearchKey, quality: Callable[[str], Quality] | None, wait: bool
    ) -> dict[str, Any] | None:
        """:meth:`answer_json` of ``key``."""
        listing = self._listing(key, wait)
        return None if listing is None else self._document(key, listing, quality)

    def _listing(self, key: SearchKey, wait: bool) -> _Listing | None:
        """The ranking of ``key`` and its listed entries; with ``wait=False``, ``None``
        unless they are among the recent ones (no SQLite, no disk)."""
        if wait:
            expansions, total, ranked = self._rank(*key)
        else:
            found = self._ranks.get(key)
            if found is None:
                return None
            expansions, total, ranked = found
            if any(self._entries.get(position) is None for position, _, _ in ranked):
                return None
        listed = [(self._listed(position), score, terms) for position, score, terms in ranked]
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
        for entry, score, terms in listed:
            item: dict[str, Any] = {}
            for name, value in entry.json.items():
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
        kept halves (:class:`_Listed`) instead of written again; ``None`` when an entry or
        the answer's other fields need ``jsonio.dumps``' fallback."""
        expansions, total, listed = listing
        services = []
        for entry, score, terms in listed:
            if entry.head is None:
                return None
            parts = [entry.head]
            if entry.tail is not None and quality is not None:
                if version is not None:
                    stamps.append((entry.id, version(entry.id)))
                parts += (b',"quality":', orjson.dumps(quality(entry.id).to_json()), entry.tail)
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
                "why": _why(
                    terms, entry.name, pricing.amount_cents, pricing.currency, pricing.policy_id
                ),
            }
        )


def _why(terms: Sequence[str], name: str, amount_cents: int, currency: str, policy: str) -> str:
    """A result's ``why``: the terms that scored, the service's name and price."""
    matched = f"Matched {', '.join(terms)} for" if terms else "Listed"
    price = price_label(amount_cents, currency)
    return f'{matched} "{name}". Price is {price} per policy {policy}.'
