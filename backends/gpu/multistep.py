"""vLLM v0.6's multi-step scheduling (`num_scheduler_steps: N > 1`): a segment of one server's batch.

vLLM v0.6.0 with `--num-scheduler-steps N` (the v0.6.0 perf post of 2024-09-05 benchmarked N = 10) runs v0's
default scheduler without chunked prefill (v0.6.0 refuses the two together: vllm-project/vllm#8274; prompts
and decodes share a round only from v0.6.2's vllm#8378 on). The scheduler runs once per round:

* if waiting requests can be admitted (priority, then FCFS; while the batch is below `max_batch`, a prompt's
  KV fits and the round's prompt tokens fit `max_prefill_tokens`, vLLM's max_num_batched_tokens; the first
  prompt always goes), the round is one prefill-only step (vllm#7528's "force single step": a prefill gets
  no lookahead slots): the running decodes wait for it, and its prompts' first tokens end it; it costs the
  derived iteration of its prompts plus `prefill_prompt_s` per prompt (catalog.prefill_prompt_s: a new
  sequence group's Python work; fitted on LambdaLabs runs, docs/calibration.md);
* else the batch decodes N steps with its membership fixed, paying the engine's CPU cost of scheduling
  (`iteration_s.per_schedule`: the family's `overhead_s`, part of a derived `base`) once for the round, which
  is what multi-step is for; a request whose last token falls inside the round stays in the batch (its steps
  are computed and discarded) and is answered at the round's end, when vLLM processes the round's outputs; a
  request arriving during a round waits for its end. Before the round the newest requests are preempted
  (recompute) until the batch's KV fits its N-th step (vLLM's lookahead slots); the oldest one always stays.

An idle server schedules as soon as a request arrives. With N = 1 none of this applies: the pool keeps its
own v0 model (backends/gpu/batching.py).

Closed form (backends.gpu.server): a decode round is one segment of N iterations, T(m) = P + m*A + B*m*(m-1)/2
with P = overhead_s and A = base - overhead_s + per_seq*n + per_kv*KV; a prefill step is a segment of one
iteration that moves no decode on, so the server's iteration count, in which every decoding request's KV
and finish iteration are counted, stays where it is (its prompts' prefill iteration F is that count: they
decode from F + 1, as after a v0 prefill).
"""

from __future__ import annotations

import heapq
import math
from typing import Protocol

from backends.gpu.catalog import MoeStreaming
from backends.gpu.server import Job, Server


class Engine(Protocol):
    """What a round needs of backends.gpu.batching.BatchEngine (which imports this module)."""

    paged: bool
    seq: int
    running_total: int
    steps: int
    schedule_s: float
    prefill_prompt_s: float
    cap_blocks: int
    base: float
    per_seq: float
    per_prefill: float
    per_kv: float
    moe: MoeStreaming | None

    def set_timer(self, s: Server, m: int) -> None: ...

    def preempt_to_fit(self, s: Server, it: int, ahead: int = 1, keep: int = 0) -> None: ...


def start_round(engine: Engine, s: Server, now: float, admitted: list[Job]) -> None:
    """At a scheduling point of `s`: prefill `admitted` in a step of their own, or (none) decode N steps."""
    if admitted:
        prefill_step(engine, s, now, admitted)
    else:
        decode_round(engine, s, now)


def prefill_step(engine: Engine, s: Server, now: float, admitted: list[Job]) -> None:
    i0 = s.iters
    heap = s.heap
    running = s.running
    seq = engine.seq
    prompt = held = 0
    for job in admitted:
        seq += 1
        job.seq = seq
        job.deadline = math.inf  # admitted: no longer a waiting client that may give up
        running[seq] = job
        job.prefill_iter = i0
        job.kv_base = job.inp_eff - i0
        s.add_grow(job)
        heapq.heappush(heap, (i0 + job.rem_out - 1, seq, job))
        prompt += job.inp_eff - job.cached  # a prefix-cache hit is not prefilled again
        held += job.inp_eff
        if not engine.paged:
            s.kv_reserved += job.input + job.output
        job.admitted(now)
    engine.seq = seq
    engine.running_total += len(admitted)
    if s.busy_since < 0.0:
        s.busy_since = now
    s.seg_start = now
    k = len(admitted)
    iteration_s = engine.base + engine.per_seq * k + engine.per_kv * held  # only the prompts run in it
    if engine.moe is not None:
        iteration_s = iteration_s + engine.moe.seconds(k)
    s.iteration_s = iteration_s
    s.growth_s = 0.0
    s.prefill_s = engine.per_prefill * prompt + engine.prefill_prompt_s * k  # + each prompt's Python work
    s.chunk_s = math.inf
    first = now + s.prefill_s + iteration_s
    for job in admitted:
        job.first_token(first)
    s.prefill_step = True
    engine.set_timer(s, 1)


def decode_round(engine: Engine, s: Server, now: float) -> None:
    i0 = s.iters
    n = engine.steps
    if engine.paged and s.may_outgrow(i0 + n, engine.cap_blocks):
        engine.preempt_to_fit(s, i0, n, 1)  # the round's last step must fit: lookahead slots
    heap = s.heap
    while heap and heap[0][2].seq != heap[0][1]:
        heapq.heappop(heap)
    s.seg_start = now
    n_grow = s.n_grow
    iteration_s = (
        engine.base
        - engine.schedule_s
        + engine.per_seq * len(s.running)
        + engine.per_kv * (s.sum_kv_base + n_grow * (i0 + 1))
    )
    if engine.moe is not None:
        iteration_s = iteration_s + engine.moe.seconds(len(s.running))
    s.iteration_s = iteration_s
    s.growth_s = engine.per_kv * n_grow
    s.prefill_s = engine.schedule_s  # the scheduler's CPU cost, once a round (T(m) adds P once: no chunking)
    s.chunk_s = math.inf
    s.prefill_step = False
    engine.set_timer(s, n)
