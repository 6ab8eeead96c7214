"""``build --jobs N``: the services' files rendered by forked workers give the very output,
file order and first error of ``--jobs 1``, and a killed or failing parallel build still
leaves the old build or the new one."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from s402gen import parallel, render

from .conftest import run_cli, run_process, write_catalog
from .test_check_bounds import _synthetic
from .test_write_crash import _exe, _tree


def _build(project: Path, out: str, *extra: str) -> tuple[int, str, dict[str, bytes]]:
    code, _, err = run_cli("build", "--out", out, *extra, cwd=project)
    folder = project / out
    return code, err, _tree(folder) if folder.exists() else {}


@pytest.fixture
def project(tmp_path: Path, real_catalog_data: dict) -> Path:
    """The real catalog (44 services: enough files to fork for) with the cache off."""
    write_catalog(tmp_path / "catalog.yaml", real_catalog_data)
    return tmp_path


@pytest.fixture(autouse=True)
def _no_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("S402GEN_CACHE_DIR", "off")
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "0")


def test_the_output_is_the_same_for_any_number_of_jobs(project: Path, monkeypatch) -> None:
    forked: list[int] = []
    original = parallel.Farm.__init__

    def counting(self, jobs, passes):
        forked.append(jobs)
        original(self, jobs, passes)

    monkeypatch.setattr(parallel.Farm, "__init__", counting)
    code, err, serial = _build(project, "one", "-j", "1")
    assert code == 0, err and forked == []
    for jobs in ("2", "3"):
        code, err, tree = _build(project, f"j{jobs}", "--jobs", jobs)
        assert code == 0, err
        assert tree == serial
    assert forked == [2, 3]


def test_user_templates_render_the_same_in_workers(project: Path) -> None:
    """A user's templates (sandboxed; a route template then formatted by black; a user's
    entry and catalog.json templates, which catalog.json renders again) in workers too."""
    mine = project / "mine"
    mine.mkdir()
    (mine / "route.py.jinja").write_text("SERVICE_ID = {{ spec.service_id | py }}\n")
    (mine / "catalog_entry.json.jinja").write_text('{"id": {{ entry.id | json }}}\n')
    (mine / "catalog.json.jinja").write_text(
        "[{% for entry in entries %}{{ entry.id | json }},{% endfor %}]\n"
    )
    (mine / "doc_page.html.jinja").write_text("<h1>{{ service.texts.name }}</h1>\n")
    code, err, serial = _build(project, "one", "--templates", "mine", "-j", "1")
    assert code == 0, err
    assert serial["routes/face_detection.py"] == b'SERVICE_ID = "face-detection"\n'
    code, err, tree = _build(project, "two", "--templates", "mine", "-j", "2")
    assert code == 0, err
    assert tree == serial


def test_a_template_error_in_a_worker_is_the_serial_error(
    project: Path, real_catalog_data: dict
) -> None:
    """The first failing file in the serial order is reported, at its template line, and
    nothing is written; here a page fails for an early service, a route for a later one
    (routes come first: the route's error)."""
    ids = [s["id"] for s in real_catalog_data["services"]]
    mine = project / "mine"
    mine.mkdir()
    (mine / "route.py.jinja").write_text(
        f'X = 1\n{{% if spec.service_id == "{ids[30]}" %}}{{{{ 1 // 0 }}}}{{% endif %}}\n'
    )
    (mine / "doc_page.html.jinja").write_text(
        f'<p>\n{{% if service.route.service_id == "{ids[3]}" %}}{{{{ nope }}}}{{% endif %}}\n'
    )
    code, serial, _ = _build(project, "out", "--templates", "mine", "-j", "1")
    assert code == 2 and "mine/route.py.jinja:2:1: error: template error: " in serial, serial
    assert "ZeroDivisionError" in serial and "[S402-E009 template-error]" in serial
    for jobs in ("2", "3"):
        code, err, _ = _build(project, "out", "--templates", "mine", "-j", jobs)
        assert (code, err) == (2, serial)
    (mine / "route.py.jinja").unlink()  # now the page's error, in its worker
    code, serial, _ = _build(project, "out", "--templates", "mine", "-j", "1")
    assert code == 2 and "mine/doc_page.html.jinja:2:1: error: " in serial, serial
    assert "'nope' is undefined" in serial
    code, err, _ = _build(project, "out", "--templates", "mine", "-j", "2")
    assert (code, err) == (2, serial)
    assert not (project / "out").exists()


def test_a_worker_that_dies_fails_the_build_and_leaves_the_old_one(
    project: Path, real_catalog_data: dict, monkeypatch
) -> None:
    code, err, old = _build(project, "out", "-j", "1")
    assert code == 0, err
    real_catalog_data["services"][0]["name"] = "Renamed"
    write_catalog(project / "catalog.yaml", real_catalog_data)
    victim = real_catalog_data["services"][20]["id"]
    original = render.doc_schema_block

    def dying(svc):
        if svc.route.service_id == victim:
            os._exit(9)  # in a worker: as if killed
        return original(svc)

    monkeypatch.setattr(render, "doc_schema_block", dying)
    code, err, after = _build(project, "out", "-j", "2")
    assert code != 0 and "render worker" in err, err
    assert after == old


def test_workers_staging_their_files_refuse_what_a_serial_build_refuses(
    project: Path, real_catalog_data: dict
) -> None:
    """A worker compares its files with the folder itself: a file edited by hand, a file
    s402gen did not write and a link where a page goes are refused as serially."""
    code, err, _ = _build(project, "out", "-j", "1")
    assert code == 0, err
    ids = [s["id"] for s in real_catalog_data["services"]]
    real_catalog_data["services"][0]["name"] = "Renamed"
    for i in (5, 6):
        real_catalog_data["services"][i]["summaryZh"] = "改过的摘要。"
    write_catalog(project / "catalog.yaml", real_catalog_data)
    out = project / "out"
    (out / "docs" / "tools" / f"{ids[5]}.html").write_text("edited by hand\n")
    page = out / "docs" / "tools" / f"{ids[6]}.html"
    page.unlink()
    page.symlink_to(project / "catalog.yaml")
    before = _tree(out)
    results = []
    for jobs in ("1", "2"):
        code, err, after = _build(project, "out", "-j", jobs)
        assert after == before
        results.append((code, err))
    assert results[0] == results[1]
    assert results[0][0] == 2 and f"{ids[5]}.html" in results[0][1], results[0]
    assert "symbolic link" in results[0][1], results[0]


def test_farm_results_come_in_order_and_errors_in_place() -> None:
    passes = [
        ("square", list(range(100)), lambda i: i * i),
        ("fails", [0, 1, 2, 3], lambda i: 1 // (i - 2)),
    ]
    with parallel.Farm(3, passes) as farm:
        assert [farm.take("square") for _ in range(100)] == [i * i for i in range(100)]
        assert [farm.take("fails") for _ in range(2)] == [-1 // 2, -1]
        with pytest.raises(ZeroDivisionError):
            farm.take("fails")


@pytest.mark.slow
def test_a_killed_parallel_build_leaves_old_or_new_and_no_worker(tmp_path: Path) -> None:
    env = {**os.environ, "S402GEN_CACHE_DIR": "off", "SOURCE_DATE_EPOCH": "0"}
    first = write_catalog(tmp_path / "first.yaml", _synthetic(240, 105))
    second = write_catalog(tmp_path / "second.yaml", _synthetic(180, 250))
    trees = []
    for catalog in (first, second):
        done = run_process("build", catalog.name, "--out", catalog.stem, "-j", "1", cwd=tmp_path)
        assert done.returncode == 0, done.stderr
        trees.append(_tree(tmp_path / catalog.stem))
    out = tmp_path / "out-parallel-kill"
    command = [_exe(), "build", second.name, "--out", out.name, "-j", "2"]
    began = time.monotonic()
    shutil.copytree(tmp_path / "first", out)
    assert subprocess.run(command, cwd=tmp_path, env=env).returncode == 0
    assert _tree(out) == trees[1]
    whole = time.monotonic() - began
    for fraction in (0.3, 0.5, 0.7, 0.85):
        shutil.rmtree(out)
        shutil.copytree(tmp_path / "first", out)
        build = subprocess.Popen(command, cwd=tmp_path, env=env, stderr=subprocess.DEVNULL)
        time.sleep(whole * fraction)
        build.send_signal(signal.SIGKILL)
        build.wait()
        time.sleep(0.2)
        assert not _processes_naming(out.name), "a render worker outlived its build"
        checked = run_process("check", second.name, "--out", out.name, cwd=tmp_path, env=env)
        after = _tree(out)
        assert after in trees, f"killed at {fraction:.0%}: a mix of old and new"
        assert checked.returncode == (0 if after == trees[1] else 1)


def _processes_naming(word: str) -> list[int]:
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as file:
                if word.encode() in file.read():
                    found.append(int(pid))
        except OSError:
            pass
    return found
