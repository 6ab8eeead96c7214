"""Options and inputs that must be refused before anything is written (issue 13, "Options"):
an output folder that is the root, the home folder or holds the catalog; a templates folder
in pyproject.toml that does not exist; a catalog that is a FIFO, a device or too large;
generated files edited by hand; an output folder of someone else's files."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from s402gen import inputs

from .conftest import run_cli, run_process


def _listing(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*"))


@pytest.mark.parametrize(
    ("out", "reason"),
    [
        ("/", "is the root of the file system"),
        (".", "holds the catalog catalog.yaml"),
        ("..", "holds the catalog catalog.yaml"),
        ("HOME", "is the home folder"),
    ],
)
def test_an_output_folder_that_must_not_be_written_is_refused(
    small_project: Path, monkeypatch: pytest.MonkeyPatch, out: str, reason: str
) -> None:
    home = small_project / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    before = _listing(small_project)
    chosen = str(home) if out == "HOME" else out
    for command in ("build", "check"):
        for force in ([], ["--force"]) if command == "build" else ([],):
            code, _, err = run_cli(command, "--out", chosen, *force, cwd=small_project)
            assert code == 2 and reason in err and "[S402-E100 unsafe-output-folder]" in err
    assert _listing(small_project) == before


def test_an_output_folder_holding_the_templates_is_refused(small_project: Path) -> None:
    (small_project / "gen" / "mine").mkdir(parents=True)
    code, _, err = run_cli("build", "--out", "gen", "--templates", "gen/mine", cwd=small_project)
    assert code == 2 and "holds the templates folder gen/mine" in err


def test_templates_in_pyproject_that_do_not_exist_are_a_located_error(
    small_project: Path,
) -> None:
    (small_project / "pyproject.toml").write_text(
        '[project]\nname = "x"\n\n[tool.s402gen]\nout = "gen"\ntemplates = "nope"\n'
    )
    for command in ("build", "check", "validate"):
        code, _, err = run_cli(command, cwd=small_project)
        assert code == 2, err
        assert err.startswith(
            "pyproject.toml:6:1: error: templates folder 'nope' in [tool.s402gen] does not exist"
        )
    assert not (small_project / "gen").exists()


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["fifo", "dev-zero", "folder", "huge"])
def test_a_catalog_that_is_not_a_small_regular_file_is_refused_fast(
    tmp_path: Path, kind: str
) -> None:
    catalog = tmp_path / "catalog.yaml"
    if kind == "fifo":
        os.mkfifo(catalog)
    elif kind == "dev-zero":
        catalog.symlink_to("/dev/zero")
    elif kind == "folder":
        catalog.mkdir()
    else:
        with open(catalog, "wb") as handle:  # sparse: no disk used
            handle.truncate(inputs.MAX_INPUT_BYTES + 1)
    expected = {
        "fifo": "catalog.yaml is a FIFO, not a regular file [S402-E105",
        "dev-zero": "catalog.yaml is a device, not a regular file [S402-E105",
        "folder": "catalog.yaml is a folder, not a regular file [S402-E105",
        "huge": "catalog.yaml is larger than 32 MiB (s402gen.inputs.MAX_INPUT_BYTES) [S402-E106",
    }[kind]
    for command in ("validate", "build", "check"):
        done = run_process(command, cwd=tmp_path, env={"S402GEN_CACHE_DIR": "off"}, timeout=60)
        assert done.returncode == 2 and expected in done.stderr, done.stderr
        assert "Traceback" not in done.stderr and "internal error" not in done.stderr
    assert not (tmp_path / "generated").exists()


def test_hand_edited_generated_files_are_named_and_kept_without_force(
    small_project: Path,
) -> None:
    assert run_cli("build", cwd=small_project)[0] == 0
    edited = small_project / "generated" / "routes" / "face_detection.py"
    edited.write_text(edited.read_text() + "# my fix\n")
    catalog = small_project / "catalog.yaml"
    catalog.write_text(catalog.read_text().replace("amountCents: 105", "amountCents: 106"))
    code, _, err = run_cli("build", cwd=small_project)
    assert code == 2 and "nothing was written" in err
    assert (
        "generated/routes/face_detection.py:1:1: error: generated/routes/face_detection.py "
        "was edited by hand after s402gen wrote it"
    ) in err and "[S402-E103 generated-file-edited]" in err
    assert edited.read_text().endswith("# my fix\n")
    assert run_cli("build", "--force", cwd=small_project)[0] == 0
    assert "# my fix" not in edited.read_text() and run_cli("check", cwd=small_project)[0] == 0


def test_an_output_folder_of_foreign_files_without_a_manifest_is_refused(
    small_project: Path,
) -> None:
    out = small_project / "src"
    (out / "pkg").mkdir(parents=True)
    (out / "pkg" / "main.py").write_text("print('mine')\n")
    (out / "notes.txt").write_text("mine\n")
    code, _, err = run_cli("build", "--out", "src", cwd=small_project)
    assert code == 2 and "[S402-E104 foreign-output-folder]" in err
    assert "src has no s402gen manifest.json and holds files s402gen does not write: " in err
    assert "notes.txt, pkg/main.py" in err
    assert _listing(out) == ["notes.txt", "pkg", "pkg/main.py"]
    assert run_cli("build", "--out", "src", "--force", cwd=small_project)[0] == 0
    assert (out / "pkg" / "main.py").read_text() == "print('mine')\n"
    assert run_cli("build", "--out", "src", cwd=small_project)[0] == 0  # now it has a manifest
    empty = small_project / "empty"
    empty.mkdir()
    assert run_cli("build", "--out", "empty", cwd=small_project)[0] == 0
