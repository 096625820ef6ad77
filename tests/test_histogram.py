"""Tests for sim.histogram.LogHistogram."""

from __future__ import annotations

import json
import math
import pickle

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sim.core.histogram import GAMMA, MAX_VALUE, MIN_VALUE, NUM_BUCKETS, LogHistogram

QS = [0.01, 0.5, 0.9, 0.95, 0.99, 0.999]
REL_TOL = 1e-3

positive_floats = st.floats(min_value=1e-5, max_value=1e6, allow_nan=False, allow_infinity=False)
value_lists = st.lists(positive_floats, min_size=1, max_size=200)
maybe_empty_lists = st.lists(
    st.one_of(positive_floats, st.just(0.0), st.floats(min_value=1e7, max_value=1e9)), max_size=60
)


def assert_quantiles_close(values: np.ndarray, h: LogHistogram, qs=QS) -> None:
    got = h.quantiles(qs)
    assert got is not None
    for q, g in zip(qs, got, strict=True):
        exact = float(np.quantile(values, q, method="inverted_cdf"))
        assert abs(g - exact) <= REL_TOL * exact, (q, g, exact)
        assert h.quantile(q) == g


def assert_same(h1: LogHistogram, h2: LogHistogram) -> None:
    """Equal up to float rounding of the sum (which depends on addition order)."""
    assert h1.offset == h2.offset
    np.testing.assert_array_equal(h1.counts, h2.counts)
    assert h1.zero_count == h2.zero_count
    assert h1.overflow_count == h2.overflow_count
    assert h1.count == h2.count
    assert math.isclose(h1.sum, h2.sum, rel_tol=1e-9, abs_tol=1e-12)
    assert h1.min == h2.min
    assert h1.max == h2.max


# ---------------------------------------------------------------------- accuracy
@pytest.mark.parametrize(
    "sample",
    [
        lambda rng: rng.lognormal(mean=-1.0, sigma=1.5, size=200_000),
        lambda rng: rng.exponential(scale=0.25, size=200_000),
        lambda rng: rng.lognormal(mean=6.0, sigma=1.0, size=50_000),  # token-count-like
    ],
    ids=["lognormal", "exponential", "lognormal-large"],
)
def test_quantile_relative_error_on_distributions(sample) -> None:
    x = sample(np.random.default_rng(12345))
    h = LogHistogram(x)
    assert h.count == x.size
    assert_quantiles_close(x, h)
    # Also a dense grid of q values.
    assert_quantiles_close(x, h, qs=list(np.linspace(0.001, 0.999, 101)))


@settings(max_examples=100, deadline=None)
@given(value_lists)
def test_quantile_relative_error_property(values: list[float]) -> None:
    x = np.asarray(values)
    assert_quantiles_close(x, LogHistogram(x))


@settings(max_examples=50, deadline=None)
@given(value_lists, st.floats(min_value=0.0, max_value=1.0))
def test_quantile_any_q_within_bounds(values: list[float], q: float) -> None:
    x = np.asarray(values)
    h = LogHistogram(x)
    exact = float(np.quantile(x, q, method="inverted_cdf"))
    got = h.quantile(q)
    assert got is not None
    assert abs(got - exact) <= REL_TOL * exact
    assert h.min <= got <= h.max


def test_exact_summary_values() -> None:
    x = np.array([0.5, 2.0, 3.25, 10.0])
    h = LogHistogram(x)
    assert h.count == 4
    assert h.sum == pytest.approx(15.75)
    assert h.mean == pytest.approx(15.75 / 4)
    assert h.min == 0.5
    assert h.max == 10.0
    assert h.quantile(0.0) == 0.5
    assert h.quantile(1.0) == 10.0
    # rank = ceil(0.5 * 4) = 2 -> second smallest value (2.0), within 0.1%.
    assert h.quantile(0.5) == pytest.approx(2.0, rel=REL_TOL)
    assert h.quantile(0.51) == pytest.approx(3.25, rel=REL_TOL)


def test_single_value_is_exact() -> None:
    h = LogHistogram([0.123456])
    assert h.quantiles([0.0, 0.3, 0.5, 0.99, 1.0]) == [0.123456] * 5


def test_empty_histogram() -> None:
    h = LogHistogram()
    assert h.count == 0
    assert h.sum == 0.0
    assert h.mean is None
    assert h.min is None and h.max is None
    assert h.quantile(0.5) is None
    assert h.quantiles([0.1, 0.9]) is None
    assert h.counts.size == 0
    h.add(np.array([]))
    assert h == LogHistogram()
    assert LogHistogram.from_dict(json.loads(json.dumps(h.to_dict()))) == h


def test_add_rejects_nan_negative_inf() -> None:
    h = LogHistogram([1.0])
    for bad in ([np.nan], [1.0, -0.5], [np.inf]):
        with pytest.raises(ValueError):
            h.add(np.array(bad))
    # Nothing was added by the failed calls.
    assert h == LogHistogram([1.0])


def test_quantile_rejects_bad_q() -> None:
    h = LogHistogram([1.0])
    for q in (-0.1, 1.5, math.nan):
        with pytest.raises(ValueError):
            h.quantile(q)


def test_underflow_and_overflow_buckets() -> None:
    x = np.array([0.0, 0.0, 5e-7, 1.0, 2.0, 3e7, 5e8])
    h = LogHistogram(x)
    assert h.zero_count == 3
    assert h.overflow_count == 2
    assert h.count == 7
    assert h.min == 0.0
    assert h.max == 5e8
    assert h.quantile(0.1) == 0.0  # underflow -> exact minimum
    assert h.quantile(3 / 7) == 0.0
    assert h.quantile(0.5) == pytest.approx(1.0, rel=REL_TOL)
    assert h.quantile(0.9) == 5e8  # overflow -> exact maximum
    assert h.quantile(1.0) == 5e8
    assert h.counts.sum() == 2


def test_layout_constants() -> None:
    assert MIN_VALUE == 1e-6 and MAX_VALUE == 1e7 and GAMMA == 1.002
    assert MIN_VALUE * GAMMA**NUM_BUCKETS >= MAX_VALUE
    assert MIN_VALUE * GAMMA ** (NUM_BUCKETS - 1) < MAX_VALUE
    h = LogHistogram([MIN_VALUE, MAX_VALUE])
    assert h.offset == 0
    assert h.offset + h.counts.size == NUM_BUCKETS
    assert h.quantile(0.0) == MIN_VALUE and h.quantile(1.0) == MAX_VALUE


def test_storage_is_lazy_and_small() -> None:
    rng = np.random.default_rng(1)
    h = LogHistogram(rng.uniform(0.1, 1.0, size=10_000))
    # ln(10) / ln(1.002) ~= 1152 buckets for one decade.
    assert h.counts.size <= 1200
    assert h.counts[0] > 0 and h.counts[-1] > 0
    # Growing downwards and upwards keeps the dense block exact.
    h.add([1e-3])
    h.add([50.0])
    assert h.counts[0] == 1 and h.counts[-1] == 1
    assert h.count == 10_002


def test_counts_view_is_read_only() -> None:
    h = LogHistogram([1.0, 2.0])
    with pytest.raises(ValueError):
        h.counts[0] = 5


# ---------------------------------------------------------------------- merging
@settings(max_examples=100, deadline=None)
@given(maybe_empty_lists, maybe_empty_lists)
def test_merge_equals_histogram_of_concatenation(a: list[float], b: list[float]) -> None:
    ha, hb = LogHistogram(a), LogHistogram(b)
    merged = ha.copy().merge(hb)
    assert_same(merged, LogHistogram(np.asarray(a + b)))
    if a or b:
        assert merged.quantiles(QS) == LogHistogram(np.asarray(a + b)).quantiles(QS)
    # merge returns self and leaves the argument untouched
    hc = ha.copy()
    assert hc.merge(hb) is hc
    assert hb == LogHistogram(b)


@settings(max_examples=100, deadline=None)
@given(maybe_empty_lists, maybe_empty_lists, maybe_empty_lists)
def test_merge_commutative_and_associative(a: list[float], b: list[float], c: list[float]) -> None:
    ha, hb, hc = LogHistogram(a), LogHistogram(b), LogHistogram(c)
    ab = ha.copy().merge(hb)
    ba = hb.copy().merge(ha)
    assert ab == ba  # float addition is commutative, so even the sum matches exactly
    left = ha.copy().merge(hb).merge(hc)
    right = ha.copy().merge(hb.copy().merge(hc))
    assert_same(left, right)


def test_merge_with_self_doubles() -> None:
    h = LogHistogram([0.0, 1.0, 2.0, 1e8])
    h.merge(h)
    assert_same(h, LogHistogram([0.0, 1.0, 2.0, 1e8] * 2))


def test_merge_rejects_other_types() -> None:
    with pytest.raises(TypeError):
        LogHistogram().merge([1.0, 2.0])  # type: ignore[arg-type]


# ---------------------------------------------------------------------- plain data
@settings(max_examples=100, deadline=None)
@given(maybe_empty_lists)
def test_to_dict_round_trip(values: list[float]) -> None:
    h = LogHistogram(values)
    d = h.to_dict()
    assert set(d) >= {"offset", "counts", "count", "sum", "min", "max"}
    restored = LogHistogram.from_dict(json.loads(json.dumps(d)))
    assert restored == h
    assert restored.to_dict() == d
    assert pickle.loads(pickle.dumps(h)) == h


def test_from_dict_validates() -> None:
    d = LogHistogram([1.0, 2.0]).to_dict()
    with pytest.raises(ValueError):
        LogHistogram.from_dict({**d, "count": 3})
    with pytest.raises(ValueError):
        LogHistogram.from_dict({**d, "gamma": 1.01})
    with pytest.raises(ValueError):
        LogHistogram.from_dict({**d, "counts": [-1] + d["counts"][1:]})
    # Leading/trailing zero padding is normalised away.
    padded = {**d, "offset": d["offset"] - 2, "counts": [0, 0, *d["counts"], 0]}
    assert LogHistogram.from_dict(padded) == LogHistogram([1.0, 2.0])


def test_equality() -> None:
    assert LogHistogram([1.0, 2.0]) == LogHistogram([2.0, 1.0])
    assert LogHistogram([1.0]) != LogHistogram([1.001])
    assert LogHistogram() != "histogram"
