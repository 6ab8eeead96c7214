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
streamed from it. Every service's part of these files (a member) may instead
be copied from the file as it is (:class:`s402gen.incremental.Splice`).
"""

from __future__ import annotations

import functools
import os
import tempfile
from typing import Any, Callable, Iterable, Iterator

from . import documents, ir, jsonstream, openapi
from .runtime import x402_contract


class Spool:
    """Texts written one after another to an anonymous temporary file, each read back by
    where it lies.

    The file lives in the system's temporary folder (``tempfile``) and is
    deleted when closed; it never holds more than what was written.
    """

    def __init__(self) -> None:
        self._file = tempfile.TemporaryFile()
        self._end = 0

    def write(self, text: str) -> tuple[int, int]:
        """Append ``text`` (UTF-8); where it lies: ``(byte offset, byte length)``."""
        data = text.encode("utf-8")
        self._file.write(data)
        at, self._end = self._end, self._end + len(data)
        return at, len(data)

    def read(self, at: int, size: int) -> bytes:
        """The ``size`` bytes written at ``at`` (a :meth:`write`'s answer)."""
        self._file.flush()
        return os.pread(self._file.fileno(), size, at)

    def close(self) -> None:
        """Delete the file."""
        self._file.close()


def catalog_json(
    head: dict[str, Any], entries: Iterable[bytes], payment: dict[str, Any]
) -> Iterator[bytes]:
    """``catalog/catalog.json`` as ``catalog.json.jinja`` writes it (UTF-8); ``entries`` are
    the entries' JSON, each indented two levels (``to_json(entry, 2)``)."""
    yield b"{\n"
    for key, value in head.items():
        yield b"  " + jsonstream.dumps(key) + b": " + jsonstream.dumps(value, 1) + b",\n"
    yield b'  "services": [\n'
    first = True
    for entry in entries:
        yield b"    " if first else b",\n    "
        yield entry
        first = False
    if not first:
        yield b"\n"
    yield b'  ],\n  "payment": ' + jsonstream.dumps(payment, 1) + b"\n}\n"


def tools_json(tools: Iterable[dict[str, Any]]) -> Iterator[bytes]:
    """``mcp/tools.json`` as ``mcp_tools.json.jinja`` writes it (UTF-8): one tool at a time."""
    yield b"[\n"
    first = True
    for tool in tools:
        yield b"  " if first else b",\n  "
        yield jsonstream.piece(tool, 1)
        first = False
    yield b"]\n" if first else b"\n]\n"


def json_file(tree: Any) -> Iterator[bytes]:
    """A template of the form ``{{ document | json }}`` and a newline, streamed (UTF-8)."""
    yield from jsonstream.chunks(tree)
    yield b"\n"


def openapi_json(catalog: ir.Catalog, member: openapi.MemberOf | None = None) -> Iterator[bytes]:
    """``openapi.json`` as ``openapi.json.jinja`` writes it, one path and schema at a time
    (the whole document at once when two of its keys collide: a dict keeps the last);
    ``member`` as :func:`openapi.openapi_tree`'s."""
    tree, unique = openapi.openapi_tree(catalog, member)
    if unique:
        yield from json_file(tree)
    else:
        yield jsonstream.dumps(jsonstream.materialize(tree)) + b"\n"


def offers_json(
    catalog: ir.Catalog, member: Callable[[ir.Service, Callable[[], Any]], Any] | None = None
) -> Iterator[bytes]:
    """``x402/offers.json`` as ``x402_offers.json.jinja`` writes it, one offer made and
    written at a time (:func:`documents.x402_offer`); ``member(service, make)`` is what
    is written for each service paid through x402 (default: ``make()``, its offer)."""

    def offers() -> Iterator[tuple[str, Any]]:
        for svc in documents.x402_paid(catalog):
            make = functools.partial(documents.x402_offer, catalog, svc)
            yield svc.route.service_id, make() if member is None else member(svc, make)

    head = x402_contract.offers_document(catalog.x402_providers, {})
    tree = jsonstream.Items(
        (key, jsonstream.Items(offers()) if key == "services" else value)
        for key, value in head.items()
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
