"""The GPU pool's overload bound: memory stays bounded by what can still be served, not by the arrivals.

A request is admitted only after every request ahead of it (same or higher priority, FCFS) has been
admitted, and, a batch holding at most max_batch requests, after all but at most servers * max_batch of
them have also finished. Finishing request k costs its server at least

    w_k = rem_out_k * (base/max_batch + per_seq + per_kv_token * inp_k) + per_prefill_token * (tokens it
          still has to prefill)

of iteration time: its share of each of the rem_out_k (>= 1) iterations it runs in (an iteration of
n <= max_batch requests takes at least base + per_seq * n + per_kv_token * (the KV tokens of each, at
least its prompt inp_k)) plus its prefill. So once the work ahead that
can only leave the queue by admission (no deadline before the horizon) exceeds servers * (time left) plus
the slack of the last servers * max_batch unfinished ones, a new arrival cannot be admitted before the
horizon. Such a request gets no Job: it is recorded at once as it would end, in flight at the horizon (or
dropped at its deadline if that comes first), and so is every later arrival at its priority or lower
(they are behind it). Work is counted in integer nanoseconds so that sums stay exact.
"""

from __future__ import annotations

import math

from backends.gpu.server import Job
from sim.core.request_block import DROPPED, RequestBlock


class OverloadBound:
    def __init__(
        self,
        levels: list[int],
        horizon_s: float,
        min_share_s: float,
        per_prefill_token_s: float,
        num_servers: int,
        max_batch: int,
        per_kv_token_s: float = 0.0,
    ):
        self.levels = levels
        self.horizon_s = horizon_s
        self.min_share_s = min_share_s  # base/max_batch + per_seq: a request's least share of one iteration
        self.per_prefill_token_s = per_prefill_token_s
        self.per_kv_token_s = per_kv_token_s
        self.num_servers = num_servers
        self.max_batch = max_batch
        self.sure_work_ns: dict[int, int] = dict.fromkeys(levels, 0)  # per level: queued work without a deadline
        self.max_work_ns = 0  # an upper bound of every queued request's w_k (plus one)
        self.blocked_from = math.inf  # priority level from which arrivals are behind a never-admitted one
        self.never_admitted = 0  # requests recorded as in flight at the horizon without a Job
        self.jobless = 0  # every request recorded without a Job (in flight, or dropped at its deadline)

    def add(self, job: Job) -> None:
        """A job without a deadline before the horizon joins the queue (again after a preemption: what is
        left to do)."""
        job.work_ns = w = self.work_ns(job)
        self.add_work(job.priority, w)

    def add_work(self, priority: int, w: int) -> None:
        """A request of w_k = w without a deadline before the horizon joins the queue."""
        if w + 1 > self.max_work_ns:
            self.max_work_ns = w + 1
        self.sure_work_ns[priority] += w

    def remove(self, job: Job) -> None:
        self.sure_work_ns[job.priority] -= job.work_ns

    def work_ns(self, job: Job) -> int:
        """w_k: a lower bound of the iteration time that finishing a queued request costs its server (floored)."""
        return self.work_ns_of(job.rem_out, job.inp_eff, job.inp_eff - job.cached)

    def work_ns_of(self, rem_out: int, prompt: int, prefill: int) -> int:
        """w_k of a request with rem_out tokens to generate after a prompt of `prompt` tokens, `prefill` of
        which it still has to prefill."""
        per_iteration = self.min_share_s + self.per_kv_token_s * prompt
        return int((per_iteration * max(rem_out, 1) + self.per_prefill_token_s * (prefill if prefill > 0 else 0)) * 1e9)

    def refuses(self, priority: int, now: float) -> bool:
        """True if a request arriving now at this priority cannot be admitted before the horizon."""
        return priority >= self.blocked_from or self._hopeless(priority, now)

    def _hopeless(self, priority: int, now: float) -> bool:
        if self.horizon_s == math.inf:  # open-ended runs (engine benchmarks): every request is admitted
            return False
        ahead = 0
        for p in self.levels:
            if p > priority:
                break
            ahead += self.sure_work_ns[p]
        # up to servers * max_batch of those ahead may still be running when it is admitted
        slack = self.num_servers * self.max_batch * self.max_work_ns
        if ahead <= slack and now <= self.horizon_s:
            return False  # the capacity left is >= 0 (the usual case: a short queue)
        capacity = math.ceil(self.num_servers * (self.horizon_s - now) * 1e9)
        return ahead - slack > capacity

    def record_jobless(self, block: RequestBlock, i: int, priority: int, deadline: float) -> None:
        """Record a request that cannot be admitted before the horizon as it will end, without a Job (the
        caller folds the block if this was its last pending request)."""
        self.jobless += 1
        if deadline < self.horizon_s:
            block.status[i] = DROPPED
            block.done_at[i] = deadline
        else:
            self.never_admitted += 1
            if priority < self.blocked_from:
                self.blocked_from = priority
        block.pending -= 1
