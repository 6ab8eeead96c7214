"""``s402gen keys create | list | revoke``: the API keys clients send as ``Authorization: Bearer``.

The keys live, hashed, in the payment ledger (SQLite or PostgreSQL) (``--ledger``, the same
default as ``serve``), so every replica sharing the ledger accepts them
(:mod:`s402gen.runtime.keys`). Only the standard library is needed: no serve extra.
"""

from __future__ import annotations

import contextlib
import sys
from typing import TYPE_CHECKING, Iterator

import click

from .cli import CONTEXT_SETTINGS, DEFAULT_LEDGER
from .exits import Exit, epilog

if TYPE_CHECKING:
    from .runtime.keys import KeyStore

_ledger_option = click.option(
    "--ledger",
    default=DEFAULT_LEDGER,
    show_default=True,
    help="The ledger file `s402gen serve --ledger` uses (created on first use).",
)


@contextlib.contextmanager
def _store(ledger: str) -> Iterator[KeyStore]:
    """The key store of ``ledger``, closed when the block ends; exits 2 with one line when
    it cannot be opened (``:memory:``, a driver error, a newer schema)."""
    from .runtime.keys import KeyStore
    from .runtime.serve import ledger_error

    if ledger == ":memory:":
        click.echo("error: --ledger :memory: keeps no keys; name the serve ledger file", err=True)
        sys.exit(Exit.INVALID)
    try:
        store = KeyStore(ledger)
    except Exception as exc:  # the ledger's driver errors, a newer schema: one line
        click.echo(f"error: {ledger_error(ledger, exc)}", err=True)
        sys.exit(Exit.INVALID)
    try:
        yield store
    finally:
        store.close()


@click.group("keys", epilog=epilog("keys"), context_settings=CONTEXT_SETTINGS)
def keys_command() -> None:
    """Issue, list and revoke client API keys (sent as `Authorization: Bearer <key>`)."""


@keys_command.command("create", epilog=epilog("keys"))
@click.option("--name", default="", help="A label for the key (who holds it).")
@_ledger_option
def create(name: str, ledger: str) -> None:
    """Issue a key and print it once on stdout (only its SHA-256 digest is stored)."""
    with _store(ledger) as store:
        record, key = store.create(name)
    click.echo(f"created {record.key_id}{f' ({name})' if name else ''}; the key is shown once:",
               err=True)  # fmt: skip
    click.echo(key)


@keys_command.command("list", epilog=epilog("keys"))
@_ledger_option
def list_keys(ledger: str) -> None:
    """List issued keys: id, state, creation time, name (never the keys)."""
    with _store(ledger) as store:
        for record in store.list():
            click.echo(record.describe())


@keys_command.command("revoke", epilog=epilog("keys"))
@click.argument("key_id")
@_ledger_option
def revoke(key_id: str, ledger: str) -> None:
    """Revoke the key KEY_ID (from `keys list`); calls with it are refused from then on."""
    from .runtime.keys import KeyStoreError

    with _store(ledger) as store:
        try:
            record = store.revoke(key_id)
        except KeyStoreError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(Exit.INVALID)
    click.echo(record.describe())
