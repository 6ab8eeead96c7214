"""The unified diff ``check`` prints for drifted files, within limits.

A unified diff costs up to quadratic time in the lines of a file (difflib), so a
large catalog that drifted everywhere took minutes; past the ``DIFF_*`` limits
a one-line summary stands for what is left out, and every drifted file is still
reported (:func:`s402gen.write.check`).
"""

from __future__ import annotations

import difflib
import hashlib
from typing import Iterable

# Limits of the drift diff ``check`` prints. A unified diff costs up to quadratic time in the
# lines of a file (difflib), so a large catalog that drifted everywhere took minutes; past these
# limits ``check`` prints a one-line summary instead, and still reports every drifted file as a
# finding. A small drift is printed in full, exactly as before.
DIFF_MAX_FILE_BYTES = 128 * 1024
"""A file whose old or new text is larger (UTF-8 bytes) is not diffed; one summary line gives
both sizes and sha256 digests instead."""
DIFF_MAX_FILE_LINES = 200
"""At most this many lines of diff per file (headers included), then ``... N more lines``."""
DIFF_MAX_TOTAL_BYTES = 128 * 1024
"""Once the printed diff reaches this size, the remaining drifted files are named, not diffed."""
DIFF_MAX_TOTAL_INPUT_BYTES = 4 * 1024 * 1024
"""Once the files diffed so far sum to this size (old and new text), the rest are named only:
this bounds the time spent in difflib whatever the diffs look like."""


def bounded_diff(
    pairs: Iterable[tuple[str, str | None, str | None]], first_lines: dict[str, int]
) -> list[str]:
    """The diff chunks of ``(path, old, new)`` pairs (``None``: absent) within the ``DIFF_*``
    limits; ``first_lines`` receives the first differing line of each changed file that is not
    diffed in full."""
    chunks: list[str] = []
    printed = fed = 0
    left_out: list[str] = []
    for path, old, new in pairs:
        if not left_out and fed < DIFF_MAX_TOTAL_INPUT_BYTES:
            chunk, fed = _file_diff(path, old, new, fed, first_lines)
            if printed + len(chunk) <= DIFF_MAX_TOTAL_BYTES:
                chunks.append(chunk)
                printed += len(chunk)
                continue
        left_out.append(path)
        if old is not None and new is not None:
            first_lines[path] = _first_difference(old, new)
    if left_out:
        chunks.append(
            f"... diff limit reached ({DIFF_MAX_TOTAL_BYTES} bytes printed or "
            f"{DIFF_MAX_TOTAL_INPUT_BYTES} bytes compared): {len(left_out)} more drifted "
            "files not diffed:\n"
        )
        chunks.extend(f"... {path}\n" for path in left_out)
    return chunks


def _file_diff(
    path: str, old: str | None, new: str | None, fed: int, first_lines: dict[str, int]
) -> tuple[str, int]:
    """The diff chunk of one file and ``fed`` plus the bytes it compared: a one-line summary
    when the file is over ``DIFF_MAX_FILE_BYTES``."""
    old_bytes, new_bytes = _utf8(old), _utf8(new)
    if max(len(old_bytes or b""), len(new_bytes or b"")) > DIFF_MAX_FILE_BYTES:
        if old is not None and new is not None:
            first_lines[path] = _first_difference(old, new)
        sizes = f"{_describe(old_bytes)} -> {_describe(new_bytes)}"
        return f"file too large to diff: {path}: {sizes}\n", fed
    fed += len(old_bytes or b"") + len(new_bytes or b"")
    return _diff(old, new, path), fed


def _utf8(text: str | None) -> bytes | None:
    return None if text is None else text.encode("utf-8")


def _describe(data: bytes | None) -> str:
    """``N bytes, sha256 <hex>`` of ``data``, or ``absent``."""
    if data is None:
        return "absent"
    return f"{len(data)} bytes, sha256 {hashlib.sha256(data).hexdigest()}"


def _first_difference(old: str, new: str) -> int:
    """The 1-based line of ``old`` where ``new`` first differs (lines compared in order)."""
    line = 1
    for a, b in zip(old.splitlines(keepends=True), new.splitlines(keepends=True)):
        if a != b:
            break
        line += 1
    return line


def _diff(old: str | None, new: str | None, path: str) -> str:
    lines = difflib.unified_diff(
        (old or "").splitlines(keepends=True),
        (new or "").splitlines(keepends=True),
        fromfile="/dev/null" if old is None else f"a/{path}",
        tofile="/dev/null" if new is None else f"b/{path}",
    )
    out: list[str] = []
    for count, line in enumerate(lines):
        if count == DIFF_MAX_FILE_LINES:
            rest = sum(1 for _ in lines)
            out.append(f"... {rest + 1} more lines of this diff left out\n")
            break
        out.append(line if line.endswith("\n") else line + "\n")
    return "".join(out)
