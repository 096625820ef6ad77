"""workloads/laws.py gives the same bits as scipy.stats' frozen laws, where token counts use them (x >= 1.5,
0 < q < 1), so the token counts' exact means (summary.json's latency_capacity) do not move without scipy.stats."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from workloads.distributions import Exponential, Lognormal
from workloads.laws import ExponentialLaw, LognormalLaw
from workloads.token_counts import _discretised_moments

SIGMA = st.floats(0.05, 3.0)
SCALE = st.floats(1.0, 1e5)


def _same(law: object, ref: object, x: np.ndarray, q: np.ndarray) -> None:
    for name, arg in (("cdf", x), ("sf", x), ("ppf", q), ("isf", q)):
        got, want = getattr(law, name)(arg), getattr(ref, name)(arg)
        assert np.array_equal(got, want), name  # bit for bit, not within a tolerance
        assert float(getattr(law, name)(arg[3])) == float(getattr(ref, name)(arg[3])), name  # a scalar too
    assert float(law.median()) == float(ref.median())  # type: ignore[attr-defined]


def _points(scale: float) -> tuple[np.ndarray, np.ndarray]:
    x = np.concatenate([np.arange(1.5, 200.5), np.geomspace(1.5, 1e4 * scale, 300)])
    q = np.concatenate([[1e-14, 1e-9, 0.5, 1 - 1e-9], np.linspace(0.001, 0.999, 200)])
    return x, q


@settings(max_examples=40, deadline=None)
@given(SIGMA, SCALE)
def test_lognormal_law_is_scipy_lognorm(sigma: float, median: float) -> None:
    x, q = _points(median)
    _same(LognormalLaw(sigma, median), stats.lognorm(s=sigma, scale=median), x, q)


@settings(max_examples=40, deadline=None)
@given(SCALE)
def test_exponential_law_is_scipy_expon(mean: float) -> None:
    x, q = _points(mean)
    _same(ExponentialLaw(mean), stats.expon(scale=mean), x, q)


def test_default_experiment_token_means_unchanged() -> None:
    """The discretised means with the law equal those with scipy.stats' lognorm (the old path), exactly."""

    class ScipyLognormal(Lognormal):
        def _law(self) -> object:
            return stats.lognorm(s=self.sigma, scale=self.median)

    class ScipyExponential(Exponential):
        def _law(self) -> object:
            return stats.expon(scale=self.mean)

    for median, sigma in ((600, 0.9), (220, 0.7), (3000, 0.5), (40, 2.5)):
        assert _discretised_moments(Lognormal(median, sigma)) == _discretised_moments(ScipyLognormal(median, sigma))
    for mean in (3.0, 300.0, 12345.6):
        assert _discretised_moments(Exponential(mean)) == _discretised_moments(ScipyExponential(mean))
