"""The output folder is the only place ``build`` deletes from, whatever its manifest says.

A ``manifest.json`` is input too: anyone can write one that claims
``"generator": "s402gen"``. The files it lists outside the output folder
(``../x``, ``../../x``, absolute paths) must never be removed or reported,
even when their sha256 matches the listing exactly.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from s402gen import write

from .conftest import run_cli

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
