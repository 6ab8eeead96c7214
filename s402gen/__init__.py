"""s402gen: compile catalog.yaml into Server402 routes, MCP tools, catalog JSON and docs.

The stages are modules named after them (``load``, ``validate``,
``derive``, ``render``, ``write``); :func:`compile_catalog` runs them all
and returns the file map with every diagnostic.

The package itself imports nothing: generated route modules import
:mod:`s402gen.runtime`, which must load without the compiler (jinja2,
yaml, black, the authoring model). ``compile_catalog`` and
``Compilation`` are loaded from :mod:`s402gen.pipeline` on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .pipeline import Compilation, compile_catalog

__all__ = ["Compilation", "compile_catalog"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from . import pipeline

        return getattr(pipeline, name)
    raise AttributeError(f"module 's402gen' has no attribute {name!r}")
