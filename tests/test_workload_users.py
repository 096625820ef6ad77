"""`workload.users`: monthly active users x daily share x interactions per active day becomes the rate, so
that the week's average day carries exactly that many requests under the workload's own weekday factors."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sim.config import Experiment
from sim.engine.loading import load_config_text
from sim.engine.replication import simulate
from sim.engine.variants import derive
from tests.test_config_errors import assert_user_error, capsim
from workloads.shapes import build_rate_curve

WEEK_S = 7 * 86400.0
USERS = {"monthly_active": 10_000, "daily_active_share": 0.5, "interactions_per_active_day": 1}


def _exp(arrivals: dict, users: dict = USERS, start: str = "mon") -> Experiment:
    return Experiment.model_validate({"start_weekday": start, "workload": {"arrivals": arrivals, "users": users}})


def week_requests(exp: Experiment) -> float:
    """Expected requests over one week of the rate curve the simulator draws arrivals from."""
    curve = build_rate_curve(exp.workload.arrivals, exp.start_weekday, WEEK_S)
    return float(np.sum(curve.rates) * curve.step_s)


def test_the_seeds_10k_mau_is_5000_requests_a_day() -> None:
    exp = _exp({"kind": "diurnal", "weekend_factor": 0.35})
    # 10,000 x 0.5 x 1 = 5,000 requests on the average day; weekdays 1, weekends 0.35 -> mean(w) = 5.7/7
    assert exp.workload.arrivals.mean_rps == pytest.approx(5000 / 86400 / (5.7 / 7), rel=1e-15)
    assert week_requests(exp) == pytest.approx(7 * 5000, rel=1e-9)
    flat = _exp({"kind": "constant"})
    assert flat.workload.arrivals.mean_rps == pytest.approx(5000 / 86400, rel=1e-15)


@settings(max_examples=40, deadline=None)
@given(
    mau=st.floats(1e3, 1e8),
    share=st.floats(0.01, 1.0),
    per_day=st.floats(0.1, 50.0),
    kind=st.sampled_from(["constant", "diurnal", "hourly", "profile"]),
    weekend=st.floats(0.0, 2.0),
    day_factors=st.none() | st.lists(st.floats(0.05, 3.0), min_size=7, max_size=7),
    start=st.sampled_from(["mon", "wed", "sat", "sun"]),
    zones=st.booleans(),
)
def test_any_week_carries_seven_average_days(
    mau: float,
    share: float,
    per_day: float,
    kind: str,
    weekend: float,
    day_factors: list[float] | None,
    start: str,
    zones: bool,
) -> None:
    arrivals: dict = {"kind": kind, "weekend_factor": weekend}
    if kind == "hourly":
        arrivals["multipliers"] = [1 + (h % 5) for h in range(24)]
    if kind == "profile":
        arrivals["profile"] = "azure-code-week-2024"
    elif day_factors is not None:
        arrivals["day_factors"] = day_factors
    if zones and kind != "profile":
        arrivals["timezones"] = [{"share": 0.6, "utc_offset_h": -5}, {"share": 0.4, "utc_offset_h": 1}]
    users = {"monthly_active": mau, "daily_active_share": share, "interactions_per_active_day": per_day}
    exp = _exp(arrivals, users, start)
    assert week_requests(exp) == pytest.approx(7 * mau * share * per_day, rel=1e-9)


def test_a_simulated_week_counts_within_poisson_error() -> None:
    text = """
name: users-week
seed: 4
horizon_h: 168
start_weekday: thu
workload:
  arrivals: {kind: diurnal, weekend_factor: 0.4, peak_to_mean: 2.5}
  users: {monthly_active: 4000, daily_active_share: 0.25, interactions_per_active_day: 3}
  classes:
    - {name: c, share: 1.0, input_tokens: {dist: constant, value: 50}, output_tokens: {dist: constant, value: 10}}
routing: {policy: api_only}
"""
    expected = 7 * 4000 * 0.25 * 3  # 21,000
    for rep in range(2):
        n = simulate(load_config_text(text), rep).metrics["requests"]
        assert abs(n - expected) < 4 * math.sqrt(expected), (rep, n)  # Poisson count, 4 sd


def test_both_rate_and_users_is_refused_unless_they_agree(tmp_path: Path) -> None:
    cfg = tmp_path / "both.yaml"
    cfg.write_text(
        "workload:\n  arrivals: {mean_rps: 3}\n"
        "  users: {monthly_active: 1000, daily_active_share: 0.5, interactions_per_active_day: 2}\n"
    )
    assert_user_error(capsim("validate", str(cfg)), "workload", "exactly one of workload.users and")
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "workload:\n  users: {monthly_active: 1000, daily_active_share: 1.5, interactions_per_active_day: 2}\n"
    )
    assert_user_error(capsim("validate", str(bad)), "workload.users.daily_active_share (line 2)")
    # the resolved config carries both, consistent, and validates to the same experiment
    exp = _exp({"kind": "diurnal"})
    assert Experiment.model_validate(exp.model_dump(mode="json")) == exp


def test_users_do_not_apply_to_a_trace(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="not to kind 'trace'"):
        Experiment.model_validate(
            {"workload": {"arrivals": {"kind": "trace", "file": "x.csv"}, "users": USERS}}, context={}
        )


def test_variants_rederive_the_rate() -> None:
    exp = _exp({"kind": "diurnal", "weekend_factor": 0.35})
    r0 = exp.workload.arrivals.mean_rps
    assert derive(exp, [("workload.users.monthly_active", 30_000)]).workload.arrivals.mean_rps == pytest.approx(3 * r0)
    flat_week = derive(exp, [("workload.arrivals.weekend_factor", 1.0)]).workload.arrivals
    assert flat_week.mean_rps == pytest.approx(5000 / 86400, rel=1e-12)
    scaled = derive(exp, [("workload.arrivals.mean_rps", 2.0)]).workload  # breakeven's scaling: the rate wins
    assert scaled.users is None and scaled.arrivals.mean_rps == 2.0
