"""JSON in and out of the gateway with numbers kept exact.

``orjson`` reads an integer beyond 64 bits as a float (``2**70`` became
``1.1805916207174113e+21`` on its way upstream) and refuses to write one
(``TypeError: Integer exceeds 64-bit range``). Request bodies, JSON-string
arguments and upstream answers are therefore read with ``pydantic_core``'s
parser (integers of any size stay ``int``; ``NaN`` and ``Infinity``, which
JSON does not have, are refused), and answers written with ``orjson``, falling
back to ``pydantic_core`` for the rare integer ``orjson`` cannot hold.
"""

from __future__ import annotations

from typing import Any

import orjson
import pydantic_core


class JsonError(ValueError):
    """The text is not valid JSON (RFC 8259: no ``NaN``, no ``Infinity``)."""


def loads(data: bytes | bytearray | str) -> Any:
    """The JSON value of ``data``, integers exact; raises :class:`JsonError`."""
    text = bytes(data) if isinstance(data, bytearray) else data
    try:
        return pydantic_core.from_json(text, allow_inf_nan=False)
    except ValueError as exc:
        raise JsonError(str(exc)) from None


def dumps(value: Any) -> bytes:
    """``value`` as compact UTF-8 JSON, integers exact whatever their size."""
    try:
        return orjson.dumps(value)
    except TypeError:  # an integer beyond 64 bits: written exactly, not as a float
        return pydantic_core.to_json(value)
