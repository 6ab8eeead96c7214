"""``s402gen serve`` and ``s402gen mcp``: run the app with uvicorn, or MCP over stdio.

Both take the upstream from the environment's Alibaba Cloud credentials, or
start the local upstream emulator. Both need the ``serve`` extra
(``pip install 's402gen[serve]'``); :func:`missing_dependency` says what is missing.
"""

from __future__ import annotations

import contextlib
import gc
import importlib
import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import click

from ..exits import Exit
from .auth import API_KEY_ENV, ClientAuth, HostPolicy, is_loopback
from .generated import Generated, GeneratedError, load_generated
from .keys import KeyStore
from .payments import Ledger
from .spec import RouteSpec
from .upstream import AlibabaCloudUpstream, Credentials, Upstream

EMULATOR_CREDENTIALS = Credentials("emulator-access-key", "emulator-secret")

#: Top-level modules of the ``serve`` extra of pyproject.toml (import names, not distributions).
SERVE_MODULES = ("fastapi", "uvicorn", "mcp", "alibabacloud_tea_openapi", "x402")
SERVE_INSTALL = "pip install 's402gen[serve]'"
#: Modules of :data:`SERVE_MODULES` imported when first used (x402 payments; mcp, by
#: ``s402gen mcp`` or the first request to ``/mcp``): at start only looked up.
ON_DEMAND_MODULES = ("mcp", "x402")
POSTGRES_INSTALL = "pip install 's402gen[postgres]'"


class SetupError(Exception):
    """The server cannot start; the message says why."""


def missing_dependency() -> str | None:
    """The first module of :data:`SERVE_MODULES` that cannot be imported, else ``None``.

    Imports them (the server needs them next anyway), so that a partial
    install fails before anything starts, with a hint instead of a traceback;
    :data:`ON_DEMAND_MODULES` are only found (importing x402 costs ~0.25 s of start, mcp
    ~0.7 s).
    """
    for name in SERVE_MODULES:
        try:
            if name not in ON_DEMAND_MODULES:
                importlib.import_module(name)
            elif importlib.util.find_spec(name) is None:
                return name
        except ImportError as exc:
            return getattr(exc, "name", None) or name
    return None


def refuse_dev_payments(upstream: str, allow: bool) -> None:
    """Raise :class:`SetupError` when the dev provider (every payment paid on creation) would
    serve a real upstream without ``--allow-dev-payments``: paid calls would be free."""
    if upstream != "emulator" and not allow:
        raise SetupError(
            "the dev payment provider makes every paid call free: refusing to serve the real "
            f"upstream ({upstream}) with it (use --payments x402, --upstream emulator, "
            "or --allow-dev-payments)"
        )


def host_policy(host: str, port: int, allowed_hosts: tuple[str, ...]) -> HostPolicy:
    """The Host/Origin policy of ``serve``: ``--allowed-host`` values, else the loopback
    names on ``port``; prints a warning when listening beyond loopback."""
    try:
        policy = HostPolicy.for_hosts(allowed_hosts) if allowed_hosts else None
    except ValueError as exc:
        raise SetupError(str(exc)) from None
    policy = policy or HostPolicy.loopback(port)
    if not is_loopback(host) or policy.any_host:
        answered = "any Host" if policy.any_host else "Host " + ", ".join(policy.allowed_hosts)
        click.echo(
            f"warning: listening on {host}, beyond loopback; answering {answered} "
            "(--allowed-host NAME[:PORT] for the names clients use)",
            err=True,
        )
    return policy


def client_auth(
    ledger: Ledger, ledger_path: str, anonymous: bool, stdio_key: str | None = None
) -> ClientAuth:
    """API keys from the open ``ledger``'s database (``s402gen keys create``; it is at
    ``ledger_path``); ``anonymous`` is ``--no-api-keys``. Raises :class:`SetupError` when
    ``stdio_key`` (``$S402GEN_API_KEY`` of ``s402gen mcp``) is not one of its active keys."""
    keys = KeyStore(store=ledger.store)
    if stdio_key is not None and keys.authenticate(stdio_key) is None:
        raise SetupError(
            f"{API_KEY_ENV} is not an active key of {ledger_name(ledger_path)} (s402gen keys list)"
        )
    if anonymous:
        click.echo(
            "clients: --no-api-keys: callers without an API key may pay for every service "
            "(tokens bound to no one; for local use)",
            err=True,
        )
    return ClientAuth(keys, anonymous=anonymous)


def freeze_start_objects() -> None:
    """Collect the start's garbage, then put every object left (route specs, models, the
    search's rows: ~80,000 at 2,000 services) out of the garbage collector's reach
    (``gc.freeze``): a full collection scanned them all in ~70 ms, stalling every request
    meanwhile; it now scans only what serving made."""
    gc.collect()
    gc.freeze()


def release_freed_memory() -> None:
    """Give the C heap's free pages back to the OS (glibc's ``malloc_trim``; elsewhere a
    no-op). Reading catalog.json at start peaks well above what the server keeps."""
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c")
    try:
        ctypes.CDLL(name).malloc_trim(0)
    except (OSError, AttributeError, TypeError):
        pass


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


def ledger_name(location: str) -> str:
    """How messages name the ledger at ``location``: its SQLite path, or ``PostgreSQL``
    (a URL may hold a password)."""
    from .ledger_store import is_postgres

    return "PostgreSQL" if is_postgres(location) else location


def ledger_error(location: str, exc: Exception) -> SetupError:
    """The one-line :class:`SetupError` for a ledger at ``location`` that could not be
    opened (``exc``: the driver's error, a newer schema, a missing psycopg), naming a
    PostgreSQL ledger without its URL, so never its password."""
    if isinstance(exc, ImportError):
        return SetupError(f"a PostgreSQL ledger needs psycopg: {POSTGRES_INSTALL}")
    reason = " ".join(str(exc).split())  # one line (psycopg's messages span several)
    return SetupError(f"payment ledger ({ledger_name(location)}): {reason}")


def open_ledger(location: str) -> Ledger:
    """The payment ledger at ``location`` (an SQLite path or a ``postgresql://`` URL),
    recovered from a crash (it prints what it gave back or charged). Raises
    :class:`SetupError` when it cannot be opened (never showing the URL's password)."""
    try:
        ledger = Ledger(location)
    except Exception as exc:  # the driver's own errors (sqlite3, psycopg) and a newer schema
        raise ledger_error(location, exc) from None
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


@dataclass(frozen=True)
class Serving:
    """What ``serve`` and ``mcp`` are given alike: the compiled output folder; the upstream
    (``aliyun`` or ``emulator``) and one ``host[:port]`` for every service (``None``: each
    service's own); the ledger (an SQLite path or a ``postgresql://`` URL); ``x402``, the
    ``(facilitator URL, network, asset, payTo)`` overrides (each may be ``None``) to take
    x402 payments, or ``None`` for the dev provider (refused with a real upstream unless
    ``allow_dev_payments``); ``anonymous`` is ``--no-api-keys``."""

    generated_dir: Path
    upstream: str
    upstream_endpoint: str | None
    ledger_path: str
    x402: tuple[str | None, ...] | None = None
    allow_dev_payments: bool = False
    anonymous: bool = False


@dataclass
class _Started:
    generated: Generated
    upstream: Upstream
    gateway: object | None  # an x402.X402Gateway
    ledger: Ledger
    auth: ClientAuth


@contextlib.contextmanager
def _started(serving: Serving, stdio_key: str | None = None) -> Iterator[_Started]:
    """The output loaded, the upstream (an emulator started), the x402 gateway, the ledger
    (recovered) and the API keys, for the block; printed on stderr what pays and where.
    Raises :class:`SetupError` or ``GeneratedError``."""
    if serving.x402 is None:
        refuse_dev_payments(serving.upstream, serving.allow_dev_payments)
    generated = load_generated(serving.generated_dir)  # once: the app takes it as loaded
    with upstream_for(serving.upstream, serving.upstream_endpoint, generated.specs) as client:
        if serving.x402 is not None:
            gateway = x402_gateway(serving.generated_dir, serving.x402)
        else:
            gateway = None
            click.echo(
                "payments: dev provider (paid on creation, for local use; "
                "--payments x402 takes real x402 payments)",
                err=True,
            )
        ledger = open_ledger(serving.ledger_path)
        try:
            auth = client_auth(ledger, serving.ledger_path, serving.anonymous, stdio_key)
            yield _Started(generated, client, gateway, ledger, auth)
        finally:
            ledger.close()


def serve_generated(
    serving: Serving,
    *,
    host: str,
    port: int,
    allowed_hosts: tuple[str, ...] = (),
    mcp_discovery: bool = False,
) -> int:
    """Serve HTTP (and MCP at /mcp) until interrupted; the exit code (2 on a setup error).

    ``allowed_hosts`` are the ``Host`` names answered (default: loopback on ``port``);
    ``mcp_discovery``: /mcp lists a search tool and a call tool, not one tool a service.
    """
    import uvicorn

    from .app import create_app

    try:
        policy = host_policy(host, port, allowed_hosts)
        with _started(serving) as started:
            app = create_app(
                started.generated,
                ledger=started.ledger,
                upstream=started.upstream,
                host_policy=policy,
                auth=started.auth,
                x402=started.gateway,
                mcp_discovery=mcp_discovery,
            )
            freeze_start_objects()
            release_freed_memory()  # the start-up's parsing peak is over
            click.echo(
                f"server402 API on {http_url(host, port)} ({len(started.generated.specs)} paid "
                "services at /api/tools/<id>, docs at /, MCP at /mcp)",
                err=True,
            )
            # uvicorn's own log: "Uvicorn running on ...", then one access line a request
            uvicorn.run(app, host=host, port=port, log_level="info")
    except (GeneratedError, SetupError) as exc:
        click.echo(f"error: {exc}", err=True)
        return Exit.INVALID
    return Exit.OK


def serve_mcp_stdio(serving: Serving, *, discovery: bool = False) -> int:
    """Serve the MCP tools over stdio until the client disconnects; the exit code. With
    x402 payments, x402's MCP transport (the offer in an unpaid call's result, the payment
    in a call's _meta); the caller's API key is ``$S402GEN_API_KEY``. ``discovery``: list
    a search tool and a call tool, not one tool a service.
    """
    import anyio

    from .mcp_server import build_mcp_server, load_tools, serve_stdio
    from .service import ServiceRuntime

    stdio_key = os.environ.get(API_KEY_ENV) or None
    try:
        with _started(serving, stdio_key) as started:
            specs = started.generated.specs
            runtime = ServiceRuntime(
                specs, ledger=started.ledger, upstream=started.upstream, x402=started.gateway
            )
            server = build_mcp_server(
                load_tools(serving.generated_dir),
                runtime,
                auth=started.auth,
                stdio_key=stdio_key,
                search=started.generated.search() if discovery else None,
            )
            anyio.run(serve_stdio, server)
    except (GeneratedError, SetupError, OSError) as exc:
        click.echo(f"error: {exc}", err=True)
        return Exit.INVALID
    return Exit.OK
