"""`backends.gpu_pool.server_routing` and `backends.gpu_pool.prefix_cache`: which server of a pool takes a
request, and the prefix cache each server keeps in its KV memory (backends/gpu/server_routing.py)."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from sim.config.base import Frozen

# SGLang's cache-aware router (sgl-router) leaves cache affinity when the busiest worker has more than
# `balance_abs_threshold` = 64 requests over the least busy one (and 1.5 x as many), and follows the longest
# match only when it covers at least `cache_threshold` = 0.3 of the prompt: its defaults
SGLANG_BALANCE_ABS_THRESHOLD = 64
SGLANG_CACHE_THRESHOLD = 0.3


class ServerRoutingSpec(Frozen):
    """least_loaded (one shared queue, least-loaded server first: the pool as it always was), round_robin, or
    prefix_affinity (the server holding the longest cached prefix of the prompt, if it covers at least
    `min_match_share` of the prompt's blocks and its load exceeds the least-loaded server's by at most
    `load_cap` requests; else the least-loaded server). A name of backends/gpu/server_policies/."""

    policy: Annotated[str, Field(min_length=1, max_length=64)] = "least_loaded"
    load_cap: Annotated[int, Field(ge=0, le=1_000_000)] = SGLANG_BALANCE_ABS_THRESHOLD
    min_match_share: Annotated[float, Field(ge=0, le=1)] = SGLANG_CACHE_THRESHOLD


class ServerPrefixCacheSpec(Frozen):
    """Each server caches the KV blocks of the prompts it served (named by the requests' `hash_ids`, blocks of
    `block_tokens`) in the KV memory its running batch leaves free; a request's prompt prefix found on the
    server it runs on is not prefilled again (vLLM's automatic prefix caching)."""

    enabled: bool = False
    block_tokens: Annotated[int, Field(ge=1, le=1_000_000)] = 512  # Mooncake traces: 512 tokens per hash id
