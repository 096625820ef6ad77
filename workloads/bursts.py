"""The 9 a.m. enterprise burst: requests submitted together at a time of day, on top of the curve.

Each burst occurs on its `days` (clock weekdays) in the window [c - half_width_s, c + half_width_s) with
c = day start + at_h hours. An occurrence brings `count` requests (exactly, or Poisson(count) when
`poisson`), or Poisson(rate_rps * 2 half_width_s) for a `rate_rps` burst, placed uniformly in the window
(or, for `shape: normal`, normally around c with sd half_width_s / 2, truncated to the window). Requests
outside [0, horizon) are lost. They carry the burst's class (or a class drawn by share when it names none).
With `workload.scale` or `growth_per_month` the occurrence's mean count is multiplied by the growth factor
at its centre (workloads.growth).
Every occurrence draws from its own stream (component "bursts", sub = burst index * 2^20 + day), so the
draws do not depend on how time is cut into blocks.
"""

from __future__ import annotations

import math

import numpy as np

from sim.config.workload import BurstSpec, WorkloadSpec
from sim.core.calendar import DAY_S, HOUR_S, WEEKDAYS
from sim.core.rng import stream
from workloads.growth import factor_at, is_identity

_NORMAL_Z = 2.0  # the window holds +-2 sd


def burst_days(burst: BurstSpec) -> set[int]:
    """Weekday indexes (0 = Monday) on which a burst occurs."""
    if burst.days == "all":
        return set(range(7))
    if burst.days == "weekdays":
        return set(range(5))
    if burst.days == "weekends":
        return {5, 6}
    return {WEEKDAYS.index(d) for d in burst.days}


def burst_size(b: BurstSpec) -> float:
    """Expected requests of one occurrence."""
    return float(b.count) if b.count is not None else float(b.rate_rps or 0.0) * 2.0 * b.half_width_s


def expected_per_week(bursts: list[BurstSpec]) -> float:
    """Expected burst requests in a week (each burst on each of its weekdays)."""
    return math.fsum(burst_size(b) * len(burst_days(b)) for b in bursts)


def _window_share(b: BurstSpec, lo: float, hi: float, t0: float, t1: float) -> float:
    """Share of an occurrence's requests placed in [t0, t1) (window [lo, hi))."""
    a, z = max(lo, t0), min(hi, t1)
    if z <= a:
        return 0.0
    if b.shape == "uniform":
        return (z - a) / (hi - lo)
    from scipy import special  # here, not at the top: `capsim validate` reads burst_days without scipy (~0.3 s)

    c, sd = 0.5 * (lo + hi), b.half_width_s / _NORMAL_Z
    mass = float(special.ndtr(_NORMAL_Z) - special.ndtr(-_NORMAL_Z))
    return float(special.ndtr((z - c) / sd) - special.ndtr((a - c) / sd)) / mass


def expected_in(bursts: list[BurstSpec], start_weekday: str, t0: float, t1: float) -> float:
    """Expected burst requests arriving in [t0, t1) of the clock (exact: the windows' shares inside)."""
    start = WEEKDAYS.index(start_weekday.lower()[:3])
    total = 0.0
    for b in bursts:
        days, n = burst_days(b), burst_size(b)
        for d in range(math.floor(t0 / DAY_S) - 1, math.ceil(t1 / DAY_S) + 1):
            if (start + d) % 7 in days:
                c = d * DAY_S + b.at_h * HOUR_S
                total += n * _window_share(b, c - b.half_width_s, c + b.half_width_s, t0, t1)
    return total


class BurstSchedule:
    def __init__(
        self,
        bursts: list[BurstSpec],
        class_index: dict[str, int],
        start_weekday: str,
        horizon_s: float,
        seed: int,
        replication: int,
        growth: WorkloadSpec | None = None,
    ):
        self.bursts = bursts
        self.class_of = [-1 if b.class_name is None else class_index[b.class_name] for b in bursts]
        self.horizon_s = horizon_s
        self.seed = seed
        self.replication = replication
        self.growth = growth if growth is not None and not is_identity(growth) else None
        start = WEEKDAYS.index(start_weekday.lower()[:3])
        occ: list[tuple[float, float, int, int]] = []
        n_days = math.ceil(horizon_s / DAY_S) + 1
        for i, b in enumerate(bursts):
            days = burst_days(b)
            for d in range(-1, n_days):
                if (start + d) % 7 not in days:
                    continue
                c = d * DAY_S + b.at_h * HOUR_S
                lo, hi = c - b.half_width_s, c + b.half_width_s
                if hi <= 0 or lo >= horizon_s:
                    continue
                occ.append((lo, hi, i, d))
        occ.sort()
        self.occurrences = occ
        self._next = 0
        self._pending_t = np.zeros(0)
        self._pending_c = np.zeros(0, dtype=np.int16)

    def windows(self) -> list[tuple[float, float, int]]:
        """(start, end, burst index) of every occurrence that touches the horizon."""
        return [(lo, hi, i) for lo, hi, i, _ in self.occurrences]

    def expected_total(self) -> float:
        total = 0.0
        for lo, hi, i, _ in self.occurrences:
            b = self.bursts[i]
            n = float(b.count) if b.count is not None else float(b.rate_rps or 0.0) * (hi - lo)
            n *= self._factor(lo, hi)
            inside = (min(hi, self.horizon_s) - max(lo, 0.0)) / (hi - lo) if b.shape == "uniform" else 1.0
            total += n * inside
        return total

    def _factor(self, lo: float, hi: float) -> float:
        return 1.0 if self.growth is None else float(factor_at(self.growth, 0.5 * (lo + hi)))

    def _occurrence(self, lo: float, hi: float, i: int, d: int) -> np.ndarray:
        b = self.bursts[i]
        rng = stream(self.seed, self.replication, "bursts", i * 2**20 + (d + 1))
        f = self._factor(lo, hi)
        if b.count is not None and f == 1.0:
            n = int(rng.poisson(b.count)) if b.poisson else int(b.count)
        elif b.count is not None:
            mean = b.count * f
            n = int(rng.poisson(mean)) if b.poisson else int(mean) + int(rng.random() < mean - int(mean))
        else:
            n = int(rng.poisson(float(b.rate_rps or 0.0) * (hi - lo) * f))
        u = rng.random(n)
        if b.shape == "uniform":
            t = lo + u * (hi - lo)
        else:
            from scipy import special

            a = special.ndtr(-_NORMAL_Z)
            z = special.ndtri(a + u * (1.0 - 2.0 * a))
            t = 0.5 * (lo + hi) + z * (b.half_width_s / _NORMAL_Z)
            t = np.clip(t, lo, np.nextafter(hi, -np.inf))
        return t[(t >= 0.0) & (t < self.horizon_s)]

    def arrivals(self, t0: float, t1: float) -> tuple[np.ndarray, np.ndarray]:
        """(sorted times in [t0, t1), class index per request or -1 for 'by share'); calls move forward."""
        new_t, new_c = [self._pending_t], [self._pending_c]
        while self._next < len(self.occurrences) and self.occurrences[self._next][0] < t1:
            lo, hi, i, d = self.occurrences[self._next]
            t = self._occurrence(lo, hi, i, d)
            new_t.append(t)
            new_c.append(np.full(t.size, self.class_of[i], dtype=np.int16))
            self._next += 1
        times = np.concatenate(new_t)
        classes = np.concatenate(new_c)
        order = np.argsort(times, kind="stable")
        times, classes = times[order], classes[order]
        keep = times >= t0
        times, classes = times[keep], classes[keep]
        cut = int(np.searchsorted(times, t1, side="left"))
        self._pending_t, self._pending_c = times[cut:], classes[cut:]
        return times[:cut], classes[:cut]
