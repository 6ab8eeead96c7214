"""Load a compiled ``generated/`` folder: route specs, catalog JSON and doc pages."""

from __future__ import annotations

import importlib.util
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from pydantic import ValidationError

from .contract import CatalogDocument
from .search import CATEGORIES_FILE, Categories
from .spec import RouteSpec


class GeneratedError(Exception):
    """The folder is not a complete s402gen output (run ``s402gen build``)."""


@dataclass(frozen=True)
class Generated:
    """What the runtime serves. ``specs`` are in catalog order; ``catalog`` is catalog.json,
    read through the output contract, and ``catalog_bytes`` its text."""

    root: Path
    specs: tuple[RouteSpec, ...]
    catalog: CatalogDocument
    catalog_bytes: bytes
    categories: Categories | None = None  # the declared categories, when the catalog has some

    def doc_page(self, service_id: str) -> Path | None:
        """The doc page of a service, or ``None`` for an unknown id."""
        page = self.root / "docs" / "tools" / f"{service_id}.html"
        known = any(spec.service_id == service_id for spec in self.specs)
        return page if known and page.is_file() else None

    @property
    def index_page(self) -> Path:
        """The docs index page."""
        return self.root / "docs" / "index.html"


def _import(path: Path, name: str) -> ModuleType:
    module_spec = importlib.util.spec_from_file_location(name, path)
    if module_spec is None or module_spec.loader is None:
        raise GeneratedError(f"cannot import {path}")
    module = importlib.util.module_from_spec(module_spec)
    sys.modules[name] = module
    writes_bytecode = sys.dont_write_bytecode
    sys.dont_write_bytecode = True  # no __pycache__ inside generated/: it holds only built files
    try:
        module_spec.loader.exec_module(module)
    finally:
        sys.dont_write_bytecode = writes_bytecode
        sys.modules.pop(name, None)
    return module


def load_generated(root: str | Path) -> Generated:
    """Import every route module listed in ``routes/__init__.py`` and read the catalog.

    Raises :class:`GeneratedError` when a file is missing or malformed, or the
    catalog does not fit the output contract.
    """
    root = Path(root)
    routes = root / "routes"
    try:
        package = _import(routes / "__init__.py", "s402gen_generated_routes")
        specs = tuple(
            _import(routes / f"{name}.py", f"s402gen_generated_routes.{name}").SPEC
            for name in package.MODULES
        )
        catalog_bytes = (root / "catalog" / "catalog.json").read_bytes()
        catalog = CatalogDocument.model_validate_json(catalog_bytes)
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
    return Generated(root, specs, catalog, catalog_bytes, categories)


def _first_error(exc: ValidationError) -> str:
    error = exc.errors()[0]
    return ".".join(map(str, error["loc"])) + f": {error['msg']}"
