"""Large JSON documents written piece by piece, in exactly the text of :func:`render.to_json`
(as UTF-8 bytes: orjson's own output, never decoded and encoded again).

A catalog of 10,000 services makes an ``openapi.json`` of over 100 MiB: built
as one dict and serialized at once, it held several copies of itself in
memory (the dict, orjson's bytes, the decoded text, its UTF-8 encoding). Here
a document is a tree whose big objects are :class:`Items` (a lazy iterable
of ``(key, value)`` pairs) and whose big arrays are :class:`Elements`; :func:`chunks`
serializes it one member at a time, each member with orjson, so that at most
one member is held as text. The text is the one ``orjson.dumps(value,
option=OPT_INDENT_2)`` gives for the materialized value (a test holds it to
that): two-space indent, ``": "`` after keys, ``"{}"``/``"[]"`` when empty.
"""

from __future__ import annotations

from typing import Any, Callable, Iterable, Iterator

import orjson

_OPTION = orjson.OPT_INDENT_2


class Items:
    """A JSON object given as ``(key, value)`` pairs, produced only when serialized.

    Keys must be unique (the caller checks: a dict would keep the last value
    at the first key's place). A value may itself be lazy.
    """

    __slots__ = ("pairs",)

    def __init__(self, pairs: Iterable[tuple[str, Any]]):
        self.pairs = pairs


class Elements:
    """A JSON array given as an iterable of values, produced only when serialized."""

    __slots__ = ("values",)

    def __init__(self, values: Iterable[Any]):
        self.values = values


class Tagged(bytes):
    """The text (UTF-8) of one :class:`Member`, carrying its ``tag``; plain ``bytes`` to
    every reader but the one that records where each member of a file lies
    (:class:`s402gen.incremental.Splice`)."""

    tag: str


def tagged(tag: str, data: bytes) -> Tagged:
    """``data`` as a :class:`Tagged` of ``tag``."""
    piece = Tagged(data)
    piece.tag = tag
    return piece


class Member:
    """A value of an :class:`Items` or :class:`Elements` (or of an aggregate's list) written
    as one :class:`Tagged` piece: ``text`` when given (the exact bytes it had, at the same
    place, in the file as it is), else ``make()`` serialized."""

    __slots__ = ("tag", "make", "text")

    def __init__(self, tag: str, make: Callable[[], Any], text: bytes | None = None):
        self.tag = tag
        self.make = make
        self.text = text


def piece(value: Any, level: int = 0) -> bytes:
    """:func:`dumps` of ``value``; a :class:`Member` as its :class:`Tagged` text."""
    if isinstance(value, Member):
        return tagged(
            value.tag, value.text if value.text is not None else dumps(value.make(), level)
        )
    return dumps(value, level)


def dumps(value: Any, level: int = 0, sort_keys: bool = False) -> bytes:
    """``value`` (no lazy part) as indented JSON (UTF-8), nested ``level`` deep (2 spaces a
    level), its objects' keys sorted with ``sort_keys``. Raises ``orjson.JSONEncodeError``
    for values JSON cannot hold."""
    data = orjson.dumps(value, option=_OPTION | (orjson.OPT_SORT_KEYS if sort_keys else 0))
    return data.replace(b"\n", b"\n" + b"  " * level) if level else data


def chunks(value: Any, level: int = 0) -> Iterator[bytes]:
    """The JSON text (UTF-8) of ``value`` in pieces; ``dict`` and ``list`` values holding an
    :class:`Items` or :class:`Elements` anywhere must themselves be :class:`Items` or
    :class:`Elements` (plain containers are serialized whole)."""
    if isinstance(value, Items):
        yield from _container(b"{", b"}", ((k, v) for k, v in value.pairs), level)
    elif isinstance(value, Elements):
        yield from _container(b"[", b"]", ((None, v) for v in value.values), level)
    else:
        yield piece(value, level)


def _container(
    opening: bytes, closing: bytes, members: Iterator[tuple[str | None, Any]], level: int
) -> Iterator[bytes]:
    inner = b"  " * (level + 1)
    first = True
    for key, member in members:
        head = b"\n" + inner if first else b",\n" + inner
        if first:
            head = opening + head
            first = False
        if key is not None:
            head += orjson.dumps(key) + b": "
        yield head
        yield from chunks(member, level + 1)
    yield opening + closing if first else b"\n" + b"  " * level + closing


def materialize(value: Any) -> Any:
    """``value`` with every :class:`Items` made a ``dict`` (a repeated key keeps its first
    place and its last value, as assigning into a dict does) and every :class:`Elements` a
    ``list``."""
    if isinstance(value, Items):
        made: dict[str, Any] = {}
        for key, member in value.pairs:
            made[key] = materialize(member)
        return made
    if isinstance(value, Elements):
        return [materialize(member) for member in value.values]
    if isinstance(value, Member):
        return value.make()
    return value
