"""Tallies of the hybrid path: caches, rate limits, outages, fallbacks, and the bill's attribution.

Folded per finished block by the recorder (after warm-up, with requests still streaming at the horizon
counted as in flight), read by the replication into metrics and `breakdown` columns:

- `cost_api_usd.tokens.{input,cached_input,output}`, `cost_api_usd.provider.<name>`
- `cost_gpu_usd.class.<c>` (GPU spend split by the GPU-served tokens of each class),
  `cost_fixed_usd.class.<c>` (fixed overhead and TCO components split by served tokens), `cost_total_usd.class.<c>`,
  `cost_per_1k_tokens_usd.class.<c>`, `tokens.class.<c>`, `cost_total_usd.path.{api,api_batch,gpu,fixed}`
- `ttft_p95_s.class.<c>`, `peak_ttft_p95_s.class.<c>` (arrivals in the peak hour), `slo_attainment.class.<c>`
"""

from __future__ import annotations

import numpy as np

from backends.api.provider import billed_cached, cost_parts
from sim.config import Experiment
from sim.core.histogram import LogHistogram
from sim.core.latency import Latencies
from sim.core.request_block import (
    FLAG_EXHAUSTED,
    FLAG_FALLBACK,
    FLAG_OUTAGE,
    FLAG_PREFIX,
    FLAG_SEMANTIC_FALSE,
    PATH_API,
    PATH_API_BATCH,
    PATH_DEGRADED,
    PATH_GPU,
    PATH_SEMANTIC,
    SERVED,
    RequestBlock,
)
from sim.engine.censored import Unserved, censored_quantile

HYBRID_COUNTERS = (
    "semantic_hits",
    "semantic_false_hits",
    "degraded",
    "fallbacks",
    "api_rate_limited",
    "api_retries_exhausted",
    "api_outage_failures",
    "served_by_api_batch",
    "prefix_cached_tokens",
    "prefix_input_tokens",
)


class HybridTally:
    def __init__(self, exp: Experiment):
        self.providers = [("api", exp.backends.api), *sorted(exp.backends.apis.items())]
        self.fraction = exp.cache.prompt.cached_input_fraction
        self.class_names = [c.name for c in exp.workload.classes]
        k = len(self.class_names)
        self.counts = dict.fromkeys(HYBRID_COUNTERS, 0)
        self.cost_tokens = {"input": 0.0, "cached_input": 0.0, "output": 0.0}
        self.cost_by_provider = np.zeros(len(self.providers))
        self.cost_by_path = {"api": 0.0, "api_batch": 0.0}
        self.tokens_by_class = np.zeros(k)
        self.gpu_tokens_by_class = np.zeros(k)
        self.peak_hour = int(exp.workload.arrivals.peak_hour)
        self.slo = np.array([c.slo_ttft_s for c in exp.workload.classes])
        self.ttft_by_class = [LogHistogram() for _ in range(k)]
        self.peak_ttft_by_class = [LogHistogram() for _ in range(k)]
        self.unserved_by_class = [Unserved() for _ in range(k)]
        self.peak_unserved_by_class = [Unserved() for _ in range(k)]
        self.peak_covered = True  # set by the recorder: False when the horizon holds no whole peak hour
        self.slo_met_by_class = np.zeros(k)
        self.requests_by_class = np.zeros(k)

    def add(self, b: RequestBlock, st: np.ndarray, lat: Latencies) -> None:
        """Fold a block; `st` is its status column with answers still streaming at the horizon as pending,
        `lat` the latencies of its served requests (the recorder's)."""
        c = self.counts
        served = st == SERVED
        flags = b.flags
        c["semantic_hits"] += int((served & (b.path == PATH_SEMANTIC)).sum())
        c["semantic_false_hits"] += int((served & ((flags & FLAG_SEMANTIC_FALSE) != 0)).sum())
        c["degraded"] += int((served & (b.path == PATH_DEGRADED)).sum())
        c["fallbacks"] += int(((flags & FLAG_FALLBACK) != 0).sum())
        c["api_rate_limited"] += int(b.retries.sum())
        c["api_retries_exhausted"] += int(((flags & FLAG_EXHAUSTED) != 0).sum())
        c["api_outage_failures"] += int(((flags & FLAG_OUTAGE) != 0).sum())
        c["served_by_api_batch"] += int((served & (b.path == PATH_API_BATCH)).sum())
        prefix = (flags & FLAG_PREFIX) != 0
        c["prefix_cached_tokens"] += int(b.cached_tokens[prefix].sum())
        c["prefix_input_tokens"] += int(b.input_tokens[prefix].sum())
        k = len(self.class_names)
        tok = (b.input_tokens + b.output_tokens).astype(np.float64)
        self.tokens_by_class += np.bincount(b.class_idx[served], weights=tok[served], minlength=k)
        gpu = served & (b.path == PATH_GPU)
        self.gpu_tokens_by_class += np.bincount(b.class_idx[gpu], weights=tok[gpu], minlength=k)
        self._latency(b, lat)
        billed = (b.cost_usd > 0) & ((b.path == PATH_API) | (b.path == PATH_API_BATCH))
        if not billed.any():
            return
        for p, (_, spec) in enumerate(self.providers):
            idx = np.flatnonzero(billed & (b.provider == p))
            if len(idx) == 0:
                continue
            batch = b.path[idx] == PATH_API_BATCH
            cached = billed_cached(b, idx, self.fraction)
            parts = cost_parts(spec, b.input_tokens[idx], cached, b.output_tokens[idx], batch)
            for name, v in zip(("input", "cached_input", "output"), parts, strict=True):
                self.cost_tokens[name] += float(v.sum())
            cost = b.cost_usd[idx]
            self.cost_by_provider[p] += float(cost.sum())
            self.cost_by_path["api_batch"] += float(cost[batch].sum())
            self.cost_by_path["api"] += float(cost[~batch].sum())

    def _latency(self, b: RequestBlock, lat: Latencies) -> None:
        k = len(self.class_names)
        self.requests_by_class += np.bincount(b.class_idx, minlength=k)
        cls, ttft = lat.class_idx, lat.ttft_s
        self.slo_met_by_class += np.bincount(cls[ttft <= self.slo[cls]], minlength=k)
        peak = lat.hour == self.peak_hour
        for j in np.unique(cls).tolist():
            sel = cls == j
            self.ttft_by_class[j].add(ttft[sel])
            if (sel & peak).any():
                self.peak_ttft_by_class[j].add(ttft[sel & peak])

    def add_unserved(self, cls: np.ndarray, wait_s: np.ndarray, peak: np.ndarray) -> None:
        """Requests without an answer (sim.censored), by class: all and those arriving in the peak hour."""
        for j in np.unique(cls).tolist():
            sel = cls == j
            self.unserved_by_class[j].add(wait_s[sel])
            self.peak_unserved_by_class[j].add(wait_s[sel & peak])

    def metrics(self, requests: int, cache_hits: int) -> dict[str, float | None]:
        c = self.counts
        looked = c["prefix_input_tokens"]
        return {
            "cache_hit_rate": cache_hits / requests if requests else None,
            "semantic_hits": c["semantic_hits"],
            "semantic_false_hits": c["semantic_false_hits"],
            "semantic_false_hit_rate": c["semantic_false_hits"] / requests if requests else None,
            "degraded": c["degraded"],
            "fallbacks": c["fallbacks"],
            "api_rate_limited": c["api_rate_limited"],
            "api_retries": c["api_rate_limited"] - c["api_retries_exhausted"],
            "api_retries_exhausted": c["api_retries_exhausted"],
            "api_outage_failures": c["api_outage_failures"],
            "served_by_api_batch": c["served_by_api_batch"],
            "prefix_cached_tokens": c["prefix_cached_tokens"],
            "prefix_hit_rate": c["prefix_cached_tokens"] / looked if looked else None,
        }

    def breakdown(self, cost_api_by_class: np.ndarray, cost_gpu: float, cost_fixed: float) -> dict[str, float | None]:
        out: dict[str, float | None] = {}
        for name, v in self.cost_tokens.items():
            out[f"cost_api_usd.tokens.{name}"] = v
        for (name, _), v in zip(self.providers, self.cost_by_provider.tolist(), strict=True):
            out[f"cost_api_usd.provider.{name}"] = v
        gpu_tok, tok = self.gpu_tokens_by_class, self.tokens_by_class
        tok_share = tok / tok.sum() if tok.sum() > 0 else np.zeros_like(tok)
        gpu_share = gpu_tok / gpu_tok.sum() if gpu_tok.sum() > 0 else tok_share
        for k, name in enumerate(self.class_names):
            g = cost_gpu * float(gpu_share[k])
            f = cost_fixed * float(tok_share[k])
            total = float(cost_api_by_class[k]) + g + f
            out[f"cost_gpu_usd.class.{name}"] = g
            out[f"cost_fixed_usd.class.{name}"] = f
            out[f"cost_total_usd.class.{name}"] = total
            out[f"tokens.class.{name}"] = float(tok[k])
            out[f"cost_per_1k_tokens_usd.class.{name}"] = total / float(tok[k]) * 1000.0 if tok[k] > 0 else 0.0
            q, _ = censored_quantile(self.ttft_by_class[k], self.unserved_by_class[k], 0.95)
            pq, _ = censored_quantile(self.peak_ttft_by_class[k], self.peak_unserved_by_class[k], 0.95)
            if not self.peak_covered:
                pq = None
            out[f"ttft_p95_s.class.{name}"] = q
            out[f"peak_ttft_p95_s.class.{name}"] = pq
            n = self.requests_by_class[k]
            out[f"slo_attainment.class.{name}"] = self.slo_met_by_class[k] / n if n else None
        out["cost_total_usd.path.api"] = self.cost_by_path["api"]
        out["cost_total_usd.path.api_batch"] = self.cost_by_path["api_batch"]
        out["cost_total_usd.path.gpu"] = cost_gpu
        out["cost_total_usd.path.fixed"] = cost_fixed
        return out
