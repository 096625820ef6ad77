"""Request generation: arrivals, class assignment, token sizes and prompt keys, in blocks of simulated time.

Every column comes from its own random stream (see sim.rng), and each class's sizes from a stream of
their own, so a change to one class, to the cache or to a backend leaves every other draw untouched.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from sim.config import Experiment
from sim.core.calendar import HOUR_S
from sim.core.request_block import RequestBlock
from sim.core.rng import name_key, stream
from workloads.arrivals import poisson_arrivals
from workloads.growth import grown
from workloads.popularity import ZipfPopularity
from workloads.shapes import build_rate_curve
from workloads.token_counts import make_token_distribution

TARGET_BLOCK_REQUESTS = 50_000

# (times, input tokens or None, output tokens or None, (hash_ids, hash_offsets) or None)
ArrivalColumns = tuple[np.ndarray, np.ndarray | None, np.ndarray | None, tuple[np.ndarray, np.ndarray] | None]


class RequestGenerator:
    """Yields `RequestBlock`s that tile [0, horizon)."""

    def __init__(self, exp: Experiment, replication: int):
        self.exp = exp
        self.horizon_s = exp.horizon_h * HOUR_S
        seed = exp.seed
        self.rng_classes = stream(seed, replication, "classes")
        classes = exp.workload.classes
        self.shares = np.array([c.share for c in classes])
        self.shares = self.shares / self.shares.sum()
        self.in_dists = [make_token_distribution(c.input_tokens) for c in classes]
        self.out_dists = [make_token_distribution(c.output_tokens) for c in classes]
        self.rng_in = [stream(seed, replication, "input_tokens", name_key(c.name)) for c in classes]
        self.rng_out = [stream(seed, replication, "output_tokens", name_key(c.name)) for c in classes]
        rc = exp.cache.response
        self.popularity = ZipfPopularity(rc.distinct_prompts, rc.zipf_s) if rc.enabled else None
        self.rng_cache = stream(seed, replication, "cache")
        self.source = make_arrival_source(exp, replication, self.horizon_s)

    def block_length_s(self) -> float:
        mean_rate = max(self.source.mean_rate(), 1e-9)
        length = TARGET_BLOCK_REQUESTS / mean_rate
        return float(min(max(length, 60.0), 6 * HOUR_S, self.horizon_s))

    def blocks(self) -> Iterator[RequestBlock]:
        length = self.block_length_s()
        t0, k = 0.0, 0
        while t0 < self.horizon_s:
            t1 = min(t0 + length, self.horizon_s)
            yield self.make_block(k, t0, t1)
            t0, k = t1, k + 1

    def make_block(self, index: int, t0: float, t1: float) -> RequestBlock:
        # a source may add a fifth column: the class of each request (-1: by share), and mark token
        # counts it leaves to the class distributions with -1 (bursts, sessions: workloads.synthetic)
        columns: tuple[Any, ...] = self.source.arrivals(t0, t1)
        times, in_tok, out_tok, hashes = columns[:4]
        n = len(times)
        forced = columns[4] if len(columns) > 4 else None
        if forced is None:
            class_idx = self.rng_classes.choice(len(self.shares), size=n, p=self.shares).astype(np.int16)
        else:
            class_idx = np.asarray(forced, dtype=np.int16).copy()
            free = class_idx < 0
            class_idx[free] = self.rng_classes.choice(len(self.shares), size=int(free.sum()), p=self.shares)
        input_tokens = np.empty(n, dtype=np.int64)
        output_tokens = np.empty(n, dtype=np.int64)
        for k in range(len(self.shares)):
            sel = np.flatnonzero(class_idx == k)
            input_tokens[sel] = self.in_dists[k].sample(self.rng_in[k], len(sel))
            output_tokens[sel] = self.out_dists[k].sample(self.rng_out[k], len(sel))
        if in_tok is not None:
            given = np.asarray(in_tok, dtype=np.int64)
            input_tokens = np.where(given >= 0, np.maximum(given, 1), input_tokens)
        if out_tok is not None:
            given = np.asarray(out_tok, dtype=np.int64)
            output_tokens = np.where(given >= 0, np.maximum(given, 1), output_tokens)
        prompt_id = self.popularity.sample(self.rng_cache, n) if self.popularity is not None else None
        block = RequestBlock(index, t0, t1, times, class_idx, input_tokens, output_tokens, prompt_id)
        if hashes is not None:
            block.hash_ids, block.hash_offsets = hashes
        return block


class PoissonSource:
    """A (non-homogeneous) Poisson process with the workload's rate curve."""

    def __init__(self, exp: Experiment, replication: int, horizon_s: float):
        self.curve = grown(build_rate_curve(exp.workload.arrivals, exp.start_weekday, horizon_s), exp.workload)
        self.rng = stream(exp.seed, replication, "arrivals")
        self.horizon_s = horizon_s

    def mean_rate(self) -> float:
        return float(self.curve.total(0.0, self.horizon_s) / self.horizon_s)

    def arrivals(self, t0: float, t1: float) -> ArrivalColumns:
        """Arrival times in [t0, t1); token columns and prefix hashes when the source dictates them."""
        return poisson_arrivals(self.curve, t0, t1, self.rng), None, None, None


def make_arrival_source(exp: Experiment, replication: int, horizon_s: float) -> PoissonSource:
    kind = exp.workload.arrivals.kind
    if kind == "trace":
        from workloads.trace import TraceSource

        return TraceSource(exp, replication, horizon_s)  # type: ignore[return-value]
    from workloads.synthetic import SyntheticSource, needs_synthetic

    if needs_synthetic(exp):  # bursts, over-dispersion or sessions
        return SyntheticSource(exp, replication, horizon_s)  # type: ignore[return-value]
    return PoissonSource(exp, replication, horizon_s)
