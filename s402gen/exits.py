"""Exit codes: the one table of what each command's exit status means.

Every command exits through :class:`Exit`; each command's ``--help`` lists
only the codes it can return, written by :func:`epilog` from
:data:`MEANINGS`. Any command also exits 2 for a usage error (click's own
code) and 130 when interrupted.
"""

from __future__ import annotations

from enum import IntEnum


class Exit(IntEnum):
    """Exit statuses s402gen uses."""

    OK = 0
    FINDINGS = 1
    INVALID = 2
    INTERRUPTED = 130


_USAGE = "usage error"
_INTERRUPTED = "interrupted (Ctrl-C or SIGTERM)"

#: What each status means, command by command (the group's own entry is ``s402gen``).
MEANINGS: dict[str, dict[Exit, str]] = {
    "s402gen": {
        Exit.OK: "success",
        Exit.FINDINGS: "the command's findings (see each command's --help)",
        Exit.INVALID: f"invalid catalog, bad configuration or {_USAGE}",
        Exit.INTERRUPTED: "interrupted",
    },
    "build": {
        Exit.OK: "files written, or already up to date",
        Exit.FINDINGS: "--fail-on-change: files were written or removed",
        Exit.INVALID: f"invalid catalog, bad configuration, refused or unwritable output, "
        f"or {_USAGE}",
        Exit.INTERRUPTED: f"{_INTERRUPTED}; the output folder holds the previous build, or "
        "the next build or check completes this one",
    },
    "check": {
        Exit.OK: "the output folder is up to date",
        Exit.FINDINGS: "generated files changed, are missing or are orphaned",
        Exit.INVALID: f"invalid catalog, bad configuration, refused output folder or {_USAGE}",
        Exit.INTERRUPTED: _INTERRUPTED,
    },
    "validate": {
        Exit.OK: "valid (warnings allowed)",
        Exit.FINDINGS: "--strict: there are warnings",
        Exit.INVALID: f"invalid catalog, bad configuration, SDK missing or {_USAGE}",
        Exit.INTERRUPTED: _INTERRUPTED,
    },
    "diff": {
        Exit.OK: "no breaking change (dangerous and safe changes may be reported)",
        Exit.FINDINGS: "at least one breaking change",
        Exit.INVALID: f"either catalog is invalid, REF cannot be read, git is missing, or {_USAGE}",
        Exit.INTERRUPTED: _INTERRUPTED,
    },
    "import": {
        Exit.OK: "catalog.yaml written (warnings name what it cannot reproduce)",
        Exit.INVALID: f"FILE or SOURCE unreadable or not a valid catalog, PATH exists, or {_USAGE}",
        Exit.INTERRUPTED: _INTERRUPTED,
    },
    "schema": {
        Exit.OK: "schema printed",
        Exit.INVALID: _USAGE,
    },
    "serve": {
        Exit.OK: "stopped",
        Exit.INVALID: "serve extra not installed, no generated output, no upstream credentials, "
        f"dev payments with a real upstream (--allow-dev-payments), or {_USAGE}",
    },
    "mcp": {
        Exit.OK: "stopped",
        Exit.INVALID: "serve extra not installed, no generated output, no upstream credentials, "
        f"dev payments with a real upstream (--allow-dev-payments), or {_USAGE}",
    },
    "keys": {
        Exit.OK: "key created, listed or revoked",
        Exit.INVALID: f"ledger unreadable, unknown key id, or {_USAGE}",
    },
}


def epilog(command: str) -> str:
    """The ``Exit codes:`` block of ``command``'s help (click keeps its lines as written)."""
    rows = [f"  {int(code):<3} {text}" for code, text in sorted(MEANINGS[command].items())]
    return "\b\nExit codes:\n" + "\n".join(rows)
