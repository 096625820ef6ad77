r"""Token-size distributions for `capsim fit`: a log-normal or gamma law when it passes a KS test, else
the log's own quantiles.

The simulator draws a size as round(X) clipped below at 1 (workloads.token_counts.TokenCount), so each
candidate law is tested in that discretised form: with F the law's CDF and F_n the empirical CDF of the
sizes (taken as max(x, 1)), both step functions jump only at integers and

    D = max_k max(|F_n(k) - F(k + 1/2)|, |F_n(k-) - F(k - 1/2)|)    over the observed values k

is the exact Kolmogorov-Smirnov distance (F(k + 1/2) is 1 - P(round(X) > k) for k >= 1). The p-value is
Kolmogorov's for n points (`scipy.stats.kstwo`), conservative for a discrete law (ties make D smaller),
so a law that fails the test fails it honestly. Candidates: log-normal (maximum likelihood on log x) and
gamma (maximum likelihood, shape by Newton's method on ln k - digamma(k) = ln mean - mean ln x). The one
with the smaller D is used when its p-value is at least `KS_ALPHA`; otherwise the sizes are shipped as an
empirical table: all of them, sorted, when there are at most `MAX_TABLE` values, else the means of
`MAX_TABLE` equal-probability bins (which keeps the mean exactly and the tails closely). A single
repeated value becomes a constant.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import special, stats

KS_ALPHA = 0.05
MAX_TABLE = 20_000


@dataclass
class SizeFit:
    family: str  # lognormal | gamma | empirical | constant
    spec: dict[str, Any]  # the DistSpec dict (empirical: file and column filled in by the writer)
    ks_d: float  # of the chosen law (empirical: of the table against the log)
    ks_p: float
    candidates: dict[str, tuple[float, float]]  # family -> (D, p)
    n: int
    mean: float
    std: float
    quantiles: dict[str, float]
    table: np.ndarray | None = None  # empirical values (sorted)

    def comment(self) -> str:
        tried = ", ".join(f"{k} D={d:.3g} p={p:.2g}" for k, (d, p) in self.candidates.items())
        if self.family in ("lognormal", "gamma"):
            return f"{self.family}: passes KS (D={self.ks_d:.3g}, p={self.ks_p:.2g}, n={self.n}); tried {tried}"
        if self.family == "constant":
            return f"constant: every one of {self.n} values is the same"
        size = self.table.size if self.table is not None else 0
        return f"empirical table ({size} values): no law passes KS at {KS_ALPHA} ({tried})"


def _lognormal(x: np.ndarray) -> tuple[dict[str, Any], Any]:
    lx = np.log(x)
    mu, sigma = float(lx.mean()), float(lx.std())
    sigma = min(max(sigma, 1e-6), 10.0)
    return {"dist": "lognormal", "median": float(math.exp(mu)), "sigma": sigma}, stats.lognorm(
        s=sigma, scale=math.exp(mu)
    )


def _gamma(x: np.ndarray) -> tuple[dict[str, Any], Any]:
    mean = float(x.mean())
    s = math.log(mean) - float(np.log(x).mean())
    s = max(s, 1e-12)
    k = (3.0 - s + math.sqrt((s - 3.0) ** 2 + 24.0 * s)) / (12.0 * s)
    for _ in range(50):
        f = math.log(k) - float(special.digamma(k)) - s
        fp = 1.0 / k - float(special.polygamma(1, k))
        step = f / fp
        k = max(k - step, k / 10.0)
        if abs(step) < 1e-12 * k:
            break
    cv = min(max(1.0 / math.sqrt(k), 1e-6), 100.0)
    return {"dist": "gamma", "mean": mean, "cv": cv}, stats.gamma(a=k, scale=mean / k)


def ks_discrete(x_sorted: np.ndarray, cdf: Any) -> tuple[float, float]:
    """KS distance and p-value of integer sizes (>= 1, sorted) against round(X) clipped at 1."""
    n = x_sorted.size
    vals, counts = np.unique(x_sorted, return_counts=True)
    fn_hi = np.cumsum(counts) / n
    fn_lo = fn_hi - counts / n
    f_hi = cdf(vals + 0.5)
    f_lo = np.where(vals <= 1, 0.0, cdf(vals - 0.5))
    d = float(max(np.max(np.abs(fn_hi - f_hi)), np.max(np.abs(fn_lo - f_lo))))
    return d, float(stats.kstwo.sf(d, n))


def empirical_table(x_sorted: np.ndarray, size: int = MAX_TABLE) -> np.ndarray:
    """All values, or the means of `size` equal-probability bins."""
    n = x_sorted.size
    if n <= size:
        return x_sorted.astype(np.float64)
    edges = np.linspace(0.0, float(n), size + 1)
    csum = np.concatenate([[0.0], np.cumsum(x_sorted, dtype=np.float64)])

    def partial(pos: np.ndarray) -> np.ndarray:  # sum of the first pos values (fractional pos interpolates)
        i = np.floor(pos).astype(np.int64)
        i = np.minimum(i, n - 1)
        return csum[i] + (pos - i) * x_sorted[i]

    sums = np.diff(np.append(partial(edges[:-1]), csum[-1]))
    return np.asarray(sums / np.diff(edges), dtype=np.float64)


def fit_sizes(values: np.ndarray) -> SizeFit:
    """Fit the sizes (whole numbers >= 0; 0 is taken as 1, the simulator's smallest size)."""
    x = np.sort(np.maximum(np.asarray(values, dtype=np.float64), 1.0))
    n = int(x.size)
    if n == 0:
        raise ValueError("no sizes")
    q = {f"p{round(p * 100)}": float(x[min(int(p * n), n - 1)]) for p in (0.05, 0.25, 0.5, 0.75, 0.95, 0.99)}
    mean, std = float(x.mean()), float(x.std())
    if x[0] == x[-1]:
        return SizeFit("constant", {"dist": "constant", "value": float(x[0])}, 0.0, 1.0, {}, n, mean, std, q)
    candidates: dict[str, tuple[float, float]] = {}
    fits: dict[str, dict[str, Any]] = {}
    for name, maker in (("lognormal", _lognormal), ("gamma", _gamma)):
        spec, law = maker(x)
        candidates[name] = ks_discrete(x, law.cdf)
        fits[name] = spec
    best = min(candidates, key=lambda k: candidates[k][0])
    if candidates[best][1] >= KS_ALPHA:
        d, p = candidates[best]
        return SizeFit(best, fits[best], d, p, candidates, n, mean, std, q)
    table = empirical_table(x)
    tab = np.sort(np.maximum(np.rint(table), 1.0))

    def table_cdf(v: np.ndarray) -> np.ndarray:
        return np.searchsorted(tab, v, side="right") / tab.size

    d, p = ks_discrete(x, table_cdf)
    return SizeFit("empirical", {"dist": "empirical"}, d, p, candidates, n, mean, std, q, table)


def size_cdf(fit: SizeFit, grid: np.ndarray) -> np.ndarray:
    """P(size <= g) of the fitted (discretised) law at integer points g, for the report."""
    g = np.asarray(grid, dtype=np.float64)
    if fit.family == "constant":
        return (g >= fit.spec["value"]).astype(np.float64)
    if fit.family == "empirical":
        assert fit.table is not None
        tab = np.sort(np.maximum(np.rint(fit.table), 1.0))
        return np.searchsorted(tab, g, side="right") / tab.size
    if fit.family == "lognormal":
        law = stats.lognorm(s=fit.spec["sigma"], scale=fit.spec["median"])
    else:
        k = 1.0 / fit.spec["cv"] ** 2
        law = stats.gamma(a=k, scale=fit.spec["mean"] / k)
    return np.where(g < 1, 0.0, law.cdf(g + 0.5))
