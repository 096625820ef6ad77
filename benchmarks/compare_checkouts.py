"""Are two checkouts' results bit-identical? Runs every shipped experiment in both and compares the outputs.

A refactoring that moves code must not change a single number. For every `experiments/**/*.yaml` this runs
`capsim run` at a short horizon in checkout A and in checkout B (each with its own Python, its own code:
the checkout's console-script entry point is read from its pyproject.toml and imported from the checkout
itself, so the two may be laid out differently), then compares

* `summary.json` exactly, every number to the last bit, leaving out what records when and where a run
  happened (`created_utc`, `capsim_version`, `wall_s`) and writing each checkout's own path as `<ROOT>`;
* every Parquet table (`replications`, `timeseries`, `hourly`, `requests`: per-request timestamps are
  written, `output.requests=true`) exactly: same columns, same dtypes, same values (NaN where NaN),
  `wall_s` and `num_events` (the simulator's own work, not a result) left out;
* `config.yaml` (the resolved config) as text, paths written as `<ROOT>`.

It ends with one verdict line, `IDENTICAL` or `DIFFERENT` (exit 0 or 1). A's outputs can be kept as a
baseline and reused (`--keep-a`), so a series of refactoring steps is each compared with the same recording.

Usage:
    python benchmarks/compare_checkouts.py A_DIR B_DIR [--work DIR] [--keep-a] [--only-a]
        [--python-a PY] [--python-b PY] [--horizon-h 0.5] [--reps 2] [--experiments GLOB]
Each experiment runs `--reps` replications of `warmup_h + horizon_h` hours on one worker; every
replication is a pure function of (config, replication index), so one worker gives the same numbers as many.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
import tomllib
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
VOLATILE_KEYS = {"created_utc", "capsim_version", "wall_s"}
# num_events counts the simulator's own work (the events it scheduled), as wall_s its time: a speed change that
# schedules fewer events for the same results changes it (the replications table)
VOLATILE_COLUMNS = {"wall_s", "num_events"}
TABLES = ("replications", "timeseries", "hourly", "requests")

# Launches a checkout's own CLI from its own tree, whatever its layout: the entry point named in its pyproject.
LAUNCHER = (
    "import sys, importlib; root, entry = sys.argv[1], sys.argv[2]; sys.path.insert(0, root); "
    "mod, _, fn = entry.partition(':'); sys.argv = ['capsim', *sys.argv[3:]]; "
    "sys.exit(getattr(importlib.import_module(mod), fn)())"
)


def entry_point(checkout: Path) -> str:
    data = tomllib.loads((checkout / "pyproject.toml").read_text(encoding="utf-8"))
    return str(data["project"]["scripts"]["capsim"])


def default_python(checkout: Path) -> str:
    venv = checkout / ".venv" / "bin" / "python"
    return str(venv) if venv.exists() else sys.executable


def experiment_files(checkout: Path, pattern: str) -> list[Path]:
    return sorted(p.relative_to(checkout) for p in (checkout / "experiments").glob(pattern))


def short_overrides(config: Path, horizon_h: float) -> list[str]:
    """`--set` items that keep an experiment short: its warm-up plus `horizon_h` measured hours, no report."""
    data = yaml.safe_load(config.read_text(encoding="utf-8")) or {}
    warmup = float(data.get("warmup_h", 0.0) or 0.0)
    return [
        f"horizon_h={warmup + horizon_h!r}",
        "output.requests=true",
        "output.timeseries=true",
        "output.report=false",
    ]


def run_checkout(
    checkout: Path, python: str, out_root: Path, experiments: list[Path], horizon_h: float, reps: int
) -> dict[str, dict[str, Any]]:
    """Run every experiment in one checkout; returns {experiment: {"rc", "wall_s", "stderr"}}."""
    entry = entry_point(checkout)
    status: dict[str, dict[str, Any]] = {}
    for rel in experiments:
        name = rel.with_suffix("").as_posix().replace("/", "__")
        out = out_root / name
        sets = [x for s in short_overrides(checkout / rel, horizon_h) for x in ("--set", s)]
        cmd = [python, "-c", LAUNCHER, str(checkout), entry, "run", str(rel), "--reps", str(reps)]
        cmd += ["--workers", "1", "--quiet", "--json", "--out", str(out), *sets]
        t0 = time.perf_counter()
        proc = subprocess.run(
            cmd, cwd=checkout, capture_output=True, text=True, env={**os.environ, "PYTHONHASHSEED": "0"}
        )
        wall = time.perf_counter() - t0
        status[name] = {"rc": proc.returncode, "wall_s": round(wall, 2), "stderr": proc.stderr[-2000:]}
        print(f"  {checkout.name}: {rel} rc={proc.returncode} {wall:.1f} s", flush=True)
    (out_root / "status.json").write_text(json.dumps(status, indent=1), encoding="utf-8")
    return status


def _normalise(v: Any, roots: tuple[str, ...]) -> Any:
    if isinstance(v, dict):
        return {k: _normalise(x, roots) for k, x in v.items() if k not in VOLATILE_KEYS}
    if isinstance(v, list):
        return [_normalise(x, roots) for x in v]
    if isinstance(v, str):
        for r in roots:
            v = v.replace(r, "<ROOT>")
    return v


def _first_difference(a: Any, b: Any, path: str = "") -> str | None:
    """Where two JSON documents differ first (floats compared bit for bit, NaN equal to NaN)."""
    if isinstance(a, dict) and isinstance(b, dict):
        if set(a) != set(b):
            only_a, only_b = sorted(set(a) - set(b))[:5], sorted(set(b) - set(a))[:5]
            return f"{path or '<root>'}: keys differ: only A {only_a}, only B {only_b}"
        for k in a:
            d = _first_difference(a[k], b[k], f"{path}.{k}" if path else k)
            if d:
                return d
        return None
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return f"{path}: lengths {len(a)} != {len(b)}"
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            d = _first_difference(x, y, f"{path}[{i}]")
            if d:
                return d
        return None
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return None
    if type(a) is not type(b) or a != b:
        return f"{path}: {a!r} != {b!r}"
    return None


def compare_tables(a: Path, b: Path) -> str | None:
    ta, tb = pd.read_parquet(a), pd.read_parquet(b)
    ta = ta.drop(columns=[c for c in VOLATILE_COLUMNS if c in ta.columns])
    tb = tb.drop(columns=[c for c in VOLATILE_COLUMNS if c in tb.columns])
    if list(ta.columns) != list(tb.columns):
        only_a, only_b = sorted(set(ta.columns) - set(tb.columns)), sorted(set(tb.columns) - set(ta.columns))
        return f"columns differ (only A {only_a[:5]}, only B {only_b[:5]}, or their order)"
    if ta.shape != tb.shape:
        return f"shape {ta.shape} != {tb.shape}"
    for col in ta.columns:
        if ta[col].dtype != tb[col].dtype:
            return f"column {col}: dtype {ta[col].dtype} != {tb[col].dtype}"
        if not ta[col].equals(tb[col]):
            x, y = ta[col].to_numpy(), tb[col].to_numpy()
            bad = [i for i in range(len(x)) if not (x[i] == y[i] or (pd.isna(x[i]) and pd.isna(y[i])))]
            return f"column {col}: {len(bad)} rows differ, first row {bad[0]}: {x[bad[0]]!r} != {y[bad[0]]!r}"
    return None


def compare_run(da: Path, db: Path, roots: tuple[str, ...]) -> list[str]:
    problems: list[str] = []
    for d in (da, db):
        if not (d / "summary.json").exists():
            problems.append(f"{d}: no summary.json")
    if problems:
        return problems
    sa = _normalise(json.loads((da / "summary.json").read_text(encoding="utf-8")), roots)
    sb = _normalise(json.loads((db / "summary.json").read_text(encoding="utf-8")), roots)
    d = _first_difference(sa, sb)
    if d:
        problems.append(f"summary.json: {d}")
    ca, cb = ((x / "config.yaml").read_text(encoding="utf-8") for x in (da, db))
    if _normalise(ca, roots) != _normalise(cb, roots):
        problems.append("config.yaml differs")
    for t in TABLES:
        pa, pb = da / f"{t}.parquet", db / f"{t}.parquet"
        if pa.exists() != pb.exists():
            problems.append(f"{t}.parquet: present in only one checkout")
        elif pa.exists():
            d = compare_tables(pa, pb)
            if d:
                problems.append(f"{t}.parquet: {d}")
    return problems


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("a", type=Path, help="checkout A (the baseline)")
    ap.add_argument("b", type=Path, nargs="?", help="checkout B (the change)")
    ap.add_argument("--work", type=Path, default=Path("/tmp/capsim-compare"))
    ap.add_argument("--python-a")
    ap.add_argument("--python-b")
    ap.add_argument("--horizon-h", type=float, default=0.5)
    ap.add_argument("--reps", type=int, default=2)
    ap.add_argument("--experiments", default="**/*.yaml", help="glob under experiments/")
    ap.add_argument("--keep-a", action="store_true", help="reuse A's outputs already under --work (a baseline)")
    ap.add_argument("--only-a", action="store_true", help="record A's outputs and stop (a baseline)")
    args = ap.parse_args()
    a = args.a.resolve()
    wa, wb = args.work / "a", args.work / "b"
    experiments = experiment_files(a, args.experiments)
    if not (args.keep_a and (wa / "status.json").exists()):
        print(f"A: {a} ({len(experiments)} experiments)", flush=True)
        run_checkout(a, args.python_a or default_python(a), wa, experiments, args.horizon_h, args.reps)
        (wa / "root.txt").write_text(str(a), encoding="utf-8")
    if args.only_a or args.b is None:
        print(f"recorded A under {wa}")
        return 0
    b = args.b.resolve()
    status_a = json.loads((wa / "status.json").read_text(encoding="utf-8"))
    experiments_b = experiment_files(b, args.experiments)
    print(f"B: {b} ({len(experiments_b)} experiments)", flush=True)
    status_b = run_checkout(b, args.python_b or default_python(b), wb, experiments_b, args.horizon_h, args.reps)
    roots = tuple({(wa / "root.txt").read_text(encoding="utf-8") if (wa / "root.txt").exists() else str(a), str(b)})
    different: dict[str, list[str]] = {}
    for name in sorted(set(status_a) | set(status_b)):
        sa, sb = status_a.get(name), status_b.get(name)
        if sa is None or sb is None:
            different[name] = [f"shipped by only one checkout ({'A' if sa else 'B'})"]
            continue
        if sa["rc"] != sb["rc"]:
            different[name] = [f"exit codes {sa['rc']} != {sb['rc']}: {sb['stderr'] or sa['stderr']}"]
            continue
        if sa["rc"] != 0:
            different[name] = [f"both failed (rc {sa['rc']}): {sa['stderr'][-300:]}"]
            continue
        problems = compare_run(wa / name, wb / name, roots)
        if problems:
            different[name] = problems
    for name, problems in different.items():
        for p in problems:
            print(f"  {name}: {p}")
    n = len(set(status_a) | set(status_b))
    tables = sum(1 for name in status_b for t in TABLES if (wb / name / f"{t}.parquet").exists())
    if different:
        print(f"DIFFERENT: {len(different)} of {n} experiments differ ({', '.join(sorted(different))})")
        return 1
    print(
        f"IDENTICAL: {n} experiments ({args.reps} replications, warm-up + {args.horizon_h} h each): "
        f"summary.json, config.yaml and {tables} Parquet tables bit for bit"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
