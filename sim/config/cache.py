"""`cache:` the exact response cache and provider prompt caching."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from sim.config.base import Frozen


class ResponseCacheSpec(Frozen):
    enabled: bool = False
    capacity: Annotated[int, Field(ge=0, le=10**9)] = 100_000
    ttl_s: Annotated[float, Field(gt=0)] = 86_400.0
    distinct_prompts: Annotated[int, Field(ge=1, le=10**10)] = 1_000_000
    zipf_s: Annotated[float, Field(gt=0, le=10)] = 1.1
    hit_latency_s: Annotated[float, Field(ge=0)] = 0.02


class PromptCacheSpec(Frozen):
    cached_input_fraction: Annotated[float, Field(ge=0, le=1)] = 0.0


class BetaSpec(Frozen):
    a: Annotated[float, Field(gt=0, le=1e4)]
    b: Annotated[float, Field(gt=0, le=1e4)]


class SemanticCacheSpec(Frozen):
    """A cache keyed by prompt embeddings, consulted after an exact-cache miss.

    Either `hit_probability` (P(hit | exact miss)) with `false_hit_rate` (share of hits that are wrong
    answers), or, when `hit_probability` is null, the threshold model: a miss has a true paraphrase cached
    with probability `paraphrase_share`; the similarity of its nearest cached neighbour is
    Beta(similarity_paraphrase) if so, Beta(similarity_unrelated) if not; a hit is similarity >=
    `similarity_threshold`, and a hit without a paraphrase is a false hit. Every lookup costs `latency_s`.
    """

    enabled: bool = False
    hit_probability: Annotated[float, Field(ge=0, le=1)] | None = None
    false_hit_rate: Annotated[float, Field(ge=0, le=1)] = 0.0
    similarity_threshold: Annotated[float, Field(ge=0, le=1)] = 0.9
    paraphrase_share: Annotated[float, Field(ge=0, le=1)] = 0.3
    similarity_paraphrase: BetaSpec = BetaSpec(a=30.0, b=2.0)
    similarity_unrelated: BetaSpec = BetaSpec(a=10.0, b=5.0)
    latency_s: Annotated[float, Field(ge=0, le=60)] = 0.03


class PrefixCacheSpec(Frozen):
    """Prefix reuse from a trace's hash_ids (Mooncake format): an LRU of prompt blocks of `block_tokens`."""

    enabled: bool = False
    capacity_blocks: Annotated[int, Field(ge=0, le=10**9)] = 100_000
    block_tokens: Annotated[int, Field(ge=1, le=1_000_000)] = 512


class CacheSpec(Frozen):
    response: ResponseCacheSpec = ResponseCacheSpec()
    prompt: PromptCacheSpec = PromptCacheSpec()
    semantic: SemanticCacheSpec = SemanticCacheSpec()
    prefix: PrefixCacheSpec = PrefixCacheSpec()
