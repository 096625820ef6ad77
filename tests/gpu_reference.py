"""A deliberately naive reference for one GPU server: a loop that visits every iteration.

It restates the batching semantics of backends/gpu/pool.py without any of its shortcuts (closed-form
segments, block counting by residues, claims, lazy heaps): each iteration's duration is computed from the
batch as it is, every request's KV is counted block by block, admission is tried at every boundary.
Tests drive both on the same requests and expect the same times for every request.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field


@dataclass
class RefJob:
    idx: int
    arrival: float
    input: int
    output: int
    priority: int
    generated: int = 0
    inp_eff: int = 0
    rem_out: int = 0
    F: int = -1  # iteration that ended this run's prefill
    pref_left: int = 0
    admitted: int = -1  # admission number


@dataclass
class RefResult:
    start_at: list[float] = field(default_factory=list)
    first_token_at: list[float] = field(default_factory=list)
    done_at: list[float] = field(default_factory=list)
    preemptions: int = 0
    max_blocks: int = 0
    max_batch_seen: int = 0


def simulate_reference(
    arrivals: list[float],
    inputs: list[int],
    outputs: list[int],
    priorities: list[int],
    *,
    base: float,
    per_seq: float,
    per_prefill: float,
    per_kv: float,
    max_batch: int,
    kv_tokens: int,
    paged: bool,
    block: int,
    chunk: int | None,
    watermark_share: float = 0.01,
    v1: bool = False,
) -> RefResult:
    """`v1`: vLLM V1's token budget (`chunk` tokens an iteration: one per decoding request, the rest to the
    prompts FCFS; admission only while budget is left)."""
    n = len(arrivals)
    res = RefResult([math.nan] * n, [math.nan] * n, [math.nan] * n)
    bs = block if paged else 1
    cap = kv_tokens // bs if paged else kv_tokens
    wm = int(watermark_share * cap) if paged else 0
    levels = sorted(set(priorities))
    queues: dict[int, list[RefJob]] = {p: [] for p in levels}
    running: list[RefJob] = []  # admission order
    it = 0  # iterations done
    t = 0.0
    nxt = 0  # next arrival index
    seq = 0

    def need_tokens(j: RefJob, iteration: int) -> int:
        return j.inp_eff if j.F < 0 or iteration <= j.F else j.inp_eff + iteration - j.F

    def blocks(iteration: int) -> int:
        if paged:
            return sum(-(-need_tokens(j, iteration) // bs) for j in running)
        return sum(j.input + j.output for j in running)

    def prefill_budget() -> int:
        assert chunk is not None
        return chunk - sum(1 for j in running if j.F >= 0) if v1 else chunk

    def admit(now: float) -> None:
        nonlocal seq
        room = max_batch - len(running)
        free = cap - blocks(it + 1) - (wm if running else 0)
        left = prefill_budget() - sum(j.pref_left for j in running if j.F < 0) if v1 else 1
        for p in levels:
            q = queues[p]
            while q and room > 0:
                j = q[0]
                if left <= 0:
                    return
                if v1:
                    left -= j.inp_eff
                need = -(-j.inp_eff // bs) if paged else j.input + j.output
                if need > free:
                    return
                q.pop(0)
                seq += 1
                j.admitted = seq
                if math.isnan(res.start_at[j.idx]):
                    res.start_at[j.idx] = now
                if chunk is None:
                    j.F = it + 1
                else:
                    j.F = -1
                    j.pref_left = j.inp_eff
                running.append(j)
                room -= 1
                free -= need
            if room <= 0:
                return

    def arrive_until(time: float) -> None:
        nonlocal nxt
        while nxt < n and arrivals[nxt] <= time:
            j = RefJob(nxt, arrivals[nxt], inputs[nxt], outputs[nxt], priorities[nxt])
            j.inp_eff, j.rem_out = j.input, j.output
            queues[j.priority].append(j)
            nxt += 1

    while nxt < n or running or any(queues.values()):
        if not running:
            if not any(queues.values()):
                t = arrivals[nxt]
                arrive_until(t)
            admit(t)
        res.max_batch_seen = max(res.max_batch_seen, len(running))
        it_now = it + 1
        res.max_blocks = max(res.max_blocks, blocks(it_now))
        prefill = 0
        if chunk is None:
            prefill = sum(j.inp_eff for j in running if it_now == j.F)
        else:
            budget = prefill_budget()
            for j in running:
                if j.F < 0 and budget > 0:
                    take = min(j.pref_left, budget)
                    budget -= take
                    prefill += take
        kv = sum(need_tokens(j, it_now) for j in running)
        t += base + per_seq * len(running) + per_kv * kv + per_prefill * prefill
        it = it_now
        arrive_until(t)
        if chunk is not None:
            budget = prefill_budget()
            for j in running:
                if j.F < 0 and budget > 0:
                    take = min(j.pref_left, budget)
                    budget -= take
                    j.pref_left -= take
                    if j.pref_left == 0:
                        j.F = it
        for j in running:
            if it == j.F and math.isnan(res.first_token_at[j.idx]):
                res.first_token_at[j.idx] = t
        still = []
        for j in running:
            if j.F >= 0 and j.F + j.rem_out - 1 <= it:
                res.done_at[j.idx] = t
            else:
                still.append(j)
        running[:] = still
        if paged:
            while running and blocks(it + 1) > cap:
                j = running.pop()
                if j.F >= 0:
                    j.generated += it - j.F + 1
                j.F = -1
                j.inp_eff = j.input + j.generated
                j.rem_out = j.output - j.generated
                queues[j.priority].insert(0, j)
                res.preemptions += 1
        admit(t)
    return res


def simulate_multistep_reference(
    arrivals: list[float],
    inputs: list[int],
    outputs: list[int],
    priorities: list[int],
    *,
    base: float,
    per_seq: float,
    per_prefill: float,
    per_kv: float,
    max_batch: int,
    kv_tokens: int,
    paged: bool,
    block: int,
    steps: int,
    budget: int | None,
    watermark_share: float = 0.01,
) -> RefResult:
    """vLLM v0.6's multi-step scheduling, step by step: at each scheduling point the waiting requests that fit
    (batch, KV, `budget` prompt tokens; the first always) are prefilled in a step of their own while the
    decodes wait, else the batch decodes `steps` steps with its membership fixed (answers at the round's
    end), after preempting the newest requests (but the oldest) until the KV of the round's last step fits."""
    n = len(arrivals)
    res = RefResult([math.nan] * n, [math.nan] * n, [math.nan] * n)
    bs = block if paged else 1
    cap = kv_tokens // bs if paged else kv_tokens
    wm = int(watermark_share * cap) if paged else 0
    levels = sorted(set(priorities))
    queues: dict[int, list[RefJob]] = {p: [] for p in levels}
    running: list[RefJob] = []
    it = 0  # decode steps done (a prefill step is not one)
    t = 0.0
    nxt = 0

    def tokens(j: RefJob, iteration: int) -> int:
        return j.inp_eff if iteration <= j.F else j.inp_eff + iteration - j.F

    def blocks(iteration: int) -> int:
        if paged:
            return sum(-(-tokens(j, iteration) // bs) for j in running)
        return sum(j.input + j.output for j in running)

    def arrive_until(time: float) -> None:
        nonlocal nxt
        while nxt < n and arrivals[nxt] <= time:
            j = RefJob(nxt, arrivals[nxt], inputs[nxt], outputs[nxt], priorities[nxt])
            j.inp_eff, j.rem_out = j.input, j.output
            queues[j.priority].append(j)
            nxt += 1

    def admit() -> list[RefJob]:
        room = max_batch - len(running)
        free = cap - blocks(it + 1) - (wm if running else 0)
        left = budget if budget is not None else 1 << 62
        taken: list[RefJob] = []
        for p in levels:
            q = queues[p]
            while q and room > 0:
                j = q[0]
                need = -(-j.inp_eff // bs) if paged else j.input + j.output
                if need > free or (taken and j.inp_eff > left):
                    return taken
                q.pop(0)
                taken.append(j)
                room -= 1
                free -= need
                left -= j.inp_eff
        return taken

    def finish_due() -> None:
        still = []
        for j in running:
            if j.F + j.rem_out - 1 <= it:
                res.done_at[j.idx] = t
            else:
                still.append(j)
        running[:] = still

    while nxt < n or running or any(queues.values()):
        if not running and not any(queues.values()):
            t = arrivals[nxt]
            arrive_until(t)
        taken = admit()
        if taken:  # a prefill-only step
            for j in taken:
                if math.isnan(res.start_at[j.idx]):
                    res.start_at[j.idx] = t
                j.F = it
                running.append(j)
            prompt = sum(j.inp_eff for j in taken)
            t += base + per_seq * len(taken) + per_kv * prompt + per_prefill * prompt
            for j in taken:
                if math.isnan(res.first_token_at[j.idx]):
                    res.first_token_at[j.idx] = t
        else:  # a decode round
            while paged and len(running) > 1 and blocks(it + steps) > cap:
                j = running.pop()
                j.generated += it - j.F + 1
                j.F = -1
                j.inp_eff = j.input + j.generated
                j.rem_out = j.output - j.generated
                queues[j.priority].insert(0, j)
                res.preemptions += 1
            for _ in range(steps):
                it += 1
                t += base + per_seq * len(running) + per_kv * sum(tokens(j, it) for j in running)
        res.max_batch_seen = max(res.max_batch_seen, len(running))
        arrive_until(t)
        finish_due()
    return res
