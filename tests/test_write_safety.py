"""The output folder is the only place ``build`` writes to or deletes from, whatever its
manifest says and whatever symbolic links it holds.

A ``manifest.json`` is input too: anyone can write one that claims
``"generator": "s402gen"``. The files it lists outside the output folder
(``../x``, ``../../x``, absolute paths) must never be removed or reported,
even when their sha256 matches the listing exactly.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import pytest

from s402gen import write

from .conftest import run_cli, run_process

VICTIM_TEXT = "a file that belongs to the user\n"


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _forged_manifest(out: Path, listed: list[str]) -> None:
    """A manifest that claims to be s402gen's and lists ``listed`` with the victim's digest."""
    out.mkdir(parents=True, exist_ok=True)
    files = {path: _digest(VICTIM_TEXT) for path in listed}
    document = {"generator": "s402gen", "files": files}
    (out / "manifest.json").write_text(json.dumps(document), encoding="utf-8")


def _victims(small_project: Path) -> tuple[list[Path], list[str]]:
    """Real files outside ``generated/`` and the manifest entries that point at them."""
    above = small_project / "victim.txt"  # generated/../victim.txt
    far = small_project.parent / f"{small_project.name}-victim.txt"  # generated/../../...
    absolute = small_project / "absolute-victim.txt"
    for path in (above, far, absolute):
        path.write_text(VICTIM_TEXT, encoding="utf-8")
    listed = [
        "../victim.txt",
        f"../../{far.name}",
        str(absolute),  # an absolute path: Path(out) / absolute is absolute
        "docs/../../victim.txt",
    ]
    return [above, far, absolute], listed


@pytest.mark.parametrize("force", [False, True], ids=["build", "build-force"])
def test_forged_manifest_never_deletes_outside_the_output(small_project: Path, force: bool) -> None:
    victims, listed = _victims(small_project)
    out = small_project / "generated"
    _forged_manifest(out, listed)
    code, _, err = run_cli("build", *(["--force"] if force else []), cwd=small_project)
    assert code == 0, err
    for victim in victims:
        assert victim.read_text(encoding="utf-8") == VICTIM_TEXT, victim
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    assert not [p for p in manifest["files"] if ".." in p or p.startswith("/")]
    assert run_cli("check", cwd=small_project)[0] == 0


def test_forged_manifest_entries_are_not_orphans_for_check(small_project: Path) -> None:
    assert run_cli("build", cwd=small_project)[0] == 0
    out = small_project / "generated"
    victims, listed = _victims(small_project)
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    manifest["files"].update({path: _digest(VICTIM_TEXT) for path in listed})
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    code, _, err = run_cli("check", cwd=small_project)
    assert (
        code == 1
        and "generated/manifest.json:" in err
        and "[S402-E045 generated-file-changed]" in err
    )
    assert "orphan" not in err
    assert run_cli("build", cwd=small_project)[0] == 0
    for victim in victims:
        assert victim.read_text(encoding="utf-8") == VICTIM_TEXT, victim


@pytest.mark.parametrize(
    ("path", "safe"),
    [
        ("routes/face_detection.py", True),
        ("manifest.json", True),
        ("a/b/c.txt", True),
        ("", False),
        (".", False),
        ("..", False),
        ("../x", False),
        ("../../x", False),
        ("docs/../../x", False),
        ("/etc/passwd", False),
    ],
)
def test_read_manifest_keeps_only_paths_inside_the_output(
    tmp_path: Path, path: str, safe: bool
) -> None:
    (tmp_path / "manifest.json").write_text(
        json.dumps({"generator": "s402gen", "files": {path: "0" * 64, "kept.txt": "1" * 64}})
    )
    expected = {"kept.txt": "1" * 64}
    if safe:
        expected[path] = "0" * 64
    assert write.read_manifest(tmp_path) == expected


# -- symbolic links in the output folder (issue 13: "never follow a symlink out of it") ------


def _outside(small_project: Path) -> Path:
    """A folder beside the project, holding one file of the user's."""
    elsewhere = small_project.parent / f"{small_project.name}-elsewhere"
    elsewhere.mkdir()
    (elsewhere / "victim.txt").write_text(VICTIM_TEXT, encoding="utf-8")
    return elsewhere


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and not p.is_symlink()
    }


def test_a_symlinked_subfolder_receives_no_writes(small_project: Path) -> None:
    out = small_project / "generated"
    assert run_cli("build", cwd=small_project)[0] == 0
    elsewhere = _outside(small_project)
    shutil.rmtree(out / "routes")
    (out / "routes").symlink_to(elsewhere, target_is_directory=True)
    before = _snapshot(elsewhere)
    for force in ([], ["--force"]):
        code, _, err = run_cli("build", *force, cwd=small_project)
        assert code == 2, err
        assert "generated/routes is a symbolic link" in err and "[S402-E101" in err
        assert "nothing was written" in err
        assert _snapshot(elsewhere) == before
    code, shown, _ = run_cli("check", cwd=small_project)
    assert code == 1 and "not compared: routes is a symbolic link" in shown
    assert _snapshot(elsewhere) == before


def test_forged_manifest_through_a_symlink_deletes_nothing_outside(small_project: Path) -> None:
    """The issue's attack: a manifest listing ``link/victim.txt`` with the victim's digest,
    and ``link`` a symlink to a folder outside: the victim is neither deleted nor rewritten."""
    out = small_project / "generated"
    assert run_cli("build", cwd=small_project)[0] == 0
    elsewhere = _outside(small_project)
    (out / "link").symlink_to(elsewhere, target_is_directory=True)
    (out / "victim-link.txt").symlink_to(elsewhere / "victim.txt")
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    manifest["files"]["link/victim.txt"] = _digest(VICTIM_TEXT)
    manifest["files"]["victim-link.txt"] = _digest(VICTIM_TEXT)
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    code, _, err = run_cli("build", "--force", cwd=small_project)
    assert code == 0, err
    assert (elsewhere / "victim.txt").read_text(encoding="utf-8") == VICTIM_TEXT
    assert (out / "link").is_symlink()  # not s402gen's to remove: a link is kept, not followed
    assert run_cli("check", cwd=small_project)[0] == 0


def test_a_generated_file_that_is_a_symlink_is_not_written_through(small_project: Path) -> None:
    out = small_project / "generated"
    assert run_cli("build", cwd=small_project)[0] == 0
    elsewhere = _outside(small_project)
    (out / "openapi.json").unlink()
    (out / "openapi.json").symlink_to(elsewhere / "victim.txt")
    code, _, err = run_cli("build", cwd=small_project)
    assert code == 2 and "generated/openapi.json is a symbolic link" in err
    assert (elsewhere / "victim.txt").read_text(encoding="utf-8") == VICTIM_TEXT


def test_out_that_is_a_symlink_is_refused(small_project: Path) -> None:
    elsewhere = _outside(small_project)
    (small_project / "generated").symlink_to(elsewhere, target_is_directory=True)
    for command in ("build", "check"):
        code, _, err = run_cli(command, cwd=small_project)
        assert code == 2 and "generated is a symbolic link" in err and "[S402-E100" in err
    assert _snapshot(elsewhere) == {"victim.txt": VICTIM_TEXT.encode()}
    code, _, err = run_cli("build", "--out", str(elsewhere), cwd=small_project)
    assert code == 2 and "[S402-E104" in err  # the folder itself: it holds a foreign file


def test_a_users_staging_lookalike_survives_build_and_force(small_project: Path) -> None:
    out = small_project / "generated"
    assert run_cli("build", cwd=small_project)[0] == 0
    for name in (".s402gen-staging-mine", ".s402gen-staging-"):
        (out / name).mkdir()
        (out / name / "notes.txt").write_text("mine", encoding="utf-8")
    catalog = small_project / "catalog.yaml"
    catalog.write_text(catalog.read_text().replace("amountCents: 105", "amountCents: 106"))
    assert run_cli("build", "--force", cwd=small_project)[0] == 0
    assert run_cli("check", cwd=small_project)[0] == 0
    for name in (".s402gen-staging-mine", ".s402gen-staging-"):
        assert (out / name / "notes.txt").read_text(encoding="utf-8") == "mine"


@pytest.mark.slow
def test_a_fifo_where_a_generated_file_goes_hangs_nothing(small_project: Path) -> None:
    out = small_project / "generated"
    assert run_process("build", cwd=small_project).returncode == 0
    (out / "openapi.json").unlink()
    os.mkfifo(out / "openapi.json")
    env = {"S402GEN_CACHE_DIR": "off"}
    checked = run_process("check", cwd=small_project, env=env, timeout=60)
    assert checked.returncode == 1 and "not compared: openapi.json is a FIFO" in checked.stdout
    built = run_process("build", cwd=small_project, env=env, timeout=60)
    assert built.returncode == 2 and "generated/openapi.json is a FIFO" in built.stderr


def test_a_folder_where_a_generated_file_goes_is_a_clean_refusal(small_project: Path) -> None:
    out = small_project / "generated"
    assert run_cli("build", cwd=small_project)[0] == 0
    (out / "openapi.json").unlink()
    (out / "openapi.json").mkdir()
    (out / "openapi.json" / "mine.txt").write_text("mine")
    code, _, err = run_cli("build", "--force", cwd=small_project)
    assert code == 2 and "generated/openapi.json is a folder" in err and "Traceback" not in err
    assert (out / "openapi.json" / "mine.txt").read_text() == "mine"
