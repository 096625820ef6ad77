"""The arrival source for rate curves with extras: over-dispersion, bursts and sessions.

    curve (workloads.shapes) x noise (workloads.overdispersion) -> Poisson requests, or session starts
    (workloads.sessions) -> turns;  + burst requests (workloads.bursts)

`arrivals(t0, t1)` returns the generator's columns plus a fifth, the class index of every request (-1:
assign by share). Token columns hold -1 where the request's class distribution should decide.
Streams: "arrivals" (Poisson draws), "noise", "bursts", "sessions".
"""

from __future__ import annotations

import numpy as np

from sim.config import Experiment
from sim.core.rng import stream
from workloads.arrivals import RateCurve, poisson_arrivals
from workloads.bursts import BurstSchedule
from workloads.growth import grown
from workloads.overdispersion import LogNormalAR1, cv_for_index_of_dispersion
from workloads.ragged import ragged_gather
from workloads.sessions import SessionMaker
from workloads.shapes import build_rate_curve

SourceColumns = tuple[
    np.ndarray, np.ndarray | None, np.ndarray | None, tuple[np.ndarray, np.ndarray] | None, np.ndarray
]


def needs_synthetic(exp: Experiment) -> bool:
    a = exp.workload.arrivals
    return bool(a.bursts) or a.overdispersion is not None or exp.workload.sessions is not None


def resolved_cv(exp: Experiment) -> float:
    od = exp.workload.arrivals.overdispersion
    assert od is not None
    if od.cv is not None:
        return float(od.cv)
    assert od.index_of_dispersion is not None
    return cv_for_index_of_dispersion(
        od.index_of_dispersion, exp.workload.arrivals.mean_rps, od.window_s, od.correlation_s
    )


class NoisyPoisson:
    """Poisson arrivals with rate curve(t) * M(t), M a log-normal AR(1) on its own grid."""

    def __init__(self, curve: RateCurve, noise: LogNormalAR1):
        self.curve = curve
        self.noise = noise

    def arrivals(self, t0: float, t1: float, rng: np.random.Generator) -> np.ndarray:
        if not t1 > t0:
            return np.zeros(0)
        d = self.noise.step_s
        k0 = int(np.floor(t0 / d))
        k1 = int(np.ceil(t1 / d))
        edges = np.arange(k0, k1 + 1, dtype=np.float64) * d
        edges[0], edges[-1] = t0, t1
        edges = np.maximum.accumulate(np.clip(edges, t0, t1))
        base = np.diff(np.asarray(self.curve.cumulative(edges)))
        mu = np.maximum(base, 0.0) * self.noise.take(k0, k1)
        counts = rng.poisson(mu)
        n = int(counts.sum())
        if n == 0:
            return np.zeros(0)
        lo = np.repeat(edges[:-1], counts)
        width = np.repeat(np.diff(edges), counts)
        t = lo + rng.random(n) * width
        t.sort()
        np.clip(t, t0, np.nextafter(t1, -np.inf), out=t)
        return t


class SyntheticSource:
    def __init__(self, exp: Experiment, replication: int, horizon_s: float):
        a = exp.workload.arrivals
        self.horizon_s = horizon_s
        self.curve = grown(build_rate_curve(a, exp.start_weekday, horizon_s), exp.workload)
        self.rng = stream(exp.seed, replication, "arrivals")
        self.sessions = SessionMaker(exp, replication) if exp.workload.sessions is not None else None
        start_curve = self.curve if self.sessions is None else self.curve.scaled(1.0 / self.sessions.mean_turns)
        self.noisy: NoisyPoisson | None = None
        if a.overdispersion is not None:
            noise = LogNormalAR1(
                resolved_cv(exp), a.overdispersion.correlation_s, stream(exp.seed, replication, "noise")
            )
            self.noisy = NoisyPoisson(start_curve, noise)
        self.start_curve = start_curve
        self.bursts: BurstSchedule | None = None
        if a.bursts:
            index = {c.name: i for i, c in enumerate(exp.workload.classes)}
            self.bursts = BurstSchedule(
                a.bursts, index, exp.start_weekday, horizon_s, exp.seed, replication, growth=exp.workload
            )

    def mean_rate(self) -> float:
        rate = float(self.curve.total(0.0, self.horizon_s) / self.horizon_s)
        if self.bursts is not None:
            rate += self.bursts.expected_total() / self.horizon_s
        return rate

    def _base(self, t0: float, t1: float) -> np.ndarray:
        if self.noisy is not None:
            return self.noisy.arrivals(t0, t1, self.rng)
        return poisson_arrivals(self.start_curve, t0, t1, self.rng)

    def arrivals(self, t0: float, t1: float) -> SourceColumns:
        base = self._base(t0, t1)
        hashes: tuple[np.ndarray, np.ndarray] | None = None
        tin: np.ndarray | None = None
        tout: np.ndarray | None = None
        if self.sessions is not None:
            times, cls, tin, tout, _, hashes = self.sessions.turns_between(base, t1)
        else:
            times = base
            cls = np.full(times.size, -1, dtype=np.int16)
        if self.bursts is None:
            return times, tin, tout, hashes, cls
        bt, bc = self.bursts.arrivals(t0, t1)
        if bt.size == 0:
            return times, tin, tout, hashes, cls
        all_t = np.concatenate([times, bt])
        order = np.argsort(all_t, kind="stable")
        cls = np.concatenate([cls, bc])[order]
        none = np.full(bt.size, -1, dtype=np.int64)
        if tin is not None and tout is not None:
            tin = np.concatenate([tin, none])[order]
            tout = np.concatenate([tout, none])[order]
        if hashes is not None:
            flat, off = hashes
            off = np.concatenate([off, np.full(bt.size, off[-1], dtype=np.int64)])
            hashes = ragged_gather(flat, off, order)
        return all_t[order], tin, tout, hashes, cls
