"""The peak memory of every compiler command at N services (issue 12: ≤ 150 MiB each).

Usage (from the repository root, in the project's virtualenv)::

    python bench/peaks.py [--size 10000] [--exe PATH]

It writes ``bench.py``'s synthetic catalog of N services and runs each
command once, as a whole process (the console script beside the running
Python, or ``--exe``), in the order a catalog author meets them. The cache
folder (``S402GEN_CACHE_DIR``) is a private one, or ``off`` where the command
says so:

- ``validate``, ``build`` into an empty folder and ``check`` without a cache;
- ``build`` into an empty folder with an empty cache folder (it fills the
  per-service cache, the input cache and the stat index), then ``validate``
  and ``build`` into another empty folder with that cache warm;
- a cached no-op ``check``;
- one service edited, then ``build`` (a version no cache has seen), and the
  edit undone, then ``build`` (a version the input cache has seen: the stat
  index is read before the compile to look for a hit).

Printed: each command's peak resident set size (the operating system's
``ru_maxrss`` of the finished child, which Linux gives in KiB: macOS, in bytes,
is not read right) and wall seconds, PASS or FAIL against
:data:`TARGET_MIB`. A report, not a test: it exits 0 unless a command fails.
The temporary folder is removed at the end.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench import REAL_CATALOG, synthetic_catalog  # noqa: E402
from peers import WRAPPER  # noqa: E402

TARGET_MIB = 150.0  # issue 12: every command at 10,000 services


def measured(exe: str, args: list[str], cwd: Path, env: dict) -> tuple[float, float]:
    """One run of ``exe args`` in ``cwd``: (peak MiB, wall seconds); exits on failure."""
    cmd = [sys.executable, "-c", WRAPPER, exe, *args, "-q"]
    proc = subprocess.run(cmd, cwd=cwd, env=env, stderr=subprocess.PIPE, text=True)
    if proc.returncode != 0:
        sys.exit(f"s402gen {' '.join(args)} failed (exit {proc.returncode}):\n{proc.stderr}")
    took, rss, _ = proc.stderr.split()[-3:]
    return int(rss) / 1024, float(took)


def main() -> None:
    """Parse options, run every command once and print the report."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", type=int, default=10_000, help="services (default 10000)")
    parser.add_argument("--exe", help="the s402gen to measure (default: this virtualenv's)")
    args = parser.parse_args()
    exe = args.exe or str(Path(sys.executable).parent / "s402gen")
    real = yaml.safe_load(REAL_CATALOG.read_text(encoding="utf-8"))
    data = synthetic_catalog(real, args.size)
    original = yaml.safe_dump(data, allow_unicode=True, sort_keys=False)
    data["services"][args.size // 2]["action"] += "Edited"
    edited = yaml.safe_dump(data, allow_unicode=True, sort_keys=False)
    rows: list[tuple[str, float, float]] = []
    with tempfile.TemporaryDirectory(prefix="s402gen-peaks-") as tmp:
        work = Path(tmp)
        catalog = work / "catalog.yaml"
        catalog.write_text(original, encoding="utf-8")
        off = {**os.environ, "SOURCE_DATE_EPOCH": "0", "S402GEN_CACHE_DIR": "off"}
        cached = {**off, "S402GEN_CACHE_DIR": str(work / "cache")}
        steps: list[tuple[str, list[str], dict, str | None]] = [
            ("validate", ["validate", "catalog.yaml"], off, None),
            ("build, no cache", ["build", "catalog.yaml", "--out", "plain"], off, None),
            ("check, no cache", ["check", "catalog.yaml", "--out", "plain"], off, None),
            ("build, cache folder empty", ["build", "catalog.yaml", "--out", "out"], cached, None),
            ("validate, cache warm", ["validate", "catalog.yaml"], cached, None),
            (
                "build, cache warm, empty folder",
                ["build", "catalog.yaml", "--out", "o2"],
                cached,
                None,
            ),
            ("check, cached no-op", ["check", "catalog.yaml", "--out", "out"], cached, None),
            ("edit one service, build", ["build", "catalog.yaml", "--out", "out"], cached, edited),
            ("undo the edit, build", ["build", "catalog.yaml", "--out", "out"], cached, original),
        ]
        for name, command, env, text in steps:
            if text is not None:
                catalog.write_text(text, encoding="utf-8")
            peak, took = measured(exe, command, work, env)
            rows.append((name, peak, took))
            print(f"{name:34s} {peak:7.1f} MiB {took:7.2f} s", file=sys.stderr, flush=True)
    print(f"\npeak memory of every command, {args.size:,} services (target ≤ {TARGET_MIB:g} MiB)")
    print(f"{'command':34s} {'peak MiB':>9s} {'wall s':>8s}  verdict")
    for name, peak, took in rows:
        verdict = "PASS" if peak <= TARGET_MIB else "FAIL"
        print(f"{name:34s} {peak:9.1f} {took:8.2f}  {verdict}")
    worst = max(rows, key=lambda row: row[1])
    print(f"highest: {worst[0]}, {worst[1]:.1f} MiB")


if __name__ == "__main__":
    main()
