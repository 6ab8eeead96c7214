"""``s402gen diff``: breaking-change cases, git refs, formats and errors.

End-to-end cases live in ``tests/breaking_cases/<rule-name>/``: ``old.yaml``,
``new.yaml`` and ``expected.txt``, the transcript of ``s402gen diff new.yaml
--against old.yaml`` (exit code, stderr, stdout). Regenerate them after an
intended change, then review the diff:

    S402GEN_UPDATE_CASES=1 pytest tests/test_breaking.py
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from s402gen.breaking import all_rules, diff_command, narrowings
from s402gen.diagnostics import Level, Rules
from s402gen.diagnostics import all_rules as every_rule

from .conftest import SMALL_CATALOG

CASES = Path(__file__).parent / "breaking_cases"
UPDATE = os.environ.get("S402GEN_UPDATE_CASES") == "1"
SMALL = SMALL_CATALOG.read_text(encoding="utf-8")
IMAGE_PARAMS = "      ImageURL: image-url\n      MaxFaceNumber: {type: integer, minimum: 1}\n"


def run_diff(*args: str, cwd: Path) -> tuple[int, str, str]:
    """Run the diff command in-process in ``cwd``; (exit code, stdout, stderr)."""
    old = Path.cwd()
    os.chdir(cwd)
    try:
        result = CliRunner().invoke(diff_command, list(args), catch_exceptions=False)
    finally:
        os.chdir(old)
    return result.exit_code, result.stdout, result.stderr


def _transcript(case: Path) -> str:
    code, stdout, stderr = run_diff("new.yaml", "--against", "old.yaml", cwd=case)
    return (
        f"$ s402gen diff new.yaml --against old.yaml\nexit {code}\n"
        f"--- stderr\n{stderr}--- stdout\n{stdout}"
    )


@pytest.mark.parametrize("case", sorted(p.name for p in CASES.iterdir() if p.is_dir()))
def test_case(case: str) -> None:
    folder = CASES / case
    actual = _transcript(folder)
    expected_file = folder / "expected.txt"
    if UPDATE and (not expected_file.exists() or expected_file.read_text("utf-8") != actual):
        expected_file.write_text(actual, encoding="utf-8")
        pytest.fail(f"wrote {expected_file}: review it, then run again without the variable")
    assert expected_file.exists(), f"no expected.txt: run S402GEN_UPDATE_CASES=1 pytest {__file__}"
    assert actual == expected_file.read_text(encoding="utf-8")


def test_every_rule_has_its_case() -> None:
    """Each rule has a case folder named after it, whose transcript shows that rule."""
    for rule in all_rules():
        expected = CASES / rule.name / "expected.txt"
        assert expected.is_file(), f"no case for {rule.code} {rule.name}"
        assert f"[{rule.code} {rule.name}]" in expected.read_text(encoding="utf-8")


def test_rule_table_is_consistent() -> None:
    """One table for every command: codes and names unique, and each change rule at the
    level written out by hand below."""
    codes = [rule.code for rule in every_rule()]
    names = [rule.name for rule in every_rule()]
    assert len(set(codes)) == len(codes) and len(set(names)) == len(names)
    assert Rules.PARAMETER_REMOVED.code == "S402-B004"
    changes = {Level.BREAKING, Level.DANGEROUS, Level.SAFE}
    declared = {rule.name: rule.level.value for rule in every_rule() if rule.level in changes}
    assert declared == LEVELS


#: What each change does to a client written against the old catalog, written out by hand:
#: it fails (breaking), it may pay more or call less (dangerous), or it cannot notice (safe).
LEVELS = {
    "service-removed": "breaking",
    "legacy-id-changed": "breaking",
    "endpoint-changed": "breaking",
    "parameter-removed": "breaking",
    "parameter-renamed": "breaking",
    "parameter-made-required": "breaking",
    "required-parameter-added": "breaking",
    "parameter-type-narrowed": "breaking",
    "output-field-removed": "breaking",
    "tool-name-changed": "breaking",
    "output-field-made-optional": "breaking",
    "price-raised": "dangerous",
    "max-calls-lowered": "dangerous",
    "sla-weakened": "dangerous",
    "currency-changed": "dangerous",
    "service-added": "safe",
    "optional-parameter-added": "safe",
    "description-changed": "safe",
}


def test_exit_codes_follow_the_worst_level() -> None:
    expected = {folder.name: (folder / "expected.txt").read_text() for folder in CASES.iterdir()}
    for rule in all_rules():
        code = 1 if LEVELS[rule.name] == "breaking" else 0
        assert expected[rule.name].splitlines()[1] == f"exit {code}", rule.name
    assert expected["no-changes"].splitlines()[1] == "exit 0"


def _project(tmp_path: Path, text: str = SMALL) -> Path:
    (tmp_path / "catalog.yaml").write_text(text, encoding="utf-8")
    return tmp_path


def _without_max_faces(text: str = SMALL) -> str:
    return text.replace(IMAGE_PARAMS, "      ImageURL: image-url\n")


def test_json_format(tmp_path: Path) -> None:
    (tmp_path / "old.yaml").write_text(SMALL, encoding="utf-8")
    _project(tmp_path, _without_max_faces())
    code, stdout, _ = run_diff(
        "catalog.yaml", "--against", "old.yaml", "--format", "json", cwd=tmp_path
    )
    assert code == 1
    document = json.loads(stdout)
    assert set(document) == {"file", "against", "findings", "counts"}
    counts = document["counts"]
    assert (counts["breaking"], counts["dangerous"], counts["safe"]) == (1, 0, 1)
    removed = document["findings"][0]
    assert removed == {
        "rule": "S402-B004",
        "name": "parameter-removed",
        "level": "breaking",
        "message": "parameter 'MaxFaceNumber' of service 'face-detection' was removed",
        "hint": None,
        "services": ["face-detection"],
        "file": "catalog.yaml",
        "line": 77,
        "column": 5,
    }


def test_github_format(tmp_path: Path) -> None:
    folder = CASES / "sla-weakened"
    code, stdout, stderr = run_diff(
        "new.yaml", "--against", "old.yaml", "--format", "github", cwd=folder
    )
    assert code == 0 and stderr == ""
    lines = stdout.splitlines()
    assert lines and all(line.startswith("::warning file=new.yaml,line=") for line in lines)
    assert "title=S402-D003 sla-weakened::" in lines[0]
    assert "99.5%25 to 99.0%25" in stdout  # '%' escaped as GitHub wants
    code, stdout, _ = run_diff(
        "new.yaml", "--against", "old.yaml", "--format", "github", cwd=CASES / "service-removed"
    )
    assert code == 1 and stdout.startswith("::error file=new.yaml,line=1,col=1,")
    _, stdout, _ = run_diff(
        "new.yaml", "--against", "old.yaml", "--format", "github", cwd=CASES / "service-added"
    )
    assert stdout.startswith("::notice file=new.yaml,")


def _git(cwd: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.com",
         "-c", "commit.gpgsign=false", *args],
        cwd=cwd, check=True, capture_output=True,
    )  # fmt: skip


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A git repository whose ``api/catalog.yaml`` was committed twice (HEAD~1: the
    small catalog; HEAD: MaxFaceNumber made required) and then edited (removed)."""
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    _git(tmp_path, "init", "-q")
    (tmp_path / "api").mkdir()
    catalog = tmp_path / "api" / "catalog.yaml"
    catalog.write_text(SMALL, encoding="utf-8")
    _git(tmp_path, "add", "api/catalog.yaml")
    _git(tmp_path, "commit", "-q", "-m", "first")
    required = SMALL.replace(
        IMAGE_PARAMS + "    required: [ImageURL]\n",
        IMAGE_PARAMS + "    required: [ImageURL, MaxFaceNumber]\n",
    )
    catalog.write_text(required, encoding="utf-8")
    _git(tmp_path, "commit", "-q", "-am", "second")
    catalog.write_text(_without_max_faces(), encoding="utf-8")
    return tmp_path


def test_against_a_git_ref(repo: Path) -> None:
    code, stdout, stderr = run_diff("catalog.yaml", "--against", "HEAD", cwd=repo / "api")
    assert code == 1 and stdout == ""
    assert stderr.startswith(
        "catalog.yaml:77:5: breaking: parameter 'MaxFaceNumber' of service 'face-detection' was "
        "removed"
        " [S402-B004 parameter-removed]\n"
    )
    assert stderr.endswith(
        "\ncatalog.yaml: 1 breaking, 0 dangerous, 1 safe change(s) against HEAD:api/catalog.yaml\n"
    )
    # from the repository root, an older ref, and an explicit REF:path
    code, stdout, stderr = run_diff("api/catalog.yaml", "--against", "HEAD~1", cwd=repo)
    assert code == 1 and "api/catalog.yaml:77:5: breaking: parameter 'MaxFaceNumber'" in stderr
    assert stderr.endswith("against HEAD~1:api/catalog.yaml\n")
    _git(repo, "commit", "-q", "-am", "third")
    code, stdout, stderr = run_diff(
        "api/catalog.yaml", "--against", "HEAD~2:api/catalog.yaml", cwd=repo
    )
    assert code == 1 and "was removed" in stderr
    code, stdout, stderr = run_diff("api/catalog.yaml", "--against", "HEAD", cwd=repo)
    assert (code, stdout) == (0, "")
    assert (
        stderr
        == "api/catalog.yaml: 0 breaking, 0 dangerous, 0 safe change(s) against HEAD:api/catalog.yaml\n"
    )


def test_default_catalog_is_the_projects(repo: Path) -> None:
    code, _, stderr = run_diff("--against", "HEAD", cwd=repo / "api")
    assert code == 1 and stderr.startswith("catalog.yaml:77:5: breaking:")


def test_bad_ref_exits_2(repo: Path) -> None:
    code, stdout, stderr = run_diff("catalog.yaml", "--against", "no-such-ref", cwd=repo / "api")
    assert (code, stdout) == (2, "")
    assert stderr.startswith("catalog.yaml:1:1: error: --against no-such-ref: ")
    assert stderr.endswith(" [S402-E053 unreadable-ref]\n") and "Traceback" not in stderr
    code, _, stderr = run_diff("catalog.yaml", "--against", "HEAD:missing.yaml", cwd=repo / "api")
    assert code == 2 and "missing.yaml" in stderr
    for folder in ("HEAD:api", "HEAD:"):  # a folder is no catalog
        code, _, stderr = run_diff("catalog.yaml", "--against", folder, cwd=repo / "api")
        assert code == 2 and "[S402-E053 unreadable-ref]" in stderr, stderr
    code, _, stderr = run_diff("catalog.yaml", "--against", "--output=x", cwd=repo / "api")
    assert code == 2 and "neither a file nor a git ref" in stderr
    code, stdout, _ = run_diff(
        "catalog.yaml", "--against", "nope", "--format", "github", cwd=repo / "api"
    )
    assert code == 2 and stdout.startswith(
        "::error file=catalog.yaml,line=1,col=1,title=S402-E053 unreadable-ref::"
    )


def test_outside_a_git_repository_exits_2(tmp_path: Path) -> None:
    _project(tmp_path)
    code, _, stderr = run_diff("catalog.yaml", "--against", "HEAD", cwd=tmp_path)
    assert code == 2 and stderr.startswith("catalog.yaml:1:1: error: --against HEAD: ")


def test_git_missing_exits_2(
    repo: Path, tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path_factory.mktemp("empty-path")))
    code, stdout, stderr = run_diff("catalog.yaml", "--against", "HEAD", cwd=repo / "api")
    assert (code, stdout) == (2, "")
    assert stderr == (
        "catalog.yaml:1:1: error: --against HEAD: git is not installed (needed to read a git "
        "ref) [S402-E053 unreadable-ref]\n"
    )


def test_invalid_old_catalog_exits_2(repo: Path) -> None:
    (repo / "api" / "catalog.yaml").write_text(SMALL.replace("amountCents: 105", "amountCents: -1"))
    _git(repo, "commit", "-q", "-am", "broken")
    (repo / "api" / "catalog.yaml").write_text(SMALL, encoding="utf-8")
    code, stdout, stderr = run_diff("catalog.yaml", "--against", "HEAD", cwd=repo / "api")
    assert (code, stdout) == (2, "")
    assert stderr.startswith("HEAD:api/catalog.yaml:18:18: error: ")
    assert stderr.endswith("error: invalid catalog: HEAD:api/catalog.yaml\n")


def test_invalid_new_catalog_exits_2(tmp_path: Path) -> None:
    (tmp_path / "old.yaml").write_text(SMALL, encoding="utf-8")
    _project(
        tmp_path,
        SMALL.replace(
            "pricingPolicy: standard\n    relatedServices",
            "pricingPolicy: gold\n    relatedServices",
        ),
    )
    code, stdout, stderr = run_diff("catalog.yaml", "--against", "old.yaml", cwd=tmp_path)
    assert (code, stdout) == (2, "")
    assert stderr == (
        "catalog.yaml:104:20: error: unknown pricing policy 'gold' [S402-E008 unknown-reference]\n"
        "error: invalid catalog: catalog.yaml\n"
    )
    code, stdout, _ = run_diff(
        "catalog.yaml", "--against", "old.yaml", "--format", "json", cwd=tmp_path
    )
    document = json.loads(stdout)
    assert code == 2 and document["file"] == "catalog.yaml"
    assert [d["rule"] for d in document["findings"]] == ["S402-E008"]
    code, stdout, _ = run_diff("missing.yaml", "--against", "old.yaml", cwd=tmp_path)
    assert code == 2


def test_both_catalogs_invalid_reports_both(tmp_path: Path) -> None:
    (tmp_path / "old.yaml").write_text("services: [\n", encoding="utf-8")
    _project(tmp_path, "services: []\n")
    code, _, stderr = run_diff("catalog.yaml", "--against", "old.yaml", cwd=tmp_path)
    assert code == 2
    assert "catalog.yaml:" in stderr and "old.yaml:" in stderr
    assert stderr.endswith("error: invalid catalog: catalog.yaml, old.yaml\n")


def test_against_is_required() -> None:
    result = CliRunner().invoke(diff_command, [])
    assert result.exit_code == 2 and "--against" in result.stderr


def test_help_lists_exit_codes() -> None:
    result = CliRunner().invoke(diff_command, ["--help"])
    assert result.exit_code == 0
    assert "Exit codes:" in result.stdout and "at least one breaking change" in result.stdout


def test_output_is_the_same_under_any_hash_seed(tmp_path: Path) -> None:
    folder = CASES / "endpoint-changed"
    outputs = set()
    for seed in ("0", "1", "12345"):
        done = subprocess.run(
            [sys.executable, "-c", "from s402gen.breaking import diff_command; diff_command()",
             "new.yaml", "--against", "old.yaml", "--format", "json"],
            cwd=folder, capture_output=True, text=True, check=False,
            env={**os.environ, "PYTHONHASHSEED": seed},
        )  # fmt: skip
        assert done.returncode == 1, done.stderr
        outputs.add(done.stdout)
    assert len(outputs) == 1


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ({"type": "number"}, {"type": "integer"}, ["type narrowed from number to integer"]),
        ({"type": "integer"}, {"type": "number"}, []),
        ({"type": ["string", "null"]}, {"type": "string"}, ["type narrowed from null | string to string"]),
        ({"type": ["integer", "string"]}, {"type": ["number", "string"]}, []),
        ({}, {"type": "string"}, ['type ["string"] added']),
        ({"type": "string"}, {}, []),
        ({"enum": [1, 2, 3]}, {"enum": [1, 3]}, ["enum no longer allows [2]"]),
        ({"enum": [1, 2]}, {"enum": [1, 2, 3]}, []),
        ({"enum": [True]}, {"enum": [1]}, ["enum no longer allows [true]"]),
        ({"type": "integer"}, {"type": "integer", "enum": [0, 1]}, ["enum [0, 1] added"]),
        ({"minimum": 1}, {"minimum": 0}, []),
        ({"maximum": 10}, {"maximum": 5}, ["maximum lowered from 10 to 5"]),
        ({"type": "string"}, {"type": "string", "maxLength": 8}, ["maxLength 8 added"]),
        ({"type": "string"}, {"type": "string", "format": "uri"}, ['format "uri" added']),
        ({"pattern": "^a"}, {"pattern": "^ab"}, ['pattern changed from "^a" to "^ab"']),
        ({"type": "object"}, {"type": "object", "additionalProperties": False},
         ["additional properties no longer allowed"]),
    ],
)  # fmt: skip
def test_narrowings(old: dict, new: dict, expected: list[str]) -> None:
    assert [text for _, text in narrowings(old, new)] == expected


def test_narrowings_of_nested_schemas() -> None:
    old = {
        "type": "array",
        "items": {"type": "object", "properties": {"Url": {"type": "string"}}},
    }
    new = {
        "type": "array",
        "items": {
            "type": "object",
            "properties": {"Url": {"type": "string", "format": "uri"}},
            "required": ["Url"],
        },
    }
    assert narrowings(old, new) == [
        ("[]", "'Url' is now required"),
        ("[].Url", 'format "uri" added'),
    ]


def test_a_new_id_with_the_same_legacy_id_is_the_same_service(tmp_path: Path) -> None:
    (tmp_path / "old.yaml").write_text(SMALL, encoding="utf-8")
    _project(tmp_path, SMALL.replace("face-detection", "face-locate"))  # id and references
    code, _, stdout = run_diff("catalog.yaml", "--against", "old.yaml", cwd=tmp_path)
    assert code == 1
    assert "service-removed" not in stdout and "service-added" not in stdout
    assert (
        "breaking: endpoint of service 'face-detection' changed from /api/tools/face-detection to "
        "/api/tools/face-locate (same legacy id) [S402-B003 endpoint-changed]"
    ) in stdout
    assert (
        "MCP tool name of service 'face-locate' changed from 'face_detection' to 'face_locate'"
        in stdout
    )


def test_a_shared_policy_change_is_one_finding_and_breaking_comes_first(tmp_path: Path) -> None:
    """The real catalog: its 44 services share one pricing policy."""
    real = (Path(__file__).parents[1] / "catalog.yaml").read_text(encoding="utf-8")
    (tmp_path / "old.yaml").write_text(real, encoding="utf-8")
    raised = real.replace("    amountCents: 20\n", "    amountCents: 25\n", 1)
    dropped = raised.replace("      MaxFaceNumber:", "      MaxFaceNumbers:", 1)
    _project(tmp_path, dropped.replace("      MaxFaceNumbers:", "      Zebra:", 1))
    code, stdout, _ = run_diff(
        "catalog.yaml", "--against", "old.yaml", "--format", "json", cwd=tmp_path
    )
    findings = json.loads(stdout)["findings"]
    assert code == 1
    assert [f["name"] for f in findings] == [
        "parameter-removed", "price-raised", "optional-parameter-added", "description-changed"
    ]  # fmt: skip
    price = findings[1]
    policy_line = real.splitlines().index("  aliyun-viapi:") + 1
    assert len(price["services"]) == 44 and price["line"] == policy_line  # at the policy
    assert price["message"].startswith("price of pricing policy 'aliyun-viapi' (44 services: ")
    assert price["message"].endswith(" and 41 more) raised from USD 0.20 to USD 0.25 per call")


@pytest.mark.parametrize(
    ("was", "now", "renamed"),
    [
        ("MaxFaceNumber", "MaxFaceCount", True),
        ("MaxFaceNumber", "Zebra", False),
        ("ImageURL", "ImageUrl", True),
        ("Url", "Zone", False),
    ],
)
def test_a_rename_needs_similar_names_or_the_same_description(
    was: str, now: str, renamed: bool
) -> None:
    from s402gen.breaking import RENAME_SIMILARITY, rename_similarity

    old, new = {"type": "string", "description": "a"}, {"type": "string", "description": "b"}
    assert (rename_similarity(was, now, old, new) >= RENAME_SIMILARITY) is renamed
    assert rename_similarity(was, now, old, {"type": "integer", "description": "b"}) == 0
    same = {**new, "description": "a"}  # the same description makes a looser name a rename
    assert rename_similarity("FaceLimit", "MaxFaces", old, new) < RENAME_SIMILARITY
    assert rename_similarity("FaceLimit", "MaxFaces", old, same) >= RENAME_SIMILARITY
    assert rename_similarity("Url", "Zone", old, same) < RENAME_SIMILARITY


@pytest.mark.parametrize("pattern", ["services/*.yaml", "services/**/*.yaml"])
def test_against_a_git_ref_reads_the_included_files_of_that_ref(
    tmp_path: Path, pattern: str
) -> None:
    """A catalog split with ``include:`` (examples/marketplace; ``**/`` may match no
    folder) is compared with the files it included in REF: a service removed from an
    included file is found; the included files are not read from the working tree."""
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    project = tmp_path / "shop"
    shutil.copytree(Path(__file__).parents[1] / "examples" / "marketplace", project)
    catalog = project / "catalog.yaml"
    text = catalog.read_text(encoding="utf-8")
    catalog.write_text(text.replace("  - services/*.yaml\n", f"  - {pattern}\n"), "utf-8")
    _git(tmp_path, "init", "-q")
    _git(tmp_path, "add", "shop")
    _git(tmp_path, "commit", "-q", "-m", "first")
    part = project / "services" / "object-detection.yaml"
    data = yaml.safe_load(part.read_text(encoding="utf-8"))
    removed = data["services"].pop()["id"]
    part.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    code, stdout, stderr = run_diff("catalog.yaml", "--against", "HEAD", cwd=project)
    assert (code, stdout) == (1, ""), stderr
    assert f"service '{removed}' was removed" in stderr
    assert stderr.endswith(
        "1 breaking, 0 dangerous, 0 safe change(s) against HEAD:shop/catalog.yaml\n"
    )
    _git(tmp_path, "commit", "-q", "-am", "second")
    for against in ("HEAD", "HEAD:./catalog.yaml", "HEAD:shop/catalog.yaml"):
        code, _, stderr = run_diff("catalog.yaml", "--against", against, cwd=project)
        assert code == 0 and " 0 breaking, 0 dangerous, 0 safe change(s)" in stderr, stderr
    code, _, stderr = run_diff("shop/catalog.yaml", "--against", "HEAD~1", cwd=tmp_path)
    assert code == 1 and f"service '{removed}' was removed" in stderr
