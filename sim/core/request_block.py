"""A block of requests: the columns generated up front (numpy) and the outcome columns backends fill in.

Requests are generated in blocks of simulated time. A block stays alive while any of its requests is
waiting or running; once none is, the metrics recorder folds it into histograms and counters and drops it,
so memory is bounded by what is in flight, not by the horizon.

A request's timestamps (`start_at`, `first_token_at`, `done_at`) are written in one place per backend: an
answer that comes whole (either cache, a degraded answer, an API call) through `answered`; a request on
the GPU pool through its `Job` as it runs (backends.gpu.server: admitted, first token, restarted) and the
batching engine's `finish`. sim.core.latency turns them into TTFT, TPOT and e2e.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

# status codes
PENDING, SERVED, FAILED, DROPPED = 0, 1, 2, 3
# path codes: who answered (or was last tried)
PATH_NONE, PATH_CACHE, PATH_GPU, PATH_API, PATH_API_BATCH, PATH_DEGRADED = 0, 1, 2, 3, 4, 5
PATH_SEMANTIC = 6
PATH_NO_LLM = 7  # routing target `none`: a deterministic workflow, no model called
PATH_NAMES = {
    PATH_NONE: "none",
    PATH_CACHE: "cache",
    PATH_GPU: "gpu",
    PATH_API: "api",
    PATH_API_BATCH: "api_batch",
    PATH_DEGRADED: "degraded",
    PATH_SEMANTIC: "semantic",
    PATH_NO_LLM: "no_llm",
}
# the `stage` column (routing.escalate): drawn for escalation, first call under way; escalated (second call)
STAGE_FIRST, STAGE_ESCALATED = 1, 2
# bits of the `flags` column
FLAG_FALLBACK = 1  # sent to routing.fallback after its backend was down or its retries ran out
FLAG_SEMANTIC_FALSE = 2  # answered by the semantic cache with a wrong answer (a false hit)
FLAG_EXHAUSTED = 4  # an API call gave up after max_retries 429 answers
FLAG_OUTAGE = 8  # an API call started while its provider was down
FLAG_STALE = 16  # the response cache holds an expired answer for this prompt (fallback: cache can use it)
FLAG_PREFIX = 32  # cached_tokens comes from the prefix cache (hash_ids), not cached_input_fraction
FLAG_TOO_LARGE = 64  # the call needs more tokens than the provider's TPM bucket holds


@dataclass(eq=False)
class RequestBlock:
    index: int
    start_s: float
    end_s: float
    arrival_at: np.ndarray  # float64, sorted
    class_idx: np.ndarray  # int16
    input_tokens: np.ndarray  # int64
    output_tokens: np.ndarray  # int64
    prompt_id: np.ndarray | None = None  # int64 keys for the response cache
    # prompt prefix blocks (Mooncake traces): hash_ids[hash_offsets[i]:hash_offsets[i+1]] belong to request i
    hash_ids: np.ndarray | None = None
    hash_offsets: np.ndarray | None = None
    # outcome columns
    status: np.ndarray = field(init=False)
    path: np.ndarray = field(init=False)
    provider: np.ndarray = field(init=False)  # int16 index of the API provider (0 = backends.api)
    pool: np.ndarray = field(init=False)  # int8 index of the GPU pool in backends.pools() (path gpu)
    hop: np.ndarray = field(init=False)  # int8: fallback hops taken (routing.fallback_target's chain)
    stage: np.ndarray = field(init=False)  # int8: STAGE_* (routing.escalate)
    start_at: np.ndarray = field(init=False)  # admission into a batch / API call start
    first_token_at: np.ndarray = field(init=False)
    done_at: np.ndarray = field(init=False)  # last token, failure or drop time
    cost_usd: np.ndarray = field(init=False)
    cached_tokens: np.ndarray = field(init=False)  # input tokens billed or served from a prefix cache
    prefill_tokens: np.ndarray = field(init=False)  # prompt tokens the GPU must prefill (input - prefix hit)
    retries: np.ndarray = field(init=False)  # int16: 429 answers this request received
    flags: np.ndarray = field(init=False)  # int8 bitmask of FLAG_*
    pending: int = field(init=False)

    def __post_init__(self) -> None:
        n = len(self.arrival_at)
        self.status = np.zeros(n, dtype=np.int8)
        self.path = np.zeros(n, dtype=np.int8)
        self.provider = np.zeros(n, dtype=np.int16)
        self.pool = np.zeros(n, dtype=np.int8)
        self.hop = np.zeros(n, dtype=np.int8)
        self.stage = np.zeros(n, dtype=np.int8)
        self.start_at = np.full(n, np.nan)
        self.first_token_at = np.full(n, np.nan)
        self.done_at = np.full(n, np.nan)
        self.cost_usd = np.zeros(n)
        self.cached_tokens = np.zeros(n, dtype=np.int64)
        self.prefill_tokens = np.asarray(self.input_tokens, dtype=np.int64).copy()
        self.retries = np.zeros(n, dtype=np.int16)
        self.flags = np.zeros(n, dtype=np.int8)
        self.pending = n

    def __len__(self) -> int:
        return len(self.arrival_at)

    def answered(
        self,
        idx: np.ndarray | int,
        path: int,
        start_at: np.ndarray | float,
        first_token_at: np.ndarray | float,
        done_at: np.ndarray | float,
    ) -> None:
        """Requests `idx` (an index array, or one index) answered by `path`: their three timestamps, SERVED."""
        self.path[idx] = path
        self.start_at[idx] = start_at
        self.first_token_at[idx] = first_token_at
        self.done_at[idx] = done_at
        self.status[idx] = SERVED
        self.pending -= len(idx) if isinstance(idx, np.ndarray) else 1

    def finish_many(self, idx: np.ndarray, status: int) -> None:
        """Mark requests terminal in bulk (vectorised paths: cache hits, API calls)."""
        self.status[idx] = status
        self.pending -= len(idx)
