"""Common random numbers: paired comparisons of two variants of a config, and what the pairing buys.

Variant A and variant B run replications 0..n-1 of the same root seed, so replication r of both sees the
same arrivals, sizes and cache draws (sim.rng streams are addressed by replication and component, not by
anything the variants change). The difference B - A (as in `capsim compare A B`) is then estimated
replication by replication.

`crn_check` also runs B on replications n..2n-1 (streams independent of A's) and reports the variance
reduction: Var(B'_r - A_r) / Var(B_r - A_r), independent over common, with a bootstrap interval.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from sim.config import Experiment
from sim.runner import run_replications
from sim.stats import bootstrap_interval, paired_difference
from sim.variants import derive

DEFAULT_METRICS = (
    "ttft_mean_s",
    "ttft_p95_s",
    "peak_ttft_p95_s",
    "queue_wait_mean_s",
    "e2e_p95_s",
    "gpu_utilization",
    "monthly_cost_usd",
)


def run_metrics(
    exp: Experiment,
    reps: Sequence[int],
    workers: int | None = None,
    executor: str = "local",
    address: str | None = None,
) -> dict[int, dict[str, Any]]:
    """Per-replication metrics of the given replication indices."""
    return {
        r.replication: dict(r.metrics)
        for r in run_replications(exp, list(reps), workers=workers, executor=executor, address=address)
    }


def _column(metrics: dict[int, dict[str, Any]], reps: Sequence[int], name: str) -> np.ndarray:
    out = []
    for r in reps:
        v = metrics[r].get(name)
        out.append(np.nan if v is None else float(v))
    return np.asarray(out, dtype=np.float64)


def variance_ratio(a: np.ndarray, b_common: np.ndarray, b_indep: np.ndarray, seed: int = 0) -> dict[str, Any]:
    """Var(a - b_indep) / Var(a - b_common) with a percentile-bootstrap 95% interval (rows resampled jointly)."""
    keep = np.isfinite(a) & np.isfinite(b_common) & np.isfinite(b_indep)
    d_c, d_i = (a - b_common)[keep], (a - b_indep)[keep]
    n = int(keep.sum())
    out: dict[str, Any] = {"n": n, "var_common": None, "var_independent": None, "ratio": None}
    if n < 3:
        return out | {"ratio_ci95_low": None, "ratio_ci95_high": None}
    vc, vi = float(np.var(d_c, ddof=1)), float(np.var(d_i, ddof=1))
    # differences that do not vary (beyond rounding) have no variance to reduce
    floor = (1e-9 * float(np.max(np.abs(np.concatenate([a[keep], b_common[keep], b_indep[keep]]))))) ** 2
    vc, vi = (0.0 if vc <= floor else vc), (0.0 if vi <= floor else vi)
    out.update(var_common=vc, var_independent=vi, ratio=vi / vc if vc > 0 else None)
    if vc <= 0:
        return out | {"ratio_ci95_low": None, "ratio_ci95_high": None}
    pairs = np.stack([d_c, d_i], axis=1)

    def ratio(idx: np.ndarray, axis: int | None = None) -> np.ndarray:
        idx = np.atleast_2d(idx).astype(np.int64)
        s = pairs[idx]  # (boot, n, 2)
        v = np.var(s, axis=1, ddof=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            return v[:, 1] / v[:, 0]

    low, high = bootstrap_interval(np.arange(n, dtype=np.float64), 0.95, n_boot=2000, seed=seed, stat=ratio)
    return out | {"ratio_ci95_low": low, "ratio_ci95_high": high}


def compare(
    exp: Experiment,
    key: str,
    a: Any,
    b: Any,
    replications: int,
    metrics: Sequence[str] = DEFAULT_METRICS,
    independent: bool = False,
    workers: int | None = None,
    executor: str = "local",
    address: str | None = None,
) -> dict[str, Any]:
    """B - A for each metric, paired over common random numbers; with `independent`, the variance reduction."""
    ea, eb = derive(exp, [(key, a)]), derive(exp, [(key, b)])
    reps = list(range(replications))
    ma = run_metrics(ea, reps, workers, executor, address)
    mb = run_metrics(eb, reps, workers, executor, address)
    mi: dict[int, dict[str, Any]] = {}
    indep_reps = list(range(replications, 2 * replications))
    if independent:
        mi = run_metrics(eb, indep_reps, workers, executor, address)
    out: dict[str, Any] = {
        "key": key,
        "a": a,
        "b": b,
        "difference": "b - a",
        "seed": exp.seed,
        "replications": replications,
        "metrics": {},
    }
    for name in metrics:
        xa, xb = _column(ma, reps, name), _column(mb, reps, name)
        entry: dict[str, Any] = {
            "mean_a": _mean(xa),
            "mean_b": _mean(xb),
            "paired": paired_difference(xb.tolist(), xa.tolist()),
        }
        if independent:
            xi = _column(mi, indep_reps, name)
            entry["independent"] = paired_difference(xi.tolist(), xa.tolist())
            entry["variance_reduction"] = variance_ratio(xa, xb, xi)
        out["metrics"][name] = entry
    return out


def _mean(x: np.ndarray) -> float | None:
    x = x[np.isfinite(x)]
    return float(x.mean()) if x.size else None


def print_compare(doc: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    from sim.summary_table import _fmt

    key = doc["key"]
    t = Table(
        title=f"{key}: {doc['b']} minus {doc['a']} (B - A), {doc['replications']} replications, common random numbers"
    )
    cols = ["metric", f"A: mean ({doc['a']})", f"B: mean ({doc['b']})", "paired difference B - A (95% CI)"]
    indep = any("independent" in e for e in doc["metrics"].values())
    if indep:
        cols += ["independent seeds (95% CI)", "Var ratio indep/common (95% CI)"]
    for c in cols:
        t.add_column(c, justify="left" if c == "metric" else "right")

    def ci(d: dict[str, Any]) -> str:
        if d["mean"] is None:
            return "n/a"
        return f"{_fmt(d['mean'])} ({_fmt(d['ci_low'])} .. {_fmt(d['ci_high'])})"

    for name, e in doc["metrics"].items():
        row = [name, _fmt(e["mean_a"]), _fmt(e["mean_b"]), ci(e["paired"])]
        if indep:
            vr = e["variance_reduction"]
            ratio = "-" if vr["ratio"] is None else f"{vr['ratio']:.3g}"
            if vr.get("ratio_ci95_low") is not None:
                ratio += f" ({vr['ratio_ci95_low']:.3g} .. {vr['ratio_ci95_high']:.3g})"
            row += [ci(e["independent"]), ratio]
        t.add_row(*row)
    Console(width=170).print(t)


def run_compare_command(
    exp: Experiment,
    vary_text: str,
    reps: int,
    metrics: Sequence[str] | None,
    independent: bool,
    workers: int | None,
    executor: str,
    address: str | None,
    as_json: bool,
    base_dir: Any,
) -> int:
    """`capsim paired`: 0 ok, 2 bad arguments."""
    import json
    import sys

    from sim.config import ConfigError
    from sim.metrics_catalog import METRIC_NAMES
    from sim.variants import parse_assignment_list

    try:
        key, values = parse_assignment_list(vary_text)
        if len(values) != 2:
            raise ValueError(f"--vary: give exactly two values (KEY=A,B), got {len(values)}")
        names = list(metrics) if metrics else list(DEFAULT_METRICS)
        unknown = [m for m in names if m not in METRIC_NAMES]
        if unknown:
            raise ValueError(f"--metric: unknown metric(s): {', '.join(unknown)}")
        for v in values:
            derive(exp, [(key, v)], base_dir)
    except ValueError as exc:
        sys.stderr.write(f"{exc}\n")
        return 2
    except ConfigError as exc:
        for p in exc.problems:
            sys.stderr.write(f"--vary {vary_text}: {p.path}: {p.message}\n")
        return 2
    from sim.dask_executor import executor_address

    with executor_address(executor, address, workers) as addr:
        doc = compare(exp, key, values[0], values[1], reps, names, independent, workers, executor, addr)
    if as_json:
        sys.stdout.write(json.dumps(doc, allow_nan=False) + "\n")
    else:
        print_compare(doc)
    return 0
