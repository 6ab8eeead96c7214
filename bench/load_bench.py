"""Benchmark the load stage alone, and where a compile's memory goes.

Usage (from the repository root, in the venv)::

    python bench/load_bench.py CATALOG [CATALOG ...] [--runs 7] [--stages]

For each catalog: the CPU time of :func:`s402gen.load.load_catalog` (min and median
over ``--runs``, each in the same process, gc as in a build), then, in a fresh process
each, the peak resident memory of loading it and, with ``--stages``, the resident
memory after each compile stage (load, model, model rules, derive, catalog rules) and
what each stage's objects hold (tracemalloc, in a third process: slow). Synthetic
catalogs of N services come from ``bench/bench.py``'s ``synthetic_catalog``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys

#: Times ``load_catalog`` of argv[1] argv[2] times; prints a JSON list of CPU seconds.
TIMES = """
import json, sys, time
from s402gen.load import load_catalog
times = []
for _ in range(int(sys.argv[2])):
    start = time.process_time()
    document = load_catalog(sys.argv[1])
    times.append(time.process_time() - start)
    del document
print(json.dumps(times))
"""

#: Loads argv[1] once; prints the peak and final resident memory in MiB (Linux: KiB).
LOAD_PEAK = """
import json, resource, sys
from s402gen.load import load_catalog
def now():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2**20
before = now()
document = load_catalog(sys.argv[1])
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"before": before, "after": now(), "peak": peak}))
"""

#: Compiles argv[1] stage by stage; prints the resident memory after each (MiB) and, with
#: argv[2] == "traced", the bytes each stage's objects add and hold (tracemalloc).
STAGES = """
import gc, json, os, resource, sys, tracemalloc
from s402gen.derive import derive
from s402gen.load import load_catalog
from s402gen.structure import parse_model
from s402gen.validate import check_catalog, check_model
traced = sys.argv[2] == "traced"
def now():
    if traced:
        gc.collect()
        return tracemalloc.get_traced_memory()[0] / 2**20
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2**20
if traced:
    tracemalloc.start()
marks = {"start": now()}
document = load_catalog(sys.argv[1], "catalog.yaml"); marks["load"] = now()
authored, _ = parse_model(document); marks["model"] = now()
found = check_model(authored, document.source); marks["model rules"] = now()
catalog = derive(authored, "1970-01-01T00:00:00Z"); marks["derive"] = now()
found += check_catalog(catalog, authored, document.source); marks["catalog rules"] = now()
if traced:
    held = now()
    del document
    marks["held by the loaded document"] = held - now()
    held = now()
    del authored
    marks["held by the model"] = held - now()
    marks["held by the IR"] = now() - marks["start"]
marks["peak"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps(marks))
"""


def python(code: str, *args: str) -> str:
    """Run ``code`` in a fresh interpreter (this one's); its stdout."""
    done = subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        sys.exit(done.stderr)
    return done.stdout


def main() -> None:
    """Measure every catalog named and print one block of figures each."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("catalogs", nargs="+", help="catalog.yaml files")
    parser.add_argument("--runs", type=int, default=7, help="timed loads (default 7)")
    parser.add_argument(
        "--stages", action="store_true", help="memory after each compile stage (slow)"
    )
    args = parser.parse_args()
    for catalog in args.catalogs:
        times = json.loads(python(TIMES, catalog, str(args.runs)))
        peak = json.loads(python(LOAD_PEAK, catalog))
        print(f"{catalog}")
        print(
            f"  load_catalog CPU: min {min(times):.3f} s, median "
            f"{statistics.median(times):.3f} s ({args.runs} runs)"
        )
        print(
            f"  load alone: peak RSS {peak['peak']:.1f} MiB (interpreter and imports "
            f"{peak['before']:.1f}, after {peak['after']:.1f})"
        )
        if not args.stages:
            continue
        rss = json.loads(python(STAGES, catalog, "rss"))
        traced = json.loads(python(STAGES, catalog, "traced"))
        print("  stage            RSS after (MiB)   traced after (MiB)")
        for stage in ("start", "load", "model", "model rules", "derive", "catalog rules"):
            print(f"  {stage:15s}  {rss[stage]:15.1f}   {traced[stage]:18.1f}")
        print(f"  peak RSS of the compile: {rss['peak']:.1f} MiB")
        for held in ("held by the loaded document", "held by the model", "held by the IR"):
            print(f"  {held}: {traced[held]:.1f} MiB (traced)")


if __name__ == "__main__":
    main()
