"""One simulated week of the Azure 2024 code profile beside the real series (docs/azure_week_profile.png).

    PYTHONPATH=. python -m workloads.week_plot docs/azure_week_profile.png

Top: requests/s per hour, simulated (kind profile, mean_rps = the real mean, clock on UTC from Friday
2024-05-10) against the real hourly series. Bottom: Wednesday, per minute: the real digitised band
(min..max of the per-minute rate within each ~7.2-minute plot column) against the same band of a Poisson
simulation and of an over-dispersed one, which is how `overdispersion` can be calibrated.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from sim.config import Experiment
from sim.core.calendar import DAY_S, HOUR_S
from workloads.files import PROFILES_DIR
from workloads.generator import make_arrival_source
from workloads.named_profiles import real_hourly_series

WEEK_H = 168
RPM_FILE = "azure_llm_2024_code_1week_rpm_digitized.csv"
CALIBRATED = {"cv": 0.18, "correlation_s": 60.0}  # matches the real per-minute band width (see main)


@dataclass
class WeekComparison:
    real_hourly_rps: np.ndarray  # 168
    sim_hourly_rps: np.ndarray  # 168
    sim_minute_counts: np.ndarray  # 10080, Poisson
    noisy_minute_counts: np.ndarray  # 10080, over-dispersed
    band: pd.DataFrame  # the real rpm columns with seconds since the week's start


def _experiment(mean_rps: float, seed: int, overdispersion: dict[str, float] | None) -> Experiment:
    arrivals: dict[str, object] = {"kind": "profile", "profile": "azure-code-week-2024", "mean_rps": mean_rps}
    if overdispersion:
        arrivals["overdispersion"] = overdispersion
    return Experiment.model_validate(
        {"seed": seed, "horizon_h": WEEK_H, "start_weekday": "fri", "workload": {"arrivals": arrivals}}
    )


def minute_counts(exp: Experiment, replication: int = 0) -> np.ndarray:
    """Arrivals per minute over the horizon, generated a day at a time."""
    horizon = exp.horizon_h * HOUR_S
    src = make_arrival_source(exp, replication, horizon)
    counts = np.zeros(int(round(horizon / 60.0)), dtype=np.int64)
    t0 = 0.0
    while t0 < horizon:
        t1 = min(t0 + DAY_S, horizon)
        t = src.arrivals(t0, t1)[0]
        counts += np.bincount((t // 60.0).astype(np.int64), minlength=counts.size)[: counts.size]
        t0 = t1
    return counts


def compare_week(seed: int = 2024, overdispersion: dict[str, float] | None = None) -> WeekComparison:
    times, real = real_hourly_series("azure-code-week-2024")
    mean = float(real.mean())
    od = overdispersion or CALIBRATED
    plain = minute_counts(_experiment(mean, seed, None))
    noisy = minute_counts(_experiment(mean, seed, od))
    band = pd.read_csv(PROFILES_DIR / RPM_FILE)
    start = pd.Timestamp(times[0])
    band["t0_s"] = (pd.to_datetime(band["t_start_utc"]) - start).dt.total_seconds()
    band["t1_s"] = (pd.to_datetime(band["t_end_utc"]) - start).dt.total_seconds()
    return WeekComparison(real, plain.reshape(WEEK_H, 60).sum(axis=1) / HOUR_S, plain, noisy, band)


def band_of(minutes: np.ndarray, band: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """(min, max) of per-minute counts within each real plot column (whole minutes inside it)."""
    lo, hi = np.empty(len(band)), np.empty(len(band))
    for k, (a, b) in enumerate(zip(band["t0_s"], band["t1_s"], strict=True)):
        seg = minutes[int(np.ceil(a / 60.0)) : int(np.floor(b / 60.0))]
        lo[k], hi[k] = (seg.min(), seg.max()) if seg.size else (np.nan, np.nan)
    return lo, hi


def relative_band_width(lo: np.ndarray, hi: np.ndarray, mid: np.ndarray) -> float:
    return float(np.nanmean((hi - lo) / mid))


def plot(cmp: WeekComparison, path: Path) -> dict[str, float]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    band = cmp.band
    p_lo, p_hi = band_of(cmp.sim_minute_counts, band)
    n_lo, n_hi = band_of(cmp.noisy_minute_counts, band)
    mid = band["rpm_mid"].to_numpy(dtype=float)
    widths = {
        "real": relative_band_width(band["rpm_low"].to_numpy(float), band["rpm_high"].to_numpy(float), mid),
        "poisson": relative_band_width(p_lo, p_hi, mid),
        "overdispersed": relative_band_width(n_lo, n_hi, mid),
    }
    days = ["Fri", "Sat", "Sun", "Mon", "Tue", "Wed", "Thu"]
    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(11, 7.5), gridspec_kw={"height_ratios": [1.2, 1]})
    h = np.arange(WEEK_H) + 0.5
    ax1.plot(h, cmp.real_hourly_rps, color="black", lw=2.0, label="real (Azure 2024 code, hourly means, digitised)")
    ax1.step(
        h, cmp.sim_hourly_rps, where="mid", color="tab:orange", lw=1.2, label="simulated (kind: profile), one week"
    )
    ax1.set_xticks(np.arange(0, WEEK_H + 1, 24), [*days, ""])
    ax1.set_xlim(0, WEEK_H)
    ax1.set_ylabel("requests / s")
    ax1.set_title("azure-code-week-2024 profile: one simulated week beside the real hourly series (UTC)")
    ax1.grid(alpha=0.3)
    ax1.legend(loc="upper left", fontsize=8)

    wed = (band["t0_s"] >= 5 * DAY_S) & (band["t1_s"] <= 6 * DAY_S)
    x = (band.loc[wed, "t0_s"].to_numpy() - 5 * DAY_S) / HOUR_S
    ax2.fill_between(
        x,
        band.loc[wed, "rpm_low"],
        band.loc[wed, "rpm_high"],
        step="post",
        color="black",
        alpha=0.35,
        label=f"real per-minute band (mean width {widths['real']:.0%} of mid)",
    )
    ax2.fill_between(
        x,
        n_lo[wed],
        n_hi[wed],
        step="post",
        color="tab:blue",
        alpha=0.45,
        label=f"over-dispersed, cv 0.18, 60 s ({widths['overdispersed']:.0%})",
    )
    ax2.fill_between(
        x, p_lo[wed], p_hi[wed], step="post", color="tab:orange", alpha=0.8, label=f"Poisson ({widths['poisson']:.0%})"
    )
    ax2.set_xlim(0, 24)
    ax2.set_xlabel("Wednesday 2024-05-15, hour (UTC)")
    ax2.set_ylabel("requests / minute")
    ax2.grid(alpha=0.3)
    ax2.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return widths


def main(argv: list[str]) -> int:
    out = Path(argv[1] if len(argv) > 1 else "docs/azure_week_profile.png")
    cmp = compare_week()
    widths = plot(cmp, out)
    real, sim = cmp.real_hourly_rps, cmp.sim_hourly_rps
    print(f"wrote {out}")
    print(
        f"real: mean {real.mean():.2f} req/s, peak/mean {real.max() / real.mean():.3f} at hour {int(np.argmax(real))}"
    )
    print(f"sim:  mean {sim.mean():.2f} req/s, peak/mean {sim.max() / sim.mean():.3f} at hour {int(np.argmax(sim))}")
    rel = sim / real - 1
    print(f"hourly relative error: max {np.max(np.abs(rel)):.4f}, rms {np.sqrt(np.mean(rel**2)):.4f}")
    print("per-minute band width / mid: " + ", ".join(f"{k} {v:.3f}" for k, v in widths.items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
