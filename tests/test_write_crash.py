"""A build killed at any moment leaves the old output or (once the next command has rolled
its journal forward) the new one, never a mix; two builds into one folder take turns
(issue 13: "a killed build leaves a mixed generated/", "two builds into one folder").

The old and new states are the output of cold builds, compared byte for byte.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from s402gen import commit, write
from s402gen.outdir import OutputFolder, UnsafePath

from .conftest import run_process, write_catalog
from .test_check_bounds import _synthetic

OLD = {f"routes/r{i}.py": f"old {i}\n" * (i + 1) for i in range(12)}
OLD |= {"docs/index.html": "old index\n", "docs/gone.html": "removed by the new build\n"}
NEW = {f"routes/r{i}.py": f"new {i}\n" * (i + 2) for i in range(12)}
NEW |= {"docs/index.html": "new index\n", "docs/deep/added.html": "added\n"}


def _items(files: dict[str, str]):
    return [(path, [text]) for path, text in files.items()]


def _tree(folder: Path) -> dict[str, bytes]:
    """Every entry under ``folder``: files by their bytes, folders and links by a marker."""
    tree: dict[str, bytes] = {}
    for path in sorted(folder.rglob("*")):
        name = path.relative_to(folder).as_posix()
        if path.is_symlink() or not path.is_file():
            tree[name] = b"<link>" if path.is_symlink() else b"<folder>"
        else:
            tree[name] = path.read_bytes()
    return tree


def _cold(tmp_path: Path, name: str, files: dict[str, str]) -> dict[str, bytes]:
    folder = tmp_path / name
    write.build(folder, _items(files))
    return _tree(folder)


def _die_at(monkeypatch_target: str, calls: int) -> None:
    """In a forked child: the ``calls``-th call of ``OutputFolder.<target>`` kills the
    process on the spot (no cleanup runs, as with SIGKILL)."""
    original = getattr(OutputFolder, monkeypatch_target)
    seen = [0]

    def dying(self, *args, **kwargs):
        seen[0] += 1
        if seen[0] == calls:
            os._exit(9)
        return original(self, *args, **kwargs)

    setattr(OutputFolder, monkeypatch_target, dying)


def _killed_build(out: Path, where: str, calls: int) -> None:
    """Build NEW into ``out`` in a forked child killed at the ``calls``-th call of
    ``OutputFolder.<where>`` (see :func:`_die_at`)."""
    child = os.fork()
    if child == 0:  # pragma: no cover - the child dies in the patched call
        try:
            _die_at(where, calls)
            write.build(out, _items(NEW))
        finally:
            os._exit(0)
    _, status = os.waitpid(child, 0)
    assert os.waitstatus_to_exitcode(status) == 9, "the build was not cut short"


@pytest.mark.parametrize(
    ("where", "calls"),
    [
        ("create", 1),  # writing the staging journal
        ("create", 2),  # staging the first changed file
        ("create", 9),  # half way through staging
        ("sync", 1),  # staged, journal not yet in phase commit
        ("move_folder", 1),  # the commit journal is written: killed before any move
        ("move", 3),  # the first files moved one by one
        ("move", 12),
        ("unlink", 1),  # moving done, deleting orphans
        ("remove_tree", 1),  # the manifest moved, the staging folder not yet removed
    ],
)
def test_a_build_killed_anywhere_leaves_old_or_new(tmp_path: Path, where: str, calls: int) -> None:
    old, new = _cold(tmp_path, "old", OLD), _cold(tmp_path, "new", NEW)
    out = tmp_path / "out"
    write.build(out, _items(OLD))
    _killed_build(out, where, calls)
    left = _tree(out)
    started = where != "create" or calls > 1  # past the first write: staging and journal
    assert any(name.startswith(commit.STAGING_PREFIX) for name in left) is started
    assert (commit.JOURNAL in left) is started
    drift = write.check(out, lambda: _items(NEW))  # the next command recovers
    after = _tree(out)
    assert after in (old, new), sorted(set(after) ^ set(new))
    rolled = where in ("move_folder", "move", "unlink", "remove_tree")
    assert after == (new if rolled else old) and drift.clean is rolled
    again = write.build(out, _items(NEW))
    assert _tree(out) == new and (again.written == []) is rolled


def test_a_first_build_moves_its_folders_whole_and_is_rolled_forward_between_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Into an empty folder, each top folder of the staged files is renamed whole (not a
    rename a file); killed after the first of them, the next command finishes the rest."""
    new = _cold(tmp_path, "new", NEW)
    moved: list[str] = []
    original = OutputFolder.move
    monkeypatch.setattr(
        OutputFolder, "move", lambda self, s, t: (moved.append(t), original(self, s, t))[1]
    )
    write.build(tmp_path / "whole", _items(NEW))
    assert moved == [commit.JOURNAL, commit.JOURNAL, write.MANIFEST]  # the files: none
    assert _tree(tmp_path / "whole") == new
    monkeypatch.undo()
    out = tmp_path / "out"
    _killed_build(out, "move_folder", 2)
    left = _tree(out)
    assert ("docs/index.html" in left) != ("routes/r0.py" in left)  # one folder of two
    assert write.check(out, lambda: _items(NEW)).clean  # rolled forward
    assert _tree(out) == new


def test_a_folder_is_moved_whole_only_where_nothing_is(tmp_path: Path) -> None:
    """Not onto a file, a folder (even empty) or through a link; a folder moved, its old
    path answers nothing (the folder's descriptors are not kept for it)."""
    out = tmp_path / "out"
    (out / "stage" / "a").mkdir(parents=True)
    (out / "stage" / "a" / "f.txt").write_text("staged\n")
    (out / "file").write_text("mine\n")
    (out / "full").mkdir()
    (out / "full" / "g.txt").write_text("mine\n")
    (out / "empty").mkdir()
    (tmp_path / "elsewhere").mkdir()
    (out / "link").symlink_to(tmp_path / "elsewhere")
    with OutputFolder.open(out, create=False) as folder:
        assert not folder.move_folder("stage/a", "file")
        assert not folder.move_folder("stage/a", "full")
        assert not folder.move_folder("stage/missing", "new")
        assert not folder.move_folder("stage/a/f.txt", "new")  # a file is no folder
        with pytest.raises(UnsafePath):
            folder.move_folder("stage/a", "link/a")
        assert not folder.move_folder("stage/a", "empty")
        assert folder.read("stage/a/f.txt") == b"staged\n"
        assert folder.move_folder("stage/a", "new/deeper")  # its folders are made
        assert folder.read("new/deeper/f.txt") == b"staged\n"
        assert folder.read("stage/a/f.txt") is None  # its old path answers nothing
    assert (out / "file").read_text() == "mine\n" and (out / "full" / "g.txt").exists()
    assert list((out / "empty").iterdir()) == []
    assert list((tmp_path / "elsewhere").iterdir()) == []


def test_a_staged_folder_that_cannot_be_moved_whole_does_not_block_recovery(
    tmp_path: Path,
) -> None:
    """Killed before its folder moves, then the staged folder swapped for a link: recovery
    moves nothing through the link and finishes; the next build finds the file it left
    as it was (not the manifest's: refused as edited by hand), and with --force makes
    the output whole."""
    new = _cold(tmp_path, "new", NEW)
    out = tmp_path / "out"
    write.build(out, _items(OLD))
    _killed_build(out, "move_folder", 1)
    staging = next(p for p in out.iterdir() if p.name.startswith(commit.STAGING_PREFIX))
    elsewhere = tmp_path / "elsewhere"
    shutil.move(staging / "docs", elsewhere)
    (staging / "docs").symlink_to(elsewhere, target_is_directory=True)
    write.check(out, lambda: _items(NEW))  # recovers: no error
    assert not (out / commit.JOURNAL).exists()
    assert not (out / "docs" / "deep").exists() and (out / "routes" / "r0.py").exists()
    assert write.build(out, _items(NEW)).edited == ["docs/index.html"]
    write.build(out, _items(NEW), force=True)
    assert _tree(out) == new
    assert sorted(p.name for p in elsewhere.rglob("*")) == ["added.html", "deep", "index.html"]


def test_a_recovery_that_fails_lets_the_folder_go(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An error while recovering closes the folder (and drops its lock): the same process
    can open it again rather than wait on its own lock."""
    out = tmp_path / "out"
    write.build(out, _items(OLD))

    def failing(folder):
        raise OSError("disk gone")

    monkeypatch.setattr(write, "recover", failing)
    with pytest.raises(OSError, match="disk gone"):
        write.open_locked(out, create=False)
    probe = os.open(out, os.O_RDONLY)
    try:
        fcntl.flock(probe, fcntl.LOCK_EX | fcntl.LOCK_NB)  # raises if the lock were held
    finally:
        os.close(probe)


def test_an_interruption_during_the_commit_is_rolled_forward_not_undone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ctrl-C or SIGTERM (a KeyboardInterrupt) after the journal says commit: the build's
    own clean-up must not remove the staged files that are still to be moved."""
    new = _cold(tmp_path, "new", NEW)
    out = tmp_path / "out"
    write.build(out, _items(OLD))
    original, calls = OutputFolder.move, [0]

    def interrupted(self: OutputFolder, source: str, target: str) -> None:
        calls[0] += 1  # 1 and 2 put the journal in place; 3 is the first staged file
        if calls[0] == 4:
            raise KeyboardInterrupt
        original(self, source, target)

    monkeypatch.setattr(OutputFolder, "move", interrupted)
    with pytest.raises(KeyboardInterrupt):
        write.build(out, _items(NEW))
    monkeypatch.undo()
    assert write.check(out, lambda: _items(NEW)).clean
    assert _tree(out) == new


def test_recovery_discards_only_what_a_build_left(tmp_path: Path) -> None:
    """A staging folder without a journal is removed only when it holds nothing or nothing
    but s402gen's own pending journal; a forged journal never reaches outside."""
    out = tmp_path / "out"
    write.build(out, _items(OLD))
    empty = out / f"{commit.STAGING_PREFIX}0123456789abcdef"
    empty.mkdir()
    users = out / f"{commit.STAGING_PREFIX}users"
    users.mkdir()
    (users / "journal.pending").write_text("not a journal")
    victim = tmp_path / "victim.txt"
    victim.write_text("mine")
    (out / commit.JOURNAL).write_text(
        '{"generator": "s402gen", "phase": "commit", "staging": "../x", "moves": ["../victim.txt"]}'
    )
    with OutputFolder.open(out, create=False) as folder:
        assert commit.recover(folder.lock()) == "discarded"
    assert not empty.exists() and (users / "journal.pending").read_text() == "not a journal"
    assert victim.read_text() == "mine" and (out / commit.JOURNAL).exists()


# -- real processes ---------------------------------------------------------------------------


def _catalogs(tmp_path: Path) -> tuple[Path, Path, dict[str, bytes], dict[str, bytes]]:
    """Two catalogs (the second drops a quarter of the services and changes every price)
    and the trees of their cold builds."""
    env = {"S402GEN_CACHE_DIR": "off", "SOURCE_DATE_EPOCH": "0"}
    first = write_catalog(tmp_path / "first.yaml", _synthetic(240, 105))
    second = write_catalog(tmp_path / "second.yaml", _synthetic(180, 250))
    trees = []
    for catalog in (first, second):
        cold = tmp_path / f"cold-{catalog.stem}"
        done = run_process("build", catalog.name, "--out", cold.name, cwd=tmp_path, env=env)
        assert done.returncode == 0, done.stderr
        trees.append(_tree(cold))
    return first, second, trees[0], trees[1]


def _exe() -> str:
    return shutil.which("s402gen") or str(Path(sys.executable).parent / "s402gen")


@pytest.mark.slow
def test_sigkill_of_a_real_build_leaves_old_or_new(tmp_path: Path) -> None:
    first, second, old, new = _catalogs(tmp_path)
    env = {**os.environ, "S402GEN_CACHE_DIR": "off", "SOURCE_DATE_EPOCH": "0"}
    out = tmp_path / "out"
    command = [_exe(), "build", second.name, "--out", out.name]

    def reset() -> None:
        shutil.rmtree(out, ignore_errors=True)
        shutil.copytree(tmp_path / "cold-first", out, symlinks=True)

    reset()
    began = time.monotonic()
    assert subprocess.run(command, cwd=tmp_path, env=env, capture_output=True).returncode == 0
    whole = time.monotonic() - began
    outcomes = []
    for fraction in (0.35, 0.5, 0.6, 0.7, 0.78, 0.85, 0.9, 0.95):
        reset()
        build = subprocess.Popen(
            command, cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        time.sleep(whole * fraction)
        build.send_signal(signal.SIGKILL)
        build.wait()
        checked = run_process(
            "check", second.name, "--out", out.name, cwd=tmp_path, env=env, timeout=120
        )
        after = _tree(out)
        assert after in (old, new), f"killed at {fraction:.0%}: a mix of old and new"
        assert not [name for name in after if name.startswith((".s402gen-", ".s402gen"))]
        assert checked.returncode == (0 if after == new else 1)
        outcomes.append("new" if after == new else "old")
    print("outcomes:", outcomes)


@pytest.mark.slow
def test_two_builds_into_one_folder_leave_one_of_them(tmp_path: Path) -> None:
    first, second, old, new = _catalogs(tmp_path)
    env = {**os.environ, "S402GEN_CACHE_DIR": "off", "SOURCE_DATE_EPOCH": "0"}
    out = tmp_path / "out"
    for trial in range(3):
        shutil.rmtree(out, ignore_errors=True)
        builds = [
            subprocess.Popen(
                [_exe(), "build", catalog.name, "--out", out.name],
                cwd=tmp_path,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for catalog in ((first, second) if trial % 2 == 0 else (second, first))
        ]
        results = [(b.wait(timeout=300), b.stderr.read()) for b in builds]
        assert [code for code, _ in results] == [0, 0], results
        assert _tree(out) in (old, new), f"trial {trial}: the folder matches neither catalog"


@pytest.mark.slow
def test_a_second_build_waits_for_the_lock_and_says_so(small_project: Path) -> None:
    out = small_project / "generated"
    out.mkdir()
    held = os.open(out, os.O_RDONLY | os.O_DIRECTORY)
    fcntl.flock(held, fcntl.LOCK_EX)
    env = {**os.environ, "S402GEN_CACHE_DIR": "off"}
    build = subprocess.Popen(
        [_exe(), "build"],
        cwd=small_project,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = build.stderr.readline()
        assert line == "waiting for another s402gen run to finish with generated/ ...\n"
        assert build.poll() is None and list(out.iterdir()) == []
    finally:
        os.close(held)  # releases the lock
    assert build.wait(timeout=120) == 0
    assert (out / "manifest.json").is_file()
