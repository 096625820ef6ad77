"""Prints the figures of the workloads issue from the same helpers and seeds the tests use.

PYTHONPATH=. python tests/workload_figures.py
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from scipy.stats import chi2

sys.path.insert(0, str(Path(__file__).resolve().parent))

import test_workloads_bursts as B  # noqa: E402
import test_workloads_overdispersion as O  # noqa: E402
import test_workloads_shapes as S  # noqa: E402
import test_workloads_trace as T  # noqa: E402

from workloads.overdispersion import index_of_dispersion  # noqa: E402
from workloads.synthetic import resolved_cv  # noqa: E402

MULT = [0.2, 0.15, 0.1, 0.1, 0.15, 0.3, 0.6, 1.0, 1.6, 2.2, 2.4, 2.1, 1.7, 1.9, 2.0, 1.8, 1.5, 1.2, 0.9, 0.7, 0.6]
MULT += [0.5, 0.4, 0.3]


def chi_square(name: str, exp, peak_hour: int | None = None, peak_to_mean: float | None = None) -> None:  # type: ignore[no-untyped-def]
    horizon = exp.horizon_h * 3600.0
    edges = np.arange(0.0, horizon + 1.0, 3600.0)
    expected = np.diff(S.clock_cumulative(exp.workload.arrivals, exp.start_weekday, edges))
    counts = np.array([np.histogram(S._arrivals(exp, r), bins=edges)[0] for r in range(S.REPS)])
    stat = float(np.sum((counts - expected) ** 2 / expected))
    print(f"{name}: chi2 = {stat:.1f}, df = {counts.size}, p = {chi2.sf(stat, counts.size):.3f}")
    days = counts.reshape(S.REPS, -1, 24).sum(axis=2)
    exp_days = expected.reshape(-1, 24).sum(axis=1)
    dev = days / exp_days - 1
    print(f"  daily totals / expected - 1: max |dev| {np.abs(dev).max():.4%} over {dev.size} replication-days")
    if peak_hour is not None and peak_to_mean is not None:
        pooled = counts.reshape(S.REPS, -1, 24).sum(axis=0)
        t = np.concatenate([S._arrivals(exp, r) for r in range(S.REPS)])
        per10 = np.histogram(t, bins=np.arange(0, horizon + 1, 600))[0][: 144 * 1]
        print(
            f"  busiest hour per replication-day: {sorted(set(np.argmax(counts.reshape(-1, 24), axis=1).tolist()))}"
            f" (pooled per day: {np.argmax(pooled, axis=1).tolist()}); configured {peak_hour}"
        )
        print(
            f"  peak/mean of day 1 (10-min bins, pooled): {per10.max() / per10.mean():.3f} (configured {peak_to_mean})"
        )


def main() -> None:
    print("== shapes (4 replications each; expectations = exact integral of the rate) ==")
    arr = {"kind": "diurnal", "mean_rps": 2.0, "peak_hour": 9.5, "peak_to_mean": 3.0, "floor": 0.1, "hump_hour": 15.0}
    chi_square("diurnal (floor 0.1, hump 15h), 2 rps, 1 day", S._exp(arr), 9, 3.0)
    e = S._exp({"kind": "hourly", "mean_rps": 2.0, "multipliers": MULT}, seed=12)
    chi_square("hourly (24 multipliers), 2 rps, 1 day", e, 10, max(MULT) / np.mean(MULT))
    factors = [1.0, 1.1, 1.0, 0.9, 0.8, 0.3, 0.25]
    arr = {"kind": "diurnal", "mean_rps": 2.0, "peak_hour": 10.5, "peak_to_mean": 2.5, "day_factors": factors}
    chi_square("weekly (day_factors), 2 rps, 7 days", S._exp(arr, horizon_h=168, start="mon"), 10, 2.5)
    chi_square("weekly (weekend_factor 0.35), 1 rps, 7 days", S._exp({"kind": "diurnal", "mean_rps": 1.0}, 168, "thu"))
    zones = [{"share": 0.6, "utc_offset_h": -5}, {"share": 0.3, "utc_offset_h": 1}, {"share": 0.1, "utc_offset_h": 5.5}]
    arr = {"kind": "diurnal", "mean_rps": 1.5, "peak_to_mean": 3.0, "timezones": zones, "weekend_factor": 0.3}
    chi_square("three time zones, Fri-Sun", S._exp(arr, horizon_h=72, start="fri"))
    prof = {"kind": "profile", "profile": "azure-code-week-2024", "mean_rps": 1.0}
    chi_square("azure-code-week-2024 profile, 1 rps, 7 days", S._exp(prof, horizon_h=168, start="fri"))

    print("== trace replay ==")
    n, s_in, s_out, _ = T._azure_reference(T.CONV)
    r = T._replay(T._exp({"kind": "trace", "file": "azure_llm_2023_conv.csv"}))
    print(
        f"azure 2023 conv: csv rows {n}, replayed {r['t'].size}; input tokens csv {s_in} replayed {int(r['in'].sum())};"
        f" output tokens csv {s_out} replayed {int(r['out'].sum())}"
    )

    print("== burst (count 5000, 09:00 +- 300 s, class batch) ==")
    for rep in range(4):
        t0, _ = B._gen(B._exp(B.BASE), rep)
        t1, c1 = B._gen(B._exp({**B.BASE, "bursts": [B.BURST]}), rep)
        lo, hi = 9 * 3600 - 300, 9 * 3600 + 300
        added = int(((t1 >= lo) & (t1 < hi)).sum() - ((t0 >= lo) & (t0 < hi)).sum())
        new = ~np.isin(t1, t0)
        print(
            f"  rep {rep}: added in window {added}, outside unchanged {np.array_equal(t1[~new], t0)},"
            f" class batch {int((c1[new] == 1).sum())}/{int(new.sum())}"
        )

    print("== over-dispersion (6 replications x 24 h, constant rate) ==")
    for od, rate, w in [
        ({"cv": 0.5, "correlation_s": 120}, 5.0, 60.0),
        ({"cv": 0.3, "correlation_s": 30}, 20.0, 60.0),
        ({"index_of_dispersion": 4.0, "window_s": 60, "correlation_s": 300}, 10.0, 60.0),
        ({"index_of_dispersion": 8.0, "window_s": 600, "correlation_s": 900}, 3.0, 600.0),
    ]:
        exp = O._exp({"kind": "constant", "mean_rps": rate, "overdispersion": od})
        cv = resolved_cv(exp)
        target = index_of_dispersion(rate, w, cv, od["correlation_s"])
        got, _ = O._dispersion(exp, w)
        print(
            f"  {od} at {rate} rps, window {w:g} s: cv {cv:.4f}, D configured {target:.3f}, measured {got:.3f}"
            f" ({got / target - 1:+.1%})"
        )


if __name__ == "__main__":
    main()
