"""JSON in and out of the gateway with numbers kept exact.

``orjson`` reads an integer beyond 64 bits as a float (``2**70`` became
``1.1805916207174113e+21`` on its way upstream) and refuses to write one
(``TypeError: Integer exceeds 64-bit range``). Request bodies, JSON-string
arguments and upstream answers are therefore read with the standard
library's parser (integers of any size stay ``int``, up to Python's
4,300-digit limit), refusing what JSON does not have (``NaN``,
``Infinity``) and numbers a float cannot hold (``1e400``, which would become
``inf``); answers are written with ``orjson``, falling back to
``pydantic_core`` for the rare integer ``orjson`` cannot hold.
"""

from __future__ import annotations

import json
import math
from typing import Any

import orjson
import pydantic_core


class JsonError(ValueError):
    """The text is not valid JSON (RFC 8259: no ``NaN``, no ``Infinity``)."""


def _constant(name: str) -> Any:
    raise JsonError(f"{name} is not a JSON number")


def _float(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise JsonError(f"{text[:40]} is too large for a number")
    return value


def loads(data: bytes | bytearray | str) -> Any:
    """The JSON value of ``data``, integers exact; raises :class:`JsonError`."""
    try:
        return json.loads(data, parse_float=_float, parse_constant=_constant)
    except JsonError:
        raise
    except (ValueError, RecursionError) as exc:  # bad JSON or UTF-8, a 4,300+ digit integer
        raise JsonError(str(exc)[:200]) from None


def dumps(value: Any) -> bytes:
    """``value`` as compact UTF-8 JSON, integers exact whatever their size."""
    try:
        return orjson.dumps(value)
    except TypeError:  # an integer beyond 64 bits: written exactly, not as a float
        return pydantic_core.to_json(value)
