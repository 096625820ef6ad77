"""Statistics across Monte Carlo replications.

All functions take plain sequences of per-replication results.  ``None``, NaN and
infinite entries are treated as missing and dropped (a replication that produced no
value for a metric).  Outputs meant for reports (:func:`summarize`,
:func:`paired_difference`) are JSON-safe: Python floats/ints, with ``None`` where a
quantity is undefined -- never NaN or infinity.

Randomness (the bootstrap) always uses an explicit ``np.random.default_rng(seed)``,
never numpy's global state.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
from scipy import special as _special  # t and normal quantiles without importing scipy.stats (~0.5 s)

__all__ = [
    "bounded_t_interval",
    "bootstrap_interval",
    "clean_values",
    "paired_difference",
    "summarize",
    "t_interval",
    "wilson_interval",
]


def _check_confidence(confidence: float) -> float:
    c = float(confidence)
    if not 0.0 < c < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence!r}")
    return c


def _to_float(v: Any) -> float:
    if v is None or type(v).__name__ == "NAType":  # pandas.NA from nullable columns: missing, like None
        return math.nan
    try:
        return float(v)
    except (TypeError, ValueError):
        raise TypeError(f"expected a number or None, got {v!r}") from None


def clean_values(values: Iterable[Any] | None) -> np.ndarray:
    """Float64 array of the finite entries of ``values`` (None / NaN / inf dropped)."""
    if values is None:
        return np.zeros(0, dtype=np.float64)
    if isinstance(values, np.ndarray):
        if values.dtype.kind in "biuf":
            arr = values.astype(np.float64).ravel()
        else:  # e.g. object arrays holding None
            arr = np.fromiter((_to_float(v) for v in values.ravel()), dtype=np.float64)
    else:
        arr = np.fromiter((_to_float(v) for v in values), dtype=np.float64)
    return arr[np.isfinite(arr)]


def _json_float(x: Any) -> float | None:
    """Python float, or None when undefined / not finite."""
    if x is None:
        return None
    f = float(x)
    return f if math.isfinite(f) else None


def t_interval(values: Iterable[Any], confidence: float = 0.95) -> tuple[float, float, float] | None:
    """``(mean, low, high)``: mean and two-sided Student-t confidence interval.

    None/NaN/inf entries are ignored.  Returns None when no finite values remain; for a
    single value the interval is ``(mean, mean)``.
    """
    c = _check_confidence(confidence)
    x = clean_values(values)
    n = x.size
    if n == 0:
        return None
    with np.errstate(all="ignore"):
        mean = float(np.mean(x))
        if n == 1:
            return (mean, mean, mean)
        sd = float(np.std(x, ddof=1))
        half = 0.0 if sd == 0.0 else float(_special.stdtrit(n - 1, 0.5 + c / 2.0)) * sd / math.sqrt(n)
    return (mean, mean - half, mean + half)


def bounded_t_interval(
    values: Iterable[Any], low: float | None = None, high: float | None = None, confidence: float = 0.95
) -> tuple[float, float, float] | None:
    """``(mean, low, high)`` of the mean on the scale the quantity lives on, so the interval never leaves it.

    * a proportion (``low=0, high=1``): the Student-t interval on the logit scale (delta method: logit(mean)
      +- t x se / (mean (1 - mean))), mapped back, so it lies strictly inside (0, 1) around the mean and is
      asymmetric near a bound (availability 0.9995 +- a wide spread stays below 1); a mean on a bound (every
      replication at 1, or at 0) has the degenerate interval (mean, mean);
    * a quantity with one bound (``low=0``: counts, costs, times): the t interval clipped to the bound;
    * no bounds: :func:`t_interval`.
    """
    ti = t_interval(values, confidence)
    if ti is None:
        return None
    mean, lo, hi = ti
    if low is not None and high is not None and high > low and lo < hi:
        span = high - low
        p = (mean - low) / span
        if p <= 0.0 or p >= 1.0:
            return (mean, mean, mean)
        se_p = (hi - mean) / span  # t x se on the unit scale
        centre = math.log(p / (1.0 - p))
        half = se_p / (p * (1.0 - p))
        expit = _special.expit
        return (mean, low + span * float(expit(centre - half)), low + span * float(expit(centre + half)))
    if low is not None:
        lo, hi = max(lo, low), max(hi, low)
    if high is not None:
        lo, hi = min(lo, high), min(hi, high)
    return (mean, lo, hi)


def bootstrap_interval(
    values: Iterable[Any],
    confidence: float = 0.95,
    n_boot: int = 2000,
    seed: int | None = 0,
    stat: Callable[..., Any] = np.mean,
) -> tuple[float, float]:
    """Percentile bootstrap interval ``(low, high)`` for ``stat`` of ``values``.

    Uses its own ``np.random.default_rng(seed)``, so results are reproducible and no
    global random state is touched.  ``stat`` is called as ``stat(samples, axis=1)`` on
    a 2-D block of resamples when it supports ``axis`` (numpy reductions do), otherwise
    once per resample.  None/NaN/inf entries are ignored; raises ``ValueError`` when no
    finite values remain.
    """
    c = _check_confidence(confidence)
    if int(n_boot) < 1:
        raise ValueError(f"n_boot must be >= 1, got {n_boot!r}")
    n_boot = int(n_boot)
    x = clean_values(values)
    n = x.size
    if n == 0:
        raise ValueError("bootstrap_interval needs at least one finite value")
    rng = np.random.default_rng(seed)
    # Resample in chunks to bound memory at ~4M floats.
    chunk = max(1, min(n_boot, 4_000_000 // n))
    parts: list[np.ndarray] = []
    done = 0
    with np.errstate(all="ignore"):
        while done < n_boot:
            m = min(chunk, n_boot - done)
            samples = x[rng.integers(0, n, size=(m, n))]
            try:
                res = np.asarray(stat(samples, axis=1), dtype=np.float64).ravel()
                if res.size != m:
                    raise TypeError("stat did not reduce along axis 1")
            except TypeError:
                res = np.array([float(stat(row)) for row in samples], dtype=np.float64)
            parts.append(res)
            done += m
        boot = np.concatenate(parts)
        alpha = 1.0 - c
        low, high = np.percentile(boot, [100.0 * alpha / 2.0, 100.0 * (1.0 - alpha / 2.0)])
    return (float(low), float(high))


def wilson_interval(successes: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval ``(low, high)`` for a binomial proportion ``successes / n``.

    For ``n == 0`` returns the uninformative ``(0.0, 1.0)``.
    """
    c = _check_confidence(confidence)
    s, n = int(successes), int(n)
    if n < 0 or s < 0 or s > n:
        raise ValueError(f"need 0 <= successes <= n, got successes={successes!r}, n={n!r}")
    if n == 0:
        return (0.0, 1.0)
    z = float(_special.ndtri(0.5 + c / 2.0))
    p = s / n
    z2 = z * z
    denom = 1.0 + z2 / n
    center = (p + z2 / (2.0 * n)) / denom
    half = z * math.sqrt(p * (1.0 - p) / n + z2 / (4.0 * n * n)) / denom
    low = 0.0 if s == 0 else max(0.0, center - half)
    high = 1.0 if s == n else min(1.0, center + half)
    return (low, high)


def summarize(
    values: Iterable[Any], low: float | None = None, high: float | None = None
) -> dict[str, float | int | None]:
    """Across-replication summary of one metric whose values lie in [low, high] (None: unbounded).

    Keys: ``n`` (finite values used), ``mean``, ``ci95_low``/``ci95_high`` (Student-t 95%
    interval of the mean on the metric's own scale, :func:`bounded_t_interval`, so it never leaves
    [low, high]; equal to the mean when n == 1), ``p5``/``p50``/``p95``
    (numpy ``'linear'`` percentiles across replications).  JSON-safe: None where
    undefined (no finite values), never NaN.
    """
    x = clean_values(values)
    out: dict[str, float | int | None] = {
        "n": int(x.size),
        "mean": None,
        "ci95_low": None,
        "ci95_high": None,
        "p5": None,
        "p50": None,
        "p95": None,
    }
    if x.size == 0:
        return out
    ti = bounded_t_interval(x, low, high, 0.95)
    if ti is not None:
        out["mean"], out["ci95_low"], out["ci95_high"] = (_json_float(v) for v in ti)
    with np.errstate(all="ignore"):
        p5, p50, p95 = np.percentile(x, [5.0, 50.0, 95.0], method="linear")
    out["p5"], out["p50"], out["p95"] = _json_float(p5), _json_float(p50), _json_float(p95)
    return out


def paired_difference(a: Iterable[Any], b: Iterable[Any], confidence: float = 0.95) -> dict[str, float | int | None]:
    """Mean of the paired differences ``a[i] - b[i]`` with a Student-t interval.

    ``a`` and ``b`` must have equal length (e.g. two configurations run on the same
    seeds / common random numbers); pairs where either side is None/NaN/inf are dropped.
    Returns ``{"mean", "ci_low", "ci_high", "n", "confidence"}``, JSON-safe (None where
    undefined).
    """
    c = _check_confidence(confidence)
    xa = np.array([_to_float(v) for v in a], dtype=np.float64)
    xb = np.array([_to_float(v) for v in b], dtype=np.float64)
    if xa.shape != xb.shape:
        raise ValueError(f"paired_difference needs equal lengths, got {xa.size} and {xb.size}")
    keep = np.isfinite(xa) & np.isfinite(xb)
    with np.errstate(all="ignore"):
        d = xa[keep] - xb[keep]
    ti = t_interval(d, c)
    out: dict[str, float | int | None] = {
        "mean": None,
        "ci_low": None,
        "ci_high": None,
        "n": int(np.count_nonzero(np.isfinite(d))),
        "confidence": c,
    }
    if ti is not None:
        out["mean"], out["ci_low"], out["ci_high"] = (_json_float(v) for v in ti)
    return out
