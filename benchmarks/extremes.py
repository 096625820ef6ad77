"""Extreme workloads through the whole `capsim run` path: wall time, peak memory, and no NaN written.

    PYTHONPATH=. python benchmarks/extremes.py                 # every case (about 15-25 min on 2 cores)
    PYTHONPATH=. python benchmarks/extremes.py zero overload   # some cases
    PYTHONPATH=. python benchmarks/extremes.py --quick         # the cheap cases only

Each case runs in its own process under `/usr/bin/time -v` (peak RSS = the largest process of the run:
the parent or one worker); the parent also reports its own peak. The results folder is then checked:
summary.json parses with NaN/Infinity refused, and no CSV cell or Parquet value is NaN.
"""

from __future__ import annotations

import json
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]

BASE = """\
name: extreme
seed: 11
replications: 1
horizon_h: 1
workload:
  arrivals: {kind: constant, mean_rps: 5}
  classes:
    - name: chat
      share: 1.0
      input_tokens: {dist: lognormal, median: 500, sigma: 0.8}
      output_tokens: {dist: geometric, mean: 150}
backends:
  gpu_pool: {servers: 1, gpu: h100, model: llama-3-8b, max_batch: 64}
output: {report: true}
"""
# one H100 server with this workload serves about 18 requests/s (measured: 64,706 in an hour at saturation)
CAPACITY_RPS = 18

# name: (config text, --set overrides, workers, disable the overload bound, quick)
CASES: dict[str, tuple[str, list[str], int, bool, bool]] = {
    "zero_traffic": (BASE, ["workload.arrivals.mean_rps=0", "replications=2"], 1, False, True),
    "all_cache_hits": (
        BASE,
        ["cache.response.enabled=true", "cache.response.distinct_prompts=1", "replications=2"],
        1,
        False,
        True,
    ),
    "overload_100x_timeout_30s": (
        BASE,
        [f"workload.arrivals.mean_rps={100 * CAPACITY_RPS}", "workload.classes.0.timeout_s=30"],
        1,
        False,
        False,
    ),
    "overload_100x_no_timeout": (BASE, [f"workload.arrivals.mean_rps={100 * CAPACITY_RPS}"], 1, False, False),
    "overload_100x_no_timeout_unbounded": (
        BASE,
        [f"workload.arrivals.mean_rps={100 * CAPACITY_RPS}"],
        1,
        True,
        False,
    ),
    # issue 13: memory of an overloaded day (peak RSS); hours of wall time on 2 cores at 100x
    "overload_10x_24h": (BASE, [f"workload.arrivals.mean_rps={10 * CAPACITY_RPS}", "horizon_h=24"], 1, False, False),
    "overload_100x_24h": (BASE, [f"workload.arrivals.mean_rps={100 * CAPACITY_RPS}", "horizon_h=24"], 1, False, False),
    "zero_gpus_api_only": (BASE, ["backends.gpu_pool.servers=0", "routing.policy=api_only"], 1, False, True),
    "zero_gpus_overflow_to_api": (BASE, ["backends.gpu_pool.servers=0", "routing.policy=overflow"], 1, False, True),
    "zero_gpus_gpu_only_fallback_api": (
        BASE,
        ["backends.gpu_pool.servers=0", "routing.policy=gpu_only", "routing.fallback=api"],
        1,
        False,
        True,
    ),
    "horizon_30_days": (
        (ROOT / "experiments" / "default.yaml").read_text(),
        ["horizon_h=720", "replications=1"],
        1,
        False,
        False,
    ),
    "replications_10000": (
        BASE,
        ["replications=10000", "horizon_h=0.05", "workload.arrivals.mean_rps=2"],
        2,
        False,
        False,
    ),
}


def run_case(name: str, out: Path) -> None:
    """In this process: the whole `capsim run` path for one case."""
    from sim.app.run_command import run_experiment
    from sim.engine.executor import Executor
    from sim.engine.loading import load_config_text

    text, sets, workers, unbounded, _ = CASES[name]
    if unbounded:
        from backends.gpu.overload_bound import OverloadBound

        OverloadBound.refuses = lambda self, priority, now: False  # type: ignore[method-assign]
    exp = load_config_text(text, sets, base_dir=ROOT / "experiments")
    t0 = time.perf_counter()
    code = run_experiment(exp, out=out, executor=Executor(workers=workers), quiet=True, as_json=True)
    wall = time.perf_counter() - t0
    parent_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    sys.stderr.write(f"CASE {name} code={code} run_s={wall:.1f} parent_peak_mb={parent_mb:.0f}\n")


def check_no_nan(out: Path) -> str:
    """'none' if no file of the folder holds a NaN or infinity (undefined values must be null)."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    problems = []
    json.loads((out / "summary.json").read_text(), parse_constant=lambda c: problems.append(f"summary.json {c}"))
    for csv in out.glob("*.csv"):
        if re.search(r"(^|,)(nan|NaN|inf|-inf)(,|$)", csv.read_text(), re.M):
            problems.append(csv.name)
    for path in out.glob("*.parquet"):
        table = pq.read_table(path)
        for col in table.column_names:
            arr = table[col]
            if pa.types.is_floating(arr.type) and (pc.any(pc.is_nan(arr)).as_py() or pc.any(pc.is_inf(arr)).as_py()):
                problems.append(f"{path.name}:{col}")
    return "none" if not problems else ", ".join(problems)


def main(argv: list[str]) -> int:
    if argv[:1] == ["--case"]:
        run_case(argv[1], Path(argv[2]))
        return 0
    quick = "--quick" in argv
    names = [a for a in argv if not a.startswith("--")] or [n for n, c in CASES.items() if c[4] or not quick]
    rows = []
    for name in names:
        with tempfile.TemporaryDirectory() as d:
            out = Path(d) / "out"
            cmd = ["/usr/bin/time", "-v", sys.executable, __file__, "--case", name, str(out)]
            t0 = time.perf_counter()
            proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
            wall = time.perf_counter() - t0
            err = proc.stderr
            rss = re.search(r"Maximum resident set size \(kbytes\): (\d+)", err)
            case = re.search(r"CASE \S+ code=(\d+) run_s=([\d.]+) parent_peak_mb=(\d+)", err)
            summary = json.loads(proc.stdout) if proc.returncode == 0 and proc.stdout.strip() else {}
            m = summary.get("metrics", {})

            def mean(k: str, m: dict[str, Any] = m) -> Any:
                v = m.get(k, {}).get("mean")
                return "null" if v is None else (f"{v:.6g}" if isinstance(v, float) else v)

            rows.append(
                (
                    name,
                    proc.returncode,
                    f"{wall:.1f}",
                    f"{int(rss.group(1)) / 1024:.0f}" if rss else "?",
                    case.group(3) if case else "?",
                    summary.get("replications", "?"),
                    mean("requests"),
                    mean("served"),
                    mean("dropped"),
                    mean("in_flight"),
                    mean("availability"),
                    check_no_nan(out) if proc.returncode == 0 else err[-300:],
                )
            )
            print(" | ".join(map(str, rows[-1])), flush=True)
    head = (
        "case",
        "exit",
        "wall s",
        "peak RSS MB",
        "parent MB",
        "reps",
        "requests",
        "served",
        "dropped",
        "in_flight",
        "availability",
        "NaN written",
    )
    print("\n| " + " | ".join(head) + " |\n|" + "---|" * len(head))
    for r in rows:
        print("| " + " | ".join(map(str, r)) + " |")
    return 0 if all(r[1] == 0 for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
