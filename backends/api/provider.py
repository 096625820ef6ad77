"""A paid LLM API: latency (TTFT distribution + output speed), per-token prices, batch API, outages.

Latency: first token after a TTFT drawn from `ttft_s`, then (output tokens - 1) / `output_tokens_per_s`.
Batch API: the whole answer arrives after a delay drawn from `batch_delay_s` (first token = last token),
billed at `batch_discount` x the price. Cost: input tokens split into a cached share
(`cache.prompt.cached_input_fraction`, billed at the cached-input price) and the rest, plus output tokens.
Outages: an alternating renewal process, up ~ Exp(mtbf_h), down ~ Exp(mttr_h), started in its stationary
state; a call that starts while the provider is down fails. Rate limits (backends.rate_limit) and what
happens to a failed call (backends.api_dispatch) are decided by the dispatcher; this class answers calls
that go through.
When a prefix cache supplied the request's cached tokens (FLAG_PREFIX), those are billed at the cached price
instead of `cached_input_fraction` of the input.
"""

from __future__ import annotations

import bisect

import numpy as np

from backends.api.rate_limit import TokenBuckets, make_buckets
from sim.config.backends import ApiSpec
from sim.core.calendar import HOUR_S
from sim.core.request_block import FLAG_PREFIX, PATH_API, PATH_API_BATCH, RequestBlock
from workloads.distributions import make_distribution


def cost_parts(
    spec: ApiSpec, input_tokens: np.ndarray, cached: np.ndarray, output_tokens: np.ndarray, batch: bool | np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """USD for (uncached input, cached input, output) tokens; `cached` may be fractional (a billed share)."""
    factor = np.where(batch, spec.batch_discount, 1.0) / 1e6
    return (
        (input_tokens - cached) * spec.price_input_per_mtok_usd * factor,
        cached * spec.price_cached_input_per_mtok_usd * factor,
        output_tokens * spec.price_output_per_mtok_usd * factor,
    )


def billed_cached(block: RequestBlock, idx: np.ndarray, fraction: float) -> np.ndarray:
    """Cached input tokens to bill: the prefix cache's count where known, else the configured share."""
    inp = block.input_tokens[idx]
    return np.where(block.flags[idx] & FLAG_PREFIX, block.cached_tokens[idx], inp * fraction)


class ApiBackend:
    def __init__(
        self,
        name: str,
        index: int,
        spec: ApiSpec,
        cached_input_fraction: float,
        rng_latency: np.random.Generator,
        rng_batch: np.random.Generator,
        rng_outages: np.random.Generator,
        horizon_s: float,
    ):
        self.name = name
        self.index = index
        self.spec = spec
        self.cached_fraction = cached_input_fraction
        self.ttft = make_distribution(spec.ttft_s)
        self.batch_delay = make_distribution(spec.batch_delay_s)
        self.rng_latency = rng_latency
        self.rng_batch = rng_batch
        self.down_starts, self.down_ends = _outages(spec, rng_outages, horizon_s)
        self._down_starts = self.down_starts.tolist()
        self._down_ends = self.down_ends.tolist()
        self.buckets: TokenBuckets | None = make_buckets(spec.rate_limit)

    def is_down_at(self, t: float) -> bool:
        k = bisect.bisect_right(self._down_starts, t) - 1
        return k >= 0 and t < self._down_ends[k]

    def answer(
        self, block: RequestBlock, idx: np.ndarray, start: np.ndarray, ttft: np.ndarray, delay: np.ndarray, batch: bool
    ) -> None:
        """Requests `idx` whose calls are accepted at `start`: latency, bill and SERVED (vectorised)."""
        out = block.output_tokens[idx]
        if batch:
            first = start + delay
            last = first
        else:
            first = start + ttft
            last = first + (out - 1) / self.spec.output_tokens_per_s
        cached = billed_cached(block, idx, self.cached_fraction)
        parts = cost_parts(self.spec, block.input_tokens[idx], cached, out, batch)
        block.cost_usd[idx] = parts[0] + parts[1] + parts[2]
        prefix = (block.flags[idx] & FLAG_PREFIX) != 0
        block.cached_tokens[idx] = np.where(prefix, block.cached_tokens[idx], np.rint(cached).astype(np.int64))
        block.provider[idx] = self.index
        block.answered(idx, PATH_API_BATCH if batch else PATH_API, start, first, last)

    def answer_one(self, block: RequestBlock, i: int, start: float, ttft: float, delay: float, batch: bool) -> None:
        """One accepted call (the scalar twin of `answer`, for calls resolved one at a time)."""
        s = self.spec
        out = int(block.output_tokens[i])
        inp = int(block.input_tokens[i])
        if batch:
            first = last = start + delay
        else:
            first = start + ttft
            last = first + (out - 1) / s.output_tokens_per_s
        prefix = int(block.flags[i]) & FLAG_PREFIX
        cached = float(block.cached_tokens[i]) if prefix else inp * self.cached_fraction
        factor = (s.batch_discount if batch else 1.0) / 1e6
        block.cost_usd[i] = (
            (inp - cached) * s.price_input_per_mtok_usd * factor
            + cached * s.price_cached_input_per_mtok_usd * factor
            + out * s.price_output_per_mtok_usd * factor
        )
        if not prefix:
            block.cached_tokens[i] = round(cached)
        block.provider[i] = self.index
        block.answered(i, PATH_API_BATCH if batch else PATH_API, start, first, last)

    def draw_block(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        """Per-request latency draws for a whole block (drawn for every request, used or not, so a
        request's API latency is the same in every routing variant: common random numbers)."""
        return self.ttft.sample(self.rng_latency, n), self.batch_delay.sample(self.rng_batch, n)

    def is_down(self, t: np.ndarray) -> np.ndarray:
        if len(self.down_starts) == 0:
            return np.zeros(len(t), dtype=bool)
        k = np.searchsorted(self.down_starts, t, side="right") - 1
        valid = k >= 0
        out = np.zeros(len(t), dtype=bool)
        out[valid] = t[valid] < self.down_ends[k[valid]]
        return out

    def up_intervals(self, horizon_s: float) -> list[tuple[float, float]]:
        out, t = [], 0.0
        for a, b in zip(self.down_starts.tolist(), self.down_ends.tolist(), strict=True):
            if a > t:
                out.append((t, min(a, horizon_s)))
            t = b
        if t < horizon_s:
            out.append((t, horizon_s))
        return out


def _outages(spec: ApiSpec, rng: np.random.Generator, horizon_s: float) -> tuple[np.ndarray, np.ndarray]:
    if spec.outages.mtbf_h is None:
        return np.zeros(0), np.zeros(0)
    mtbf, mttr = spec.outages.mtbf_h * HOUR_S, spec.outages.mttr_h * HOUR_S
    starts, ends, t = [], [], 0.0
    # start in the stationary state: down with probability mttr / (mtbf + mttr), residual times memoryless
    if rng.random() < mttr / (mtbf + mttr):
        d = float(rng.exponential(mttr))
        starts.append(0.0)
        ends.append(d)
        t = d
    while True:
        t += float(rng.exponential(mtbf))
        if t >= horizon_s:
            break
        d = float(rng.exponential(mttr))
        starts.append(t)
        ends.append(t + d)
        t += d
    return np.array(starts), np.array(ends)
