"""capsim speed benchmark: simulated requests per second per core, events per request, peak memory,
and the ratio against a bare SimPy M/M/8 (a process per customer + simpy.Resource) run in the same session.

Each figure is a whole process (`python -m ...` in a child), timed from outside, median of --runs runs.
Rates are requests per CPU-second of the whole process (one core: every scenario runs with --workers 1).
Usage: python benchmarks/bench.py [--runs 3] [--long-runs 1] [--scenarios mm8,weekday,fleet,month,plan]
(the month runs --long-runs times: one run is five minutes). With both the weekday and the month measured,
the last line is the month's peak memory over the weekday's.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path
from statistics import median

from paired import run_once  # the script's own folder is on sys.path

HERE = Path(__file__).resolve().parent


def _capsim_run(config: str, extra: list[str], out: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "sim",
        "run",
        config,
        "--workers",
        "1",
        "--quiet",
        "--json",
        "--out",
        str(out),
        *extra,
    ]


def measure(cmd: list[str], runs: int) -> dict[str, float]:
    walls, cpus, rss = [], [], []
    for _ in range(runs):
        w, c, r = run_once(shlex.join(cmd))
        walls.append(w)
        cpus.append(c)
        rss.append(r)
    return {"wall_s": median(walls), "cpu_s": median(cpus), "peak_rss_mib": max(rss)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--long-runs", type=int, default=1, help="runs of the 30-day month")
    ap.add_argument("--scenarios", default="mm8,weekday,fleet,month,plan")
    ap.add_argument("--out", default="/tmp/capsim-bench")
    args = ap.parse_args()
    out = Path(args.out)
    rows = []
    n_base = 200_000
    base = measure([sys.executable, str(HERE / "bare_simpy_mm8.py"), str(n_base)], args.runs)
    base_rate = n_base / base["cpu_s"]  # CPU seconds: steadier than wall time on a shared machine
    rows.append(
        {
            "scenario": "bare SimPy M/M/8",
            "requests": n_base,
            **base,
            "req_per_s": base_rate,
            "events_per_req": 6.0,
            "vs_simpy": 1.0,
        }
    )
    scen = {
        "mm8": ("benchmarks/scenarios/mm8.yaml", []),
        "weekday": ("benchmarks/scenarios/weekday.yaml", []),
        "fleet": ("benchmarks/scenarios/weekday_fleet.yaml", []),
        "month": ("benchmarks/scenarios/weekday.yaml", ["--set", "horizon_h=720", "--set", "name=bench-month"]),
        "plan": ("benchmarks/scenarios/mm8.yaml", ["--reps", "100", "--set", "horizon_h=1"]),
    }
    for key in args.scenarios.split(","):
        if key not in scen:
            continue
        config, extra = scen[key]
        folder = out / key
        m = measure(_capsim_run(config, extra, folder), args.long_runs if key == "month" else args.runs)
        table = __import__("pandas").read_parquet(folder / "replications.parquet")
        requests = float(table["requests"].sum())
        events = float(table["num_events"].sum())
        rate = requests / m["cpu_s"]
        rows.append(
            {
                "scenario": f"capsim {key}",
                "requests": requests,
                **m,
                "req_per_s": rate,
                "events_per_req": events / max(requests, 1),
                "vs_simpy": rate / base_rate,
            }
        )
    head = ("scenario", "requests", "wall s", "CPU s", "req/s", "ev/req", "RSS MiB", "vs SimPy")
    print(f"{head[0]:<22}{head[1]:>12}{head[2]:>9}{head[3]:>8}{head[4]:>10}{head[5]:>8}{head[6]:>9}{head[7]:>9}")
    for r in rows:
        print(
            f"{r['scenario']:<22}{r['requests']:>12,.0f}{r['wall_s']:>9.2f}{r['cpu_s']:>8.2f}{r['req_per_s']:>10,.0f}"
            f"{r['events_per_req']:>8.2f}{r['peak_rss_mib']:>9.0f}{r['vs_simpy']:>9.2f}"
        )
    rss = {r["scenario"]: r["peak_rss_mib"] for r in rows}
    if "capsim weekday" in rss and "capsim month" in rss:
        print(f"peak memory, 30-day month over 1-day weekday: {rss['capsim month'] / rss['capsim weekday']:.2f}x")
    (out / "bench.json").write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
