"""Names, units and one-line definitions of every per-replication metric (see docs/metrics.md)."""

from __future__ import annotations

METRICS: dict[str, str] = {
    "requests": "requests generated during the horizon (after warm-up)",
    "served": "requests that received a complete answer (cache hits included)",
    "failed": "requests that ended in an error (backend down, retries exhausted, failure without requeue)",
    "dropped": "requests abandoned after waiting longer than their class timeout_s",
    "in_flight": "requests still waiting or running when the horizon ended",
    "in_flight_at_horizon": "the same count as in_flight, named for what it is: left out of availability",
    "cache_hits": "requests answered by the response cache",
    "served_by_api": "requests served by an API backend (any provider, batch API included)",
    "served_by_gpu": "requests served by the GPU pool",
    "tokens_in": "input tokens of served requests",
    "tokens_out": "output tokens of served requests",
    "ttft_mean_s": "mean time to first token = first token - arrival, over served requests",
    "ttft_p50_s": "median TTFT",
    "ttft_p95_s": "95th percentile TTFT",
    "ttft_p99_s": "99th percentile TTFT",
    "e2e_mean_s": "mean end-to-end latency = last token - arrival",
    "e2e_p50_s": "median end-to-end latency",
    "e2e_p95_s": "95th percentile end-to-end latency",
    "e2e_p99_s": "99th percentile end-to-end latency",
    "tpot_mean_s": "mean (e2e - TTFT)/(output tokens - 1) over streamed answers (GPU, API) with >= 2 tokens",
    "queue_wait_mean_s": "mean of admission into a batch (or API call start) - arrival",
    "peak_ttft_p95_s": "95th percentile TTFT of requests arriving in the hour starting at peak_hour, every day",
    "peak_concurrency": "largest number of requests in flight at once (arrived, not yet finished)",
    "gpu_utilization": "busy server-time / paid server-time (busy = running a batch)",
    "gpu_capacity_utilization": "server-time the GPU work would take in full batches (max_batch) / paid server-time",
    "preemptions": "GPU requests preempted for KV memory (paged policy) and recomputed later",
    "escalated_requests": "requests answered a second time by a bigger model (routing.escalate), both calls paid",
    "availability": "served / requests that ended (in flight at the horizon left out unless overdue)",
    "uptime": "time-average fraction of the horizon with at least one healthy serving path",
    "slo_attainment": "fraction of requests served within their class's TTFT SLO",
    "cost_total_usd": "API + GPU + fixed + TCO cost over the measured span (= horizon_cost_usd)",
    "horizon_cost_usd": "the simulated span's own cost (after warm-up): API + GPU + fixed + TCO",
    "cost_api_usd": "API spend over the horizon (per token, cached and batch prices applied)",
    "cost_gpu_usd": "GPU spend over the horizon: provisioned server-hours x price, busy or idle",
    "cost_fixed_usd": "costs.fixed_monthly_usd prorated to the horizon (0 outside its scope)",
    "cost_tco_usd": "the TCO components (costs.tco) over the horizon: prorated monthly amounts, egress, spares",
    "cost_per_1k_tokens_usd": "cost_total_usd / (tokens_in + tokens_out) x 1000",
    "monthly_cost_usd": "a calendar month (costs.hours_per_month) of the workload's own calendar (sim/engine/bill.py)",
    "cost_tco_api_monthly_usd": "API tokens in a calendar month: usage per request x the month's expected requests",
    "cost_tco_gpu_monthly_usd": "GPU server-hours in a calendar month, composed per weekday, x the server price",
    "cost_tco_fixed_monthly_usd": "costs.fixed_monthly_usd in its scope",
    "cost_tco_operations_monthly_usd": "operations hours per month x hourly rate, in scope",
    "cost_tco_engineers_monthly_usd": "engineers: FTE x yearly salary / 12, in scope",
    "cost_tco_monitoring_monthly_usd": "monitoring per month, in scope",
    "cost_tco_storage_monthly_usd": "weights storage: GB x price per GB-month, in scope",
    "cost_tco_egress_monthly_usd": "egress of a month's served output tokens x bytes per token x price per GB",
    "cost_tco_redundancy_monthly_usd": "spare (N+1) servers x server price x hours_per_month, in scope",
    # caches, rate limits, outages and fallbacks (sim/engine/hybrid_tally.py)
    "cache_hit_rate": "cache_hits / requests: share of requests answered by the exact response cache",
    "semantic_hits": "requests answered by the semantic cache (after an exact-cache miss)",
    "semantic_false_hits": "semantic-cache answers that were wrong (a similar but different prompt's answer)",
    "semantic_false_hit_rate": "semantic_false_hits / requests: the quality cost of the semantic cache",
    "degraded": "requests answered with a degraded response (stale or nearest cached) by routing.fallback: cache",
    "fallbacks": "requests handed to routing.fallback (backend down, retries exhausted, GPU failure)",
    "api_rate_limited": "429 answers received (every rejected attempt of every request counts)",
    "api_retries": "attempts retried after a 429 (api_rate_limited - api_retries_exhausted)",
    "api_retries_exhausted": "requests whose API call gave up after max_retries 429 answers",
    "api_outage_failures": "API calls that started while their provider was down",
    "served_by_api_batch": "requests served through a provider's batch API (included in served_by_api)",
    "prefix_cached_tokens": "input tokens found in the prefix cache (hash_ids): billed cached, not prefilled",
    "prefix_hit_rate": "prefix_cached_tokens / input tokens of requests looked up in the prefix cache",
}

# latency percentiles that count unserved requests (sim.censored); each has a `<name>.censored` flag
CENSORED_PERCENTILES = (
    "ttft_p50_s",
    "ttft_p95_s",
    "ttft_p99_s",
    "e2e_p50_s",
    "e2e_p95_s",
    "e2e_p99_s",
    "peak_ttft_p95_s",
)
for _name in CENSORED_PERCENTILES:
    METRICS[f"{_name}.censored"] = f"1 when {_name} falls among unserved requests (a floor; a <= target on it fails)"

METRIC_NAMES: frozenset[str] = frozenset(METRICS)

# metrics that are proportions (their intervals are computed on the logit scale, inside [0, 1])
PROPORTIONS: frozenset[str] = frozenset(
    {
        "availability",
        "uptime",
        "slo_attainment",
        "gpu_utilization",
        "cache_hit_rate",
        "semantic_false_hit_rate",
        "prefix_hit_rate",
        "gpu_prefix_hit_rate",  # a breakdown column: only a pool with prefix_cache.enabled reports it
    }
)


def metric_bounds(name: str) -> tuple[float | None, float | None]:
    """The range a metric (or a breakdown column `metric.kind.name`) can take: [0, 1] for proportions,
    [0, inf) for every other metric (counts, tokens, costs, times)."""
    base = name.split(".", 1)[0]
    if base in PROPORTIONS:
        return (0.0, 1.0)
    return (0.0, None)


HEADLINE = [
    "requests",
    "availability",
    "cache_hits",
    "served_by_gpu",
    "served_by_api",
    "ttft_p50_s",
    "ttft_p95_s",
    "peak_ttft_p95_s",
    "e2e_p95_s",
    "tpot_mean_s",
    "queue_wait_mean_s",
    "peak_concurrency",
    "gpu_utilization",
    "gpu_capacity_utilization",
    "uptime",
    "slo_attainment",
    "cost_api_usd",
    "cost_gpu_usd",
    "cost_per_1k_tokens_usd",
    "monthly_cost_usd",
]
