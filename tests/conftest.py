"""Shared fixtures: paths, a CLI runner, and helpers to compile catalogs in tests."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Iterator

# The mcp SDK's stdio client takes the sys.stderr of the moment it is first imported as its
# servers' stderr: imported first by an in-process `s402gen mcp` under run_cli, it would be
# the CliRunner's, which has no file descriptor, and every later stdio client would fail.
import mcp.client.stdio  # noqa: F401
import pytest
import uvicorn
import yaml
from click.testing import CliRunner

from s402gen.cli import main

ROOT = Path(__file__).resolve().parents[1]
CATALOG = ROOT / "catalog.yaml"
GENERATED = ROOT / "generated"
#: A base URL whose Host the default Host/Origin policy answers (a TestClient's own
#: ``testserver`` is refused, as any name that is not loopback is).
LOOPBACK_BASE = "http://127.0.0.1:8402"
SEEDS = Path(__file__).parent / "seeds"
SMALL_CATALOG = Path(__file__).parent / "data" / "small_catalog.yaml"


def run_cli(*args: str, cwd: Path | None = None) -> tuple[int, str, str]:
    """Run ``s402gen`` in-process; returns (exit code, stdout, stderr)."""
    runner = CliRunner()
    old = Path.cwd()
    if cwd is not None:
        os.chdir(cwd)
    try:
        result = runner.invoke(main, list(args), catch_exceptions=False)
    finally:
        os.chdir(old)
    return result.exit_code, result.stdout, result.stderr


def run_process(
    *args: str, cwd: Path, env: dict[str, str] | None = None, timeout: float | None = None
) -> subprocess.CompletedProcess:
    """Run the installed ``s402gen`` console script as a real process (killed, raising
    ``subprocess.TimeoutExpired``, after ``timeout`` seconds when given)."""
    exe = shutil.which("s402gen") or str(Path(sys.executable).parent / "s402gen")
    full_env = dict(os.environ)
    full_env.update(env or {})
    return subprocess.run(
        [exe, *args],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        check=False,
        timeout=timeout,
    )


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def running_app(app) -> Iterator[str]:
    """Serve an ASGI app with uvicorn on a free loopback port in a thread; yields its base URL."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        while not server.started:
            time.sleep(0.01)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def issued_keys(*names: str):
    """Client auth requiring an API key where the pricing binds the client, with one key per
    name: ``(auth, {name: Authorization headers})``."""
    from s402gen.runtime.auth import ClientAuth
    from s402gen.runtime.keys import KeyStore

    store = KeyStore()
    headers = {name: {"Authorization": f"Bearer {store.create(name)[1]}"} for name in names}
    return ClientAuth(store, anonymous=False), headers


def write_catalog(path: Path, data: dict) -> Path:
    """Dump a catalog tree as YAML (UTF-8) to ``path``."""
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def emulator():
    """The upstream emulator of the repository's generated/ services, one per test module
    (stopped by the fixture)."""
    from s402gen.runtime.emulator import start_emulator
    from s402gen.runtime.generated import load_generated

    running = start_emulator(load_generated(GENERATED).specs)
    yield running
    running.stop()


def emulator_upstream(emulator):
    """Alibaba Cloud's own SDK client, with the test credentials, pointed at ``emulator``."""
    from s402gen.runtime.upstream import AlibabaCloudUpstream, Credentials

    return AlibabaCloudUpstream(
        Credentials("test-key", "test-secret"), endpoint=emulator.endpoints, protocol="http"
    )


def wait_until_serving(
    process: subprocess.Popen, base: str, log: Path, seconds: float = 60
) -> None:
    """Wait until the ``s402gen serve`` ``process`` answers ``GET {base}/api/catalog``;
    fails the test with its ``log`` when it exits first or does not answer in ``seconds``."""
    import httpx

    deadline = time.monotonic() + seconds
    while True:
        assert process.poll() is None, log.read_text()
        try:
            httpx.get(f"{base}/api/catalog", timeout=1)
            return
        except httpx.TransportError:
            assert time.monotonic() < deadline, "s402gen serve did not start"
            time.sleep(0.1)


@pytest.fixture(autouse=True)
def private_cache(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Path:
    """Every test gets its own s402gen cache folder, never the user's."""
    folder = tmp_path_factory.mktemp("s402gen-cache")
    monkeypatch.setenv("S402GEN_CACHE_DIR", str(folder))
    return folder


@pytest.fixture
def real_catalog_data() -> dict:
    """A fresh plain-data copy of the real catalog.yaml, for tests that edit it."""
    return yaml.safe_load(CATALOG.read_text(encoding="utf-8"))


@pytest.fixture
def small_project(tmp_path: Path) -> Path:
    """A folder with the small test catalog as catalog.yaml."""
    shutil.copy(SMALL_CATALOG, tmp_path / "catalog.yaml")
    return tmp_path
