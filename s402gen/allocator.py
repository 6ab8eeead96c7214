"""The C allocator's settings for a compiling command (glibc's ``malloc`` only).

glibc serves a block of at least ``M_MMAP_THRESHOLD`` bytes (128 KiB by
default) with a mapping of its own, unmapped when freed. But it raises that
threshold to the size of each such block freed (up to 32 MiB), so that later
blocks of that size come from the heap instead, and the heap only shrinks from
its top: a build frees the manifest's 3.5 MiB text, then makes the stat index's
buffers, which land on the heap under the IR's arenas and stay counted in the
process's resident set after they are freed (an edit at 10,000 services: +5
MiB at its peak). A fixed threshold (which, set, is no longer adjusted) keeps
every large buffer a mapping of its own. Source: the ``mallopt(3)`` manual page
of the Linux man-pages project, ``M_MMAP_THRESHOLD``.
"""

from __future__ import annotations

import ctypes
import sys

M_MMAP_THRESHOLD = -3  # mallopt's parameter number, from glibc's <malloc.h>
MMAP_THRESHOLD = 128 * 1024
"""Bytes from which a block is mapped on its own: glibc's default, kept fixed."""


def map_large_blocks() -> bool:
    """Fix glibc's mmap threshold at :data:`MMAP_THRESHOLD` for the rest of the process.

    Returns ``True`` when it was set; ``False`` where there is no glibc ``mallopt`` to
    set it with (macOS, Windows; musl's ``mallopt`` does nothing and says so). Never
    raises.
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    return mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1
