"""The catalog search's engine: an SQLite FTS5 index of each service's search fields, the
statements a query's terms run on it, and the sums of their scores.

One in-memory database (Python's own ``sqlite3``) is built at start from the
catalog (:class:`SearchIndex`). English and other space-separated words go
through the ``unicode61`` tokenizer:

- ``aliases``: each alias's words;
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

A term is one statement or the intersection of a few. The terms each English
table's index holds are read once from FTS5 itself (``fts5vocab``): a statement
needing a term the index does not hold selects nothing and is not run (a new
query's unknown word costs no SQL). The ids (service id, tool name, internal
id) are a dictionary. Rowids travel as the bits of an int (rowid ``r`` is bit
``r``), and :class:`Scores` sums weights over them.
"""

from __future__ import annotations

import bisect
import re
import sqlite3
import threading
import unicodedata
from dataclasses import dataclass
from typing import Iterator, Sequence

from .contract import CatalogEntry

_WORD = re.compile(r"[a-z0-9]+|[^\x00-\x7f]+")
_ASCII_WORD = re.compile(r"[a-z0-9]+")
_NON_ASCII = re.compile(r"[^\x00-\x7f]+")
#: A run of anything but ASCII letters, digits and spaces: a phrase does not reach across it.
_BREAK = re.compile(r"[^a-z0-9\s]+")
_MARKER = " \ue000 "  # a private-use character: a token of its own to unicode61, never a query's
_TRIGRAM = 3  # the trigram tokenizer matches strings of at least 3 characters

#: One SQL statement selecting rowids, with its parameters (the key its rowids are kept by).
Statement = tuple[str, tuple[object, ...]]

ALIAS_SQL = "SELECT rowid FROM aliases WHERE aliases MATCH ?"
CATEGORY_SQL = "SELECT rowid FROM services WHERE category = ?"
#: A short Chinese word's statement: it reads every row's text (the others use an index).
INSTR_SQL = "SELECT rowid FROM cjk WHERE instr(text, ?) > 0"
#: A last word shorter than this, as a prefix, matches many terms, whose postings its
#: statement merges (5-14 ms at 10,000 services, against ~0.1-2.5 ms for others): its SQL
#: ends with :data:`_MANY_TERMS` (an SQL comment), which :meth:`SearchIndex.indexed` reads.
SHORT_PREFIX = 3
_MANY_TERMS = " /* a short prefix: many terms */"
_TERM_TABLES = ("aliases", "words", "phrases")


def words(text: str) -> list[str]:
    """The query words of ``text``: lowercase runs of ASCII letters and digits, and runs of
    non-ASCII characters."""
    return _WORD.findall(text.lower())


class IndexBusy(Exception):
    """A statement asked not to wait found the index's connection in use."""


class SearchError(RuntimeError):
    """The search index could not run a statement: an internal error (HTTP 500), never
    taken for the payment ledger's ``sqlite3`` errors (which answer 503)."""


def unicode61_tokens(text: str) -> list[str]:
    """``text`` split as FTS5's ``unicode61`` tokenizer (``remove_diacritics 0``) splits
    it: a token is a run of letters, digits, marks and private-use characters (Unicode
    categories L*, N*, M*, Co), anything else separates (spaces, punctuation, symbols,
    format characters). Checked against SQLite's tokenizer (tests/test_search_rankings.py);
    sqlite.org/fts5.html, "Unicode61 Tokenizer", describes it."""
    tokens, token = [], []
    for char in text:
        category = unicodedata.category(char)
        if category[0] not in "LNM" and category != "Co":
            if token:
                tokens.append("".join(token))
                token = []
        else:
            token.append(char)
    if token:
        tokens.append("".join(token))
    return tokens


def quote(token: str) -> str:
    """An FTS5 string: double quotes, inner quotes doubled."""
    return '"' + token.replace('"', '""') + '"'


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


_SCHEMA = """
CREATE TABLE services (rowid INTEGER PRIMARY KEY, category TEXT NOT NULL);
CREATE INDEX services_category ON services (category, rowid);
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
    GIL while it runs, and the app runs statements off the event loop.
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
        # each English table's terms, as its tokenizer made them (sorted: str order is
        # UTF-8 byte order, FTS5's)
        self._terms: dict[str, list[str]] = {}
        for table in _TERM_TABLES:
            db.execute(
                f"CREATE VIRTUAL TABLE temp.{table}_terms USING fts5vocab(main, {table}, row)"
            )
            self._terms[table] = sorted(t for (t,) in db.execute(f"SELECT term FROM {table}_terms"))
            db.execute(f"DROP TABLE temp.{table}_terms")
        self._ids: dict[str, list[int]] = {}
        for n, row in enumerate(rows, 1):
            for key in dict.fromkeys((row.id, row.tool_name, row.internal_service_id)):
                self._ids.setdefault(key, []).append(n)

    def query(self, sql: str, parameters: Sequence[object], wait: bool = True) -> list[tuple]:
        """Run one statement; its rows. Raises :class:`SearchError` when SQLite refuses it
        (a bug of the search: its own ``sqlite3`` errors would read as the ledger's), and
        :class:`IndexBusy` when ``wait`` is false and another thread is running one."""
        if not self._lock.acquire(blocking=wait):
            raise IndexBusy
        try:
            return self._db.execute(sql, parameters).fetchall()
        except sqlite3.Error as exc:
            raise SearchError(f"search statement failed: {exc} ({sql}, {parameters})") from exc
        finally:
            self._lock.release()

    @staticmethod
    def indexed(statement: Statement) -> bool:
        """Whether ``statement`` looks its rows up in an index (FTS5's, or the categories'),
        whose cost is that of the postings of a few terms (~0.1-2.5 ms at 2,000 services),
        rather than reading every row (a short Chinese word's, :data:`INSTR_SQL`) or merging
        the postings of many (a prefix shorter than :data:`SHORT_PREFIX`)."""
        return statement[0] != INSTR_SQL and not statement[0].endswith(_MANY_TERMS)

    def select(self, statement: Statement, wait: bool = True) -> int:
        """The rowids a statement selects, as the bits of an int (:meth:`query`: errors, and
        ``wait``).

        They come back as one row (``group_concat``): each row fetched is one
        ``sqlite3_step``, around which Python releases the GIL, and a thread taking
        it back from a busy event loop waits up to the switch interval (5 ms) each
        time: 2,000 rows fetched one by one kept a search ~2 s in its thread.
        """
        sql, parameters = statement
        (found,) = self.query(f"SELECT group_concat(rowid) FROM ({sql})", parameters, wait)[0]
        bits = bytearray(len(self.rows) // 8 + 1)
        for rowid in map(int, found.split(",")) if found else ():
            bits[rowid >> 3] |= 1 << (rowid & 7)
        return int.from_bytes(bits, "little")

    def ids(self, key: str) -> int:
        """The rowids whose service id, tool name or internal id is ``key``, as bits."""
        bits = 0
        for rowid in self._ids.get(key, ()):
            bits |= 1 << rowid
        return bits

    def _holds(self, table: str, whole: Sequence[str], start: str | None = None) -> bool:
        """Whether ``table``'s index holds each of ``whole`` as a term and, with ``start``,
        a term beginning with it (else a phrase of them matches no row)."""
        terms = self._terms[table]
        for term in whole:
            at = bisect.bisect_left(terms, term)
            if at == len(terms) or terms[at] != term:
                return False
        if start is None:
            return True
        at = bisect.bisect_left(terms, start)
        return at < len(terms) and terms[at].startswith(start)

    def term_statements(self) -> Iterator[Statement]:
        """The statements a one-word query of each term of the index runs: for each term of
        ``aliases``, its alias match (:meth:`alias_match`); for each ASCII term of ``words``,
        its text match (:meth:`text_match`). Each is the key a query with that word uses."""
        for term in self._terms["aliases"]:
            if (statement := self.alias_match(term)) is not None:
                yield statement
        for term in self._terms["words"]:
            if _ASCII_WORD.fullmatch(term):
                yield from (s for s in self.text_match(term) if s is not None)

    def alias_match(self, word: str) -> Statement | None:
        """The statement selecting the rows with ``word`` (a query word) among their aliases'
        words (each of its tokens, when punctuation splits it: the table keeps no
        positions for a phrase); ``None`` when the index shows none has it."""
        if _ASCII_WORD.fullmatch(word) and not self._holds("aliases", [word]):
            return None  # (one unicode61 token: a non-ASCII run may be several)
        tokens = unicode61_tokens(word)
        if not tokens:
            return None
        return ALIAS_SQL, (" ".join(quote(token) for token in tokens),)

    def text_match(self, term: str) -> list[Statement | None]:
        """The statements whose rows all hold ``term`` (lowercase) in their searchText: the
        term matches their intersection; none when it has no word to look for; ``None``
        for one the index shows selects no row.

        An ASCII term is a phrase of whole words, the last one a prefix; a term with
        no ASCII letter or digit is a substring of the text's non-ASCII runs; a term
        mixing both needs both parts (each matched as above).
        """
        ascii_words = _ASCII_WORD.findall(term)
        parts: list[Statement | None] = []
        if ascii_words:
            table = "words" if len(ascii_words) == 1 else "phrases"
            if self._holds(table, ascii_words[:-1], ascii_words[-1]):
                quoted = " + ".join(quote(w) for w in ascii_words) + " *"
                sql = f"SELECT rowid FROM {table} WHERE {table} MATCH ?"
                if len(ascii_words[-1]) < SHORT_PREFIX:
                    sql += _MANY_TERMS
                parts.append((sql, (quoted,)))
            else:
                parts.append(None)
        for other in _NON_ASCII.findall(term):
            if len(other) >= _TRIGRAM:
                parts.append(("SELECT rowid FROM cjk WHERE cjk MATCH ?", (quote(other),)))
            else:
                parts.append((INSTR_SQL, (other,)))
        return parts


class Scores:
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
