r"""Growth: `workload.scale` and `workload.growth_per_month` applied to the rate curve and the bursts.

The rate at clock time t is the shaped rate times

    F(t) = scale * (1 + g)^(t / M),    M = 730 h (the mean calendar month, 8760 h / 12),

so `scale` moves the whole curve keeping its shape and `growth_per_month` compounds monthly (continuously:
after two weeks of g = 0.10 the rate is 1.1^(336/730) = 1.045 times the start). Each step of the piecewise
constant curve is multiplied by the exact average of F over it,
(scale / (b - a)) \int_a^b e^{beta t} dt with beta = ln(1 + g) / M, so the expected arrivals stay exact.
A burst occurrence centred at c brings F(c) times its count: Poisson with that mean when the burst is
Poisson, else floor(F(c) count) plus one with probability of the fractional part (the mean is exact).
With scale 1 and g = 0 nothing changes, draw for draw. The over-dispersion noise keeps the cv it resolves
at the unscaled `mean_rps` (it is a property of the shape): scaling the rate scales D - 1 with it.
"""

from __future__ import annotations

import math

import numpy as np

from sim.config.workload import WorkloadSpec
from sim.core.calendar import HOUR_S
from workloads.arrivals import RateCurve

MONTH_S = 730.0 * HOUR_S


def is_identity(wl: WorkloadSpec) -> bool:
    return wl.scale == 1.0 and wl.growth_per_month == 0.0


def factor_at(wl: WorkloadSpec, t: float | np.ndarray) -> float | np.ndarray:
    """F(t) (see the module doc)."""
    beta = math.log1p(wl.growth_per_month) / MONTH_S
    out = wl.scale * np.exp(beta * np.asarray(t, dtype=np.float64))
    return float(out) if np.ndim(out) == 0 else out


def step_factors(wl: WorkloadSpec, n: int, step_s: float) -> np.ndarray:
    """The exact mean of F over each step [k step_s, (k + 1) step_s), k < n."""
    beta = math.log1p(wl.growth_per_month) / MONTH_S
    a = np.arange(n, dtype=np.float64) * step_s
    if beta == 0.0:
        return np.full(n, float(wl.scale))
    x = beta * step_s
    return wl.scale * np.exp(beta * a) * (np.expm1(x) / x)


def grown(curve: RateCurve, wl: WorkloadSpec) -> RateCurve:
    """The curve with the growth factor applied (the curve itself when there is none)."""
    if is_identity(wl):
        return curve
    return RateCurve(curve.rates * step_factors(wl, curve.rates.size, curve.step_s), curve.step_s)


def mean_factor(wl: WorkloadSpec, t0: float, t1: float) -> float:
    """The mean of F over [t0, t1) (F(t0) for an empty span)."""
    beta = math.log1p(wl.growth_per_month) / MONTH_S
    if beta == 0.0:
        return float(wl.scale)
    if not t1 > t0:
        return float(factor_at(wl, t0))
    return float(wl.scale * (math.exp(beta * t1) - math.exp(beta * t0)) / (beta * (t1 - t0)))
