"""Fit efficiency factors to serving-benchmark results (stage 2 of docs/calibration.md; `capsim calibrate`).

Each result point (backends/models/bench_results.py) is replayed as vLLM's benchmark replays it, on one
simulated server (backends/gpu/engine_bench.py: Poisson arrivals at the point's rate, or all prompts at
t = 0 for `inf`; TPOT = (e2e - TTFT)/(out - 1)), with the lengths the file gives: its per-request lengths,
else constant lengths at its means, else (`sharegpt`) a ShareGPT-like sample (workloads/sharegpt.py)
rescaled to its means. The fitted quantities are the mean TPOT of every finite-rate point and the request
throughput (completed / duration) of every all-at-once point; mean TTFT is reported, not fitted (it is set
by queueing and by vLLM's prefill scheduling, which capsim does not model). The factors named in `fit`
(default: the engine's CPU costs `overhead_s` and `per_seq_s`; any field of Efficiency may be named) are
found by Nelder-Mead on their logarithms, minimising the sum of squared log errors, with common random
numbers across parameter values (one SeedSequence(seed) addressed per point and sample).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields, replace
from typing import TYPE_CHECKING

import numpy as np

from backends.models.bench_results import BenchPoint

if TYPE_CHECKING:
    from backends.gpu.catalog import Efficiency
    from sim.config.backends import GpuPoolSpec

DEFAULT_FIT = ("overhead_s", "per_seq_s")
FRACTIONS = frozenset({"memory", "prefill_compute", "interconnect", "attention"})  # shares of a peak rate: at most 1
MAX_POISSON_REQUESTS = 2000  # a finite-rate point replays at most this many requests (its mean TPOT settles)
FLOOR = {"kernel_s": 1e-7, "overhead_s": 1e-5, "per_seq_s": 1e-7, "allreduce_s": 1e-7, "act_bytes_per_hidden": 0.1}


@dataclass(frozen=True)
class Simulated:
    tpot_ms: float
    ttft_ms: float
    throughput_rps: float


@dataclass(frozen=True)
class Residual:
    point: BenchPoint
    quantity: str  # mean_tpot_ms | mean_ttft_ms | throughput_rps
    measured: float
    simulated: float
    in_fit: bool

    @property
    def error(self) -> float:
        return self.simulated / self.measured - 1.0


@dataclass(frozen=True)
class FitResult:
    efficiency: Efficiency
    fitted: tuple[str, ...]
    loss: float
    residuals: list[Residual]
    evaluations: int


def fitted_quantities(p: BenchPoint) -> list[tuple[str, float]]:
    """(quantity, measured) pairs a point contributes to the fit."""
    if math.isinf(p.request_rate):
        thr = p.throughput_rps
        return [("throughput_rps", thr)] if thr is not None else []
    return [("mean_tpot_ms", p.measured["mean_tpot_ms"])] if "mean_tpot_ms" in p.measured else []


def reported_quantities(p: BenchPoint) -> list[tuple[str, float]]:
    """Every quantity of a point the replay can simulate, fitted or not."""
    out = []
    if "mean_tpot_ms" in p.measured:
        out.append(("mean_tpot_ms", p.measured["mean_tpot_ms"]))
    if "mean_ttft_ms" in p.measured:
        out.append(("mean_ttft_ms", p.measured["mean_ttft_ms"]))
    if p.throughput_rps is not None:
        out.append(("throughput_rps", p.throughput_rps))
    return out


def point_lengths(p: BenchPoint, shape: str, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """The (input, output) token counts a point is replayed with."""
    n = p.completed if math.isinf(p.request_rate) else min(p.completed, MAX_POISSON_REQUESTS)
    if p.input_lens is not None and p.output_lens is not None:
        ins, outs = np.asarray(p.input_lens, np.int64), np.asarray(p.output_lens, np.int64)
        if len(ins) > n:
            ins, outs = ins[:n], outs[:n]
        return ins, outs
    shape = p.lengths or shape
    if shape == "constant":
        return (
            np.full(n, max(1, round(p.input_mean)), np.int64),
            np.full(n, max(1, round(p.output_mean)), np.int64),
        )
    from workloads.sharegpt import sample_sharegpt

    ins, outs = sample_sharegpt(rng, n)
    ins = np.maximum(np.rint(ins * (p.input_mean / ins.mean())), 1).astype(np.int64)
    outs = np.maximum(np.rint(outs * (p.output_mean / outs.mean())), 1).astype(np.int64)
    return ins, outs


def simulate_point(spec: GpuPoolSpec, p: BenchPoint, index: int, shape: str, samples: int, seed: int) -> Simulated:
    """Mean over `samples` replays of one point (sample k of point i draws from SeedSequence(seed, (i, k)))."""
    from backends.gpu.engine_bench import serve_benchmark

    tpot, ttft, thr = [], [], []
    for k in range(samples):
        rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(index, k)))
        ins, outs = point_lengths(p, shape, rng)
        r = serve_benchmark(spec, ins, outs, p.request_rate, rng)
        tpot.append(r.tpot_mean_s * 1e3)
        ttft.append(r.ttft_mean_s * 1e3)
        thr.append(r.throughput_rps)
    return Simulated(float(np.mean(tpot)), float(np.mean(ttft)), float(np.mean(thr)))


def _value(sim: Simulated, quantity: str) -> float:
    return {"mean_tpot_ms": sim.tpot_ms, "mean_ttft_ms": sim.ttft_ms, "throughput_rps": sim.throughput_rps}[quantity]


def pool_with(spec: GpuPoolSpec, eff: Efficiency) -> GpuPoolSpec:
    """The benchmark's pool: `spec` with the iteration model derived from `eff`."""
    from backends.gpu.catalog import derived_iteration

    return spec.model_copy(update={"iteration_s": derived_iteration(spec, eff), "profile": None})


def residuals(
    spec: GpuPoolSpec, eff: Efficiency, points: list[BenchPoint], shape: str, samples: int, seed: int, in_fit: bool
) -> list[Residual]:
    pool = pool_with(spec, eff)
    out = []
    for i, p in enumerate(points):
        sim = simulate_point(pool, p, i, shape, samples, seed)
        fitted = {q for q, _ in fitted_quantities(p)} if in_fit else set()
        for q, measured in reported_quantities(p):
            out.append(Residual(p, q, measured, _value(sim, q), q in fitted))
    return out


def _start_value(start: Efficiency, name: str) -> float:
    return float(start.attention_share if name == "attention" else getattr(start, name))


def fit_efficiency(
    spec: GpuPoolSpec,
    start: Efficiency,
    points: list[BenchPoint],
    fit: tuple[str, ...] = DEFAULT_FIT,
    shape: str = "constant",
    samples: int = 2,
    seed: int = 0,
    max_evaluations: int = 80,
) -> FitResult:
    """The factors `fit` (names of Efficiency fields) minimising the squared log errors of the points'
    fitted quantities; the others stay at `start` (the GPU family's)."""
    from scipy.optimize import minimize

    names = {f.name for f in fields(start)}
    unknown = [f for f in fit if f not in names]
    if unknown:
        raise ValueError(f"cannot fit {', '.join(unknown)}: the factors are {', '.join(sorted(names))}")
    terms = [(i, q, m) for i, p in enumerate(points) for q, m in fitted_quantities(p)]
    if len(terms) < len(fit):
        raise ValueError(
            f"{len(terms)} fitted quantities for {len(fit)} factors: give more result files (mean TPOT at finite"
            " rates, or duration of all-at-once runs)"
        )
    x0 = np.array([math.log(max(_start_value(start, f), FLOOR.get(f, 1e-3))) for f in fit])

    def eff_at(x: np.ndarray) -> Efficiency:
        vals = {}
        for f, v in zip(fit, np.exp(x).tolist(), strict=True):
            vals[f] = min(v, 1.0) if f in FRACTIONS else v
        return replace(start, **vals)

    count = [0]

    def loss(x: np.ndarray) -> float:
        count[0] += 1
        pool = pool_with(spec, eff_at(x))
        sims = {i: simulate_point(pool, points[i], i, shape, samples, seed) for i in {t[0] for t in terms}}
        return float(sum(math.log(_value(sims[i], q) / m) ** 2 for i, q, m in terms))

    simplex = np.vstack([x0] + [x0 + 0.4 * np.eye(len(fit))[k] for k in range(len(fit))])
    res = minimize(
        loss,
        x0,
        method="Nelder-Mead",
        options={"initial_simplex": simplex, "xatol": 5e-3, "fatol": 1e-6, "maxfev": max_evaluations},
    )
    eff = eff_at(res.x)
    rows = residuals(spec, eff, points, shape, samples, seed, in_fit=True)
    return FitResult(eff, tuple(fit), float(res.fun), rows, count[0])
