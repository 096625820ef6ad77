"""Latency-bound capacity: how many requests a pool can hold in flight while meeting its latency targets.

`servers x max_batch` is what the pool can hold at all; a batch that large may decode too slowly for the
TPOT or end-to-end targets. In steady decoding every running sequence gets one token per iteration, so a
sequence's time per output token is the iteration time of the batch it runs in. With the pool's iteration
model (backends.gpu.catalog: the user's `iteration_s`, or the one derived from GPU, model and precision)
an iteration of n sequences of the workload's mix takes

    t(n) = base + n * (per_seq + per_prefill_token * I/K + per_kv_token * kv) + moe(n)

with I/K the prompt tokens prefilled per decode iteration (each request prefills its I prompt tokens once
over its K output tokens; means over the class mix), kv the KV tokens a running sequence holds on average
(input plus the tokens generated so far, weighted by the iterations each request runs:
E[I] + (E[K^2]/E[K] - 1)/2), and moe(n) the routed experts the batch touches (MoE models). t(n) grows with
n, so the latency-bound batch is the largest n <= max_batch with t(n) <= L, where L is the tightest
per-token budget the plan targets give: `tpot_mean_s<=X` gives X, an `e2e_*<=X` target gives X / E[K]
(the request of mean length spreading its budget over its tokens; optimistic for the long answers a
percentile target is about). docs/metrics.md ("Latency-bound capacity") states the same. A run writes
the result into summary.json (`latency_capacity`); the report's in-flight chart draws it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from backends.gpu.catalog import derived_moe, iteration_model
from sim.config.backends import GpuPoolSpec
from sim.config.experiment import Experiment, parse_target
from sim.config.workload import RequestClass

PER_TOKEN_TARGET = re.compile(r"^(tpot|e2e)_(mean|p\d+)_s$")


@dataclass(frozen=True)
class TokenMix:
    """The workload's traffic mix as the iteration model sees it (means over the classes' shares)."""

    input_mean: float  # E[I] prompt tokens per request
    output_mean: float  # E[K] output tokens per request
    kv_per_seq: float  # KV tokens a running sequence holds, averaged over its iterations

    @property
    def prefill_per_iteration(self) -> float:
        """Prompt tokens prefilled per sequence and decode iteration (E[I] / E[K])."""
        return self.input_mean / self.output_mean


def token_mix(classes: Sequence[RequestClass], base_dir: Path | None = None) -> TokenMix:
    """TokenMix of a workload's request classes (shares need not sum to 1 here: they are normalised)."""
    from workloads.token_counts import make_token_distribution

    total = sum(c.share for c in classes)
    if not classes or total <= 0:
        raise ValueError("no request class with a positive share")
    ei = ek = ek2 = 0.0
    for c in classes:
        w = c.share / total
        i = make_token_distribution(c.input_tokens, base_dir)
        k = make_token_distribution(c.output_tokens, base_dir)
        ei += w * i.mean
        ek += w * k.mean
        ek2 += w * (k.variance + k.mean**2)
    # per iteration-weighted sequence: KV = I + (iterations done so far); averaged over a request's K iterations
    # that is I + (K - 1)/2, weighted by K: E[K I + K (K - 1)/2] / E[K] (I and K independent within a class)
    kv = ei + (ek2 / ek - 1.0) / 2.0
    return TokenMix(input_mean=ei, output_mean=ek, kv_per_seq=kv)


def per_token_limit(targets: list[str], mix: TokenMix) -> tuple[float, str] | None:
    """The tightest per-token time budget the targets give, with the target that gives it (None: none does)."""
    best: tuple[float, str] | None = None
    for t in targets:
        metric, op, value = parse_target(t)
        m = PER_TOKEN_TARGET.match(metric)
        if op != "<=" or not m:
            continue
        limit = value if m.group(1) == "tpot" else value / mix.output_mean
        if best is None or limit < best[0]:
            best = (limit, t)
    return best


def iteration_time_s(spec: GpuPoolSpec, n: int, mix: TokenMix) -> float:
    """t(n): one decode iteration of n sequences of the mix, from the pool's iteration model."""
    it = iteration_model(spec)
    moe = derived_moe(spec)
    per_seq = it.per_seq + it.per_prefill_token * mix.prefill_per_iteration + it.per_kv_token * mix.kv_per_seq
    return it.base + n * per_seq + (moe.seconds(n) if moe is not None else 0.0)


def latency_bound_batch(spec: GpuPoolSpec, limit_s: float, mix: TokenMix) -> int:
    """Largest n in 0..max_batch with t(n) <= limit_s (0: not even one sequence meets it). t is non-decreasing
    in n (every coefficient >= 0, experts touched grow with n), so a bisection finds it."""
    if iteration_time_s(spec, spec.max_batch, mix) <= limit_s:
        return int(spec.max_batch)
    lo, hi = 0, int(spec.max_batch)  # t(lo) <= limit (lo = 0 by convention), t(hi) > limit
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if iteration_time_s(spec, mid, mix) <= limit_s:
            lo = mid
        else:
            hi = mid
    return lo


@dataclass(frozen=True)
class LatencyBound:
    """Per server: the largest batch meeting the latency targets (= max_batch when none binds)."""

    batch: int
    max_batch: int
    limit_s: float | None  # per-token budget; None: no TPOT or e2e target
    target: str | None  # the target that sets it
    iteration_at_batch_s: float  # t(batch)

    @property
    def binds(self) -> bool:
        return self.batch < self.max_batch


def latency_bound(exp: Experiment) -> LatencyBound:
    """The latency-bound batch of the experiment's `backends.gpu_pool` under its plan targets."""
    spec = exp.backends.gpu_pool
    mix = token_mix(exp.workload.classes)
    limit = per_token_limit(list(exp.plan.targets), mix)
    if limit is None:
        n = int(spec.max_batch)
        return LatencyBound(n, n, None, None, iteration_time_s(spec, n, mix))
    n = latency_bound_batch(spec, limit[0], mix)
    return LatencyBound(n, int(spec.max_batch), limit[0], limit[1], iteration_time_s(spec, n, mix))


def latency_capacity_summary(exp: Experiment) -> dict[str, Any]:
    """summary.json's `latency_capacity`: what the report's in-flight chart draws."""
    b = latency_bound(exp)
    return {
        "batch_per_server": b.batch,
        "max_batch": b.max_batch,
        "per_token_limit_s": b.limit_s,
        "target": b.target,
        "iteration_s_at_batch": b.iteration_at_batch_s,
    }
