"""``s402gen serve``: run the app with uvicorn, with the real upstream or the emulator."""

from __future__ import annotations

from pathlib import Path

import click

from .generated import GeneratedError, load_generated
from .payments import Ledger
from .upstream import AlibabaCloudUpstream, Credentials, Upstream

EMULATOR_CREDENTIALS = Credentials("emulator-access-key", "emulator-secret")


def serve_generated(
    generated_dir: Path,
    *,
    host: str,
    port: int,
    upstream: str,
    upstream_endpoint: str | None,
    ledger_path: str,
) -> int:
    """Serve until interrupted; returns the process exit code (2 on a setup error)."""
    import uvicorn

    from .app import create_app
    from .emulator import start_emulator

    try:
        specs = load_generated(generated_dir).specs
    except GeneratedError as exc:
        click.echo(f"error: {exc}", err=True)
        return 2
    emulator = None
    client: Upstream
    if upstream == "emulator":
        emulator = start_emulator(specs)
        client = AlibabaCloudUpstream(
            EMULATOR_CREDENTIALS, endpoint=upstream_endpoint or emulator.endpoint, protocol="http"
        )
        click.echo(f"facebody emulator on http://{emulator.endpoint}", err=True)
    else:
        try:
            credentials = Credentials.from_environment()
        except KeyError as missing:
            click.echo(
                f"error: {missing.args[0]} is not set (or use --upstream emulator)", err=True
            )
            return 2
        client = AlibabaCloudUpstream(credentials, endpoint=upstream_endpoint)
    ledger = Ledger(ledger_path)
    try:
        app = create_app(generated_dir, ledger=ledger, upstream=client)
        uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False)
    finally:
        ledger.close()
        if emulator is not None:
            emulator.stop()
    return 0
