"""s402gen at scale, side by side with peer generators fed the same OpenAPI document.

Usage (from the repository root, in the project's virtualenv, ``pip install -e .``)::

    python bench/peers.py [--sizes 44 2000 10000] [--runs 3] [--opc] [--plot bench/peers.png]

For each N it writes the synthetic catalog of N services (``bench.py``'s
``synthetic_catalog``), builds it once to get its ``generated/openapi.json``
(every paid operation with its parameters, request and response schemas),
and then times, as whole processes, each N in one run:

- s402gen: a cold ``build`` (empty output folder, empty cache folder), a
  ``build`` after editing one service (the action of the middle service, so
  its route, entry, page and every aggregate change), a cached no-op
  ``check``, an uncached ``check`` (``S402GEN_CACHE_DIR=off``) and ``validate``;
- datamodel-code-generator (``--formatters builtin``, pydantic v2 models) on
  that openapi.json;
- with ``--opc``, openapi-python-client too (a whole client: slow, 200 s at
  10,000, hence opt-in).

The peers are installed by this script into their own virtualenv
(``--venv``, default ``$XDG_CACHE_HOME/s402gen-bench/peers``), with
matplotlib for the plot, from PyPI through pip. Every figure is the min,
median and max wall-clock seconds over ``--runs`` runs, the median CPU
seconds (user + system of the child: what a run costs, however loaded the
machine is), and the peak resident memory (``ru_maxrss`` of the child,
measured by a wrapper process around it) over the runs. It prints a table per N, the least-squares
fit ``a + b*N`` of each command's median, and writes a plot of time against N
(``--plot``). ``--json`` saves the raw figures. Outputs are set aside, not
deleted, until the end (:func:`set_aside`: on this VM, files created right
after a large deletion cost ten times the usual system time).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PEERS = {  # pinned: the figures in bench/README.md were measured with these
    "dmcg": "datamodel-code-generator==0.89.0",
    "opc": "openapi-python-client==0.29.1",
    "plot": "matplotlib==3.11.2",
}
WRAPPER = (  # runs a command; prints its wall seconds, peak RSS (KiB), user+system CPU seconds
    "import resource, subprocess, sys, time\n"
    "start = time.perf_counter()\n"
    "code = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL).returncode\n"
    "took = time.perf_counter() - start\n"
    "usage = resource.getrusage(resource.RUSAGE_CHILDREN)\n"
    "print(took, usage.ru_maxrss, usage.ru_utime + usage.ru_stime, file=sys.stderr)\n"
    "sys.exit(code)\n"
)


def peers_venv(folder: Path, opc: bool) -> Path:
    """A virtualenv at ``folder`` holding the peers and matplotlib; its python."""
    python = folder / "bin" / "python"
    wanted = [PEERS["dmcg"], PEERS["plot"]] + ([PEERS["opc"]] if opc else [])
    marker = folder / "installed.txt"
    if python.exists() and marker.exists() and set(wanted) <= set(marker.read_text().split()):
        return python
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(folder)], check=True)
    subprocess.run([str(python), "-m", "pip", "install", "-q", *wanted], check=True)
    installed = set(marker.read_text().split()) if marker.exists() else set()
    marker.write_text("\n".join(sorted(installed | set(wanted))) + "\n")
    return python


def measure(cmd: list[str], env: dict, before=None) -> tuple[float, float, float]:
    """One run of ``cmd`` (``before()`` first, untimed): wall seconds, peak MiB, CPU seconds
    (user + system: what the run cost, whatever else the machine was doing)."""
    if before is not None:
        before()
    proc = subprocess.run(
        [sys.executable, "-c", WRAPPER, *cmd], env=env, capture_output=True, text=True
    )
    if proc.returncode != 0:
        sys.exit(f"command failed (exit {proc.returncode}): {' '.join(cmd)}\n{proc.stderr}")
    took, peak, cpu = proc.stderr.strip().splitlines()[-1].split()
    return float(took), int(peak) / 1024, float(cpu)


def series(cmd: list[str], env: dict, runs: int, before=None) -> dict:
    """``runs`` runs of ``cmd``: see :func:`summary`."""
    return summary([measure(cmd, env, before) for _ in range(runs)])


def summary(results: list[tuple[float, float, float]]) -> dict:
    """Min, median and max wall seconds, median CPU seconds and the peak MiB of all runs."""
    times = [t for t, _, _ in results]
    return {
        "min": min(times),
        "median": statistics.median(times),
        "max": max(times),
        "cpu": statistics.median(c for _, _, c in results),
        "peak": max(p for _, p, _ in results),
    }


def set_aside(folder: Path) -> None:
    """Move ``folder`` (if any) into ``trash/`` beside it, to be deleted with the work folder
    at the end. Deleting it between runs would time that deletion in the next run: on a
    file system mounted with online discard (this VM's ext4), creating files right after a
    large tree was deleted costs up to ~0.5 ms of system time each, ten times the usual."""
    if folder.exists():
        trash = folder.parent / "trash"
        trash.mkdir(exist_ok=True)
        folder.rename(trash / f"{folder.name}-{len(os.listdir(trash))}")


def s402gen_rows(exe: str, catalog: Path, edited: Path, work: Path, runs: int, env: dict):
    """The s402gen commands on one catalog; yields (name, series)."""
    out, cache = work / "out", work / "cache"
    on = {**env, "S402GEN_CACHE_DIR": str(cache)}
    off = {**env, "S402GEN_CACHE_DIR": "off"}

    def empty() -> None:
        set_aside(out)
        set_aside(cache)

    yield "s402gen build (cold)", series(
        [exe, "build", str(catalog), "--out", str(out)], on, runs, empty
    )
    # each run saves the other version over one catalog path, as an editor would (the
    # per-service cache is the path's), then builds: one service edited
    last = work / "catalog.yaml"
    flip = [catalog, edited]

    def build_edit() -> list[str]:
        flip.reverse()
        shutil.copyfile(flip[0], last)
        return [exe, "build", str(last), "--out", str(out)]

    empty()
    shutil.copyfile(catalog, last)
    subprocess.run([exe, "build", str(last), "--out", str(out), "-q"], env=on, check=True)
    yield "s402gen build (1 service edited)", summary(
        [measure(build_edit(), on) for _ in range(runs)]
    )
    yield "s402gen check (cached, no-op)", series(
        [exe, "check", str(last), "--out", str(out)], on, runs
    )
    yield "s402gen check (no cache)", series(
        [exe, "check", str(last), "--out", str(out)], off, runs
    )
    yield "s402gen validate", series([exe, "validate", str(last)], off, runs)
    empty()


def peer_rows(python: Path, spec: Path, work: Path, runs: int, opc: bool, env: dict):
    """The peers on ``spec``; yields (name, series)."""
    bindir = python.parent
    target = work / "models.py"
    dmcg = [str(bindir / "datamodel-codegen"), "--input", str(spec), "--input-file-type"]
    dmcg += ["openapi", "--output", str(target), "--formatters", "builtin"]
    dmcg += ["--output-model-type", "pydantic_v2.BaseModel"]
    yield "dmcg --formatters builtin", series(
        dmcg, env, runs, lambda: target.unlink(missing_ok=True)
    )
    if opc:
        client = work / "client"
        cmd = [str(bindir / "openapi-python-client"), "generate", "--path", str(spec)]
        cmd += ["--meta", "none", "--output-path", str(client), "--overwrite"]
        yield "openapi-python-client", series(
            cmd, env, runs, lambda: shutil.rmtree(client, ignore_errors=True)
        )


def fit(points: list[tuple[int, float]]) -> tuple[float, float] | None:
    """Least-squares ``(a, b)`` of ``y = a + b*N`` over ``(N, y)`` points (two or more N)."""
    if len({n for n, _ in points}) < 2:
        return None
    mean_n = statistics.fmean(n for n, _ in points)
    mean_y = statistics.fmean(y for _, y in points)
    b = sum((n - mean_n) * (y - mean_y) for n, y in points) / sum(
        (n - mean_n) ** 2 for n, _ in points
    )
    return mean_y - b * mean_n, b


def report(results: dict[int, dict[str, dict]]) -> str:
    """The markdown tables (one per N), the ratios and the fits."""
    lines = []
    for size, rows in results.items():
        lines += [f"### {size:,} services", ""]
        lines += ["| command | min s | median s | max s | CPU s (median) | peak MiB |"]
        lines += ["|---|---|---|---|---|---|"]
        for name, r in rows.items():
            lines.append(
                f"| {name} | {r['min']:.2f} | {r['median']:.2f} | {r['max']:.2f} "
                f"| {r['cpu']:.2f} | {r['peak']:.0f} |"
            )
        cold, peer = rows.get("s402gen build (cold)"), rows.get("dmcg --formatters builtin")
        if cold and peer:
            lines += [
                "",
                f"cold build / dmcg builtin: {cold['median'] / peer['median']:.2f}x wall "
                f"(medians), {cold['cpu'] / peer['cpu']:.2f}x CPU",
            ]
        lines.append("")
    lines += ["### Linear fits, seconds = a + b·N (wall medians; CPU medians)", ""]
    lines += ["| command | a (s) | b (ms/service) | CPU a (s) | CPU b (ms/service) |"]
    lines += ["|---|---|---|---|---|"]
    names = dict.fromkeys(name for rows in results.values() for name in rows)
    for name in names:
        found = [
            fit([(n, rows[name][what]) for n, rows in results.items() if name in rows])
            for what in ("median", "cpu")
        ]
        if found[0] is not None and found[1] is not None:
            (a, b), (ca, cb) = found
            lines.append(f"| {name} | {a:.3f} | {b * 1000:.3f} | {ca:.3f} | {cb * 1000:.3f} |")
    return "\n".join(lines) + "\n"


PLOT = """
import json, sys
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
results = json.load(open(sys.argv[1]))
sizes = sorted(int(n) for n in results)
fig, ax = plt.subplots(figsize=(8, 5), dpi=110)
names = list(dict.fromkeys(k for n in sizes for k in results[str(n)]))
for name in names:
    xs = [n for n in sizes if name in results[str(n)]]
    line, = ax.plot(xs, [results[str(n)][name]["median"] for n in xs], marker="o", label=name)
    ax.plot(xs, [results[str(n)][name]["cpu"] for n in xs], linestyle=":", color=line.get_color())
ax.set_xlabel("services (N)")
ax.set_ylabel("seconds: wall median (solid), CPU (dotted)")
ax.set_title("s402gen and peers on the same operations")
ax.grid(True, alpha=0.3)
ax.legend(fontsize=8)
fig.tight_layout()
fig.savefig(sys.argv[2])
"""


def main() -> None:
    """Parse options, measure every size, print the report, save the plot."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[44, 2000, 10000])
    parser.add_argument("--runs", type=int, default=3, help="runs per command (default 3)")
    parser.add_argument("--opc", action="store_true", help="also openapi-python-client (slow)")
    parser.add_argument("--venv", type=Path, help="the peers' virtualenv (made if missing)")
    parser.add_argument("--plot", type=Path, default=REPO / "bench" / "peers.png")
    parser.add_argument("--json", type=Path, help="save the raw figures here")
    args = parser.parse_args()
    sys.path.insert(0, str(REPO / "bench"))
    import yaml
    from bench import synthetic_catalog

    beside = Path(sys.executable).parent / "s402gen"
    exe = str(beside) if beside.exists() else shutil.which("s402gen")
    if exe is None:
        sys.exit("s402gen console script not found (pip install -e .)")
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    python = peers_venv(args.venv or base / "s402gen-bench" / "peers", args.opc)
    real = yaml.safe_load((REPO / "catalog.yaml").read_text(encoding="utf-8"))
    env = {**os.environ, "SOURCE_DATE_EPOCH": "0"}
    results: dict[int, dict[str, dict]] = {}
    with tempfile.TemporaryDirectory(prefix="s402gen-peers-") as tmp:
        work = Path(tmp)
        for size in args.sizes:
            data = synthetic_catalog(real, size)
            catalog = work / f"catalog-{size}.yaml"
            catalog.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), "utf-8")
            middle = data["services"][size // 2]
            middle["action"] += "Edited"
            edited = work / f"catalog-{size}-edited.yaml"
            edited.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), "utf-8")
            reference = work / "reference"
            off = {**env, "S402GEN_CACHE_DIR": "off"}
            subprocess.run(
                [exe, "build", str(catalog), "--out", str(reference), "-q"], env=off, check=True
            )
            spec = work / f"openapi-{size}.json"
            shutil.move(reference / "openapi.json", spec)
            set_aside(reference)
            rows = dict(s402gen_rows(exe, catalog, edited, work / "s402gen", args.runs, env))
            rows.update(peer_rows(python, spec, work, args.runs, args.opc, env))
            results[size] = rows
            print(report({size: rows}), flush=True)
    text = report(results)
    print(text)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as raw:
        json.dump(results, raw)
    try:
        subprocess.run([str(python), "-c", PLOT, raw.name, str(args.plot)], check=True)
    finally:
        os.unlink(raw.name)
    print(f"plot: {args.plot}")


if __name__ == "__main__":
    main()
