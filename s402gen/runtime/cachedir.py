"""Where s402gen keeps its caches (one rule for the compiler's input cache and stat index,
:mod:`s402gen.cache`, and the gateway's bytecode of the route modules,
:mod:`s402gen.runtime.generated`). Standard library only: both sides import it at start."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path


def cache_dir(environ: Mapping[str, str]) -> Path | None:
    """The cache folder: ``$S402GEN_CACHE_DIR``, else ``$XDG_CACHE_HOME/s402gen``, else
    ``~/.cache/s402gen``; ``None`` when ``S402GEN_CACHE_DIR`` is ``off`` or empty."""
    configured = environ.get("S402GEN_CACHE_DIR")
    if configured is not None:
        return None if configured in ("", "off") else Path(configured)
    base = environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "s402gen"
