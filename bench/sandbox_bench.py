"""What Jinja's sandbox costs: rendering a synthetic catalog, sandboxed and not.

Usage (from the repository root)::

    python bench/sandbox_bench.py [--size 2000] [--runs 3]

Compiles the real catalog.yaml cycled to ``--size`` services (bench.py's
``synthetic_catalog``) once, then renders every generated file in memory
(``render.iter_files``, all chunks joined; no disk) with the sandboxed
environment s402gen uses for a build with ``--templates`` and with the plain one
it uses for the packaged templates alone (same settings), alternating, ``--runs`` times each. Prints the median and min
seconds of each and the sandbox's overhead in percent.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench import REAL_CATALOG, synthetic_catalog  # noqa: E402

from s402gen import render, write  # noqa: E402
from s402gen.pipeline import compile_catalog  # noqa: E402


def _render_all(catalog) -> int:
    return sum(len(write.text_of(chunks)) for _, chunks in render.iter_files(catalog))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    real = yaml.safe_load(REAL_CATALOG.read_text(encoding="utf-8"))
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "catalog.yaml"
        data = synthetic_catalog(real, args.size)
        path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), "utf-8")
        compiled = compile_catalog(path)
    assert compiled.ok and compiled.catalog is not None
    sandboxed, plain = render._Sandbox, render._Environment
    times: dict[str, list[float]] = {"sandboxed": [], "plain": []}
    sizes = set()
    for _ in range(args.runs):
        for name, cls in (("sandboxed", sandboxed), ("plain", plain)):
            render._Environment = cls  # type: ignore[misc]
            start = time.perf_counter()
            sizes.add(_render_all(compiled.catalog))
            times[name].append(time.perf_counter() - start)
    render._Environment = plain  # type: ignore[misc]
    assert len(sizes) == 1, "the sandbox changed the output"
    for name, values in times.items():
        print(f"{name}: median {statistics.median(values):.2f} s, min {min(values):.2f} s")
    overhead = statistics.median(times["sandboxed"]) / statistics.median(times["plain"]) - 1
    print(f"{args.size} services, {sizes.pop()} characters: sandbox overhead {overhead:+.1%}")


if __name__ == "__main__":
    main()
