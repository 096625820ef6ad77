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


class CacheSpec(Frozen):
    response: ResponseCacheSpec = ResponseCacheSpec()
    prompt: PromptCacheSpec = PromptCacheSpec()
