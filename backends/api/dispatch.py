"""API calls: sent, rate-limited, retried, failed over.

Calls to a provider without rate limits (and every batch-API call) are answered at once, vectorised:
their outcome depends only on the call's start time (outages are drawn up front). Calls to a
rate-limited provider share the state of its token buckets, so they are resolved one by one in time
order: every attempt (first call or retry) is an entry (time, seq, ...) in one heap shared by all
providers, and `advance(until)` resolves the entries before `until`. The router advances to the current
simulated time whenever it is about to add calls (a new block, an overflow spill, a GPU fallback), so an
entry is never resolved before a call that starts earlier could still be added; entries left at the
horizon stay in flight. No SimPy event is needed per call.

A call that starts while its provider is down, that exhausts max_retries 429 answers, or that is larger
than the provider's TPM bucket fails, and then goes to `routing.fallback`: `api` sends it along the chain
`routing.fallback_target` (one target or several, each tried at most once, in order, skipping the
backend that just failed; a GPU pool in the chain is reached through the router's `to_pool`), `cache`
answers it with a degraded response when one exists (a stale response-cache entry, or any answer when the
semantic cache is on), `none` fails it.
"""

from __future__ import annotations

import heapq
import math
from collections import deque
from collections.abc import Callable
from weakref import ReferenceType, WeakKeyDictionary, ref

import numpy as np

from backends.api.provider import ApiBackend
from backends.api.rate_limit import ACCEPTED, TOO_LARGE, backoff_s
from sim.config.routing import RoutingSpec
from sim.core.request_block import (
    FAILED,
    FLAG_EXHAUSTED,
    FLAG_FALLBACK,
    FLAG_OUTAGE,
    FLAG_STALE,
    FLAG_TOO_LARGE,
    PATH_API,
    PATH_DEGRADED,
    PATH_GPU,
    RequestBlock,
)

SOURCE_GPU = -1  # a source below 0 is a GPU pool (-1 - its index); 0 and above are providers


def _no_pool(block: RequestBlock, idx: np.ndarray, t: np.ndarray, code: int, hop: int) -> None:
    raise AssertionError("a fallback chain names a GPU pool but no router took it")


class ApiDispatcher:
    def __init__(
        self,
        apis: list[ApiBackend],
        routing: RoutingSpec,
        hit_latency_s: float,
        degraded_always: bool,
        rngs_retry: list[np.random.Generator],
        chain: list[int],
    ):
        self.apis = apis
        self.mode = routing.fallback
        self.chain = chain  # routing.fallback_target as target codes (providers >= 0, GPU pools < 0)
        # a chain's GPU pool: (block, requests, times, pool code, next hop), set by the router
        self.to_pool: Callable[[RequestBlock, np.ndarray, np.ndarray, int, int], None] = _no_pool
        self.hit_latency_s = hit_latency_s
        self.degraded_always = degraded_always
        self.rngs_retry = rngs_retry
        self.heap: list[tuple[float, int, RequestBlock, int, int, int, int]] = []
        self.seq = 0
        self.drawn: WeakKeyDictionary[RequestBlock, tuple[list[np.ndarray], list[np.ndarray]]] = WeakKeyDictionary()
        # blocks whose draws are not taken yet, in block order: (the block, its size)
        self.undrawn: deque[tuple[ReferenceType[RequestBlock], int]] = deque()
        self.on_block_done: Callable[[RequestBlock], None] = lambda _b: None

    def draw(self, block: RequestBlock) -> None:
        """Latency draws of every provider for every request of the block (common random numbers).

        Taken when the block's first API call needs them, not when it arrives: under overload a block
        waits in the GPU queue for hours without an API call, and its draws (16 bytes a request) would wait
        with it. Each provider's two streams serve only these draws, so taking the blocks' draws in block
        order (a block's draws are taken, or drawn and dropped once the block is gone, only after every
        earlier block's) gives every request the same numbers as drawing each block on arrival."""
        self.undrawn.append((ref(block), len(block)))

    def draws(self, block: RequestBlock) -> tuple[list[np.ndarray], list[np.ndarray]]:
        got = self.drawn.get(block)
        while got is None:
            block_ref, n = self.undrawn.popleft()
            ttft, delay = [], []
            for api in self.apis:
                a, b = api.draw_block(n)
                ttft.append(a)
                delay.append(b)
            earlier = block_ref()
            if earlier is not None:
                self.drawn[earlier] = (ttft, delay)
            if earlier is block:
                got = (ttft, delay)
        return got

    # -- sending ---------------------------------------------------------------------------------
    def submit_many(
        self, block: RequestBlock, idx: np.ndarray, p: int, batch: bool, start: np.ndarray, hop: int = 0
    ) -> None:
        """Calls of requests `idx` to provider p starting at `start` (not resolved before `start`)."""
        if len(idx) == 0:
            return
        api = self.apis[p]
        if api.buckets is not None and not batch:
            heap, push = self.heap, heapq.heappush
            for i, t in zip(idx.tolist(), start.tolist(), strict=True):
                self.seq += 1
                push(heap, (t, self.seq, block, i, p, 0, hop))
            return
        ttft, delay = self.draws(block)
        down = api.is_down(start)
        ok = ~down
        api.answer(block, idx[ok], start[ok], ttft[p][idx[ok]], delay[p][idx[ok]], batch)
        if down.any():
            bad = idx[down]
            block.flags[bad] |= FLAG_OUTAGE
            self.fail_many(block, bad, start[down], p, hop)

    def submit_one(self, block: RequestBlock, i: int, p: int, batch: bool, t: float, hop: int = 0) -> None:
        api = self.apis[p]
        if api.buckets is not None and not batch:
            self.seq += 1
            heapq.heappush(self.heap, (t, self.seq, block, i, p, 0, hop))
            return
        if api.is_down_at(t):
            block.flags[i] |= FLAG_OUTAGE
            self.fail_one(block, i, t, p, hop)
            return
        ttft, delay = self.draws(block)
        api.answer_one(block, i, t, float(ttft[p][i]), float(delay[p][i]), batch)

    # -- rate-limited calls, in time order --------------------------------------------------------
    def settled_before(self) -> float:
        """Attempts are resolved lazily: no pending one can end before its start time."""
        return self.heap[0][0] if self.heap else math.inf

    def advance(self, until: float) -> None:
        """Resolve every pending attempt that starts before `until`."""
        heap = self.heap
        while heap and heap[0][0] < until:
            t, _, block, i, p, tries, hop = heapq.heappop(heap)
            self._attempt(t, block, i, p, tries, hop)
            if block.pending == 0:
                self.on_block_done(block)

    def _attempt(self, t: float, block: RequestBlock, i: int, p: int, tries: int, hop: int) -> None:
        api = self.apis[p]
        if api.is_down_at(t):
            block.flags[i] |= FLAG_OUTAGE
            self.fail_one(block, i, t, p, hop)
            return
        assert api.buckets is not None
        tokens = int(block.input_tokens[i]) + int(block.output_tokens[i])
        r = api.buckets.acquire(t, tokens)
        if r == ACCEPTED:
            ttft, delay = self.draws(block)
            api.answer_one(block, i, t, float(ttft[p][i]), float(delay[p][i]), False)
            return
        if r == TOO_LARGE:
            block.flags[i] |= FLAG_TOO_LARGE
            self.fail_one(block, i, t, p, hop)
            return
        block.retries[i] += 1
        spec = api.spec.rate_limit
        if tries < spec.max_retries:
            wait = backoff_s(spec, tries + 1, self.rngs_retry[p])
            self.seq += 1
            heapq.heappush(self.heap, (t + wait, self.seq, block, i, p, tries + 1, hop))
            return
        block.flags[i] |= FLAG_EXHAUSTED
        self.fail_one(block, i, t, p, hop)

    # -- failures and fallback -------------------------------------------------------------------
    def _fallback_to(self, source: int, hop: int) -> tuple[int, int] | None:
        """(target code, next hop) for a request that failed at `source` after `hop` hops; None: no more."""
        if self.mode != "api":
            return None
        chain = self.chain
        while hop < len(chain):
            code = chain[hop]
            hop += 1
            if code != source:
                return code, hop
        return None

    def fail_many(self, block: RequestBlock, idx: np.ndarray, t: np.ndarray, source: int, hop: int) -> None:
        """Requests `idx` whose call (from provider `source`, or a GPU pool) failed at times `t`."""
        nxt = self._fallback_to(source, hop)
        if nxt is not None:
            code, hop_next = nxt
            block.flags[idx] |= FLAG_FALLBACK
            if code < 0:
                self.to_pool(block, idx, t, code, hop_next)
            else:
                self.submit_many(block, idx, code, False, t, hop_next)
            return
        if hop == 0 and self.mode == "cache":
            block.flags[idx] |= FLAG_FALLBACK
            ok = self._degradable(block, idx)
            self._degraded(block, idx[ok], t[ok])
            idx, t = idx[~ok], t[~ok]
        block.path[idx] = PATH_GPU if source < 0 else PATH_API
        if source >= 0:
            block.provider[idx] = source
        block.done_at[idx] = t
        block.finish_many(idx, FAILED)

    def fail_one(self, block: RequestBlock, i: int, t: float, source: int, hop: int) -> None:
        self.fail_many(block, np.array([i]), np.array([t]), source, hop)

    def _degradable(self, block: RequestBlock, idx: np.ndarray) -> np.ndarray:
        if self.degraded_always:
            return np.ones(len(idx), dtype=bool)
        return (block.flags[idx] & FLAG_STALE) != 0

    def _degraded(self, block: RequestBlock, idx: np.ndarray, t: np.ndarray) -> None:
        block.answered(idx, PATH_DEGRADED, t, t + self.hit_latency_s, t + self.hit_latency_s)
