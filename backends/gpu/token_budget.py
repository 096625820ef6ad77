"""vLLM V1's token-budget scheduling (`scheduler: v1`): a segment of one server's batch.

Every iteration has a budget of `max_prefill_tokens` tokens (vLLM's `max_num_batched_tokens`): each decoding
request takes one, the rest, `rate = budget - n_decoding`, goes to the prompts still to prefill, first come
first served, so prefill chunks and decodes share the iteration (chunked prefill, as vLLM V1 by default). A
waiting request is admitted at a boundary only while budget is left after the running requests (and while
the batch is below `max_batch` and its prompt's KV fits, as in v0); it then prefills with what is left.

The closed form of backends.gpu.server holds while the batch is unchanged, and v1 keeps it in two kinds of
segment:

* the prompts still to prefill fit into the next iteration (`pref_left <= rate`, always so in pure-decode
  stretches): they all finish there and decode from the next one, exactly as v0 without chunking, so the
  segment lasts until the next completion (or KV overflow, or a claimed arrival; or just the one iteration
  if a waiting request found no budget left: the prompts' budget is free after it);
* they do not: every iteration prefills `rate` tokens (chunk_s = per_prefill_token * rate), and the segment
  ends when the oldest prompt finishes (the decode count, and so `rate`, changes) or at the boundary after
  which the rest fits into one iteration (budget is left for waiting requests again there).

So with a budget no iteration's prompts exceed (in particular: null, no budget) v1 is v0 without chunking,
and a lone prompt of L > budget tokens takes ceil(L / budget) iterations to its first token.
"""

from __future__ import annotations

import heapq
import math
from typing import Protocol

from backends.gpu.catalog import MoeStreaming, ceil_div
from backends.gpu.server import Job, Server
from backends.gpu.speculative import Speculation


class Engine(Protocol):
    """What a segment needs of backends.gpu.batching.BatchEngine (which imports this module)."""

    paged: bool
    bs: int
    seq: int
    running_total: int
    budget: int
    max_batch: int
    cap_blocks: int
    base: float
    per_seq: float
    per_prefill: float
    per_kv: float
    moe: MoeStreaming | None
    spec_dec: Speculation | None
    decode_tokens: int  # budget tokens a decoding request takes: 1, or k + 1 speculating

    def set_timer(self, s: Server, m: int) -> None: ...


def start_segment(engine: Engine, s: Server, now: float, admitted: list[Job], refused: bool = False) -> None:
    """Start the next segment of `s` at `now`, taking in `admitted` (their prompts join the prefill queue);
    `refused`: a waiting request found no budget left at this boundary."""
    i0 = s.iters
    paged = engine.paged
    bs = engine.bs
    heap = s.heap
    if admitted:
        running = s.running
        seq = engine.seq
        for job in admitted:
            seq += 1
            job.seq = seq
            job.deadline = math.inf  # admitted: no longer a waiting client that may give up
            running[seq] = job
            job.prefill_iter = -1
            job.pref_left = max(job.inp_eff - job.cached, 1)  # a wholly cached prompt still computes a token
            s.pref.append(job)
            s.pref_left += job.pref_left
            if engine.spec_dec is not None:
                job.kv_ahead = engine.spec_dec.held_ahead(job.rem_out - 1)
            held = job.inp_eff + job.kv_ahead
            s.pref_tokens += held
            if paged:
                s.pref_blocks += -(-held // bs)
            else:
                s.kv_reserved += job.input + job.output
            job.admitted(now)
        engine.seq = seq
        engine.running_total += len(admitted)
        if s.busy_since < 0.0:
            s.busy_since = now
    s.seg_start = now
    # >= 1 while a prompt waits: budget >= max_batch * decode_tokens (engine_checks)
    rate = engine.budget - s.n_grow * engine.decode_tokens
    prefill = s.pref_left
    finishing: list[Job] = []
    spec_dec = engine.spec_dec
    if s.pref and prefill <= rate:  # every prompt finishes in the next iteration, then decodes
        f = i0 + 1
        finishing = list(s.pref)
        for job in finishing:
            held = job.inp_eff + job.kv_ahead
            s.pref_tokens -= held
            if paged:
                s.pref_blocks -= ceil_div(held, bs)
            job.pref_left = 0
            job.prefill_iter = f
            job.kv_base = held - f
            s.add_grow(job)
            heapq.heappush(heap, (i0 + job.rem_out if spec_dec is None else spec_dec.end(job, f), job.seq, job))
        s.pref.clear()
        s.pref_left = 0
    n_grow = s.n_grow
    tokens = s.sum_kv_base + n_grow * (i0 + 1) + s.pref_tokens
    iteration_s = engine.base + engine.per_seq * len(s.running) + engine.per_kv * tokens
    if engine.moe is not None:
        iteration_s = iteration_s + engine.moe.seconds(len(s.running))
    s.iteration_s = iteration_s
    s.growth_s = engine.per_kv * n_grow
    s.prefill_s = engine.per_prefill * prefill
    if spec_dec is not None:
        spec_dec.add_cost(s, i0, finishing)
    if s.pref:
        s.chunk_tokens = rate
        s.chunk_s = engine.per_prefill * rate
    else:
        s.chunk_s = math.inf
        first = now + s.prefill_s + s.iteration_s
        for job in finishing:
            job.first_token(first)
    while heap and heap[0][2].seq != heap[0][1]:
        heapq.heappop(heap)
    m = heap[0][0] - i0 if heap else 1 << 60
    if s.pref:  # the oldest prompt finishes, or the rest fits into the iteration after the m-th
        m = min(m, ceil_div(s.pref[0].pref_left, rate), ceil_div(s.pref_left, rate) - 1)
    elif refused and len(s.running) < engine.max_batch:
        m = 1  # the budget the prompts take in this iteration is free after it: the waiting may be admitted
    if paged and m > 1 and s.may_outgrow(i0 + m, engine.cap_blocks):
        m = s.overflow_m(m, engine.cap_blocks)  # may run out of KV within the segment: solve
    engine.set_timer(s, m)
