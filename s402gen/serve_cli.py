"""``s402gen serve`` and ``s402gen mcp``: the gateway over HTTP (REST and MCP) and MCP over
stdio, serving a compiled output folder (:mod:`s402gen.runtime.serve`). Imported only
when one of them runs (:data:`s402gen.cli.LAZY_COMMANDS`)."""

from __future__ import annotations

import functools
import sys
from typing import TYPE_CHECKING, Any, Callable

import click

from .cli import CONTEXT_SETTINGS, DEFAULT_LEDGER, _settings
from .exits import Exit, epilog

if TYPE_CHECKING:
    from .runtime.serve import Serving


def _runtime_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """The options ``serve`` and ``mcp`` share (what to serve, which upstream, which ledger,
    which payments), given to ``command`` as one ``serving``
    (:class:`~s402gen.runtime.serve.Serving`) once the serve extra is known installed."""
    options = [
        click.option(
            "--generated",
            "generated_dir",
            type=click.Path(file_okay=False),
            help="Compiled output to serve (default: generated/).",
        ),
        click.option(
            "--upstream",
            type=click.Choice(["aliyun", "emulator"]),
            default="aliyun",
            show_default=True,
            help="Alibaba Cloud (credentials from ALIBABA_CLOUD_ACCESS_KEY_ID/_SECRET) "
            "or the local upstream emulator.",
        ),
        click.option("--upstream-endpoint", help="Upstream host[:port] for every service."),
        click.option(
            "--ledger",
            default=DEFAULT_LEDGER,
            show_default=True,
            help="Payment ledger: an SQLite file (created on first use; ':memory:' keeps "
            "nothing) or a postgresql:// URL shared by several replicas (the postgres extra); "
            "it holds the API keys too.",
        ),
        click.option(
            "--allow-dev-payments",
            is_flag=True,
            help="Serve a real upstream with the dev payment provider (every paid call free).",
        ),
        click.option(
            "--no-api-keys",
            "anonymous",
            is_flag=True,
            help="Let callers without an API key pay even where the pricing binds the client "
            "(local use; see `s402gen keys`).",
        ),
        click.option(
            "--payments",
            type=click.Choice(["dev", "x402"]),
            default=None,
            help="dev: paid on creation (the default); x402: real x402 payments through the "
            "catalog's facilitator (implied by any --x402-* option).",
        ),
        click.option(
            "--x402-facilitator", metavar="URL", help="x402 facilitator, instead of the catalog's."
        ),
        click.option("--x402-network", metavar="CAIP2", help="Network paid on, e.g. eip155:84532."),
        click.option(
            "--x402-asset", metavar="ADDRESS", help="Token paid in, instead of the catalog's."
        ),
        click.option(
            "--x402-pay-to", metavar="ADDRESS", help="Address paid, instead of the catalog's."
        ),
    ]

    @functools.wraps(command)
    def with_serving(**given: Any) -> Any:
        _require_serving(click.get_current_context().info_name or "serve")
        from .runtime.serve import Serving

        overrides = tuple(given.pop(name) for name in _X402_OPTIONS)
        payments = given.pop("payments")
        x402 = payments == "x402" or (payments is None and any(overrides))
        serving = Serving(
            _settings(None, given.pop("generated_dir"), None).out,
            upstream=given.pop("upstream"),
            upstream_endpoint=given.pop("upstream_endpoint"),
            ledger_path=given.pop("ledger"),
            x402=overrides if x402 else None,
            allow_dev_payments=given.pop("allow_dev_payments"),
            anonymous=given.pop("anonymous"),
        )
        return command(serving=serving, **given)

    for option in reversed(options):
        with_serving = option(with_serving)
    return with_serving


#: The x402 overrides, in :attr:`Serving.x402`'s order: facilitator, network, asset, payTo.
_X402_OPTIONS = ("x402_facilitator", "x402_network", "x402_asset", "x402_pay_to")


def _require_serving(command: str) -> None:
    """Exit 2 with a one-line install hint when the ``serve`` extra is not installed."""
    from .runtime.serve import SERVE_INSTALL, missing_dependency

    missing = missing_dependency()
    if missing is not None:
        click.echo(
            f"error: s402gen {command} needs the serve extra (no module named {missing!r}): "
            f"{SERVE_INSTALL}",
            err=True,
        )
        sys.exit(Exit.INVALID)


@click.command("serve", epilog=epilog("serve"), context_settings=CONTEXT_SETTINGS)
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8402, show_default=True, type=int, help="Port to listen on.")
@_runtime_options
@click.option(
    "--allowed-host",
    "allowed_hosts",
    multiple=True,
    metavar="NAME[:PORT]",
    help="A Host the REST API and /mcp answer (repeatable; NAME:* any port; '*' any host). "
    "Default: 127.0.0.1, localhost and [::1] on --port.",
)
@click.option(
    "--mcp-discovery",
    is_flag=True,
    help="/mcp lists a search tool and a call tool instead of one tool a service.",
)
def serve_command(
    serving: Serving,
    host: str,
    port: int,
    allowed_hosts: tuple[str, ...],
    mcp_discovery: bool,
) -> None:
    """Serve the generated routes: a paid API with the HTTP 402 flow (dev payments, or
    x402), and the MCP tools over streamable HTTP at /mcp."""
    from .runtime.serve import serve_generated

    code = serve_generated(
        serving, host=host, port=port, allowed_hosts=allowed_hosts, mcp_discovery=mcp_discovery
    )
    sys.exit(code)


@click.command("mcp", epilog=epilog("mcp"), context_settings=CONTEXT_SETTINGS)
@_runtime_options
@click.option(
    "--discovery",
    is_flag=True,
    help="List a search tool and a call tool instead of one tool a service.",
)
def mcp_command(serving: Serving, discovery: bool) -> None:
    """Serve the generated MCP tools over stdio (for an MCP client to launch); the client's
    API key comes from S402GEN_API_KEY. With x402 payments, an unpaid call's result carries
    the offer and a call pays in its _meta (x402's MCP transport)."""
    from .runtime.serve import serve_mcp_stdio

    sys.exit(serve_mcp_stdio(serving, discovery=discovery))
