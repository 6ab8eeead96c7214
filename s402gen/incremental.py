"""Per-service reuse: a service whose inputs did not change is not rendered again.

Each service gets a render key: the sha256 of the code key
(:func:`s402gen.cache.code_key`: templates, s402gen, libraries, Python,
``SOURCE_DATE_EPOCH``), the catalog-wide facts its files show (marketplace
name, ``generatedAt``, categories), its own IR (position excluded), its x402
provider's terms (its offer is made from them) and the IR of the services its
doc page links to (a category counts by its labels, not its members, unless a
user template folder is in use). Its own files (``routes/<module>.py``,
``catalog/services/<id>.json``, ``docs/tools/<id>.html``) are rendered
from exactly those, so when a service's key is the one the stat index
(:mod:`s402gen.statcache`) recorded and a file's stat is the recorded one,
that file already holds what rendering would give: it is passed on as
:class:`s402gen.write.Unchanged`. The files every service feeds (catalog.json,
tools.json, openapi.json, offers.json, the search data) are assembled again,
but each service's part of them (a member, :class:`Splice`) is copied from the
file as it is when the service's key and the file's stat are the recorded
ones: the index records where each member lies (:meth:`~s402gen.statcache.Index.take_spans`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import weakref
from typing import Any, Callable, Iterable, Iterator, Sequence

import orjson

from . import ir, jsonstream
from .statcache import Index, Spans, stat_signature
from .write import Unchanged


def _ir_bytes(value: Any) -> bytes:
    # orjson serializes dataclasses field by field, in order; equal bytes mean equal values
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS)


def ir_digest(svc: ir.Service) -> bytes:
    """The sha256 of the IR of ``svc`` alone, position excluded (what its render key
    holds of it; :mod:`s402gen.servicecache` keeps it with the IR)."""
    return hashlib.sha256(_ir_bytes(dataclasses.replace(svc, index=0))).digest()


class Reuse:
    """The render keys of a catalog's services, and which of their files need no render.

    ``index`` is the output folder's stat index (``None``: render everything);
    ``user_templates``: a user template folder is in use (its doc page may show more of
    the catalog-wide facts: all of them count); ``digests``: the :func:`ir_digest` of
    each service by position, where known (else computed);
    :attr:`keys` collects ``{service id: render key}`` for the next index.
    """

    def __init__(
        self,
        code: str,
        catalog: ir.Catalog,
        index: Index | None,
        user_templates: bool = False,
        digests: Sequence[bytes | None] = (),
    ):
        self.code = code
        self.index = index
        self.keys: dict[str, str] = {}
        self.reused = 0  # files passed on unchanged
        categories = catalog.categories
        if not user_templates:  # the packaged page shows a category's labels, not its members
            categories = tuple(dataclasses.replace(c, services=()) for c in categories)
        context = (catalog.marketplace, catalog.generated_at, categories)
        self._context = code.encode() + b"\0" + _ir_bytes(context)
        #: an x402 offer is made from the IR and its provider's terms: they are in its key
        self._terms = {pid: _ir_bytes(terms) for pid, terms in catalog.x402_terms.items()}
        self._by_id = {svc.route.service_id: svc for svc in catalog.services}
        self._digests: dict[str, bytes] = {}
        self._known = digests
        #: where the members of each file every service feeds lie, ``{path: spans}``, for
        #: the files assembled this run (:meth:`Splice.record`), for the next index
        self.members: dict[str, Spans] = {}

    def key(self, svc: ir.Service) -> str:
        """The render key of ``svc`` (computed once)."""
        found = self.keys.get(svc.route.service_id)
        if found is None:
            digest = hashlib.sha256(self._context)
            digest.update(self._own(svc))
            digest.update(self._terms.get(svc.route.payment.provider_id, b"null"))
            for other in svc.texts.related_services:
                if other in self._by_id:
                    digest.update(self._own(self._by_id[other]))
            found = self.keys[svc.route.service_id] = digest.hexdigest()
        return found

    def _own(self, svc: ir.Service) -> bytes:
        """The sha256 of the IR of ``svc`` alone, position excluded (computed once)."""
        found = self._digests.get(svc.route.service_id)
        if found is None:
            known = self._known[svc.index] if svc.index < len(self._known) else None
            found = self._digests[svc.route.service_id] = known or ir_digest(svc)
        return found

    def unchanged(self, svc: ir.Service, path: str) -> Unchanged | None:
        """:class:`Unchanged` for ``path``, a file of ``svc`` alone, when it needs no render."""
        key = self.key(svc)
        if self.index is None or self.index.services.get(svc.route.service_id) != key:
            return None
        digest = self.index.known(path)
        if digest is None:
            return None
        self.reused += 1
        return Unchanged(digest)

    def text(self, path: str, unchanged: Unchanged) -> str | None:
        """The text of ``path`` that :meth:`unchanged` vouched for, when its sha256 is still
        that one; else ``None``."""
        if self.index is None:
            return None
        try:
            with open(os.path.join(self.index.out, path), "rb") as file:
                data = file.read()
        except OSError:
            return None
        if hashlib.sha256(data).hexdigest() != unchanged.digest:
            return None
        return data.decode("utf-8")


def _tag(svc: ir.Service, slot: str) -> str:
    """The tag of ``svc``'s member ``slot`` in a file every service feeds."""
    return f"{slot} {svc.route.service_id}"


class Splice:
    """The members of one file every service feeds (``path``, relative to the output
    folder): each service's part of it, tagged ``"<slot> <service id>"`` (a tool of
    tools.json, an entry of catalog.json, a path item or a schema of openapi.json...).

    When the service's render key is the one the index recorded, and the file's stat is
    the recorded one (checked again on the open file), a member's bytes are read from
    the file as it is, where the index says it lies (:meth:`old`), instead of being
    made again. :meth:`record` passes the file's chunks on and notes where each
    :class:`~s402gen.jsonstream.Tagged` piece lies, for the next index. Without
    ``reuse`` (no cache) members are plain values and nothing is recorded.
    """

    def __init__(self, reuse: Reuse | None, path: str):
        self.reuse = reuse
        self.path = path
        self._spans: dict[str, tuple[int, int]] | None = None
        self._fd: int | None = None
        index = reuse.index if reuse is not None else None
        #: the file is opened on the first member asked for (``False``: it lends nothing)
        self._lends = index is not None and index.lends(path)

    def _open(self) -> None:
        """Open the file as it is, if its stat is the recorded one (on the open file too)."""
        self._lends = False
        index = self.reuse.index  # type: ignore[union-attr]
        if index.known(self.path) is None:  # type: ignore[union-attr]
            return
        flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK  # a FIFO swapped in never hangs
        try:
            fd = os.open(os.path.join(index.out, self.path), flags)
        except OSError:
            return
        recorded = index.recorded(self.path)  # type: ignore[union-attr]
        if recorded is None or stat_signature(os.fstat(fd)) != recorded[0]:
            os.close(fd)  # replaced since it was checked
            return
        self._fd, self._spans = fd, index.take_spans(self.path)  # type: ignore[union-attr]
        # closed by record() or close(); else (a file map never consumed) when dropped
        self._closer = weakref.finalize(self, os.close, fd)

    def _span(self, svc: ir.Service, slot: str) -> tuple[int, int] | None:
        if self._lends:
            self._open()
        if self._spans is None or self.reuse is None or self.reuse.index is None:
            return None
        service_id = svc.route.service_id
        span = self._spans.get(_tag(svc, slot))
        if span is None or self.reuse.index.services.get(service_id) != self.reuse.key(svc):
            return None
        return span

    def has(self, svc: ir.Service, slot: str) -> bool:
        """Whether :meth:`old` may have ``svc``'s member ``slot`` (it reads nothing)."""
        return self._span(svc, slot) is not None

    def old(self, svc: ir.Service, slot: str) -> bytes | None:
        """The bytes of ``svc``'s member ``slot`` in the file as it is, when they are what
        making it again would give; else ``None``."""
        span = self._span(svc, slot)
        if span is None:
            return None
        data = os.pread(self._fd, span[1], span[0])  # type: ignore[arg-type]
        if len(data) != span[1]:
            return None
        return data

    def tagged(self, svc: ir.Service, slot: str, data: bytes) -> bytes:
        """``data``, the text of ``svc``'s member ``slot``, tagged for :meth:`record` (as it
        is without a cache)."""
        if self.reuse is None:
            return data
        return jsonstream.tagged(_tag(svc, slot), data)

    def member(self, svc: ir.Service, slot: str, make: Callable[[], Any]) -> Any:
        """``svc``'s member ``slot`` as a :class:`~s402gen.jsonstream.Member` (its old bytes
        when :meth:`old` has them); without a cache, ``make()``."""
        if self.reuse is None:
            return make()
        return jsonstream.Member(_tag(svc, slot), make, self.old(svc, slot))

    def record(self, chunks: Iterable[str | bytes]) -> Iterator[str | bytes]:
        """``chunks`` passed on; once all are, where each tagged piece lies is kept in
        :attr:`Reuse.members`. Closes the file as it is."""
        spans = Spans()
        at = 0
        try:
            for chunk in chunks:
                if isinstance(chunk, str):
                    size = len(chunk.encode("utf-8"))
                else:
                    size = len(chunk)
                    if type(chunk) is jsonstream.Tagged:
                        spans.add(chunk.tag, at, size)
                at += size
                yield chunk
            if self.reuse is not None:
                self.reuse.members[self.path] = spans
        finally:
            self.close()

    def close(self) -> None:
        """Close the file as it is (reading members ends)."""
        self._lends = False
        if self._fd is not None:
            self._closer()
            self._fd, self._spans = None, None
