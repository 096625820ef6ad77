"""Runtime distributions: closed-form moments against large samples, exact token-count moments."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from sim.config.distributions import (
    ConstantSpec,
    EmpiricalSpec,
    ExponentialSpec,
    GammaSpec,
    GeometricSpec,
    LognormalSpec,
    ParetoSpec,
    UniformSpec,
)
from workloads.distributions import (
    Constant,
    Distribution,
    Empirical,
    Exponential,
    Gamma,
    Geometric,
    Lognormal,
    Pareto,
    Uniform,
    make_distribution,
)
from workloads.files import read_column, resolve_data_file
from workloads.token_counts import TokenCount, make_token_distribution

SEED = 20240611
N = 400_000

_EMPIRICAL_VALUES = np.random.default_rng(99).lognormal(3.0, 0.8, 5000)

# (distribution, check the variance too: 4th moment finite and the sample variance well behaved)
FAMILIES = [
    (Exponential(2.5), True),
    (Geometric(7.0), True),
    (Geometric(1.0), True),
    (Lognormal(600.0, 0.9), True),
    (Gamma(3.0, 1.5), True),
    (Gamma(100.0, 0.3), True),
    (Uniform(2.0, 10.0), True),
    (Pareto(10.0, 5.0), True),
    (Pareto(10.0, 2.5), False),  # alpha <= 4: infinite 4th moment
    (Empirical(_EMPIRICAL_VALUES), True),
]


def _ids(cases: list[tuple[object, bool]]) -> list[str]:
    return [repr(d) for d, _ in cases]


def _check_sample_moments(dist: Distribution, x: np.ndarray, check_var: bool) -> None:
    mean, var = dist.mean, dist.variance
    assert math.isfinite(mean) and math.isfinite(var)
    se = math.sqrt(var / x.size)
    assert abs(x.mean() - mean) <= 5 * se + 1e-12 * abs(mean), (x.mean(), mean, se)
    if check_var:
        assert x.var() == pytest.approx(var, rel=0.05)


@pytest.mark.parametrize(("dist", "check_var"), FAMILIES, ids=_ids(FAMILIES))
def test_family_moments_match_large_sample(dist: Distribution, check_var: bool) -> None:
    x = dist.sample(np.random.default_rng(SEED), N)
    assert x.dtype == np.float64 and x.shape == (N,)
    _check_sample_moments(dist, x, check_var)


def test_closed_forms() -> None:
    assert Exponential(3.0).variance == 9.0
    assert Geometric(4.0).variance == pytest.approx(12.0)
    assert Lognormal(1.0, 1.0).mean == pytest.approx(math.exp(0.5))
    assert Lognormal(2.0, 0.5).variance == pytest.approx(4.0 * math.exp(0.25) * (math.exp(0.25) - 1.0))
    g = Gamma(10.0, 0.5)
    assert g.shape == pytest.approx(4.0) and g.scale == pytest.approx(2.5) and g.variance == pytest.approx(25.0)
    assert Uniform(0.0, 6.0).variance == pytest.approx(3.0)
    p = Pareto(2.0, 3.0)
    assert p.mean == pytest.approx(3.0) and p.variance == pytest.approx(4.0 * 3.0 / (4.0 * 1.0))
    assert Pareto(1.0, 2.0).variance == math.inf
    assert Pareto(1.0, 1.0).mean == math.inf
    e = Empirical(np.array([1.0, 2.0, 6.0]))
    assert e.mean == 3.0 and e.variance == pytest.approx(np.var([1.0, 2.0, 6.0]))


def test_constant_and_geometric_support() -> None:
    rng = np.random.default_rng(SEED)
    assert np.all(Constant(7.5).sample(rng, 10) == 7.5)
    assert Constant(7.5).mean == 7.5 and Constant(7.5).variance == 0.0
    g = Geometric(3.0).sample(rng, 10_000)
    assert g.min() >= 1 and np.all(g == np.round(g))


def test_sampling_uses_only_the_given_generator() -> None:
    d = Lognormal(600.0, 0.9)
    a = d.sample(np.random.default_rng(5), 100)
    np.random.seed(0)  # noqa: NPY002 - global state must not matter
    b = d.sample(np.random.default_rng(5), 100)
    assert np.array_equal(a, b)


def test_invalid_parameters_rejected() -> None:
    for bad in (
        lambda: Exponential(0.0),
        lambda: Geometric(0.5),
        lambda: Lognormal(-1.0, 1.0),
        lambda: Gamma(1.0, 0.0),
        lambda: Uniform(3.0, 1.0),
        lambda: Pareto(1.0, 0.0),
        lambda: Empirical(np.array([])),
    ):
        with pytest.raises(ValueError):
            bad()


# --------------------------------------------------------------------------------------- token counts

TOKEN_CASES = [
    (TokenCount(Lognormal(600.0, 0.9)), True),
    (TokenCount(Exponential(2.0)), True),
    (TokenCount(Gamma(3.0, 1.2)), True),
    (TokenCount(Uniform(0.0, 10.0)), True),
    (TokenCount(Pareto(10.0, 5.0)), True),
    (TokenCount(Geometric(50.0)), True),
    (TokenCount(Empirical(np.array([0.2, 1.4, 2.6, 7.5, 100.2]))), True),
]


@pytest.mark.parametrize(("tc", "check_var"), TOKEN_CASES, ids=_ids(TOKEN_CASES))
def test_token_count_exact_moments_match_sample(tc: TokenCount, check_var: bool) -> None:
    x = tc.sample(np.random.default_rng(SEED), N)
    assert x.dtype == np.int64 and x.min() >= 1
    _check_sample_moments(tc, x.astype(np.float64), check_var)


def _brute_force(frozen: object, kmax: int) -> tuple[float, float]:
    ks = np.arange(1, kmax + 1, dtype=np.float64)
    upper = frozen.cdf(ks + 0.5)  # type: ignore[attr-defined]
    lower = np.concatenate([[0.0], upper[:-1]])  # K = 1 takes everything below 1.5
    p = upper - lower
    assert 1.0 - p.sum() < 1e-13
    m = float(np.dot(ks, p))
    return m, float(np.dot((ks - m) ** 2, p))


@pytest.mark.parametrize(
    ("dist", "frozen", "kmax"),
    [
        (Exponential(2.0), stats.expon(scale=2.0), 200),
        (Gamma(3.0, 1.2), stats.gamma(a=1 / 1.44, scale=3.0 * 1.44), 400),
        (Lognormal(20.0, 0.5), stats.lognorm(s=0.5, scale=20.0), 2000),
        (Pareto(3.0, 6.0), stats.pareto(b=6.0, scale=3.0), 200_000),
    ],
    ids=["exponential", "gamma", "lognormal", "pareto"],
)
def test_token_count_moments_equal_brute_force_sum(dist: Distribution, frozen: object, kmax: int) -> None:
    m, v = _brute_force(frozen, kmax)
    tc = TokenCount(dist)
    assert tc.mean == pytest.approx(m, rel=1e-10)
    assert tc.variance == pytest.approx(v, rel=1e-8)


def test_token_count_uniform_by_hand() -> None:
    # K = 1 on [0, 1.5): 0.15; k = 2..9: 0.1 each; K = 10 on [9.5, 10]: 0.05
    tc = TokenCount(Uniform(0.0, 10.0))
    m = 0.15 + 0.1 * sum(range(2, 10)) + 0.05 * 10
    m2 = 0.15 + 0.1 * sum(k * k for k in range(2, 10)) + 0.05 * 100
    assert tc.mean == pytest.approx(m, rel=1e-12)
    assert tc.variance == pytest.approx(m2 - m * m, rel=1e-10)


def test_token_count_degenerate_and_integer_cases() -> None:
    assert TokenCount(Constant(0.2)).mean == 1.0
    assert TokenCount(Constant(7.4)).mean == 7.0 and TokenCount(Constant(7.4)).variance == 0.0
    assert np.all(TokenCount(Constant(7.4)).sample(np.random.default_rng(1), 5) == 7)
    assert TokenCount(Lognormal(12.0, 0.0)).mean == 12.0
    g = TokenCount(Geometric(30.0))
    assert g.mean == 30.0 and g.variance == pytest.approx(30.0 * 29.0)
    e = TokenCount(Empirical(np.array([0.1, 2.4, 2.6])))
    assert e.mean == pytest.approx((1 + 2 + 3) / 3) and e.variance == pytest.approx(np.var([1, 2, 3]))


@pytest.mark.parametrize(
    "dist",
    [Lognormal(600.0, 2.5), Lognormal(600.0, 10.0), Pareto(1.0, 2.1), Gamma(5000.0, 3.0), Uniform(0.0, 1e9)],
    ids=repr,
)
def test_token_count_heavy_or_wide_laws_stay_within_rounding_of_continuous(dist: Distribution) -> None:
    # |K - X| <= 1, so |E K - E X| <= 1 and |sd K - sd X| <= 1 (Minkowski)
    tc = TokenCount(dist)
    assert abs(tc.mean - dist.mean) <= 1.0 + 1e-12 * dist.mean
    assert abs(math.sqrt(tc.variance) - math.sqrt(dist.variance)) <= 1.0 + 1e-9 * math.sqrt(dist.variance)


def test_token_count_infinite_moments() -> None:
    assert TokenCount(Pareto(5.0, 1.5)).variance == math.inf
    assert TokenCount(Pareto(5.0, 1.5)).mean == pytest.approx(Pareto(5.0, 1.5).mean, abs=1.0)
    assert TokenCount(Pareto(5.0, 0.9)).mean == math.inf


# --------------------------------------------------------------------------------------- specs, files


def test_make_distribution_from_specs() -> None:
    cases = [
        (ConstantSpec(dist="constant", value=3.0), Constant(3.0)),
        (ExponentialSpec(dist="exponential", mean=2.0), Exponential(2.0)),
        (GeometricSpec(dist="geometric", mean=9.0), Geometric(9.0)),
        (LognormalSpec(dist="lognormal", median=5.0, sigma=0.3), Lognormal(5.0, 0.3)),
        (GammaSpec(dist="gamma", mean=4.0, cv=0.5), Gamma(4.0, 0.5)),
        (UniformSpec(dist="uniform", low=1.0, high=2.0), Uniform(1.0, 2.0)),
        (ParetoSpec(dist="pareto", scale=0.2, alpha=3.0), Pareto(0.2, 3.0)),
    ]
    for spec, expected in cases:
        assert make_distribution(spec) == expected
        assert make_token_distribution(spec) == TokenCount(expected)


def test_empirical_spec_reads_csv_and_jsonl(tmp_path) -> None:
    (tmp_path / "sizes.csv").write_text("name,tokens\na,10\nb,20\nc,60\n")
    (tmp_path / "sizes.jsonl").write_text('{"tokens": 1.5}\n{"tokens": 2.5}\n')
    spec = EmpiricalSpec(dist="empirical", file="sizes.csv", column="tokens")
    d = make_distribution(spec, base_dir=tmp_path)
    assert isinstance(d, Empirical) and d.mean == pytest.approx(30.0)
    tc = make_token_distribution(EmpiricalSpec(dist="empirical", file="sizes.jsonl", column="tokens"), tmp_path)
    assert tc.mean == pytest.approx(2.0)  # rint(1.5) = 2, rint(2.5) = 2
    col = read_column(str(tmp_path / "sizes.csv"), "tokens")
    assert col.dtype == np.float64 and not col.flags.writeable
    assert read_column(str(tmp_path / "sizes.csv"), "tokens") is col  # cached


def test_read_column_errors(tmp_path) -> None:
    (tmp_path / "t.csv").write_text("name,tokens\na,10\nb,x\n")
    (tmp_path / "u.jsonl").write_text('{"a": 1}\n')
    with pytest.raises(ValueError, match="no column 'nope'"):
        read_column("t.csv", "nope", tmp_path)
    with pytest.raises(ValueError, match="not numeric"):
        read_column("t.csv", "tokens", tmp_path)
    with pytest.raises(ValueError, match="no column 'b'"):
        read_column("u.jsonl", "b", tmp_path)
    with pytest.raises(FileNotFoundError, match="file not found: missing.csv"):
        resolve_data_file("missing.csv", tmp_path)
    assert resolve_data_file("t.csv", tmp_path) == tmp_path / "t.csv"
    assert resolve_data_file(str(tmp_path / "t.csv"), None) == tmp_path / "t.csv"


def test_token_count_moments_are_summed_once_per_law(monkeypatch: pytest.MonkeyPatch) -> None:
    """A plan derives the same class laws for every configuration: equal laws share one summation, and each
    law's moments are those of its own fresh summation (a law differing in one parameter is summed anew)."""
    import workloads.token_counts as tcm

    calls: list[Distribution] = []
    real = tcm._discretised_moments

    def counting(d: Distribution) -> tuple[float, float]:
        calls.append(d)
        return real(d)

    monkeypatch.setattr(tcm, "_MOMENTS", {})
    monkeypatch.setattr(tcm, "_discretised_moments", counting)
    a, b = TokenCount(Lognormal(600.0, 0.9)), TokenCount(Lognormal(600.0, 0.9))
    c = TokenCount(Lognormal(600.0, 0.91))
    assert (a.mean, a.variance) == real(Lognormal(600.0, 0.9))
    assert (b.mean, b.variance) == (a.mean, a.variance)
    assert (c.mean, c.variance) == real(Lognormal(600.0, 0.91)) != (a.mean, a.variance)
    assert calls == [Lognormal(600.0, 0.9), Lognormal(600.0, 0.91)]
