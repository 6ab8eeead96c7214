"""The pre-commit hooks of .pre-commit-hooks.yaml, run by the real pre-commit tool."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import ROOT, SMALL_CATALOG

PRE_COMMIT = shutil.which("pre-commit") or str(Path(sys.executable).parent / "pre-commit")


def _git(repo: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, check=True)


def _try_hook(repo: Path, hook: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    """``pre-commit try-repo`` of this checkout's hook on the staged files of ``repo``."""
    return subprocess.run(
        [PRE_COMMIT, "try-repo", str(ROOT), hook],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )


@pytest.mark.skipif(not (ROOT / ".git").exists(), reason="needs this checkout as a git repo")
def test_stale_generated_blocks_the_commit_and_build_hook_fixes_it(
    tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    repo = tmp_path / "project"
    repo.mkdir()
    shutil.copy(SMALL_CATALOG, repo / "catalog.yaml")
    env = {
        **os.environ,
        "PRE_COMMIT_HOME": str(tmp_path_factory.mktemp("pre-commit-home")),
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.com",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.com",
    }
    _git(repo, "init", "-q")
    subprocess.run(["s402gen", "build"], cwd=repo, env=env, check=True, capture_output=True)
    _git(repo, "add", "-A")
    _git(repo, "commit", "-qm", "catalog and generated")

    catalog = repo / "catalog.yaml"
    catalog.write_text(catalog.read_text().replace("amountCents: 105", "amountCents: 110"))
    _git(repo, "add", "catalog.yaml")
    staged_before = _git(repo, "diff", "--cached", "--name-only").stdout

    blocked = _try_hook(repo, "s402gen-check", env)
    assert blocked.returncode == 1, blocked.stdout + blocked.stderr
    assert "amount_cents=110" in blocked.stdout and "Failed" in blocked.stdout

    fixed = _try_hook(repo, "s402gen-build", env)
    assert fixed.returncode == 1, fixed.stdout + fixed.stderr  # it changed files: fail, like black
    assert "wrote generated/routes/face_detection.py" in fixed.stdout  # the hook lists files
    assert "amount_cents=110" in (repo / "generated/routes/face_detection.py").read_text()
    assert _git(repo, "diff", "--cached", "--name-only").stdout == staged_before  # index untouched

    _git(repo, "add", "generated")
    passed = _try_hook(repo, "s402gen-check", env)
    assert passed.returncode == 0, passed.stdout + passed.stderr
    assert _try_hook(repo, "s402gen-build", env).returncode == 0
    _git(repo, "commit", "-qm", "new price")
    assert _git(repo, "status", "--porcelain").stdout == ""
