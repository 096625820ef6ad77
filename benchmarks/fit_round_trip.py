"""Round trip of `capsim fit` on the shipped traces: fit each log, simulate the fitted workload and compare.

    python -m benchmarks.fit_round_trip [--reps 5] [--out DIR]

For each trace: requests per hour of the log against the mean over replications of the fitted workload
(the same span), the mean input and output tokens (error in units of the log's standard error), the p50
and p95 sizes and the index of dispersion of per-minute counts (variance / mean after removing each hour's
mean). The Azure 2024 code week ships as a per-minute band, not a request log: a log is drawn from it at
1/50 of its volume (Poisson counts per digitised column, uniform times within it) and its hourly curve is
compared with the shipped hourly profile too.
"""

from __future__ import annotations

import argparse
import math
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from sim.engine.loading import load_config
from workloads.files import PROFILES_DIR
from workloads.fit import fit_log
from workloads.fit.writer import write_experiment
from workloads.generator import RequestGenerator

TRACES = ("azure_llm_2023_code.csv", "azure_llm_2023_conv.csv", "mooncake_fast25_conversation_trace.jsonl")


def azure_week_log(path: Path, fraction: float = 1 / 50, seed: int = 2024) -> Path:
    cols = pd.read_csv(PROFILES_DIR / "azure_llm_2024_code_1week_rpm_digitized.csv")

    def epoch(s: pd.Series) -> np.ndarray:
        return pd.to_datetime(s, utc=True).to_numpy(dtype="datetime64[ns]").astype(np.int64) / 1e9

    t0, t1 = epoch(cols["t_start_utc"]), epoch(cols["t_end_utc"])
    rate = cols["rpm_mid"].to_numpy() / 60.0 * fraction
    rng = np.random.default_rng(seed)
    n = rng.poisson(rate * (t1 - t0))
    times = np.concatenate([rng.uniform(a, b, k) for a, b, k in zip(t0, t1, n, strict=True)])
    pd.DataFrame({"TIMESTAMP": times.round(3), "ContextTokens": 1, "GeneratedTokens": 1}).to_parquet(path)
    return path


def dispersion(t: np.ndarray, t0: float, t1: float) -> float:
    """Var / mean of per-minute counts around each hour's own mean."""
    m = np.floor((t[(t >= t0) & (t < t1)] - t0) / 60.0).astype(np.int64)
    nmin = int((t1 - t0) // 60)
    counts = np.bincount(m[m < nmin], minlength=nmin)[: (nmin // 60) * 60].reshape(-1, 60).astype(float)
    if counts.size == 0:
        return float("nan")
    resid = counts - counts.mean(axis=1, keepdims=True)
    return float((resid**2).sum() / (counts.size - counts.shape[0]) / max(counts.mean(), 1e-12))


def round_trip(log: Path, reps: int, out: Path) -> dict[str, float]:
    fit = fit_log(log)
    cfg = out / f"{log.stem}.yaml"
    write_experiment(fit, cfg)
    exp = load_config(str(cfg))
    horizon_s = exp.horizon_h * 3600.0
    span_s = fit.rates.t1 - fit.rates.t0
    sim_rates, sim_in, sim_out, sim_d = [], [], [], []
    for rep in range(reps):
        blocks = list(RequestGenerator(exp, rep).blocks())
        t = np.concatenate([b.arrival_at for b in blocks])
        sim_rates.append(t.size / horizon_s)
        sim_in.append(np.concatenate([b.input_tokens for b in blocks]))
        sim_out.append(np.concatenate([b.output_tokens for b in blocks]))
        sim_d.append(dispersion(t, 0.0, horizon_s))
    lg = fit.log
    sized = lg.sized()
    tin, tout = np.maximum(lg.input_tokens[sized], 1), np.maximum(lg.output_tokens[sized], 1)
    si, so = np.concatenate(sim_in), np.concatenate(sim_out)
    local = lg.local_s
    row = {
        "requests": float(lg.size),
        "log_rps": lg.size / span_s,
        "sim_rps": float(np.mean(sim_rates)),
        "rate_err_pct": 100 * (float(np.mean(sim_rates)) / (lg.size / span_s) - 1),
        "rate_se_pct": 100 / math.sqrt(lg.size),
        "in_mean_log": float(tin.mean()),
        "in_mean_sim": float(si.mean()),
        "in_err_se": float((si.mean() - tin.mean()) / (tin.std() / math.sqrt(tin.size))),
        "out_mean_log": float(tout.mean()),
        "out_mean_sim": float(so.mean()),
        "out_err_se": float((so.mean() - tout.mean()) / (tout.std() / math.sqrt(tout.size))),
        "in_p95_log": float(np.quantile(tin, 0.95)),
        "in_p95_sim": float(np.quantile(si, 0.95)),
        "D_log": dispersion(local, float(local[0]), float(local[0]) + span_s),
        "D_sim": float(np.nanmean(sim_d)),
    }
    return row


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        out = args.out or Path(tmp)
        out.mkdir(parents=True, exist_ok=True)
        rows = {name: round_trip(PROFILES_DIR / name, args.reps, out) for name in TRACES}
        week = azure_week_log(out / "azure_2024_code_week_1in50.parquet")
        rows["azure_2024_code_week (1/50 draw)"] = round_trip(week, args.reps, out)
        fit = fit_log(week)
        from workloads.named_profiles import hour_of_week_multipliers

        prof = hour_of_week_multipliers("azure-code-week-2024")
        seen = fit.rates.exposure_h > 0.999
        rel = fit.rates.multipliers[seen] / prof[seen] - 1.0
        counts = fit.rates.hourly_rate()[seen]
        print(
            f"azure 2024 week vs the shipped hourly profile over {int(seen.sum())} whole hours: relative RMS "
            f"{np.sqrt(np.mean(rel**2)):.2%}, largest {np.abs(rel).max():.2%}; Poisson part of the RMS "
            f"{np.sqrt(np.mean(1.0 / counts)):.2%}; weekend factor {fit.rates.weekend_factor():.3f} (profile "
            f"{prof.reshape(7, 24)[5:].mean() / prof.reshape(7, 24)[:5].mean():.3f})"
        )
    frame = pd.DataFrame(rows).T
    with pd.option_context("display.width", 250, "display.max_columns", 30, "display.precision", 4):
        print(frame)


if __name__ == "__main__":
    main()
