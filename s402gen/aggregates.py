"""The files that grow with the catalog, written without Jinja when the packaged template is used.

``catalog/catalog.json``, ``mcp/tools.json``, ``openapi.json`` and
``x402/offers.json`` hold something for every service (161 MiB, 66 MiB,
116 MiB and 48 MiB at 10,000 services). Their packaged templates only loop
and serialize, so here each is produced as the exact text its template gives
(tests/test_aggregates.py holds every one to the Jinja rendering), one
member at a time (:mod:`s402gen.jsonstream`), never as one string. A user
template folder that overrides one of these templates is rendered through
Jinja as before (:func:`s402gen.render.iter_files` decides).

``catalog.json`` repeats every ``catalog/services/<id>.json``: the entries are
computed once, for those files, and their indented text is kept in a
temporary file (:class:`Spool`), not in memory, until ``catalog.json`` is
streamed from it.
"""

from __future__ import annotations

import tempfile
from typing import Any, Iterable, Iterator

from . import ir, jsonstream, openapi

READ_SIZE = 1 << 20  # bytes read back from a spool at a time


class Spool:
    """Text written piece by piece to an anonymous temporary file, read back in chunks.

    The file lives in the system's temporary folder (``tempfile``) and is
    deleted when closed; it never holds more than what was written.
    """

    def __init__(self) -> None:
        self._file = tempfile.TemporaryFile()
        self.count = 0  # pieces written

    def write(self, text: str) -> None:
        """Append ``text`` (UTF-8)."""
        self._file.write(text.encode("utf-8"))
        self.count += 1

    def read(self) -> Iterator[bytes]:
        """Everything written (UTF-8), in blocks of :data:`READ_SIZE` bytes (a block may end
        inside a character); closes the spool."""
        try:
            self._file.seek(0)
            while block := self._file.read(READ_SIZE):
                yield block
        finally:
            self._file.close()

    def close(self) -> None:
        """Delete the file (reading it to the end closes it too)."""
        self._file.close()


def catalog_json(head: dict[str, Any], entries: Spool, payment: dict[str, Any]) -> Iterator[bytes]:
    """``catalog/catalog.json`` as ``catalog.json.jinja`` writes it (UTF-8); ``entries`` holds
    each entry indented two levels (``to_json(entry, 2)``), joined by ``,\\n    ``."""
    yield b"{\n"
    for key, value in head.items():
        yield b"  " + jsonstream.dumps(key) + b": " + jsonstream.dumps(value, 1) + b",\n"
    yield b'  "services": [\n'
    if entries.count:
        yield b"    "
        yield from entries.read()
        yield b"\n"
    else:
        entries.close()
    yield b'  ],\n  "payment": ' + jsonstream.dumps(payment, 1) + b"\n}\n"


def spool_separator(spool: Spool) -> str:
    """What goes before the next entry written to a :func:`catalog_json` spool."""
    return ",\n    " if spool.count else ""


def tools_json(tools: Iterable[dict[str, Any]]) -> Iterator[bytes]:
    """``mcp/tools.json`` as ``mcp_tools.json.jinja`` writes it (UTF-8): one tool at a time."""
    yield b"[\n"
    first = True
    for tool in tools:
        yield (b"  " if first else b",\n  ") + jsonstream.dumps(tool, 1)
        first = False
    yield b"]\n" if first else b"\n]\n"


def json_file(tree: Any) -> Iterator[bytes]:
    """A template of the form ``{{ document | json }}`` and a newline, streamed (UTF-8)."""
    yield from jsonstream.chunks(tree)
    yield b"\n"


def openapi_json(catalog: ir.Catalog) -> Iterator[bytes]:
    """``openapi.json`` as ``openapi.json.jinja`` writes it, one path and schema at a time
    (the whole document at once when two of its keys collide: a dict keeps the last)."""
    tree, unique = openapi.openapi_tree(catalog)
    if unique:
        yield from json_file(tree)
    else:
        yield jsonstream.dumps(jsonstream.materialize(tree)) + b"\n"


def offers_json(offers: dict[str, Any]) -> Iterator[bytes]:
    """``x402/offers.json`` as ``x402_offers.json.jinja`` writes it, one service at a time."""
    tree = jsonstream.Items(
        (key, jsonstream.Items(value.items()) if key == "services" else value)
        for key, value in offers.items()
    )
    yield from json_file(tree)


def spliced(frame: str, empty: str, value: Any) -> Iterator[str | bytes]:
    """``frame`` (a template rendered with an empty value) with its one ``empty`` JSON text
    replaced by ``value`` streamed (:func:`jsonstream.chunks`, at the top level). Raises
    ``ValueError`` when ``empty`` is not in ``frame`` exactly once."""
    if frame.count(empty) != 1:
        raise ValueError(f"expected one {empty!r} in the template's text")
    before, after = frame.split(empty)
    yield before
    yield from jsonstream.chunks(value)
    yield after
