"""The servers' prefix caches in the results (backends.gpu.server_routing): hit rates per pool and server.

Breakdown columns (summary.json `breakdown`, replications.parquet), present only when a pool has
`prefix_cache.enabled`, so that results without one stay exactly as they were:

* `gpu_prefix_hit_rate` = `gpu_prefix_cached_tokens` / `gpu_prefix_looked_up_tokens` over every pool;
* `gpu_prefix_hit_rate.server.<pool>_<k>`: the same for server k of a pool;
* `gpu_prefix_hit_rate.pool.<name>`, `gpu_prefix_cached_tokens.pool.<name>` for named pools.

Counted over requests arriving after warm-up, at their lookup on the server that first took them.
"""

from __future__ import annotations

from collections.abc import Sequence

from backends.gpu.pool import GpuPool


def server_prefix_metrics(pools: Sequence[tuple[str, GpuPool]], named: bool) -> dict[str, float | None]:
    out: dict[str, float | None] = {}
    looked = cached = 0
    for name, pool in pools:
        router = pool.router
        if router is None or router.caches is None:
            continue
        p_looked, p_cached = int(router.looked_tokens.sum()), int(router.cached_tokens.sum())
        looked += p_looked
        cached += p_cached
        for k, (lk, ca) in enumerate(zip(router.looked_tokens.tolist(), router.cached_tokens.tolist(), strict=True)):
            out[f"gpu_prefix_hit_rate.server.{name}_{k}"] = ca / lk if lk else None
        if named:
            out[f"gpu_prefix_hit_rate.pool.{name}"] = p_cached / p_looked if p_looked else None
            out[f"gpu_prefix_cached_tokens.pool.{name}"] = p_cached
    if out:
        out["gpu_prefix_cached_tokens"] = cached
        out["gpu_prefix_looked_up_tokens"] = looked
        out["gpu_prefix_hit_rate"] = cached / looked if looked else None
    return out
