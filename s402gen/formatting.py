"""Black formatting of generated Python, for user templates only.

The packaged route template emits black-stable text by construction (a
test asserts it), so the default build never imports black (0.2 s) nor
pays its ~20 ms per module. A user's own route template may emit anything;
its output is formatted here, memoized by the unformatted text.
"""

from __future__ import annotations

from functools import lru_cache


class FormatError(ValueError):
    """A template produced text black cannot format (not valid Python)."""


@lru_cache(maxsize=4096)
def format_python(source: str) -> str:
    """``source`` formatted by black with its default mode.

    Raises :class:`FormatError` when the source is not valid Python.
    """
    import black  # lazy: only user templates need it

    try:
        return black.format_str(source, mode=black.Mode())
    except Exception as exc:  # black raises InvalidInput, TokenError, and more
        raise FormatError(f"generated Python is not valid: {exc}") from None
