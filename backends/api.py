"""A paid LLM API: latency (TTFT distribution + output speed), per-token prices, batch API, outages.

Latency: first token after a TTFT drawn from `ttft_s`, then (output tokens - 1) / `output_tokens_per_s`.
Batch API: the whole answer arrives after a delay drawn from `batch_delay_s` (first token = last token),
billed at `batch_discount` x the price. Cost: input tokens split into a cached share
(`cache.prompt.cached_input_fraction`, billed at the cached-input price) and the rest, plus output tokens.
Outages: an alternating renewal process, up ~ Exp(mtbf_h), down ~ Exp(mttr_h); a call that starts while
the provider is down fails.
"""

from __future__ import annotations

import numpy as np

from sim.config.backends import ApiSpec
from sim.request_block import FAILED, PATH_API, PATH_API_BATCH, SERVED, RequestBlock
from workloads.distributions import make_distribution


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

    # prices in USD per token
    def cost(self, input_tokens: np.ndarray, output_tokens: np.ndarray, batch: bool) -> np.ndarray:
        s = self.spec
        f = self.cached_fraction
        usd = (
            input_tokens * ((1.0 - f) * s.price_input_per_mtok_usd + f * s.price_cached_input_per_mtok_usd)
            + output_tokens * s.price_output_per_mtok_usd
        ) / 1e6
        return usd * s.batch_discount if batch else usd

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

    def serve(
        self, block: RequestBlock, idx: np.ndarray, start: np.ndarray, ttft: np.ndarray, delay: np.ndarray, batch: bool
    ) -> None:
        """Serve block requests `idx` whose calls start at `start` (vectorised; no events needed)."""
        if len(idx) == 0:
            return
        down = self.is_down(start)
        ok, bad = idx[~down], idx[down]
        s_ok = start[~down]
        out = block.output_tokens[ok]
        if batch:
            first = s_ok + delay[~down]
            last = first
        else:
            first = s_ok + ttft[~down]
            last = first + (out - 1) / self.spec.output_tokens_per_s
        block.start_at[ok] = s_ok
        block.first_token_at[ok] = first
        block.done_at[ok] = last
        block.cost_usd[ok] = self.cost(block.input_tokens[ok], out, batch)
        block.cached_tokens[ok] = np.rint(block.input_tokens[ok] * self.cached_fraction).astype(np.int64)
        block.path[idx] = PATH_API_BATCH if batch else PATH_API
        block.provider[idx] = self.index
        block.finish_many(ok, SERVED)
        block.done_at[bad] = start[down]
        block.finish_many(bad, FAILED)


def _outages(spec: ApiSpec, rng: np.random.Generator, horizon_s: float) -> tuple[np.ndarray, np.ndarray]:
    if spec.outages.mtbf_h is None:
        return np.zeros(0), np.zeros(0)
    mtbf, mttr = spec.outages.mtbf_h * 3600.0, spec.outages.mttr_h * 3600.0
    starts, ends, t = [], [], 0.0
    while True:
        t += float(rng.exponential(mtbf))
        if t >= horizon_s:
            break
        d = float(rng.exponential(mttr))
        starts.append(t)
        ends.append(t + d)
        t += d
    return np.array(starts), np.array(ends)
