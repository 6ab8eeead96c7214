"""SIGKILL a real `s402gen build` at random moments; report old / new / mixed and check times.

Builds two synthetic catalogs of N services cold (the second drops a quarter of the
services and changes every price), then, TRIALS times: copies the first cold build into a
fresh folder, starts `s402gen build SECOND --out FOLDER`, kills it with SIGKILL after a
random fraction of a full build's time, runs `s402gen check SECOND --out FOLDER` (which
rolls a committed build forward or discards an uncommitted one) and compares the folder
byte for byte with both cold builds. Prints one line a trial and a summary; exits 1 when
any trial left a mix or a staging folder behind.

    python bench/kill_bench.py [--services 2000] [--trials 30] [--seed 13]
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from bench import synthetic_catalog  # noqa: E402

ROOT = HERE.parent


def tree(folder: Path) -> dict[str, bytes]:
    """Every entry under ``folder``: files by their bytes, the rest by a marker."""
    return {
        p.relative_to(folder).as_posix(): (p.read_bytes() if p.is_file() else b"<other>")
        for p in sorted(folder.rglob("*"))
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--services", type=int, default=2000)
    parser.add_argument("--trials", type=int, default=30)
    parser.add_argument("--seed", type=int, default=13)
    args = parser.parse_args()
    exe = shutil.which("s402gen", path=str(Path(sys.executable).parent)) or "s402gen"
    real = yaml.safe_load((ROOT / "catalog.yaml").read_text(encoding="utf-8"))
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory(prefix="s402gen-kill-") as scratch:
        work = Path(scratch)
        env = {**os.environ, "S402GEN_CACHE_DIR": "off", "SOURCE_DATE_EPOCH": "0"}
        first = synthetic_catalog(real, args.services)
        second = synthetic_catalog(real, args.services * 3 // 4)
        for policy in second["pricingPolicies"].values():
            policy["amountCents"] = policy.get("amountCents", 100) + 7
        for name, data in (("first", first), ("second", second)):
            (work / f"{name}.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
            subprocess.run(
                [exe, "build", f"{name}.yaml", "--out", f"cold-{name}"],
                cwd=work,
                env=env,
                check=True,
                capture_output=True,
            )
        old, new = tree(work / "cold-first"), tree(work / "cold-second")
        out = work / "out"
        command = [exe, "build", "second.yaml", "--out", "out"]
        shutil.copytree(work / "cold-first", out)
        began = time.monotonic()
        subprocess.run(command, cwd=work, env=env, check=True, capture_output=True)
        whole = time.monotonic() - began
        print(f"{args.services} services; full build over the old one: {whole:.2f} s")
        counts = {"old": 0, "new": 0, "mixed": 0}
        slowest_check = 0.0
        for trial in range(args.trials):
            shutil.rmtree(out)
            shutil.copytree(work / "cold-first", out)
            fraction = rng.random()
            build = subprocess.Popen(
                command, cwd=work, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )
            time.sleep(whole * fraction)
            build.send_signal(signal.SIGKILL)
            build.wait()
            began = time.monotonic()
            subprocess.run(
                [exe, "check", "second.yaml", "--out", "out"],
                cwd=work,
                env=env,
                capture_output=True,
                timeout=600,
            )
            took = time.monotonic() - began
            slowest_check = max(slowest_check, took)
            after = tree(out)
            state = "new" if after == new else "old" if after == old else "mixed"
            counts[state] += 1
            print(f"trial {trial:2}: killed at {fraction:4.0%}: {state}; next check {took:.2f} s")
        print(
            f"old {counts['old']}, new {counts['new']}, mixed {counts['mixed']} of {args.trials}; "
            f"slowest check after a kill {slowest_check:.2f} s"
        )
        sys.exit(1 if counts["mixed"] else 0)


if __name__ == "__main__":
    main()
