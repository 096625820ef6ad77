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
from sim.core.stats import bootstrap_interval, paired_difference
from sim.engine.executor import Executor
from sim.engine.variants import derive

DEFAULT_METRICS = (
    "ttft_mean_s",
    "ttft_p95_s",
    "peak_ttft_p95_s",
    "queue_wait_mean_s",
    "e2e_p95_s",
    "gpu_utilization",
    "monthly_cost_usd",
)


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
    executor: Executor | None = None,
) -> dict[str, Any]:
    """B - A for each metric, paired over common random numbers; with `independent`, the variance reduction."""
    ea, eb = derive(exp, [(key, a)]), derive(exp, [(key, b)])
    reps = list(range(replications))
    executor = executor or Executor()
    ma = executor.metrics(ea, reps)
    mb = executor.metrics(eb, reps)
    mi: dict[int, dict[str, Any]] = {}
    indep_reps = list(range(replications, 2 * replications))
    if independent:
        mi = executor.metrics(eb, indep_reps)
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
