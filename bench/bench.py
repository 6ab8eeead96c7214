"""Benchmark s402gen: cold build time, warm check time and peak memory.

Usage (from the repository root, with the ``s402gen`` console script on PATH)::

    python bench/bench.py [--runs 5] [--sizes 2000]

The real catalog.yaml is always measured first. Each ``--sizes`` value N adds a
synthetic catalog of N services: the real shared sections (providers,
pricingPolicies, paymentProviders, presets, defaults, ...) and the real
services cycled, each copy with a unique id and action. Every command runs as a
whole process; times are wall-clock (median and min over ``--runs``), peak
memory is the maximum resident set size of one extra, untimed run. ``check``
is timed warm (output and input cache from the last build) and without the
cache (``S402GEN_CACHE_DIR=off``: a full compile and comparison).
"""

from __future__ import annotations

import argparse
import copy
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
REAL_CATALOG = REPO / "catalog.yaml"
TARGET_BUILD_S = 1.0  # cold build of the real catalog
TARGET_CHECK_S = 2.0  # check of 2,000 services
TARGET_CHECK_SIZE = 2000
TARGET_PEAK_MIB = 200.0  # every build and check process
PEAK_WRAPPER = (
    "import resource, subprocess, sys\n"
    "code = subprocess.run(sys.argv[1:]).returncode\n"
    "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr)\n"
    "sys.exit(code)\n"
)


def synthetic_catalog(real: dict, size: int) -> dict:
    """The real catalog with ``size`` services made by cycling the real ones.

    Copy ``k`` of a service gets id ``{id}-{k}`` and action ``{action}V{k}``;
    copy 0 keeps the original id and action, so ``defaults.relatedServices``
    still names services that exist once ``size`` covers every real service.
    """
    data = copy.deepcopy(real)
    originals = real["services"]
    services = []
    for index in range(size):
        k, orig = divmod(index, len(originals))
        svc = copy.deepcopy(originals[orig])
        svc.pop("legacyId", None)
        if k:
            svc["id"] = f"{svc['id']}-{k}"
            svc["action"] = f"{svc['action']}V{k}"
        services.append(svc)
    data["services"] = services
    known = {svc["id"] for svc in services}
    related = data.get("defaults", {}).get("relatedServices")
    if related is not None:
        data["defaults"]["relatedServices"] = [r for r in related if r in known]
    return data


def run(cmd: list[str], env: dict) -> subprocess.CompletedProcess:
    """Run ``cmd`` in the repository root; on failure print its stderr and exit 1."""
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        print(f"command failed (exit {proc.returncode}): {' '.join(cmd)}", file=sys.stderr)
        print(proc.stderr, file=sys.stderr, end="")
        sys.exit(1)
    return proc


def timed(cmd: list[str], env: dict, runs: int, before=None) -> list[float]:
    """Wall-clock seconds of ``runs`` runs of ``cmd``; ``before()`` runs untimed first."""
    times = []
    for _ in range(runs):
        if before is not None:
            before()
        start = time.perf_counter()
        run(cmd, env)
        times.append(time.perf_counter() - start)
    return times


def peak_mib(cmd: list[str], env: dict) -> float:
    """Peak resident memory of one run of ``cmd``, in MiB (Linux reports KiB)."""
    proc = run([sys.executable, "-c", PEAK_WRAPPER, *cmd], env)
    return int(proc.stderr.strip().splitlines()[-1]) / 1024


def measure(exe: str, catalog: Path, work: Path, runs: int, env: dict) -> dict:
    """Cold build and warm check timings and peaks for one catalog."""
    out = work / "out"
    build = [exe, "build", str(catalog), "--out", str(out)]
    check = [exe, "check", str(catalog), "--out", str(out)]

    def clean() -> None:
        shutil.rmtree(out, ignore_errors=True)

    uncached = {**env, "S402GEN_CACHE_DIR": "off"}
    build_times = timed(build, env, runs, before=clean)
    clean()
    build_peak = peak_mib(build, env)
    check_times = timed(check, env, runs)  # warm: out/ and the cache hold the last build
    uncached_times = timed(check, uncached, runs)  # out/ warm, no cache: a full compile
    check_peak = max(peak_mib(check, env), peak_mib(check, uncached))
    clean()
    return {
        "build": statistics.median(build_times),
        "build_min": min(build_times),
        "check": statistics.median(check_times),
        "check_min": min(check_times),
        "uncached": statistics.median(uncached_times),
        "build_peak": build_peak,
        "check_peak": check_peak,
    }


def verdict(ok: bool) -> str:
    """``PASS`` or ``FAIL``."""
    return "PASS" if ok else "FAIL"


def report(rows: list[tuple[str, int, dict]]) -> None:
    """Print the results table and the PASS/FAIL line of each target."""
    header = (
        "catalog",
        "services",
        "build med s",
        "build min s",
        "check med s",
        "check min s",
        "check no-cache med s",
        "peak MiB build",
        "peak MiB check",
    )
    lines = [header] + [
        (
            name,
            str(size),
            f"{r['build']:.3f}",
            f"{r['build_min']:.3f}",
            f"{r['check']:.3f}",
            f"{r['check_min']:.3f}",
            f"{r['uncached']:.3f}",
            f"{r['build_peak']:.1f}",
            f"{r['check_peak']:.1f}",
        )
        for name, size, r in rows
    ]
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    for line in lines:
        print(
            "  ".join(
                cell.rjust(w) if i else cell.ljust(w)
                for i, (cell, w) in enumerate(zip(line, widths))
            )
        )
    print()
    real = rows[0][2]
    print(
        f"real catalog cold build < {TARGET_BUILD_S:g} s: "
        f"{verdict(real['build'] < TARGET_BUILD_S)} ({real['build']:.3f} s)"
    )
    big = [r for name, size, r in rows if name != "real" and size == TARGET_CHECK_SIZE]
    if big:
        print(
            f"check of {TARGET_CHECK_SIZE:,} services < {TARGET_CHECK_S:g} s: "
            f"{verdict(big[0]['check'] < TARGET_CHECK_S)} ({big[0]['check']:.3f} s warm; "
            f"without the cache {verdict(big[0]['uncached'] < TARGET_CHECK_S)}, "
            f"{big[0]['uncached']:.3f} s)"
        )
    else:
        print(
            f"check of {TARGET_CHECK_SIZE:,} services < {TARGET_CHECK_S:g} s: "
            f"not measured (add --sizes {TARGET_CHECK_SIZE})"
        )
    peak = max(max(r["build_peak"], r["check_peak"]) for _, _, r in rows)
    print(
        f"peak memory < {TARGET_PEAK_MIB:g} MiB: "
        f"{verdict(peak < TARGET_PEAK_MIB)} ({peak:.1f} MiB)"
    )


def main() -> None:
    """Parse options, measure every catalog and print the report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="timed runs per command (default 5)")
    parser.add_argument(
        "--sizes",
        type=int,
        nargs="+",
        default=[TARGET_CHECK_SIZE],
        help=f"synthetic catalog sizes (default {TARGET_CHECK_SIZE})",
    )
    args = parser.parse_args()
    beside = Path(sys.executable).parent / "s402gen"  # not a version manager's shim
    exe = str(beside) if beside.exists() else shutil.which("s402gen")
    if exe is None:
        sys.exit("s402gen console script not found (pip install -e .)")
    real = yaml.safe_load(REAL_CATALOG.read_text(encoding="utf-8"))
    rows = []
    with tempfile.TemporaryDirectory(prefix="s402gen-bench-") as tmp:
        work = Path(tmp)
        env = {**os.environ, "SOURCE_DATE_EPOCH": "0", "S402GEN_CACHE_DIR": str(work / "cache")}
        rows.append(
            ("real", len(real["services"]), measure(exe, REAL_CATALOG, work, args.runs, env))
        )
        for size in args.sizes:
            catalog = work / f"catalog-{size}.yaml"
            text = yaml.safe_dump(
                synthetic_catalog(real, size), allow_unicode=True, sort_keys=False
            )
            catalog.write_text(text, encoding="utf-8")
            rows.append((f"synthetic-{size}", size, measure(exe, catalog, work, args.runs, env)))
    report(rows)


if __name__ == "__main__":
    main()
