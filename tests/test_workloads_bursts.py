"""The 9 a.m. enterprise burst: its count lands inside its window, in its class, on its days."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from pydantic import ValidationError
from scipy import stats

from sim.config import Experiment
from sim.config.workload import BurstSpec
from workloads.generator import RequestGenerator

HOUR = 3600.0
DAY = 86400.0
CLASSES = [{"name": "chat", "share": 0.9}, {"name": "batch", "share": 0.1}]


def _exp(arrivals: dict[str, Any], horizon_h: float = 24, start: str = "tue", seed: int = 5, **wl: Any) -> Experiment:
    return Experiment.model_validate(
        {
            "seed": seed,
            "horizon_h": horizon_h,
            "start_weekday": start,
            "workload": {"arrivals": arrivals, "classes": CLASSES, **wl},
        }
    )


def _gen(exp: Experiment, rep: int = 0) -> tuple[np.ndarray, np.ndarray]:
    blocks = list(RequestGenerator(exp, rep).blocks())
    return np.concatenate([b.arrival_at for b in blocks]), np.concatenate([b.class_idx for b in blocks])


BASE = {"kind": "diurnal", "mean_rps": 1.0, "peak_hour": 9.5, "peak_to_mean": 3.0}
BURST = {"at_h": 9.0, "half_width_s": 300.0, "count": 5000, "class_name": "batch"}


@pytest.mark.parametrize("rep", range(4))
def test_burst_adds_exactly_its_count_inside_its_window_in_its_class(rep: int) -> None:
    t0, c0 = _gen(_exp(BASE), rep)
    t1, c1 = _gen(_exp({**BASE, "bursts": [BURST]}), rep)
    lo, hi = 9 * HOUR - 300, 9 * HOUR + 300
    inside0 = (t0 >= lo) & (t0 < hi)
    inside1 = (t1 >= lo) & (t1 < hi)
    assert int(inside1.sum()) - int(inside0.sum()) == 5000
    # outside the window nothing changes: same times, same classes (the smooth traffic keeps its draws)
    assert np.array_equal(t1[~inside1], t0[~inside0])
    assert np.array_equal(c1[~inside1], c0[~inside0])
    # the new requests are exactly the times not in the smooth traffic, all of class batch
    new = ~np.isin(t1, t0)
    assert int(new.sum()) == 5000 and np.all(c1[new] == 1)
    # spread uniformly over the window: chi-square over 10 equal bins
    counts = np.histogram(t1[new], bins=np.linspace(lo, hi, 11))[0]
    assert stats.chisquare(counts).pvalue > 0.01


def test_burst_days_poisson_counts_rates_and_normal_shape() -> None:
    bursts = [
        {"name": "exact", "at_h": 9.0, "count": 800, "days": "weekdays"},
        {"name": "pois", "at_h": 13.0, "half_width_s": 120, "count": 400, "poisson": True, "days": ["sat", "sun"]},
        {"name": "rate", "at_h": 18.0, "half_width_s": 60, "rate_rps": 2.0, "days": "all", "shape": "normal"},
    ]
    exp = _exp({"kind": "constant", "mean_rps": 0.0, "bursts": bursts}, horizon_h=7 * 24, start="mon", seed=9)
    t, _ = _gen(exp)
    day = (t // DAY).astype(int)
    hour = (t % DAY) / HOUR
    exact = np.abs(hour - 9.0) < 300 / HOUR
    per_day = np.bincount(day[exact], minlength=7)
    assert per_day.tolist() == [800] * 5 + [0, 0]
    pois = np.bincount(day[np.abs(hour - 13.0) < 120 / HOUR], minlength=7)
    assert pois[:5].sum() == 0
    assert abs(pois[5:].mean() - 400) < 4 * np.sqrt(400 / 2)
    assert pois[5] != pois[6]  # Poisson, not exact (equal with probability ~2%: fixed seed)
    rate_sel = np.abs(hour - 18.0) < 60 / HOUR
    per = np.bincount(day[rate_sel], minlength=7)
    assert abs(per.mean() - 240) < 4 * np.sqrt(240 / 7)
    # normal shape: sd of a normal with sd 30 s truncated at +-2 sd
    offs = (t[rate_sel] % DAY) - 18 * HOUR
    sd = stats.truncnorm(-2, 2, scale=30.0).std()
    assert offs.std() == pytest.approx(sd, rel=0.08)
    assert np.all(np.abs(offs) <= 60)


def test_burst_composes_with_overdispersion_and_sessions() -> None:
    arr = {**BASE, "overdispersion": {"cv": 0.4, "correlation_s": 600}}
    sessions = {"turns": {"dist": "geometric", "mean": 3}, "think_time_s": {"dist": "exponential", "mean": 20}}
    t0, _ = _gen(_exp(arr, sessions=sessions))
    t1, c1 = _gen(_exp({**arr, "bursts": [BURST]}, sessions=sessions))
    lo, hi = 9 * HOUR - 300, 9 * HOUR + 300
    assert int(((t1 >= lo) & (t1 < hi)).sum()) - int(((t0 >= lo) & (t0 < hi)).sum()) == 5000
    new = ~np.isin(t1, t0)
    assert int(new.sum()) == 5000 and np.all(c1[new] == 1)


def test_burst_spec_checks() -> None:
    with pytest.raises(ValidationError, match="exactly one of count or rate_rps"):
        BurstSpec(at_h=9)
    with pytest.raises(ValidationError, match="exactly one of count or rate_rps"):
        BurstSpec(count=3, rate_rps=1.0)
    with pytest.raises(ValidationError, match="poisson applies to count"):
        BurstSpec(rate_rps=1.0, poisson=True)
    with pytest.raises(ValidationError, match="unknown class 'nope'"):
        _exp({**BASE, "bursts": [{**BURST, "class_name": "nope"}]})
