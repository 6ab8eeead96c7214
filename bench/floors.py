"""What the machine alone costs for a cold build and for an edit, at N services, beside s402gen.

Usage (from the repository root, in the project's virtualenv)::

    python bench/floors.py [--size 10000] [--runs 3]

Issue 12 asks, at 10,000 services, for a cold ``build`` within 6 s and an edit of
one service, then ``build``, within 1 s. Whatever compiles them, the output is
what the contract publishes (the same bytes), so some costs are the disk's and
the interpreter's, not the compiler's. This script writes ``bench.py``'s
synthetic catalog of N services, builds it once (``S402GEN_CACHE_DIR=off``,
timed), then times, in this process, with plain Python and nothing of
s402gen's:

- **write the output**: every file of that build written to a new folder
  (created, written, closed), then one ``syncfs``, as a build commits
  (``os.sync`` where there is none); the files are read before the clock
  starts, so the script holds the whole output (708 MB at 10,000);
- **rewrite the shared files**: each file of over 1 MiB (the files every service
  feeds: catalog.json, openapi.json, tools.json, offers.json, the doc index and
  its search data) read, hashed (sha256, as the manifest lists it), written to a
  new file and renamed over the old one, then one sync: what an edit must do
  at least while each is one file;

and, as whole processes (the median of ``--runs``), an interpreter that imports
what a build imports, and one that also parses the catalog (the events of
PyYAML's C parser, the garbage collector off: the least any loader of it does). Printed: each figure in seconds and the sums
that bound the two targets from below. Nothing is deleted until the end (a
deletion just before a timed write slows this machine's disk for seconds: see
bench/README.md, "Where a cold build's time goes").

A report, not a test: it exits 0 unless the build fails.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench import REAL_CATALOG, synthetic_catalog  # noqa: E402

COLD_TARGET_S = 6.0  # issue 12, 10,000 services
EDIT_TARGET_S = 1.0
SHARED_BYTES = 1 << 20  # a file over this is one every service feeds
IMPORTS = "import s402gen.cli, s402gen.pipeline, s402gen.render"


def _sync(folder: Path) -> None:
    """Flush the file system of ``folder`` (``syncfs`` where Linux has it)."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        import ctypes

        if ctypes.CDLL(None, use_errno=True).syncfs(fd) == 0:
            return
    except (OSError, AttributeError):
        pass
    finally:
        os.close(fd)
    os.sync()


def write_floor(out: Path, copy: Path) -> tuple[float, int, int]:
    """Seconds to write every file of ``out`` into the new folder ``copy`` (read from the
    page cache, then created, written and closed), and one sync; files and bytes."""
    files = sorted(p for p in out.rglob("*") if p.is_file())
    texts = [(p.relative_to(out), p.read_bytes()) for p in files]  # read before the clock
    started = time.perf_counter()
    for relative, data in texts:
        target = copy / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        with open(target, "wb") as handle:
            handle.write(data)
    _sync(copy)
    return time.perf_counter() - started, len(texts), sum(len(d) for _, d in texts)


def rewrite_floor(out: Path) -> tuple[float, int, int]:
    """Seconds to read, hash, write anew and rename over each file of ``out`` over
    :data:`SHARED_BYTES`, and one sync; files and bytes."""
    shared = sorted(p for p in out.rglob("*") if p.is_file() and p.stat().st_size > SHARED_BYTES)
    started = time.perf_counter()
    total = 0
    for path in shared:
        data = path.read_bytes()
        hashlib.sha256(data).hexdigest()
        fresh = path.with_name(path.name + ".new")
        with open(fresh, "wb") as handle:
            handle.write(data)
        os.replace(fresh, path)
        total += len(data)
    _sync(out)
    return time.perf_counter() - started, len(shared), total


def process_seconds(code: str, runs: int) -> float:
    """The median wall seconds of ``python -c code``, ``runs`` times."""
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    """Parse options, build once, time each floor and print the report."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", type=int, default=10_000, help="services (default 10000)")
    parser.add_argument("--runs", type=int, default=3, help="runs of each process (default 3)")
    args = parser.parse_args()
    exe = str(Path(sys.executable).parent / "s402gen")
    real = yaml.safe_load(REAL_CATALOG.read_text(encoding="utf-8"))
    text = yaml.safe_dump(synthetic_catalog(real, args.size), allow_unicode=True, sort_keys=False)
    with tempfile.TemporaryDirectory(prefix="s402gen-floors-") as tmp:
        work = Path(tmp)
        catalog = work / "catalog.yaml"
        catalog.write_text(text, encoding="utf-8")
        env = {**os.environ, "SOURCE_DATE_EPOCH": "0", "S402GEN_CACHE_DIR": "off"}
        started = time.perf_counter()
        command = [exe, "build", str(catalog), "--out", str(work / "out"), "-q"]
        done = subprocess.run(command, env=env, stderr=subprocess.PIPE, text=True, check=False)
        build = time.perf_counter() - started
        if done.returncode != 0:
            sys.exit(f"s402gen build failed (exit {done.returncode}):\n{done.stderr}")
        written, files, size = write_floor(work / "out", work / "copy")
        rewritten, shared, shared_size = rewrite_floor(work / "copy")
        imports = process_seconds(IMPORTS, args.runs)
        parse = (  # the least any loader of it does: the C parser's events, the collector off
            f"{IMPORTS}; import gc, yaml; gc.disable(); "
            f"any(False for _ in yaml.parse(open({str(catalog)!r}, 'rb'), Loader=yaml.CSafeLoader))"
        )
        parsed = process_seconds(parse, args.runs)
    rows = [
        ("s402gen build, cold, no cache", build),
        (f"write the output: {files:,} files, {size / 1e6:,.0f} MB, then sync", written),
        (f"rewrite the shared files: {shared}, {shared_size / 1e6:,.0f} MB, then sync", rewritten),
        ("start Python, import what a build imports", imports),
        ("start, import, and parse the catalog's YAML (events only)", parsed),
    ]
    print(f"\nfloors at {args.size:,} services (seconds)")
    for name, seconds in rows:
        print(f"{name:62s} {seconds:7.2f}")
    cold = written + parsed
    edit = rewritten + parsed
    print(
        f"a cold build cannot take less than {cold:.2f} s (write + start + parse; "
        f"target {COLD_TARGET_S:g} s at 10,000)"
    )
    print(
        f"an edit cannot take less than {edit:.2f} s (rewrite + start + parse; "
        f"target {EDIT_TARGET_S:g} s at 10,000) while the shared files are written whole"
    )


if __name__ == "__main__":
    main()
