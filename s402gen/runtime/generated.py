"""Load a compiled ``generated/`` folder: route specs, catalog JSON and doc pages.

Loading keeps in memory only what serving needs at once: the route specs, the
search's fields of each catalog entry (:class:`~s402gen.runtime.search_index.SearchRow`)
and the catalog's top-level fields. A whole catalog entry is read from
``catalog/services/<id>.json`` when a search answer lists it (a bounded cache
keeps the recent ones); catalog.json, the doc pages and openapi.json are served
from disk.
"""

from __future__ import annotations

import functools
import importlib.util
import os
import py_compile
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

from pydantic import BaseModel, ConfigDict, ValidationError

from .cachedir import cache_dir
from .contract import CatalogDocument, CatalogEntry
from .search import CATEGORIES_FILE, CatalogSearch, Categories
from .search_index import SearchRow
from .spec import RouteSpec

#: Whole catalog entries kept in memory after a search answer listed them.
ENTRY_CACHE_SIZE = 128


class GeneratedError(Exception):
    """The folder is not a complete s402gen output (run ``s402gen build``)."""


class _Strict(BaseModel):
    model_config = ConfigDict(strict=True, frozen=True)


class _IndexDiscovery(_Strict):
    toolName: str  # catalog.json's names
    searchText: str
    aliases: list[str]


class _IndexEntry(_Strict):
    id: str
    internalServiceId: str
    category: str
    discovery: _IndexDiscovery


class _IndexDocument(_Strict):
    """catalog.json as loading reads it: each entry's search fields, every top-level field."""

    model_config = ConfigDict(strict=True, frozen=True, extra="allow")
    services: list[_IndexEntry]


@dataclass(frozen=True)
class Generated:
    """What the runtime serves. ``specs`` are in catalog order; ``document`` is catalog.json
    without its services (the search answers' other fields), ``rows`` each service's
    search fields; :attr:`catalog` is the whole catalog.json, read when asked for."""

    root: Path
    specs: tuple[RouteSpec, ...]
    document: CatalogDocument
    rows: tuple[SearchRow, ...]
    categories: Categories | None = None  # the declared categories, when the catalog has some
    _known: frozenset[str] = field(default=frozenset(), repr=False)

    @property
    def catalog_file(self) -> Path:
        """catalog.json."""
        return self.root / "catalog" / "catalog.json"

    @functools.cached_property
    def catalog(self) -> CatalogDocument:
        """The whole catalog.json, read through the output contract (held once read)."""
        return CatalogDocument.model_validate_json(self.catalog_file.read_bytes())

    def entry(self, position: int) -> CatalogEntry:
        """The whole catalog entry at ``position`` (catalog order), from its own file.

        Raises :class:`GeneratedError` when that file is missing or does not fit
        the output contract (the folder changed since the server started).
        """
        return _read_entry(self.root, self.rows[position].id)

    def search(self) -> CatalogSearch:
        """A search over this catalog (its FTS5 index is built here: ~0.2 s at 2,000)."""
        return CatalogSearch.from_rows(self.document, self.rows, self.entry, self.categories)

    def doc_page(self, service_id: str) -> Path | None:
        """The doc page of a service, or ``None`` for an unknown id."""
        page = self.root / "docs" / "tools" / f"{service_id}.html"
        known = service_id in self._known
        return page if known and page.is_file() else None

    @property
    def index_page(self) -> Path:
        """The docs index page."""
        return self.root / "docs" / "index.html"


def bytecode_dir(environ: Mapping[str, str] = os.environ) -> Path | None:
    """Where the route modules' bytecode is cached: ``bytecode/`` of the s402gen cache
    folder (:func:`~s402gen.runtime.cachedir.cache_dir`); ``None`` when the cache is off.
    Never inside ``generated/``, which holds only built files."""
    folder = cache_dir(environ)
    return folder / "bytecode" if folder is not None else None


def _import(path: Path, name: str, bytecode: Path | None = None) -> ModuleType:
    """Import ``path`` as module ``name``. With ``bytecode``, Python's own import system
    reads and writes its compiled form there (``sys.pycache_prefix``), hash-checked
    against the source (PEP 552), so a rebuilt module is never run stale."""
    module_spec = importlib.util.spec_from_file_location(name, path)
    if module_spec is None or module_spec.loader is None:
        raise GeneratedError(f"cannot import {path}")
    module = importlib.util.module_from_spec(module_spec)
    sys.modules[name] = module
    writes_bytecode, prefix = sys.dont_write_bytecode, sys.pycache_prefix
    sys.dont_write_bytecode = bytecode is None  # no __pycache__ inside generated/
    try:
        if bytecode is not None:
            sys.pycache_prefix = str(bytecode)
            compiled = importlib.util.cache_from_source(str(path))
            if not os.path.exists(compiled):  # written once, hash-based: checked on every load
                try:
                    py_compile.compile(
                        str(path),
                        compiled,
                        doraise=True,
                        invalidation_mode=py_compile.PycInvalidationMode.CHECKED_HASH,
                    )
                except OSError:
                    pass  # an unwritable cache: compiled from source, as without one
        module_spec.loader.exec_module(module)
    except py_compile.PyCompileError as exc:
        raise SyntaxError(str(exc)) from None
    finally:
        sys.dont_write_bytecode, sys.pycache_prefix = writes_bytecode, prefix
        sys.modules.pop(name, None)
    return module


def load_generated(root: str | Path) -> Generated:
    """Import every route module listed in ``routes/__init__.py`` and read the catalog's
    top-level fields and each entry's search fields (a whole entry is read and checked
    against the output contract when it is served, :meth:`Generated.entry`).

    Raises :class:`GeneratedError` when a file is missing or malformed, or what
    is read of the catalog does not fit the output contract.
    """
    root = Path(root)
    routes = root / "routes"
    bytecode = bytecode_dir()
    try:
        # catalog.json first: its bytes (33 MB at 2,000 services) are gone before the route
        # modules are imported, so the two do not add up in the start's peak memory
        index = _IndexDocument.model_validate_json((root / "catalog" / "catalog.json").read_bytes())
        package = _import(routes / "__init__.py", "s402gen_generated_routes", bytecode)
        specs = tuple(
            _import(routes / f"{name}.py", f"s402gen_generated_routes.{name}", bytecode).SPEC
            for name in package.MODULES
        )
        document = CatalogDocument.model_validate({**(index.model_extra or {}), "services": []})
        categories_file = root / CATEGORIES_FILE
        categories = (
            Categories.model_validate_json(categories_file.read_bytes())
            if categories_file.is_file()
            else None
        )
    except (OSError, AttributeError, SyntaxError, ImportError) as exc:
        raise GeneratedError(f"{root} is not a complete s402gen output: {exc}") from None
    except ValidationError as exc:
        problem = f"{exc.error_count()} problem(s), first: {_first_error(exc)}"
        raise GeneratedError(f"{root}/catalog/catalog.json does not fit the contract: {problem}")
    rows = tuple(
        SearchRow(
            e.id,
            e.discovery.toolName,
            e.internalServiceId,
            e.category,
            tuple(e.discovery.aliases),
            e.discovery.searchText,
        )
        for e in index.services
    )
    known = frozenset(spec.service_id for spec in specs)
    return Generated(root, specs, document, rows, categories, known)


@functools.lru_cache(maxsize=ENTRY_CACHE_SIZE)
def _read_entry(root: Path, service_id: str) -> CatalogEntry:
    path = root / "catalog" / "services" / f"{service_id}.json"
    try:
        return CatalogEntry.model_validate_json(path.read_bytes())
    except OSError as exc:
        raise GeneratedError(f"{root} is not a complete s402gen output: {exc}") from None
    except ValidationError as exc:
        problem = f"{exc.error_count()} problem(s), first: {_first_error(exc)}"
        raise GeneratedError(f"{path} does not fit the contract: {problem}") from None


def _first_error(exc: ValidationError) -> str:
    error = exc.errors()[0]
    return ".".join(map(str, error["loc"])) + f": {error['msg']}"
