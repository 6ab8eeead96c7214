"""``s402gen serve`` and ``s402gen mcp``: run the app with uvicorn, or MCP over stdio.

Both take the upstream from the environment's Alibaba Cloud credentials, or
start the local upstream emulator. Both need the ``serve`` extra
(``pip install 's402gen[serve]'``); :func:`missing_dependency` says what is missing.
"""

from __future__ import annotations

import contextlib
import importlib
import os
from pathlib import Path
from typing import Iterator

import click

from .generated import GeneratedError, load_generated
from .payments import Ledger
from .spec import RouteSpec
from .upstream import AlibabaCloudUpstream, Credentials, Upstream

EMULATOR_CREDENTIALS = Credentials("emulator-access-key", "emulator-secret")
LOOPBACK = ("127.0.0.1", "localhost", "::1")

#: Top-level modules of the ``serve`` extra of pyproject.toml (import names, not distributions).
SERVE_MODULES = ("fastapi", "uvicorn", "mcp", "alibabacloud_tea_openapi", "x402")
SERVE_INSTALL = "pip install 's402gen[serve]'"
POSTGRES_INSTALL = "pip install 's402gen[postgres]'"


class SetupError(Exception):
    """The server cannot start; the message says why."""


def missing_dependency() -> str | None:
    """The first module of :data:`SERVE_MODULES` that cannot be imported, else ``None``.

    Imports them (the server needs them next anyway), so that a partial
    install fails before anything starts, with a hint instead of a traceback.
    """
    for name in SERVE_MODULES:
        try:
            importlib.import_module(name)
        except ImportError as exc:
            return getattr(exc, "name", None) or name
    return None


def http_url(host: str, port: int) -> str:
    """``http://host:port``, with an IPv6 literal in brackets."""
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


@contextlib.contextmanager
def upstream_for(
    kind: str, endpoint: str | None, specs: tuple[RouteSpec, ...]
) -> Iterator[Upstream]:
    """The upstream client: Alibaba Cloud, or a running emulator (stopped on exit)."""
    if kind != "emulator":
        from .upstreams import ProtocolMissing, clients_for

        try:  # each protocol's client, with the credentials its protocol names
            clients = clients_for(specs, os.environ, endpoint=endpoint)
        except KeyError as missing:
            raise SetupError(f"{missing.args[0]} is not set (or use --upstream emulator)") from None
        except ProtocolMissing as missing:
            raise SetupError(str(missing)) from None
        hosts = endpoint or ", ".join(
            sorted({s.upstream.endpoint for s in specs if s.upstream.endpoint})
        )
        click.echo(f"upstream: Alibaba Cloud at {hosts or 'the default endpoint'}", err=True)
        yield clients
        return
    from .emulator import start_emulator

    emulator = start_emulator(specs, credentials=[EMULATOR_CREDENTIALS])
    where = emulator.endpoints
    listening = (
        f"http://{emulator.endpoint}"
        if len(where) == 1
        else ", ".join(f"{product} http://{host}" for product, host in where.items())
    )
    click.echo(
        f"upstream: upstream emulator (a local fake of the upstream APIs for testing, "
        f"not the APIs) on {listening}",
        err=True,
    )
    try:
        yield AlibabaCloudUpstream(
            EMULATOR_CREDENTIALS, endpoint=endpoint or where, protocol="http"
        )
    finally:
        emulator.stop()


def open_ledger(location: str) -> Ledger:
    """The payment ledger at ``location`` (an SQLite path or a ``postgresql://`` URL),
    recovered from a crash (it prints what it gave back or charged). Raises
    :class:`SetupError` when it cannot be opened (never showing the URL's password)."""
    from .ledger_store import is_postgres

    where = "PostgreSQL" if is_postgres(location) else location
    try:
        ledger = Ledger(location)
    except ImportError:
        raise SetupError(f"a PostgreSQL ledger needs psycopg: {POSTGRES_INSTALL}") from None
    except Exception as exc:  # the driver's own errors (sqlite3, psycopg) and a newer schema
        reason = " ".join(str(exc).split())  # one line (psycopg's messages span several)
        raise SetupError(f"payment ledger ({where}): {reason}") from None
    done = ledger.recovered
    if done.given_back or done.settled:
        click.echo(
            f"ledger: after a crash, {done.given_back} unsent calls given back, "
            f"{done.settled} sent calls charged",
            err=True,
        )
    return ledger


def x402_gateway(generated_dir: Path, overrides: tuple[str | None, ...]) -> object:
    """The x402 gateway of a build with ``(facilitator, network, asset, payTo)`` overrides;
    prints where payments go (never the facilitator URL's path, user or query).
    Raises :class:`SetupError` when it cannot be set up."""
    from .x402 import Overrides, X402Error, X402Gateway, load_offers, redact_url

    try:
        gateway = X402Gateway(load_offers(generated_dir), overrides=Overrides(*overrides))
    except X402Error as exc:
        raise SetupError(f"x402: {exc}") from None
    for provider_id, p in gateway.providers.items():
        click.echo(
            f"payments: x402 ({provider_id}) on {p['network']}, asset {p['asset']}, "
            f"payTo {p['payTo']}, facilitator {redact_url(p['facilitatorUrl'])}",
            err=True,
        )
    return gateway


def serve_generated(
    generated_dir: Path,
    *,
    host: str,
    port: int,
    upstream: str,
    upstream_endpoint: str | None,
    ledger_path: str,
    x402: tuple[str | None, ...] | None = None,
) -> int:
    """Serve HTTP (and MCP at /mcp) until interrupted; the exit code (2 on a setup error).

    ``x402`` is ``(facilitator URL, network, asset, payTo)`` overrides (each may be
    ``None``) to take x402 payments, or ``None`` for the dev provider.
    """
    import uvicorn

    from .app import LOOPBACK_HOSTS, create_app

    try:
        specs = load_generated(generated_dir).specs
        with upstream_for(upstream, upstream_endpoint, specs) as client:
            gateway = x402_gateway(generated_dir, x402) if x402 is not None else None
            if gateway is None:
                click.echo(
                    "payments: dev provider (paid on creation, for local use; "
                    "--payments x402 takes real x402 payments)",
                    err=True,
                )
            ledger = open_ledger(ledger_path)
            try:
                app = create_app(
                    generated_dir,
                    ledger=ledger,
                    upstream=client,
                    mcp_allowed_hosts=LOOPBACK_HOSTS if host in LOOPBACK else None,
                    x402=gateway,
                )
                url = http_url(host, port)
                click.echo(
                    f"server402 API on {url} ({len(specs)} paid services at /api/tools/<id>, "
                    "docs at /, MCP at /mcp)",
                    err=True,
                )
                # uvicorn's own log: "Uvicorn running on ...", then one access line a request
                uvicorn.run(app, host=host, port=port, log_level="info")
            finally:
                ledger.close()
    except (GeneratedError, SetupError) as exc:
        click.echo(f"error: {exc}", err=True)
        return 2
    return 0


def serve_mcp_stdio(
    generated_dir: Path, *, upstream: str, upstream_endpoint: str | None, ledger_path: str
) -> int:
    """Serve the MCP tools over stdio until the client disconnects; the exit code."""
    import anyio

    from .mcp_server import build_mcp_server, load_tools, serve_stdio
    from .service import ServiceRuntime

    try:
        specs = load_generated(generated_dir).specs
        with upstream_for(upstream, upstream_endpoint, specs) as client:
            ledger = open_ledger(ledger_path)
            try:
                runtime = ServiceRuntime(specs, ledger=ledger, upstream=client)
                server = build_mcp_server(load_tools(generated_dir), runtime)
                anyio.run(serve_stdio, server)
            finally:
                ledger.close()
    except (GeneratedError, SetupError, OSError) as exc:
        click.echo(f"error: {exc}", err=True)
        return 2
    return 0
