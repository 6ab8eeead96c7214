"""Run the property suite (tests/test_properties.py) on 10,000 mutated catalogs.

Usage (from the repository root, in the test environment)::

    python bench/properties_bench.py [--examples 10000] [--deadline 5]

Each catalog is validated and built in-process (click's runner); the run
fails on the first catalog that breaks a property, and prints it (hypothesis
shrinks it first). Prints hypothesis's statistics (build exit codes, time per
example) and the wall-clock total.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--examples", type=int, default=10_000)
    parser.add_argument("--deadline", type=float, default=5.0, help="seconds per catalog")
    args = parser.parse_args()
    env = dict(os.environ)
    env["S402GEN_PROPERTY_PROFILE"] = "bench"
    env["S402GEN_PROPERTY_EXAMPLES"] = str(args.examples)
    env["S402GEN_PROPERTY_DEADLINE_S"] = str(args.deadline)
    command = [sys.executable, "-m", "pytest", "tests/test_properties.py", "-q", "-m"]
    command += ["not slow", "-p", "no:cacheprovider", "--hypothesis-show-statistics"]
    start = time.perf_counter()
    code = subprocess.run(command, cwd=REPO, env=env, check=False).returncode
    print(f"{args.examples} catalogs: exit {code} in {time.perf_counter() - start:.0f} s")
    return code


if __name__ == "__main__":
    sys.exit(main())
