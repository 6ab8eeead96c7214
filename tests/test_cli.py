"""The CLI end to end: build, check, validate, configuration, determinism."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest

import s402gen.load as load_module
import s402gen.yaml_bounds as yaml_bounds
from s402gen.cli import main
from s402gen.diagnostics import CatalogError, Rules
from s402gen.load import load_text

from .conftest import GENERATED, free_port, run_cli, run_process


def _tree(folder: Path) -> dict[str, bytes]:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()
    }


def test_help_lists_only_the_exit_codes_each_command_returns() -> None:
    from s402gen.exits import MEANINGS

    assert set(MEANINGS) == {"s402gen", *main.list_commands(None)}
    for command, meanings in MEANINGS.items():
        code, out, _ = run_cli(*([] if command == "s402gen" else [command]), "--help")
        listed = out.split("Exit codes:\n")[1].splitlines()
        codes = [int(line.split()[0]) for line in listed if line.strip()[:1].isdigit()]
        assert code == 0 and codes == sorted(meanings), command
    _, out, _ = run_cli("import", "--help")
    assert "\n    1 " not in out.split("Exit codes:")[1]  # import has no findings exit
    _, out, _ = run_cli("check", "--help")
    assert "1   generated files changed, are missing or are orphaned" in out


def test_build_then_check_then_rebuild(small_project: Path) -> None:
    code, out, _ = run_cli("build", "--verbose", cwd=small_project)
    assert code == 0
    generated = small_project / "generated"
    manifest = json.loads((generated / "manifest.json").read_text())
    assert sorted(manifest["files"]) == sorted(p for p in _tree(generated) if p != "manifest.json")
    for path, digest in manifest["files"].items():
        assert hashlib.sha256((generated / path).read_bytes()).hexdigest() == digest
    assert "wrote generated/routes/face_detection.py" in out

    assert run_cli("check", cwd=small_project)[0] == 0
    mtimes = {p: p.stat().st_mtime_ns for p in generated.rglob("*")}
    code, out, _ = run_cli("build", cwd=small_project)
    assert code == 0 and "wrote" not in out and out.strip().startswith("0 written, 0 removed")
    assert {p: p.stat().st_mtime_ns for p in generated.rglob("*")} == mtimes


def test_check_reports_changed_missing_and_orphan_files(small_project: Path) -> None:
    assert run_cli("build", cwd=small_project)[0] == 0
    generated = small_project / "generated"
    (generated / "docs/index.html").unlink()
    catalog = small_project / "catalog.yaml"
    text = catalog.read_text(encoding="utf-8")
    catalog.write_text(
        text.replace("amountCents: 105", "amountCents: 110").replace(
            "  - id: face-database-batch-add", "  - id: face-database-bulk-add"
        ),
        encoding="utf-8",
    )
    code, out, err = run_cli("check", cwd=small_project)
    assert code == 1
    changed, missing, orphan = "generated-file-changed", "generated-file-missing", "orphaned"
    route = (generated / "routes/face_detection.py").read_text(encoding="utf-8").splitlines()
    line = route.index("        amount_cents=105,") + 1  # where the file first differs
    assert (
        f"generated/routes/face_detection.py:{line}:1: error: generated/routes/face_detection.py "
        f"differs from what the catalog compiles to [S402-E045 {changed}]"
    ) in err
    assert f"generated/docs/index.html is missing [S402-E046 {missing}]" in err
    assert f"generated/routes/face_database_bulk_add.py is missing [S402-E046 {missing}]" in err
    assert (
        "face_database_batch_add.py is not generated from the catalog "
        f"[S402-E047 generated-file-{orphan}]" in err
    )
    code, json_out, _ = run_cli("check", "--format", "json", cwd=small_project)
    report = json.loads(json_out)  # JSON, not a diff: the drifted files are findings
    assert code == 1 and report["upToDate"] is False
    assert report["counts"]["error"] == len(report["findings"]) > 4
    assert {(f["name"], f["file"]) for f in report["findings"]} >= {
        (changed, "generated/routes/face_detection.py"),
        (missing, "generated/docs/index.html"),
        (missing, "generated/routes/face_database_bulk_add.py"),
        ("generated-file-orphaned", "generated/routes/face_database_batch_add.py"),
    }
    assert "-        amount_cents=105,\n+        amount_cents=110,\n" in out
    assert "--- a/routes/face_database_batch_add.py\n+++ /dev/null\n" in out
    assert "--- /dev/null\n+++ b/docs/index.html\n" in out
    assert _tree(generated)["docs/tools/face-detection.html"]  # check wrote nothing

    code, out, _ = run_cli("build", "-v", cwd=small_project)
    assert code == 0
    assert "removed generated/routes/face_database_batch_add.py" in out
    assert not (generated / "routes/face_database_batch_add.py").exists()
    assert run_cli("check", cwd=small_project)[0] == 0


def test_build_deletes_only_what_it_wrote(small_project: Path) -> None:
    generated = small_project / "generated"
    assert run_cli("build", cwd=small_project)[0] == 0
    mine = generated / "routes" / "my_notes.txt"
    mine.write_text("hand-written")
    (small_project / "catalog.yaml").write_text(
        (small_project / "catalog.yaml")
        .read_text()
        .replace("  - id: face-database-batch-add", "  - id: face-database-bulk-add")
    )
    assert run_cli("build", cwd=small_project)[0] == 0
    assert mine.read_text() == "hand-written"


def test_build_keeps_an_edited_orphan(small_project: Path) -> None:
    generated = small_project / "generated"
    assert run_cli("build", cwd=small_project)[0] == 0
    orphan = generated / "docs/tools/face-database-batch-add.html"
    orphan.write_text("edited by hand")
    catalog = small_project / "catalog.yaml"
    catalog.write_text(
        catalog.read_text().replace(
            "  - id: face-database-batch-add", "  - id: face-database-bulk-add"
        )
    )
    code, _, err = run_cli("build", cwd=small_project)
    assert code == 0 and "kept generated/docs/tools/face-database-batch-add.html" in err
    assert orphan.read_text() == "edited by hand"


def test_build_refuses_to_overwrite_a_file_it_did_not_write(small_project: Path) -> None:
    target = small_project / "generated" / "docs" / "index.html"
    target.parent.mkdir(parents=True)
    target.write_text("someone else's page")
    code, out, err = run_cli("build", cwd=small_project)
    assert code == 2 and "generated/docs/index.html exists and was not written by s402gen" in err
    assert target.read_text() == "someone else's page"
    assert not (small_project / "generated" / "manifest.json").exists()
    assert run_cli("build", "--force", cwd=small_project)[0] == 0
    assert target.read_text() != "someone else's page"


def test_invalid_catalog_writes_nothing_and_exits_2(small_project: Path) -> None:
    catalog = small_project / "catalog.yaml"
    catalog.write_text(catalog.read_text().replace("action: DetectFace", "action: detect face"))
    for command in ("build", "check", "validate"):
        code, out, err = run_cli(command, cwd=small_project)
        assert code == 2
        assert "catalog.yaml:" in err and "Traceback" not in err + out
    assert not (small_project / "generated").exists()


def test_missing_catalog_is_a_clear_error(tmp_path: Path) -> None:
    code, _, err = run_cli("validate", "nope.yaml", cwd=tmp_path)
    assert code == 2 and err.startswith("nope.yaml:1:1: error: nope.yaml does not exist [S402-E040")


def test_pyproject_settings(small_project: Path) -> None:
    (small_project / "catalog.yaml").rename(small_project / "services.yaml")
    (small_project / "pyproject.toml").write_text(
        '[tool.s402gen]\ncatalog = "services.yaml"\nout = "build/site"\n'
    )
    sub = small_project / "sub"
    sub.mkdir()
    assert run_cli("build", cwd=sub)[0] == 0
    assert (small_project / "build/site/manifest.json").exists()
    assert run_cli("check", cwd=sub)[0] == 0
    (small_project / "pyproject.toml").write_text('[tool.s402gen]\ncatalogue = "x.yaml"\n')
    code, _, err = run_cli("check", cwd=sub)
    assert code == 2 and err == (
        "../pyproject.toml:2:1: error: unknown key 'catalogue' in [tool.s402gen] "
        "[S402-E054 invalid-configuration]\n  hint: did you mean 'catalog'?\n"
    )
    (small_project / "pyproject.toml").write_text("[tool.s402gen]\nout = 5\n")
    code, out, _ = run_cli("validate", "--format", "json", cwd=sub)
    [finding] = json.loads(out)["findings"]
    assert code == 2 and (finding["name"], finding["line"]) == ("invalid-configuration", 2)
    (small_project / "pyproject.toml").write_text("[tool.s402gen]\n\nout = ]\n")
    code, _, err = run_cli("build", cwd=sub)
    assert code == 2 and err.startswith("../pyproject.toml:3:") and "cannot read" in err


def test_user_templates_override_and_are_black_formatted(small_project: Path) -> None:
    mine = small_project / "mine"
    mine.mkdir()
    (mine / "route.py.jinja").write_text(
        "SERVICE_ID={{ spec.service_id | py }}\nPRICE  =  {{ spec.pricing.amount_cents }}\n"
    )
    assert run_cli("build", "--templates", "mine", cwd=small_project)[0] == 0
    route = (small_project / "generated/routes/face_detection.py").read_text()
    assert route == 'SERVICE_ID = "face-detection"\nPRICE = 105\n'
    assert (small_project / "generated/docs/index.html").exists()  # packaged ones still used


def test_generated_at_from_source_date_epoch(small_project: Path) -> None:
    catalog = small_project / "catalog.yaml"
    catalog.write_text(catalog.read_text().replace('  generatedAt: "2026-01-02T03:04:05Z"\n', ""))
    result = run_process("build", cwd=small_project, env={"SOURCE_DATE_EPOCH": "86400"})
    assert result.returncode == 0, result.stderr
    document = json.loads((small_project / "generated/catalog/catalog.json").read_text())
    assert document["generatedAt"] == "1970-01-02T00:00:00Z"
    result = run_process("check", cwd=small_project, env={"SOURCE_DATE_EPOCH": ""})
    assert result.returncode == 1
    assert "no-generated-at" in result.stderr


@pytest.mark.parametrize("catalog", ["small", "real"])
def test_builds_are_identical_across_hash_seeds(
    catalog: str, tmp_path: Path, small_project: Path
) -> None:
    from .conftest import CATALOG

    source = small_project / "catalog.yaml" if catalog == "small" else CATALOG
    outputs = []
    for seed in ("0", "4242"):
        out = tmp_path / f"out-{seed}"
        result = run_process(
            "build", str(source), "--out", str(out), cwd=tmp_path, env={"PYTHONHASHSEED": seed}
        )
        assert result.returncode == 0, result.stderr
        outputs.append(_tree(out))
    assert outputs[0] == outputs[1]


def test_alias_expansion_is_limited(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(yaml_bounds, "MAX_EXPANDED_NODES", 1000)
    bomb = "a: &a [x, x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
    bomb += "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\n"
    with pytest.raises(CatalogError) as caught:
        load_text(bomb, "bomb.yaml")
    assert [d.rule for d in caught.value.diagnostics] == [Rules.ALIAS_EXPANSION]


def test_yaml_merge_keys_are_expanded() -> None:
    doc = load_text("base: &base {a: 1, b: 2}\nthing:\n  <<: *base\n  b: 3\n", "m.yaml")
    assert doc.data["thing"] == {"a": 1, "b": 3}


@pytest.mark.parametrize("loader", ["CSafeLoader", "SafeLoader"])
def test_yaml_11_numbers_are_located_errors(loader: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Plain scalars YAML 1.1 reads as other numbers than they look like are refused at their
    node (libyaml and pure PyYAML mark plain scalars differently); the rest load as written."""
    import yaml

    monkeypatch.setattr(load_module, "_Loader", getattr(yaml, loader))
    surprises = ["020", "-007", "0b11", "1:20", "190:20:30.5", "1_000", "1_000.5"]
    text = "".join(f"k{i}: {s}\n" for i, s in enumerate(surprises))
    with pytest.raises(CatalogError) as caught:
        load_text(text + "ok: [20, 0, 0x1F, -0.5, 1.5e+3, '020', \"1:20\"]\n", "n.yaml")
    found = caught.value.diagnostics
    assert [(d.rule, d.location.line, d.location.column) for d in found] == [
        (Rules.YAML_11_NUMBER, line, 5) for line in range(1, len(surprises) + 1)
    ]
    assert "'020' is an octal number in YAML 1.1, read as 16" in found[0].message
    assert "'1:20' is a base-60 number in YAML 1.1, read as 80" in found[3].message
    doc = load_text("ok: [20, 0, 0x1F, -0.5, 1.5e+3, '020', \"1:20\"]\n", "n.yaml")
    assert doc.data == {"ok": [20, 0, 31, -0.5, 1500.0, "020", "1:20"]}


def test_cache_skips_compiling_only_while_inputs_and_output_match(
    small_project: Path, private_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import s402gen.pipeline

    catalog = small_project / "catalog.yaml"
    catalog.write_text(
        catalog.read_text().replace(
            "Name of the face database.", "Faces to add; a JSON string is accepted too."
        )
    )
    assert run_cli("build", cwd=small_project)[0] == 0
    assert len(list(private_cache.glob("*.json"))) == 1
    compile_for_real = s402gen.pipeline.compile_catalog
    compiles: list[str] = []

    def counting(*args, **kwargs):
        compiles.append("compile")
        return compile_for_real(*args, **kwargs)

    monkeypatch.setattr(s402gen.pipeline, "compile_catalog", counting)
    code, out, err = run_cli("check", cwd=small_project)
    assert code == 0 and "S402-W001" in err  # a hit prints the cached warnings again
    code, out, _ = run_cli("build", cwd=small_project)
    assert code == 0 and out.startswith("0 written, 0 removed")
    assert compiles == []  # both answered from the cache

    edited = small_project / "generated/docs/index.html"
    edited.write_text(edited.read_text() + "<!-- edit -->\n")
    code, out, err = run_cli("check", cwd=small_project)
    assert code == 1 and "generated/docs/index.html differs from what the catalog" in err
    assert compiles == ["compile"]
    assert run_cli("build", "--force", cwd=small_project)[0] == 0  # a hand edit: --force

    catalog.write_text(catalog.read_text().replace("amountCents: 105", "amountCents: 106"))
    assert run_cli("check", cwd=small_project)[0] == 1
    assert len(compiles) == 3


def test_cache_can_be_turned_off(
    small_project: Path, monkeypatch: pytest.MonkeyPatch, private_cache: Path
) -> None:
    monkeypatch.setenv("S402GEN_CACHE_DIR", "off")
    assert run_cli("build", cwd=small_project)[0] == 0
    assert run_cli("check", cwd=small_project)[0] == 0
    assert not list(private_cache.iterdir())


def test_broken_user_templates_are_errors_with_their_location(small_project: Path) -> None:
    mine = small_project / "mine"
    mine.mkdir()
    (mine / "route.py.jinja").write_text("X = 1\nY = {{ spec.no_such_field }}\n")
    code, _, err = run_cli("build", "--templates", "mine", cwd=small_project)
    assert code == 2 and "route.py.jinja:2:1: error: template error" in err
    assert "S402-E009" in err and not (small_project / "generated").exists()
    (mine / "route.py.jinja").write_text("X = (\n")
    code, _, err = run_cli("build", "--templates", "mine", cwd=small_project)
    assert code == 2 and "generated Python is not valid" in err and "Traceback" not in err


def test_foreign_manifest_is_not_trusted(small_project: Path) -> None:
    out = small_project / "generated"
    out.mkdir()
    (out / "app.js").write_text("keep")
    digest = hashlib.sha256(b"keep").hexdigest()
    (out / "manifest.json").write_text(json.dumps({"files": {"app.js": digest}}))
    code, _, err = run_cli("build", cwd=small_project)
    assert code == 2 and "generated/manifest.json exists and was not written by s402gen" in err
    assert "[S402-E102 file-not-written-by-s402gen]" in err
    assert (out / "app.js").read_text() == "keep"
    assert run_cli("build", "--force", cwd=small_project)[0] == 0
    assert (out / "app.js").read_text() == "keep"  # a foreign manifest never deletes anything


def test_a_folder_named_like_staging_that_s402gen_did_not_make_is_kept(
    small_project: Path,
) -> None:
    assert run_cli("build", cwd=small_project)[0] == 0
    mine = small_project / "generated" / ".s402gen-staging-killed"
    (mine / "routes").mkdir(parents=True)
    (mine / "routes" / "notes.txt").write_text("mine")
    assert run_cli("check", cwd=small_project)[0] == 0
    catalog = small_project / "catalog.yaml"
    catalog.write_text(catalog.read_text().replace("amountCents: 105", "amountCents: 106"))
    assert run_cli("build", cwd=small_project)[0] == 0
    assert (mine / "routes" / "notes.txt").read_text() == "mine"


def test_output_folder_that_is_a_file(small_project: Path) -> None:
    (small_project / "generated").write_text("not a folder")
    for command in ("build", "check"):
        code, _, err = run_cli(command, cwd=small_project)
        assert code == 2 and "is a file" in err


def test_check_and_validate_speak_github_and_json(small_project: Path) -> None:
    assert run_cli("build", cwd=small_project)[0] == 0
    catalog = small_project / "catalog.yaml"
    catalog.write_text(catalog.read_text().replace("amountCents: 105", "amountCents: 110"))
    code, out, _ = run_cli("check", "--format", "github", cwd=small_project)
    route = (small_project / "generated/routes/face_detection.py").read_text(encoding="utf-8")
    line = route.splitlines().index("        amount_cents=105,") + 1
    assert code == 1
    assert (
        f"::error file=generated/routes/face_detection.py,line={line},col=1,"
        "title=S402-E045 generated-file-changed::generated/routes/face_detection.py differs "
        "from what the catalog compiles to%0Ahint: run `s402gen build` and commit the result"
    ) in out
    catalog.write_text(catalog.read_text().replace("action: DetectFace", "action: detect"))
    code, out, _ = run_cli("validate", "--format", "json", cwd=small_project)
    report = json.loads(out)
    assert code == 2 and report["valid"] is False and report["counts"]["error"] == 1
    [finding] = report["findings"]
    assert (finding["rule"], finding["services"]) == ("S402-E007", ["face-detection"])
    assert finding["message"].startswith("service 'face-detection' action: ")
    code, out, _ = run_cli("validate", "--format", "github", cwd=small_project)
    assert code == 2 and out.startswith(
        "::error file=catalog.yaml,line=72,col=13,title=S402-E007 invalid-value::"
    )


def test_dash_h_is_help_for_the_group_and_every_command() -> None:
    commands = ([], ["build"], ["check"], ["validate"], ["serve"], ["mcp"], ["import"], ["diff"])
    for command in commands:  # also after import and diff ran standalone (tests do)
        code, out, _ = run_cli(*command, "-h")
        assert code == 0 and out == run_cli(*command, "--help")[1]
        assert out.startswith(f"Usage: main {' '.join(command)}".rstrip() + " [OPTIONS]")


def test_quiet_prints_nothing_on_success_but_still_reports_problems(small_project: Path) -> None:
    assert run_cli("build", "-q", cwd=small_project)[:2] == (0, "")
    assert (small_project / "generated" / "manifest.json").is_file()
    assert run_cli("build", "--quiet", cwd=small_project)[:2] == (0, "")  # a cache hit too
    assert run_cli("check", "-q", cwd=small_project)[:3] == (0, "", "")
    assert run_cli("validate", "-q", cwd=small_project)[:3] == (0, "", "")

    (small_project / "generated" / "docs" / "index.html").unlink()
    code, _, err = run_cli("check", "-q", cwd=small_project)
    assert code == 1 and "generated/docs/index.html is missing [S402-E046" in err
    catalog = small_project / "catalog.yaml"
    catalog.write_text(catalog.read_text(encoding="utf-8") + "bogus: 1\n", encoding="utf-8")
    code, _, err = run_cli("validate", "-q", cwd=small_project)
    assert code == 2 and "error" in err


@pytest.mark.slow
def test_build_into_a_reader_that_closes_early_exits_quietly(small_project: Path) -> None:
    exe = shutil.which("s402gen") or str(Path(sys.executable).parent / "s402gen")
    env = {**os.environ, "S402GEN_CACHE_DIR": "off"}
    build = subprocess.Popen(
        [exe, "build"], cwd=small_project, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    build.stdout.close()  # like `| head` that has read enough, before the first line
    err = build.stderr.read()
    assert build.wait(timeout=60) == 1  # what click does on EPIPE (black too)
    assert err == b""
    assert (small_project / "generated" / "manifest.json").is_file()  # the build itself finished


@pytest.mark.slow
def test_build_shows_progress_on_a_terminal_and_one_summary_line_when_piped(
    small_project: Path,
) -> None:
    exe = shutil.which("s402gen") or str(Path(sys.executable).parent / "s402gen")
    env = {**os.environ, "S402GEN_CACHE_DIR": "off"}
    piped = run_process("build", cwd=small_project, env={"S402GEN_CACHE_DIR": "off"})
    assert piped.stderr == "" and "building" not in piped.stdout
    files = json.loads((small_project / "generated" / "manifest.json").read_text())["files"]
    assert piped.stdout.splitlines()[-1] == f"{len(files) + 1} written, 0 removed, 0 unchanged"
    assert len(piped.stdout.splitlines()) == 1  # one summary line, whatever the catalog's size

    shutil.rmtree(small_project / "generated")
    master, terminal = os.openpty()
    build = subprocess.Popen(
        [exe, "build"], cwd=small_project, env=env, stdout=subprocess.PIPE, stderr=terminal
    )
    os.close(terminal)
    seen: list[bytes] = []

    def read_terminal() -> None:
        while True:
            try:
                chunk = os.read(master, 4096)
            except OSError:  # EIO: the build closed its end
                return
            if not chunk:
                return
            seen.append(chunk)

    reader = threading.Thread(target=read_terminal)
    reader.start()
    out = build.stdout.read().decode()
    assert build.wait(timeout=60) == 0
    reader.join(timeout=10)
    os.close(master)
    shown = b"".join(seen).decode()
    assert "building" in shown and "routes/face_detection.py" in shown and "#" in shown
    assert out == piped.stdout  # stdout is the same with or without a terminal


@pytest.mark.slow
def test_serve_says_where_it_and_the_emulator_listen_and_logs_requests(tmp_path: Path) -> None:
    exe = shutil.which("s402gen") or str(Path(sys.executable).parent / "s402gen")
    port = free_port()
    out, err = tmp_path / "stdout", tmp_path / "stderr"
    command = [exe, "serve", "--port", str(port), "--generated", str(GENERATED)]
    command += ["--upstream", "emulator", "--ledger", ":memory:"]
    with out.open("wb") as stdout, err.open("wb") as stderr:
        server = subprocess.Popen(command, cwd=tmp_path, stdout=stdout, stderr=stderr)
        try:
            deadline = time.monotonic() + 60
            while "Uvicorn running on" not in err.read_text() and time.monotonic() < deadline:
                assert server.poll() is None, err.read_text()
                time.sleep(0.1)
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/catalog") as answer:
                assert answer.status == 200
        finally:
            server.terminate()
            server.wait(timeout=30)
    banner = err.read_text().splitlines()
    emulator = [line for line in banner if line.startswith("upstream: ")]
    assert (
        len(emulator) == 1 and "upstream emulator (a local fake of the upstream APIs" in emulator[0]
    )
    emulator_port = int(emulator[0].rsplit(":", 1)[1])
    assert emulator_port != port
    services = len(json.loads((GENERATED / "catalog" / "catalog.json").read_bytes())["services"])
    assert f"server402 API on http://127.0.0.1:{port} ({services} paid services" in "\n".join(
        banner
    )
    assert f"Uvicorn running on http://127.0.0.1:{port}" in "\n".join(banner)
    assert '"GET /api/catalog HTTP/1.1" 200 OK' in out.read_text()  # uvicorn's access format


TIED_FINDINGS = """
from s402gen.diagnostics import Finding, Location, Rules, sort_diagnostics

where = Location("catalog.yaml", 3, 5)
a = Finding(Rules.UNKNOWN_REFERENCE, "unknown x", where, hint="did you mean 'y'?")
b = Finding(Rules.UNKNOWN_REFERENCE, "unknown x", where, services=("face-detection",))
c = Finding(Rules.UNKNOWN_REFERENCE, "unknown x", where)
for found in ([a, b, c, a], [c, b, a], [b, a, c]):
    print([(d.hint, d.services) for d in sort_diagnostics(found)])
"""


def test_findings_that_tie_on_place_rule_and_message_keep_one_order() -> None:
    """Findings alike but for their hint or services come out in one order whatever order
    they were found in and whatever the hash seed (the order once hung on it), without
    repeats."""
    outputs = {
        subprocess.run(
            [sys.executable, "-c", TIED_FINDINGS],
            env={**os.environ, "PYTHONHASHSEED": str(seed)},
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        for seed in range(6)
    }
    expected = "[(None, ()), (None, ('face-detection',)), (\"did you mean 'y'?\", ())]\n"
    assert outputs == {expected * 3}
