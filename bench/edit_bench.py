"""Edit one service of N, then ``build``: issue 12's incremental target, without the peers.

Usage (from the repository root, in the project's virtualenv)::

    python bench/edit_bench.py [--sizes 2000 10000] [--runs 3] [--change edit|insert] [--exe PATH]

For each N it writes the synthetic catalog of N services (``bench.py``'s
``synthetic_catalog``) and a copy whose middle service has another action
(so its route, entry and page and every aggregate change; with ``--change
insert``, a copy with a new service inserted at the top instead, so that every
other service moves down by one), builds it cold
into an empty output folder with an empty cache folder, then ``--runs``
times copies the other version over the same catalog path and builds again
(as an editor saving the file would). Every build is a whole process;
printed are the cold build's wall and CPU seconds (user + system) and peak
resident memory, and the edits' min and median wall seconds, median CPU
seconds and peak memory, with the load average (the machine may be shared:
CPU seconds say what a run cost however loaded it is). ``--exe`` times
another s402gen (say, an older checkout's) on the same catalogs.
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
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench import synthetic_catalog  # noqa: E402
from peers import WRAPPER  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def build(exe: str, catalog: Path, out: Path, env: dict) -> tuple[float, float, float]:
    """One ``build`` process: wall seconds, peak MiB, CPU seconds."""
    cmd = [sys.executable, "-c", WRAPPER, exe, "build", str(catalog), "--out", str(out), "-q"]
    proc = subprocess.run(cmd, env=env, stderr=subprocess.PIPE, text=True)
    if proc.returncode != 0:
        sys.exit(f"build failed:\n{proc.stderr}")
    took, rss, cpu = proc.stderr.split()[-3:]
    return float(took), int(rss) / 1024, float(cpu)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[2000, 10000])
    parser.add_argument("--runs", type=int, default=3, help="edits per size (default 3)")
    parser.add_argument("--exe", help="the s402gen to time (default: this virtualenv's)")
    parser.add_argument(
        "--change",
        choices=("edit", "insert"),
        default="edit",
        help="edit the middle service's action (default), or insert a service at the top",
    )
    args = parser.parse_args()
    exe = args.exe or str(Path(sys.executable).parent / "s402gen")
    real = yaml.safe_load((REPO / "catalog.yaml").read_text(encoding="utf-8"))
    with tempfile.TemporaryDirectory(prefix="s402gen-edit-") as tmp:
        work = Path(tmp)
        env = {**os.environ, "SOURCE_DATE_EPOCH": "0", "S402GEN_CACHE_DIR": str(work / "cache")}
        for size in args.sizes:
            data = synthetic_catalog(real, size)
            versions = [yaml.safe_dump(data, allow_unicode=True, sort_keys=False)]
            middle = data["services"][size // 2]
            if args.change == "edit":
                middle["action"] += "Edited"
            else:
                new = copy.deepcopy(middle)
                new["id"], new["action"] = new["id"] + "-inserted", new["action"] + "Inserted"
                data["services"].insert(0, new)
            versions.append(yaml.safe_dump(data, allow_unicode=True, sort_keys=False))
            catalog, out = work / "catalog.yaml", work / "out"
            shutil.rmtree(out, ignore_errors=True)
            shutil.rmtree(work / "cache", ignore_errors=True)
            catalog.write_text(versions[0], encoding="utf-8")
            took, peak, cpu = build(exe, catalog, out, env)
            print(f"N={size} cold build: {took:.2f} s wall, {cpu:.2f} s CPU, {peak:.0f} MiB")
            runs = []
            for run in range(args.runs):
                catalog.write_text(versions[(run + 1) % 2], encoding="utf-8")
                runs.append(build(exe, catalog, out, env))
            walls = [r[0] for r in runs]
            print(
                f"N={size} {args.change} one service, build: min {min(walls):.2f} s, median "
                f"{statistics.median(walls):.2f} s wall, median "
                f"{statistics.median(r[2] for r in runs):.2f} s CPU, "
                f"{max(r[1] for r in runs):.0f} MiB; load average {os.getloadavg()[0]:.1f}"
            )


if __name__ == "__main__":
    main()
