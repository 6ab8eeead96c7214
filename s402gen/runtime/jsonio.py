"""JSON in and out of the gateway with numbers kept exact.

``orjson`` reads an integer beyond 64 bits as a float (``2**70`` became
``1.1805916207174113e+21`` on its way upstream) and refuses to write one
(``TypeError: Integer exceeds 64-bit range``). :func:`loads` therefore reads
with ``orjson`` first, which also refuses what JSON does not have (``NaN``,
``Infinity``), numbers a float cannot hold (``1e400``) and nesting deeper
than 1,024 (the standard library's C parser can overflow the C stack on a
deeply nested body and crash the process); when the text holds a run of 19
or more digits (where a 64-bit integer may have been rounded), it is read
again with the standard library's parser, whose integers are exact (up to
Python's 4,300-digit limit). :func:`dumps` writes with ``orjson``, falling
back to ``pydantic_core`` for the rare integer ``orjson`` cannot hold.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

import orjson
import pydantic_core


class JsonError(ValueError):
    """The text is not valid JSON (RFC 8259: no ``NaN``, no ``Infinity``)."""


#: A run of digits long enough to be an integer ``orjson`` may have read as a float.
_LONG_NUMBER = re.compile(rb"\d{19}")


def loads(data: bytes | bytearray | str) -> Any:
    """The JSON value of ``data``, integers exact; raises :class:`JsonError`."""
    try:
        value = orjson.loads(data)  # the gate: syntax, depth, NaN/Infinity, overflow
    except orjson.JSONDecodeError as exc:
        raise JsonError(str(exc)[:200]) from None
    raw = data.encode("utf-8") if isinstance(data, str) else data
    if not _LONG_NUMBER.search(raw):
        return value
    try:  # depth already bounded by orjson: safe for the recursive C parser
        return json.loads(raw, parse_float=_float)
    except (ValueError, RecursionError) as exc:  # e.g. a 4,300+ digit integer
        raise JsonError(str(exc)[:200]) from None


def _float(text: str) -> float:
    value = float(text)
    if math.isinf(value):  # orjson refused these already; kept for the second reader
        raise JsonError(f"{text[:40]} is too large for a number")
    return value


def dumps(value: Any) -> bytes:
    """``value`` as compact UTF-8 JSON, integers exact whatever their size."""
    try:
        return orjson.dumps(value)
    except TypeError:  # an integer beyond 64 bits: written exactly, not as a float
        return pydantic_core.to_json(value)
