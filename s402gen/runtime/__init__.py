"""Runtime of the generated artifacts: what generated route modules import.

Kept free of compiler and web-framework imports so that a generated route
module imports fast and anywhere; the FastAPI app that serves the specs is
built on top of this package. :func:`create_app` (from :mod:`.app`, which
needs the ``serve`` extra) is loaded on first use, so that importing this
package never imports FastAPI or the MCP SDK.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .app import create_app

__all__ = ["create_app"]


def __getattr__(name: str) -> Any:
    if name == "create_app":
        try:
            from .app import create_app
        except ModuleNotFoundError as exc:
            raise ModuleNotFoundError(
                f"{exc}: s402gen.runtime.create_app needs pip install 's402gen[serve]'",
                name=exc.name,
            ) from exc
        return create_app
    raise AttributeError(f"module 's402gen.runtime' has no attribute {name!r}")
