"""Prefix reuse from hash_ids (Mooncake-format traces): an LRU of 512-token prompt blocks that lowers the API
bill (cached input tokens) and the GPU's prefill time. Blocks are built by hand, as a trace source fills them."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest

from backends.cache.prefix import PrefixCache
from sim.config.cache import PrefixCacheSpec
from sim.core.request_block import RequestBlock
from sim.engine.loading import load_config_text
from sim.engine.replication import Replication

# request i's prompt blocks: hash_ids[offsets[i]:offsets[i+1]]
PROMPTS = [[1, 2, 3], [1, 2, 4, 5], [1, 2, 3, 6], [1, 2, 3], [7]]
INPUT = [1536, 2048, 1900, 1536, 300]
EXPECT_CACHED = [0, 1024, 1536, 1535, 0]  # leading blocks found x 512, at least one token is prefilled


def hand_block(horizon_s: float) -> RequestBlock:
    n = len(PROMPTS)
    ids = np.array([h for p in PROMPTS for h in p], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum([len(p) for p in PROMPTS])]).astype(np.int64)
    block = RequestBlock(
        0,
        0.0,
        horizon_s,
        arrival_at=100.0 * np.arange(n, dtype=np.float64),
        class_idx=np.zeros(n, dtype=np.int16),
        input_tokens=np.array(INPUT, dtype=np.int64),
        output_tokens=np.full(n, 10, dtype=np.int64),
    )
    block.hash_ids, block.hash_offsets = ids, offsets
    return block


class HandGenerator:
    def __init__(self, block: RequestBlock):
        self.block = block

    def blocks(self) -> Iterator[RequestBlock]:
        yield self.block


CONFIG = """
name: prefix
seed: 1
horizon_h: 1
workload:
  arrivals: {kind: constant, mean_rps: 1}
cache:
  prefix: {enabled: true, capacity_blocks: 1000, block_tokens: 512}
  prompt: {cached_input_fraction: 0.5}
routing: {policy: api_only}
backends:
  api: {price_input_per_mtok_usd: 2.0, price_cached_input_per_mtok_usd: 0.2, price_output_per_mtok_usd: 0.0}
  gpu_pool:
    servers: 1
    max_batch: 1
    iteration_s: {base: 0.01, per_prefill_token: 0.001}
    cold_start_s: {dist: constant, value: 0}
output: {requests: true}
"""


def run(*overrides: str):
    exp = load_config_text(CONFIG, overrides)
    rep = Replication(exp, 0)
    rep.generator = HandGenerator(hand_block(exp.horizon_h * 3600))  # type: ignore[assignment]
    return rep.run()


def test_lru_counts_the_leading_run_and_evicts_least_recent() -> None:
    cache = PrefixCache(PrefixCacheSpec(enabled=True, capacity_blocks=3))
    assert cache.matched_blocks([1, 2, 3]) == 0
    assert cache.matched_blocks([1, 2, 4, 5]) == 2  # 4 evicts 3, then 5 evicts 1
    assert len(cache) == 3
    # LRU -> MRU is now 2, 4, 5
    assert cache.matched_blocks([1, 2]) == 0  # block 1 is gone: the prefix breaks at once (2 is evicted by 1)
    assert cache.matched_blocks([5, 4]) == 1  # 5 found, 4 was evicted when 2 came back
    assert cache.matched_blocks([5, 4, 9]) == 2


def test_prefix_hits_lower_the_api_bill() -> None:
    r = run()
    q = r.requests
    assert q["cached_tokens"].tolist() == EXPECT_CACHED
    inp = np.array(INPUT)
    cached = np.array(EXPECT_CACHED)
    expect = ((inp - cached) * 2.0 + cached * 0.2) / 1e6
    assert np.allclose(q["cost_usd"], expect, rtol=1e-12)  # the prefix cache replaces cached_input_fraction
    assert r.metrics["prefix_cached_tokens"] == sum(EXPECT_CACHED)
    assert r.metrics["prefix_hit_rate"] == pytest.approx(sum(EXPECT_CACHED) / sum(INPUT))
    off = run("cache.prefix.enabled=false")
    assert np.allclose(off.requests["cost_usd"], inp * (0.5 * 2.0 + 0.5 * 0.2) / 1e6, rtol=1e-12)


def test_prefix_hits_shorten_gpu_prefill() -> None:
    on = run("routing.policy=gpu_only")
    off = run("routing.policy=gpu_only", "cache.prefix.enabled=false")
    ttft_on = on.requests["first_token_at"] - on.requests["arrival_at"]
    ttft_off = off.requests["first_token_at"] - off.requests["arrival_at"]
    inp = np.array(INPUT)
    assert np.allclose(ttft_off, 0.01 + 0.001 * inp)
    assert np.allclose(ttft_on, 0.01 + 0.001 * (inp - np.array(EXPECT_CACHED)))
    assert on.metrics["cost_api_usd"] == 0.0


def test_blocks_without_hash_ids_fall_back_to_the_configured_fraction() -> None:
    exp = load_config_text(CONFIG)
    rep = Replication(exp, 0)
    r = rep.run()  # the Poisson generator fills no hash_ids
    assert r.metrics["prefix_cached_tokens"] == 0 and r.metrics["prefix_hit_rate"] is None
    q = r.requests
    assert np.allclose(q["cost_usd"], q["input_tokens"] * 1.1 / 1e6, rtol=1e-12)
