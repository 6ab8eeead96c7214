"""Install and packaging truths: extras, the hint for a missing one, README examples."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from s402gen.runtime import serve

from .conftest import ROOT

#: Runs the CLI with the named top-level modules made unimportable (as if not installed).
WITHOUT = """
import sys
blocked = set(sys.argv[1].split(","))

class Blocker:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in blocked:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)

sys.meta_path.insert(0, Blocker())
from s402gen.cli import main
main(sys.argv[2:], prog_name="s402gen")
"""


def _cli_without(modules: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", WITHOUT, modules, *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.slow
@pytest.mark.parametrize(
    ("command", "blocked"), [("serve", "mcp"), ("mcp", "mcp"), ("serve", "uvicorn")]
)
def test_a_missing_serve_dependency_is_a_one_line_hint(command: str, blocked: str) -> None:
    done = _cli_without(blocked, command, "--upstream", "emulator")
    assert done.returncode == 2
    assert done.stderr == (
        f"error: s402gen {command} needs the serve extra (no module named '{blocked}'): "
        "pip install 's402gen[serve]'\n"
    )
    assert done.stdout == ""


def test_the_serve_extra_installs_every_module_serving_needs() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    serving = " ".join(project["optional-dependencies"]["serve"]).replace("-", "_")
    for module in serve.SERVE_MODULES:
        assert module in serving
    base = " ".join(project["dependencies"])
    assert not any(module.split("_")[0] in base for module in ("fastapi", "uvicorn", "mcp"))
    assert "s402gen[serve" in " ".join(project["optional-dependencies"]["test"])


def test_create_app_is_where_the_readme_says(tmp_path) -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "`s402gen.runtime.create_app(generated_dir, ...)`" in readme
    import s402gen.runtime
    from s402gen.runtime.app import create_app

    assert s402gen.runtime.create_app is create_app
    app = s402gen.runtime.create_app(ROOT / "generated")
    assert any(getattr(route, "path", "") == "/api/catalog" for route in app.routes)


def test_readme_pre_commit_rev_is_a_commit_that_has_the_hooks() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    rev = re.search(r"^\s+rev: (\S+)", readme, re.MULTILINE).group(1)
    if not (ROOT / ".git").exists():
        pytest.skip("needs this checkout as a git repo")
    assert re.fullmatch(r"[0-9a-f]{40}", rev), rev
    listed = subprocess.run(
        ["git", "cat-file", "-p", f"{rev}:.pre-commit-hooks.yaml"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    if listed.returncode != 0 and "Not a valid object" in listed.stderr + listed.stdout:
        pytest.skip(f"{rev} is not in this clone's history (shallow clone)")
    assert listed.returncode == 0, listed.stderr
    assert "id: s402gen-check" in listed.stdout


@pytest.mark.slow
def test_the_ci_smoke_test_gets_answers_from_serve_and_mcp() -> None:
    exe = shutil.which("s402gen") or str(Path(sys.executable).parent / "s402gen")
    done = subprocess.run(
        [sys.executable, str(ROOT / ".ci" / "smoke_serve.py"), "--exe", exe],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stderr
    serve_line, mcp_line = done.stdout.splitlines()
    assert serve_line.startswith("serve: ") and "payment pay_" in serve_line
    tools = json.loads((ROOT / "generated" / "mcp" / "tools.json").read_bytes())
    assert mcp_line.startswith("mcp: server 'server402'")
    assert mcp_line.endswith(f", {len(tools)} tools")  # tools.json as it is


def test_the_ci_smoke_test_fails_when_nothing_answers(tmp_path: Path) -> None:
    missing = tmp_path / "not-s402gen"
    done = subprocess.run(
        [sys.executable, str(ROOT / ".ci" / "smoke_serve.py"), "--exe", str(missing)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1 and done.stderr.startswith("smoke test failed:")


@pytest.mark.slow
def test_create_app_without_the_serve_extra_names_it() -> None:
    probe = WITHOUT.split("from s402gen.cli")[0] + (
        "import s402gen.runtime\n"
        "try:\n    s402gen.runtime.create_app\n"
        "except ModuleNotFoundError as exc:\n    print(exc.name, exc)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe, "fastapi"], cwd=ROOT, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("fastapi ")
    assert "create_app needs pip install 's402gen[serve]'" in done.stdout
