"""One GPU server's state: its running requests, KV bookkeeping in closed form, and the current segment.

Iterations are counted per server (`iters` = iterations completed). A request's run starts when it is
admitted; its prefill ends with iteration F (`Job.prefill_iter`, the iteration that emits its next token),
after which it holds `inp_eff + (I - F)` KV tokens during iteration I > F, where `inp_eff` is the prompt it
prefilled (the input, plus the tokens it had generated before a preemption). Writing a = inp_eff - F
(`Job.kv_base`), the batch holds sum(a) + n*I tokens during iteration I (n = `n_grow` decoding requests),
and with blocks of `bs` tokens it needs

    sum_j ceil((a_j + I) / bs) = sum_j qq_j + n*(I // bs) + #{j : r_j >= bs - I % bs},

with divmod(a_j + bs - 1, bs) = (qq_j, r_j). The server keeps sum(qq) (`sum_qq`) and the counts of each r
(`cnt`), so the blocks needed at any future iteration cost O(bs), and the iteration at which a growing batch
would run out of KV is found by a binary search without visiting the iterations in between.

A segment is a stretch of iterations with an unchanged batch; iteration k (1-based) of a segment lasts
A + B*(k-1) plus its prefill share, so the segment's first m iterations take

    T(m) = min(m*C, P) + m*A + B*m*(m-1)/2

with A = `iteration_s` (the first iteration without its prefill), B = `growth_s` (what each further
iteration adds as the batch's KV grows), P = `prefill_s` (the prefill time still to do, all of it in
iteration 1 unless chunked prefill caps each iteration at C = `chunk_s` seconds of prefill).
"""

from __future__ import annotations

import math
from collections import deque
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sim.core.request_block import RequestBlock  # a type only: it imports numpy
    from sim.core.ticks import Entry  # a type only: ticks imports SimPy, which `capsim validate` needs not

OFF, COLD, READY, DOWN = 0, 1, 2, 3


class Job:
    __slots__ = (
        "block",
        "i",
        "arrival_at",
        "input",
        "output",
        "priority",
        "deadline",
        "seq",
        "inp_eff",
        "rem_out",
        "generated",
        "prefill_iter",
        "kv_base",
        "kv_ahead",
        "pref_left",
        "started",
        "need_first",
        "cached",
        "work_ns",
    )

    def __init__(
        self,
        block: RequestBlock,
        i: int,
        arrival_at: float,
        inp: int,
        out: int,
        priority: int,
        deadline: float,
        cached: int = 0,
    ):
        self.block = block
        self.i = i
        self.arrival_at = arrival_at
        self.input = inp
        self.output = out
        self.priority = priority
        self.deadline = deadline
        self.seq = -1  # admission number while running on a server, -1 otherwise
        self.inp_eff = inp  # tokens to prefill at the next admission
        self.rem_out = out  # output tokens still to generate
        self.generated = 0  # output tokens generated in earlier runs (kept across a preemption)
        self.prefill_iter = -1  # iteration that ends this run's prefill (-1: still prefilling, or not running)
        self.kv_base = 0  # inp_eff + kv_ahead - prefill_iter: it holds kv_base + I KV tokens during iteration I
        # speculative decoding: KV tokens this run holds ahead of its growth of one per iteration, from its
        # admission on (backends.gpu.speculative; 0 without speculation)
        self.kv_ahead = 0
        self.pref_left = 0  # chunked prefill: prompt tokens of this run not yet prefilled
        self.started = False  # admitted at least once (start_at is set)
        self.need_first = True  # no first token emitted yet (first_token_at still to set)
        self.cached = cached  # prompt tokens a prefix-cache hit spares the prefill (their KV is still held)
        self.work_ns = -1  # the pool's overload bound: least iteration time admitting it costs (-1: not yet)

    # -- the request's timestamps on the GPU (done_at: backends.gpu.batching's finish) -----------------
    def admitted(self, at: float) -> None:
        """Admitted into a batch: `start_at` is the first admission (a preempted or requeued run keeps it)."""
        if not self.started:
            self.started = True
            self.block.start_at[self.i] = at

    def first_token(self, at: float) -> None:
        """Its prefill ends with the iteration ending `at` (which may lie ahead): the first token, once."""
        if self.need_first:
            self.need_first = False
            self.block.first_token_at[self.i] = at

    def restarted(self, now: float) -> None:
        """Its server failed and the client retries from scratch: a first token not yet streamed (written
        ahead of `now`) is taken back; one already streamed stays seen."""
        self.generated = 0
        self.inp_eff = self.input
        self.rem_out = self.output
        if self.block.first_token_at[self.i] > now:
            self.block.first_token_at[self.i] = math.nan
            self.need_first = True


class Server:
    __slots__ = (
        "idx",
        "state",
        "draining",
        "life",
        "running",
        "heap",
        "pref",
        "pref_left",
        "pref_tokens",
        "pref_blocks",
        "n_grow",
        "sum_kv_base",
        "sum_qq",
        "cnt",
        "bs",
        "kv_reserved",
        "iters",
        "seg_start",
        "iteration_s",
        "growth_s",
        "prefill_s",
        "chunk_s",
        "chunk_tokens",
        "version",
        "timer_m",
        "timer",
        "claims",
        "claims_kv",
        "busy_since",
        "healthy_since",
        "prov_since",
        "in_idle",
        "prefill_step",
    )

    def __init__(self, idx: int, block_tokens: int):
        self.idx = idx
        self.state = OFF
        self.draining = False
        self.life = 0  # bumped on every state change: timers of an earlier life are ignored
        self.running: dict[int, Job] = {}  # admission number -> job, oldest first
        self.heap: list[tuple[int, int, Job]] = []  # (finish iteration, admission number, job), lazy
        self.pref: deque[Job] = deque()  # chunked prefill, FCFS
        self.pref_left = 0
        self.pref_tokens = 0
        self.pref_blocks = 0
        self.n_grow = 0
        self.sum_kv_base = 0
        self.sum_qq = 0
        self.bs = block_tokens
        self.cnt = [0] * block_tokens
        self.kv_reserved = 0
        self.iters = 0
        self.seg_start = 0.0
        self.iteration_s = self.growth_s = self.prefill_s = 0.0
        self.chunk_s = math.inf
        self.chunk_tokens = 0  # scheduler v1: prompt tokens each iteration of the segment prefills
        self.version = 0
        self.timer_m = 0
        self.timer: Entry | None = None  # the pending boundary timer's entry on SimPy's heap (the last one set)
        self.claims = 0
        self.claims_kv = 0
        self.busy_since = -1.0
        self.healthy_since = -1.0
        self.prov_since = -1.0
        self.in_idle = False
        self.prefill_step = False  # multi-step scheduling: the current segment is a prefill-only step

    # -- KV bookkeeping of decoding requests ---------------------------------------------------
    def add_grow(self, job: Job) -> None:
        """A request whose prefill has ended starts growing its KV by one token per iteration."""
        self.n_grow += 1
        a = job.kv_base
        self.sum_kv_base += a
        bs = self.bs
        if bs > 1:
            qq, r = divmod(a + bs - 1, bs)
            self.sum_qq += qq
            self.cnt[r] += 1
        else:
            self.sum_qq += a

    def remove_grow(self, job: Job) -> None:
        """A decoding request leaves the batch (finished or preempted)."""
        self.n_grow -= 1
        a = job.kv_base
        self.sum_kv_base -= a
        bs = self.bs
        if bs > 1:
            qq, r = divmod(a + bs - 1, bs)
            self.sum_qq -= qq
            self.cnt[r] -= 1
        else:
            self.sum_qq -= a

    def tokens_at(self, it: int) -> int:
        """KV tokens the batch holds during iteration `it` (decoding requests plus prompts in prefill)."""
        return self.sum_kv_base + self.n_grow * it + self.pref_tokens

    def blocks_at(self, it: int) -> int:
        """KV blocks the batch needs during iteration `it` (decoding requests plus prompts in prefill)."""
        bs = self.bs
        q, r = divmod(it, bs)
        b = self.sum_qq + self.n_grow * q + self.pref_blocks
        if r:
            b += sum(self.cnt[bs - r :])
        return b

    def may_outgrow(self, it: int, capacity_blocks: int) -> bool:
        """False if the batch surely fits into `capacity_blocks` during iteration `it` (an upper bound of
        `blocks_at` in O(1): every decoding request rounded up by a whole block)."""
        return self.sum_qq + self.n_grow * (it // self.bs + 1) + self.pref_blocks > capacity_blocks

    def overflow_m(self, m_cap: int, capacity_blocks: int) -> int:
        """Smallest m in [1, m_cap) such that the iteration after the segment's m-th needs more than the
        capacity, or m_cap if there is none (the segment starts at iteration iters + 1, which fits)."""
        i0 = self.iters
        hi = i0 + m_cap
        if m_cap <= 1 or not self.may_outgrow(hi, capacity_blocks):
            return m_cap
        if self.blocks_at(hi) <= capacity_blocks:
            return m_cap
        lo = i0 + 2  # first iteration that could overflow
        while lo < hi:
            mid = (lo + hi) // 2
            if self.blocks_at(mid) > capacity_blocks:
                hi = mid
            else:
                lo = mid + 1
        return lo - i0 - 1

    def clear_batch(self) -> None:
        """Forget the batch (the server stops: failed or deprovisioned; its requests are taken off)."""
        self.running.clear()
        self.heap.clear()
        self.pref.clear()
        self.pref_left = self.pref_tokens = self.pref_blocks = 0
        self.n_grow = self.sum_kv_base = self.sum_qq = 0
        self.cnt = [0] * self.bs
        self.kv_reserved = 0
        self.claims = self.claims_kv = 0

    # -- segment timing -----------------------------------------------------------------------
    def t_of(self, m: int) -> float:
        """Time from the segment start to the end of its m-th iteration (m >= 1)."""
        c = m * self.chunk_s
        prefill_s = self.prefill_s
        return (c if c < prefill_s else prefill_s) + m * self.iteration_s + self.growth_s * m * (m - 1) * 0.5

    def next_boundary_m(self, dt: float) -> int:
        """Smallest m >= 1 with T(m) >= dt."""
        a, b, p = self.iteration_s, self.growth_s, self.prefill_s
        if math.inf == self.chunk_s or p <= 0.0:
            m = _quad_m(p, a, b, dt)
        else:
            m = max(_quad_m(0.0, a + self.chunk_s, b, dt), _quad_m(p, a, b, dt))
        while self.t_of(m) < dt - 1e-12:
            m += 1
        while m > 1 and self.t_of(m - 1) >= dt:
            m -= 1
        return m


def _quad_m(prefill_s: float, iteration_s: float, growth_s: float, dt: float) -> int:
    """Smallest m >= 1 with P + m*A + B*m*(m-1)/2 >= dt (A > 0), up to rounding (names as in `T(m)`)."""
    x = dt - prefill_s
    if x <= iteration_s:
        return 1
    if growth_s <= 0.0:
        return max(math.ceil(x / iteration_s - 1e-12), 1)
    b = iteration_s - 0.5 * growth_s
    return max(math.ceil((-b + math.sqrt(b * b + 2.0 * growth_s * x)) / growth_s - 1e-12), 1)
