"""Reading an input file (the catalog, a file it includes) without hanging or exhausting memory.

The path must name a regular file no larger than :data:`MAX_INPUT_BYTES`: a FIFO, a
device such as ``/dev/zero``, a folder or a huge file is refused before anything is
read (the file is opened non-blocking, so a FIFO with no writer cannot hang the run).
"""

from __future__ import annotations

import os
import stat

from .diagnostics import Rule, Rules

MAX_INPUT_BYTES = 32 * 1024 * 1024
"""Largest catalog file (or included file) s402gen reads, in bytes. A 10,000-service
catalog is about 5 MiB (the real catalog.yaml holds 44 services in 22 KiB)."""


class InputError(Exception):
    """``path`` cannot be read as an input: ``rule`` and ``message`` say why."""

    def __init__(self, rule: Rule, message: str):
        self.rule = rule
        super().__init__(message)


def _what(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def read_input(path: str | os.PathLike[str], name: str | None = None) -> bytes:
    """The bytes of the regular file ``path`` (``name`` is used in messages).

    Raises ``FileNotFoundError`` when it does not exist, :class:`InputError` when it is
    not a regular file or is larger than :data:`MAX_INPUT_BYTES`, ``OSError`` otherwise.
    """
    shown = name or os.fspath(path)
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        raise InputError(Rules.INPUT_NOT_A_FILE, f"{shown} is {_what(mode)}, not a regular file")
    with os.fdopen(fd, "rb") as handle:
        data = handle.read(MAX_INPUT_BYTES + 1)
    if len(data) > MAX_INPUT_BYTES:
        raise InputError(
            Rules.INPUT_TOO_LARGE,
            f"{shown} is larger than {MAX_INPUT_BYTES // (1024 * 1024)} MiB "
            f"(s402gen.inputs.MAX_INPUT_BYTES)",
        )
    return data


def read_input_text(path: str | os.PathLike[str], name: str | None = None) -> str:
    """:func:`read_input` decoded as UTF-8, line ends made ``\\n`` (as text-mode ``open``).

    Raises as :func:`read_input`, and ``UnicodeDecodeError``.
    """
    text = read_input(path, name).decode("utf-8")
    return text.replace("\r\n", "\n").replace("\r", "\n") if "\r" in text else text
