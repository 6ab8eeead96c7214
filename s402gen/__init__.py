"""s402gen: compile catalog.yaml into Server402 routes, MCP tools, catalog JSON and docs.

The stages are modules named after them (``load``, ``validate``,
``derive``, ``render``, ``write``); :func:`compile_catalog` runs them all
and returns the file map with every diagnostic.
"""

from .pipeline import Compilation, compile_catalog

__all__ = ["Compilation", "compile_catalog"]
