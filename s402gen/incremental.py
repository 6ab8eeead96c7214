"""Per-service reuse: a service whose inputs did not change is not rendered again.

Each service gets a render key: the sha256 of the code key
(:func:`s402gen.cache.code_key`: templates, s402gen, libraries, Python,
``SOURCE_DATE_EPOCH``), the catalog-wide facts its files show (marketplace
name, ``generatedAt``, categories), its own IR (position excluded) and the IR
of the services its doc page links to (a category counts by its labels, not its members,
unless a user template folder is in use). Its own files (``routes/<module>.py``,
``catalog/services/<id>.json``, ``docs/tools/<id>.html``) are rendered
from exactly those, so when a service's key is the one the stat index
(:mod:`s402gen.statcache`) recorded and a file's stat is the recorded one,
that file already holds what rendering would give: it is passed on as
:class:`s402gen.write.Unchanged`. The files every service feeds (catalog.json,
tools.json, openapi.json, offers.json, the index page, search data) are
always assembled again; catalog.json takes an unchanged service's entry
from its ``catalog/services/<id>.json`` instead of computing it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
from typing import Any, Sequence

import orjson

from . import ir
from .statcache import Index
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
        self._by_id = {svc.route.service_id: svc for svc in catalog.services}
        self._digests: dict[str, bytes] = {}
        self._known = digests

    def key(self, svc: ir.Service) -> str:
        """The render key of ``svc`` (computed once)."""
        found = self.keys.get(svc.route.service_id)
        if found is None:
            digest = hashlib.sha256(self._context)
            digest.update(self._own(svc))
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
