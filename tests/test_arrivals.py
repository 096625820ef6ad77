"""Rate curves (constant, diurnal, hourly) and exact non-homogeneous Poisson arrivals."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import special
from scipy.stats import chi2

from sim.config.workload import ArrivalsSpec
from workloads.arrivals import RateCurve, poisson_arrivals
from workloads.shapes import build_rate_curve, diurnal_kappa

DAY = 86400
STEPS_PER_DAY = DAY // 60


def _day_means(curve: RateCurve, days: int) -> np.ndarray:
    return curve.rates[: days * STEPS_PER_DAY].reshape(days, STEPS_PER_DAY).mean(axis=1)


@pytest.mark.parametrize("ptm", [1.0, 1.2, 3.0, 10.0, 50.0])
def test_diurnal_kappa_solves_peak_to_mean(ptm: float) -> None:
    k = diurnal_kappa(ptm)
    assert k >= 0
    assert math.exp(k) / special.i0(k) == pytest.approx(ptm, rel=1e-10)
    assert 1.0 / special.i0e(k) == pytest.approx(ptm, rel=1e-10)
    if ptm == 1.0:
        assert k == 0.0


@pytest.mark.parametrize(("ptm", "peak_hour"), [(3.0, 9.0), (1.5, 14.25), (10.0, 20.0), (50.0, 0.5)])
def test_diurnal_day_mean_and_peak(ptm: float, peak_hour: float) -> None:
    spec = ArrivalsSpec(kind="diurnal", mean_rps=12.0, peak_hour=peak_hour, peak_to_mean=ptm)
    curve = build_rate_curve(spec, "mon", 7 * DAY)
    means = _day_means(curve, 7)
    np.testing.assert_allclose(means[:5], 12.0, rtol=1e-9)
    day0 = curve.rates[:STEPS_PER_DAY]
    k = int(np.argmax(day0))
    peak_s = peak_hour * 3600
    dist = min(abs(k * 60 + 30 - peak_s), DAY - abs(k * 60 + 30 - peak_s))  # step midpoint to the peak
    assert dist <= 60
    assert day0.max() / 12.0 == pytest.approx(ptm, rel=0.02)
    assert day0.max() / 12.0 <= ptm * (1 + 1e-12)


def test_diurnal_peak_hour_is_the_busiest_hour() -> None:
    spec = ArrivalsSpec(kind="diurnal", mean_rps=5.0, peak_hour=9.5, peak_to_mean=3.0)
    curve = build_rate_curve(spec, "tue", DAY)
    hourly = [curve.total(h * 3600, (h + 1) * 3600) for h in range(24)]
    assert int(np.argmax(hourly)) == 9
    assert sum(hourly) == pytest.approx(5.0 * DAY, rel=1e-9)


def test_diurnal_weekend_factor_and_start_weekday() -> None:
    spec = ArrivalsSpec(kind="diurnal", mean_rps=10.0, weekend_factor=0.35)
    means = _day_means(build_rate_curve(spec, "mon", 14 * DAY), 14)
    expected = np.array([1, 1, 1, 1, 1, 0.35, 0.35] * 2) * 10.0
    np.testing.assert_allclose(means, expected, rtol=1e-9)
    means = _day_means(build_rate_curve(spec, "sat", 3 * DAY), 3)
    np.testing.assert_allclose(means, [3.5, 3.5, 10.0], rtol=1e-9)
    # the shape of a weekend day is the weekday shape scaled
    c = build_rate_curve(spec, "fri", 2 * DAY)
    np.testing.assert_allclose(c.rates[STEPS_PER_DAY:], 0.35 * c.rates[:STEPS_PER_DAY], rtol=1e-9)


def test_flat_diurnal_equals_constant() -> None:
    flat = build_rate_curve(ArrivalsSpec(kind="diurnal", mean_rps=4.0, peak_to_mean=1.0), "mon", DAY)
    const = build_rate_curve(ArrivalsSpec(kind="constant", mean_rps=4.0), "mon", DAY)
    np.testing.assert_allclose(flat.rates, 4.0, rtol=1e-12)
    np.testing.assert_array_equal(const.rates, 4.0)
    assert const.total(0, DAY) == pytest.approx(4.0 * DAY)


def test_hourly_normalisation_and_weekend() -> None:
    mult = [float(h % 5) for h in range(24)]
    spec = ArrivalsSpec(kind="hourly", mean_rps=6.0, multipliers=mult, weekend_factor=0.5)
    curve = build_rate_curve(spec, "fri", 2 * DAY)
    means = _day_means(curve, 2)
    np.testing.assert_allclose(means, [6.0, 3.0], rtol=1e-12)
    norm = np.array(mult) / np.mean(mult)
    per_hour = curve.rates[:STEPS_PER_DAY].reshape(24, 60)
    np.testing.assert_allclose(per_hour, 6.0 * norm[:, None] * np.ones((1, 60)), rtol=1e-9, atol=1e-12)


def test_steps_are_exact_averages_for_any_step() -> None:
    spec = ArrivalsSpec(kind="diurnal", mean_rps=3.0, peak_to_mean=4.0)
    a = build_rate_curve(spec, "fri", 3 * DAY, step_s=60.0)
    b = build_rate_curve(spec, "fri", 3 * DAY, step_s=7.3)  # steps straddle seconds, hours and days
    assert b.rates.size == math.ceil(3 * DAY / 7.3)
    # both grids hold t = 4380 j (600 steps of 7.3 s, 73 of 60 s): the cumulatives agree there
    t = 4380.0 * np.arange(1, 3 * DAY // 4380 + 1)
    np.testing.assert_allclose(b.cumulative(t), a.cumulative(t), rtol=1e-11)
    assert a.total(0, 3 * DAY) == pytest.approx(3.0 * DAY * (1 + 0.35 + 0.35), rel=1e-12)


def test_trace_kind_has_no_rate_curve() -> None:
    spec = ArrivalsSpec(kind="trace", file="x.csv")
    with pytest.raises(ValueError, match="no rate curve"):
        build_rate_curve(spec, "mon", DAY)


def test_building_a_month_is_cheap_enough_to_run() -> None:
    curve = build_rate_curve(ArrivalsSpec(), "mon", 30 * DAY)
    assert curve.rates.size == 30 * STEPS_PER_DAY
    assert curve.horizon_s == 30 * DAY


def test_cumulative_rate_at_and_inverse_are_consistent() -> None:
    curve = RateCurve(np.array([2.0, 0.0, 0.0, 1.0, 3.0]), step_s=10.0)
    assert curve.cumulative(0.0) == 0.0
    assert curve.cumulative(15.0) == 20.0
    assert curve.cumulative(35.0) == 25.0
    assert curve.cumulative(1000.0) == 60.0
    assert curve.total(5.0, 45.0) == pytest.approx(35.0)
    assert curve.rate_at(12.0) == 0.0 and curve.rate_at(41.0) == 3.0 and curve.rate_at(-1.0) == 0.0
    assert curve.rate_at(50.0) == 0.0
    # Lambda = 20 is reached at t = 10 and stays flat until 30: the inverse skips the zero-rate steps
    assert curve.inverse_cumulative(20.0) == 30.0
    assert curve.inverse_cumulative(19.0) == pytest.approx(9.5)
    np.testing.assert_allclose(curve.inverse_cumulative(np.array([0.0, 21.0, 40.0])), [0.0, 31.0, 40.0 + 10.0 / 3.0])


# ---------------------------------------------------------------------------------------- Poisson


def test_poisson_counts_per_hour_chi_square() -> None:
    spec = ArrivalsSpec(kind="diurnal", mean_rps=2.0, peak_hour=9.0, peak_to_mean=3.0)
    curve = build_rate_curve(spec, "wed", DAY)
    edges = np.arange(25) * 3600.0
    expected = np.array([curve.total(edges[h], edges[h + 1]) for h in range(24)])
    stat, totals = 0.0, []
    for ss in np.random.SeedSequence(1234).spawn(8):
        t = poisson_arrivals(curve, 0.0, DAY, np.random.default_rng(ss))
        counts, _ = np.histogram(t, bins=edges)
        stat += float(np.sum((counts - expected) ** 2 / expected))
        totals.append(t.size)
    df = 8 * 24  # every cell's expectation is known exactly, nothing is fitted
    assert chi2.sf(stat, df) > 0.01, stat
    assert np.mean(totals) == pytest.approx(2.0 * DAY, rel=0.01)


def test_zero_rate_steps_get_no_arrivals() -> None:
    mult = [0.0] * 6 + [1.0, 2.0, 3.0, 0.0, 3.0, 2.0] + [1.0] * 10 + [0.0, 0.0]
    spec = ArrivalsSpec(kind="hourly", mean_rps=5.0, multipliers=mult, weekend_factor=0.0)
    curve = build_rate_curve(spec, "fri", 3 * DAY)
    t = poisson_arrivals(curve, 0.0, 3 * DAY, np.random.default_rng(7))
    assert t.size > 0
    assert np.all(curve.rate_at(t) > 0)
    hours = (t // 3600).astype(int)
    assert set(np.unique(hours % 24)) <= {h for h in range(24) if mult[h] > 0}
    assert np.all(t < DAY)  # Saturday and Sunday have factor 0
    assert t.size == pytest.approx(5.0 * DAY, rel=0.02)


def test_poisson_window_and_reproducibility() -> None:
    curve = build_rate_curve(ArrivalsSpec(kind="constant", mean_rps=3.0), "mon", DAY)
    a = poisson_arrivals(curve, 100.0, 200.0, np.random.default_rng(3))
    b = poisson_arrivals(curve, 100.0, 200.0, np.random.default_rng(3))
    assert np.array_equal(a, b)
    assert np.all((a >= 100.0) & (a < 200.0))
    assert poisson_arrivals(curve, 200.0, 200.0, np.random.default_rng(3)).size == 0
    assert poisson_arrivals(curve, DAY + 10.0, DAY + 20.0, np.random.default_rng(3)).size == 0


_rates = st.lists(st.one_of(st.just(0.0), st.floats(min_value=0.01, max_value=5.0)), min_size=1, max_size=40)


@settings(max_examples=50, deadline=None)
@given(
    rates=_rates,
    step=st.floats(min_value=0.5, max_value=120.0),
    a=st.floats(min_value=-0.1, max_value=1.1),
    b=st.floats(min_value=-0.1, max_value=1.1),
    seed=st.integers(min_value=0, max_value=2**32 - 1),
)
def test_poisson_arrivals_sorted_and_within_window(
    rates: list[float], step: float, a: float, b: float, seed: int
) -> None:
    curve = RateCurve(np.array(rates), step)
    t0, t1 = sorted((a * curve.horizon_s, b * curve.horizon_s))
    t = poisson_arrivals(curve, t0, t1, np.random.default_rng(seed))
    assert t.dtype == np.float64
    assert np.all(np.diff(t) >= 0)
    assert np.all((t >= t0) & (t < t1))
    assert np.all(curve.rate_at(t) > 0)


@settings(max_examples=50, deadline=None)
@given(rates=_rates, step=st.floats(min_value=0.5, max_value=120.0), u=st.floats(0.0, 1.0, exclude_max=True))
def test_inverse_of_cumulative_is_identity_on_positive_steps(rates: list[float], step: float, u: float) -> None:
    curve = RateCurve(np.array(rates), step)
    t = u * curve.horizon_s
    if curve.rate_at(t) > 0:
        assert curve.inverse_cumulative(curve.cumulative(t)) == pytest.approx(t, abs=1e-9 * max(1.0, t) / 0.01)
