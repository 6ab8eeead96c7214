"""`check` bounds its drift diff: per file and in total (issue 13, "check on a drifted large
catalog effectively hangs"). Every drifted file is still a finding."""

from __future__ import annotations

import difflib
import hashlib
import importlib.util
import json
import re
from pathlib import Path

import pytest
import yaml

from s402gen import drift_diff, write

from .conftest import CATALOG, ROOT, run_cli, write_catalog

LIMIT_LINE = re.compile(r"^\.\.\. diff limit reached .*: (\d+) more drifted files not diffed:$")


def _synthetic(size: int, cents: int) -> dict:
    """bench's synthetic catalog of ``size`` services, every service priced ``cents``."""
    spec = importlib.util.spec_from_file_location("s402gen_bench", ROOT / "bench" / "bench.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    data = bench.synthetic_catalog(yaml.safe_load(CATALOG.read_text(encoding="utf-8")), size)
    for policy in data["pricingPolicies"].values():
        policy["amountCents"] = cents
    return data


def _items(files: dict[str, str]):
    return [(path, [text]) for path, text in files.items()]


def test_a_long_diff_of_one_file_is_cut_with_a_count(tmp_path: Path) -> None:
    out = tmp_path / "out"
    old = "".join(f"line {i}\n" for i in range(400))
    new = "".join(f"LINE {i}\n" for i in range(400))
    write.build(out, _items({"a.txt": old}))
    drift = write.check(out, lambda: _items({"a.txt": new}))
    full = list(difflib.unified_diff(old.splitlines(True), new.splitlines(True)))
    chunk = drift.diff[: drift.diff.index("--- a/manifest.json")]
    lines = chunk.splitlines()
    assert len(lines) == write.DIFF_MAX_FILE_LINES + 1
    assert (
        lines[-1] == f"... {len(full) - write.DIFF_MAX_FILE_LINES} more lines of this diff left out"
    )
    assert lines[:3] == ["--- a/a.txt", "+++ b/a.txt", "@@ -1,400 +1,400 @@"]


def test_a_file_over_the_size_limit_is_summarized_not_diffed(tmp_path: Path) -> None:
    out = tmp_path / "out"
    size = write.DIFF_MAX_FILE_BYTES
    old = "x\n" * (size // 2) + "same tail\n"
    new = "x\n" * 7 + "y\n" + "x\n" * (size // 2 - 8) + "same tail\n"
    write.build(out, _items({"big.json": old, "gone.json": old}))
    drift = write.check(out, lambda: _items({"big.json": new}))
    digest = hashlib.sha256(old.encode()).hexdigest()
    new_digest = hashlib.sha256(new.encode()).hexdigest()
    assert (
        f"file too large to diff: big.json: {len(old)} bytes, sha256 {digest} -> "
        f"{len(new)} bytes, sha256 {new_digest}\n"
    ) in drift.diff
    assert f"file too large to diff: gone.json: {len(old)} bytes, sha256 {digest} -> absent\n" in (
        drift.diff
    )
    assert "--- a/big.json" not in drift.diff and "-x\n" not in drift.diff
    assert drift.first_lines["big.json"] == 8  # the first differing line, found without difflib


def test_the_total_diff_is_capped_and_the_rest_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "out"
    old = {f"f{i:03}.txt": f"old {i}\n" for i in range(100)}
    write.build(out, _items(old))
    monkeypatch.setattr(drift_diff, "DIFF_MAX_TOTAL_BYTES", 1000)
    drift = write.check(out, lambda: _items({p: t.upper() for p, t in old.items()}))
    head, _, tail = drift.diff.partition("... diff limit reached")
    assert 0 < len(head) <= 1000
    shown = re.findall(r"^--- a/(\S+)$", head, re.M)
    named = re.findall(r"^\.\.\. (\S+)$", tail, re.M)
    assert sorted(shown + named) == sorted([*old, write.MANIFEST])
    assert f": {len(named)} more drifted files not diffed:" in tail
    assert all(drift.first_lines[p] == 1 for p in named if p != write.MANIFEST)


@pytest.mark.slow
def test_check_of_a_large_drifted_catalog_prints_a_bounded_diff(tmp_path: Path) -> None:
    """300 services, a price change that touches every service's files: the diff stays under
    the cap, says how much it left out, and every drifted file is still a finding."""
    out = tmp_path / "generated"
    old = write_catalog(tmp_path / "old.yaml", _synthetic(300, 20))
    new = write_catalog(tmp_path / "catalog.yaml", _synthetic(300, 25))
    assert run_cli("build", str(old), "--out", str(out), "-q")[0] == 0
    # What actually drifts: the files whose digests differ between the two builds.
    assert run_cli("build", str(new), "--out", str(tmp_path / "fresh"), "-q")[0] == 0
    before = json.loads((out / write.MANIFEST).read_text(encoding="utf-8"))["files"]
    after = json.loads((tmp_path / "fresh" / write.MANIFEST).read_text(encoding="utf-8"))["files"]
    drifted = {p for p in after if before.get(p) != after[p]} | {write.MANIFEST}
    assert len(drifted) > 800

    code, diff, err = run_cli("check", str(new), "--out", str(out))
    assert code == 1
    lines = diff.splitlines()
    cut = next(i for i, line in enumerate(lines) if LIMIT_LINE.match(line))
    head = "".join(line + "\n" for line in lines[:cut])
    assert len(head.encode("utf-8")) <= write.DIFF_MAX_TOTAL_BYTES
    named = [line.removeprefix("... ") for line in lines[cut + 1 :]]
    assert int(LIMIT_LINE.match(lines[cut]).group(1)) == len(named) > 0
    shown = re.findall(r"^--- a/(\S+)$", head, re.M)
    summarized = re.findall(r"^file too large to diff: (\S+):", head, re.M)
    assert "catalog/catalog.json" in summarized
    assert sorted(shown + summarized + named) == sorted(drifted)
    found = re.findall(r"generated/(\S+) differs from what the catalog compiles to", err)
    assert sorted(found) == sorted(drifted)
    assert len(diff) < 2 * write.DIFF_MAX_TOTAL_BYTES  # names only past the cap
