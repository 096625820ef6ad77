"""Names, units and one-line definitions of every per-replication metric (see docs/metrics.md)."""

from __future__ import annotations

METRICS: dict[str, str] = {
    "requests": "requests generated during the horizon (after warm-up)",
    "served": "requests that received a complete answer (cache hits included)",
    "failed": "requests that ended in an error (backend down, retries exhausted, failure without requeue)",
    "dropped": "requests abandoned after waiting longer than their class timeout_s",
    "in_flight": "requests still waiting or running when the horizon ended",
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
    "tpot_mean_s": "mean time per output token = (e2e - TTFT)/(output tokens - 1), requests with >= 2 tokens",
    "queue_wait_mean_s": "mean of admission into a batch (or API call start) - arrival",
    "peak_ttft_p95_s": "95th percentile TTFT of requests arriving in the hour starting at peak_hour, every day",
    "peak_concurrency": "largest number of requests in flight at once (arrived, not yet finished)",
    "gpu_utilization": "busy server-time / paid server-time (busy = running a batch)",
    "gpu_capacity_utilization": "server-time the GPU work would take in full batches (max_batch) / paid server-time",
    "preemptions": "GPU requests preempted for KV memory (paged policy) and recomputed later",
    "availability": "served / requests",
    "uptime": "time-average fraction of the horizon with at least one healthy serving path",
    "slo_attainment": "fraction of requests served within their class's TTFT SLO",
    "cost_total_usd": "API + GPU + fixed cost over the horizon",
    "cost_api_usd": "API spend over the horizon (per token, cached and batch prices applied)",
    "cost_gpu_usd": "GPU spend over the horizon: provisioned server-hours x price, busy or idle",
    "cost_fixed_usd": "fixed monthly overhead prorated to the horizon",
    "cost_per_1k_tokens_usd": "cost_total_usd / (tokens_in + tokens_out) x 1000",
    "monthly_cost_usd": "cost_total_usd scaled from the horizon to costs.hours_per_month",
}

METRIC_NAMES: frozenset[str] = frozenset(METRICS)

# Metrics whose value is a count; summaries keep them as floats too.
COUNT_METRICS: frozenset[str] = frozenset(
    {
        "requests",
        "served",
        "failed",
        "dropped",
        "in_flight",
        "cache_hits",
        "served_by_api",
        "served_by_gpu",
        "tokens_in",
        "tokens_out",
        "peak_concurrency",
        "preemptions",
    }
)
