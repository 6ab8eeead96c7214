"""What the catalog search keeps of the entries its answers list (:class:`Listed`: their
bytes, cut where ``quality`` goes; :class:`PackedEntries`: those of every entry, packed),
and its read-ahead after start (:func:`warm_in_background`), so that a query never asked
before needs neither the disk nor, mostly, SQLite: every entry packed in memory and the
rowids of every one-word statement the index's terms make
(:meth:`~s402gen.runtime.search.CatalogSearch.warm` fills both).

Why: the first searches of new queries, under load, each ran a few statements and read
ten entries from the disk in a worker thread; each of those steps releases the GIL and
takes it back from a busy event loop (up to the 5 ms switch interval each time), and the
threads queue on the index's one connection, so the first few dozen took 0.1-1.3 s
(``bench/README.md``, issue 12, search).
"""

from __future__ import annotations

import contextlib
import logging
import sys
import threading
import zlib
from dataclasses import dataclass
from typing import Any, Iterator, Protocol, Sequence

import orjson

from .spec import price_label

logger = logging.getLogger(__name__)

#: Bytes of packed entries kept in all: ~2.4 kB an entry at 2,000 services (~10 kB
#: unpacked), 4.7 MB for all of them; beyond it the rest are read from disk when listed.
PACKED_BYTES = 24 << 20
#: Bytes of warmed statements' rowids kept in all (one bit a service: 250 bytes a
#: statement at 2,000 services, ~4,600 statements).
WARM_MATCH_BYTES = 8 << 20
#: zlib's level for the packed entries (1: 5.3 MB at 2,000, 6: 4.7 MB for twice the time).
_LEVEL = 6


#: Keys a search answer adds to a listed entry: an entry holding one is written whole.
_ADDED = frozenset({"quality", "matchScore", "matchTerms", "why"})


@dataclass(frozen=True)
class Listed:
    """What answers need of a listed catalog entry: its id, its ``why`` fields and, to splice
    answers' bytes, its JSON bytes (orjson's) cut where ``quality`` goes: ``head`` (from
    ``{`` through ``payment``'s value, no closing brace) and ``tail`` (the keys after it,
    each after a comma); ``tail`` is ``None`` without a ``payment`` key (``head`` is then
    the whole entry but ``}``), and ``head`` is ``None`` when orjson cannot write the entry
    or it holds an :data:`_ADDED` key (the answer is then made from the entry's JSON).
    """

    id: str
    name: str
    pricing: tuple[int, str, str]  # amountCents, currency, policyId
    head: bytes | None
    tail: bytes | None

    @classmethod
    def of(cls, entry: dict[str, Any]) -> "Listed":
        """The listed form of an entry's JSON value."""
        pricing = entry["pricing"]
        fields = entry["id"], entry["name"], (
            pricing["amountCents"], pricing["currency"], pricing["policyId"]
        )  # fmt: skip
        names = list(entry)
        if _ADDED.intersection(names):
            return cls(*fields, None, None)
        cut = names.index("payment") + 1 if "payment" in entry else len(names)
        try:
            head = orjson.dumps({name: entry[name] for name in names[:cut]})[:-1]
            rest = orjson.dumps({name: entry[name] for name in names[cut:]})[1:-1]
        except TypeError:  # an integer beyond 64 bits: jsonio.dumps' fallback writes it
            return cls(*fields, None, None)
        tail = None if "payment" not in entry else b"," + rest if rest else b""
        return cls(*fields, head, tail)

    def weight(self) -> int:
        """Bytes kept."""
        return len(self.head or b"") + len(self.tail or b"") + 200

    def matched(self, score: int, terms: list[str]) -> dict[str, Any]:
        """The fields a search answer appends: ``matchScore``, ``matchTerms`` and ``why``."""
        sentence = why(terms, self.name, *self.pricing)
        return {"matchScore": score, "matchTerms": list(terms), "why": sentence}


#: One packed entry: ``((id, name, pricing), zlib of head + tail, len(head), has a tail)``;
#: a plain tuple of atoms, which the garbage collector stops tracking (the start's objects
#: are frozen out of its reach, these are made after: a full collection would scan them).
_Packed = tuple[tuple[str, str, tuple[int, str, str]], bytes, int, bool]


class PackedEntries:
    """Listed entries by catalog position, their bytes zlib-compressed (thread-safe: each
    position is set once, and a dict's item is set and read atomically).

    Entries without bytes (``head`` ``None``: the answer is written from the model) are
    not kept, nor any beyond ``budget`` bytes in all.
    """

    def __init__(self, budget: int = PACKED_BYTES):
        self._budget = budget
        self._packed: dict[int, _Packed] = {}
        self.bytes = 0

    def __contains__(self, position: int) -> bool:
        return position in self._packed

    def full(self) -> bool:
        """Whether the byte budget is spent."""
        return self.bytes >= self._budget

    def put(self, position: int, listed: Listed) -> None:
        """Keep ``listed`` (when it has bytes and the budget allows)."""
        if listed.head is None or self.full():
            return
        tail = listed.tail or b""
        data = zlib.compress(listed.head + tail, _LEVEL)
        fields = (listed.id, listed.name, listed.pricing)
        self._packed[position] = (fields, data, len(listed.head), listed.tail is not None)
        self.bytes += len(data) + 150

    def get(self, position: int) -> Listed | None:
        """The listed entry at ``position`` (unpacked: ~40 us at 10 kB), or ``None``."""
        packed = self._packed.get(position)
        if packed is None:
            return None
        fields, data, cut, has_tail = packed
        data = zlib.decompress(data)
        return Listed(*fields, data[:cut], data[cut:] if has_tail else None)


class Warmer(Protocol):
    """What :func:`warm_in_background` runs: :meth:`~s402gen.runtime.search.CatalogSearch.warm`."""

    def warm(self, stop: threading.Event | None = None) -> None: ...


#: Python's switch interval (seconds) while warming: a thread waiting for the GIL waits this
#: long before asking its holder to let go (Python's default: 5 ms). Each file read and
#: SQLite statement of the warming gives the GIL up and waits to take it back from a busy
#: loop: at 5 ms it took 16-18 s to warm 2,000 services under serve_bench's load.
WARM_SWITCH_INTERVAL_S = 0.0005


class _SwitchInterval:
    """Python's switch interval at :data:`WARM_SWITCH_INTERVAL_S` while any warming runs
    (two apps in one process may warm at once): the first to start keeps the interval it
    found, the last to end puts it back."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._running = 0
        self._before = 0.0

    @contextlib.contextmanager
    def short(self) -> Iterator[None]:
        """The block runs with the short interval."""
        with self._lock:
            if self._running == 0:
                self._before = sys.getswitchinterval()
                sys.setswitchinterval(min(self._before, WARM_SWITCH_INTERVAL_S))
            self._running += 1
        try:
            yield
        finally:
            with self._lock:
                self._running -= 1
                if self._running == 0:
                    sys.setswitchinterval(self._before)


_SWITCH_INTERVAL = _SwitchInterval()


def _warm_quickly(search: Warmer, stop: threading.Event) -> None:
    with _SWITCH_INTERVAL.short():
        try:
            search.warm(stop)
        except Exception:  # e.g. an entry's file gone: its answers then read it and say so
            logger.exception("search warming stopped; answers read what it did not")


def warm_in_background(search: Warmer) -> tuple[threading.Thread, threading.Event]:
    """Start ``search.warm`` in a daemon thread, with Python's switch interval at
    :data:`WARM_SWITCH_INTERVAL_S` until it ends; the thread and the event that stops it."""
    stop = threading.Event()
    thread = threading.Thread(
        target=_warm_quickly, args=(search, stop), name="search-warm", daemon=True
    )
    thread.start()
    return thread, stop


def why(terms: Sequence[str], name: str, amount_cents: int, currency: str, policy: str) -> str:
    """A result's ``why``: the terms that scored, the service's name and price."""
    matched = f"Matched {', '.join(terms)} for" if terms else "Listed"
    price = price_label(amount_cents, currency)
    return f'{matched} "{name}". Price is {price} per policy {policy}.'
