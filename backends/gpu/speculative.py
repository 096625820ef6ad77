"""Speculative decoding (`backends.gpu_pool.speculative`): what an iteration yields and what it costs.

Every decode iteration a draft (a smaller model, or n-gram prompt lookup) proposes `k` tokens per decoding
sequence and the target model verifies all k + 1 positions at once (vLLM V0's propose-and-score step; a
prefill iteration speculates nothing). A draft token is accepted with probability α given the ones before
it, and the target's own token follows the first rejection, so a sequence gains

    E = 1 + α + ... + α^k = (1 - α^(k+1)) / (1 - α)   tokens per iteration   (α = 1: k + 1; α = 0: 1)

in expectation. The engine takes E as a rate: a request emits its first token at the end of its prefill and
its other n tokens in ceil(n / E) decode iterations. This keeps every decision of a segment in closed form
and draws nothing, so the variants of a config stay on common random numbers; what it leaves out is the
spread of the accepted count (at most k + 1 per iteration, independent across iterations: over the ~n / E
iterations of a request the relative spread of its decode time is about sqrt(Var / (E n)), a few percent at a
few hundred output tokens).

A decode iteration with d > 0 decoding sequences costs, on top of the target's own iteration,

    k * per_prefill_token * d                                       (the target verifies k more tokens per
                                                                     sequence: priced like prompt tokens)
  + k * (draft base + draft per_seq * d + draft per_kv_token * KV)  (k steps of the draft model, KV = the
                                                                     decoding sequences' tokens)

and the draft model also prefills every prompt (its per_prefill_token joins the target's). n-gram drafting
has neither. The verification term grows with the batch while the weight streaming it rides on does not, so
the gain in tokens per second shrinks as the batch grows (and turns into a loss once the batch is compute
bound). The draft model's weights and its KV of the same tokens take GPU memory beside the target's
(backends.gpu.catalog.derived_kv_tokens).

KV (paged): a decoding request holds, from the end of its prefill, the n - ceil(n / E) tokens speculation
adds beyond one per iteration, then grows one token per iteration, so its last iteration holds exactly its
prompt plus its output (as without speculation) and it never holds less than it really would; the target's
attention cost reads the same (upper-bound) count.

Under `scheduler: v1` a decoding request takes k + 1 tokens of the iteration's budget (vLLM V1 schedules
the draft tokens with the request's own), so validate asks for a budget of at least max_batch * (k + 1).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from backends.gpu.catalog import derived_iteration, draft_spec
from backends.gpu.server import Job, Server
from sim.config.backends import GpuPoolSpec


def tokens_per_iteration(k: int, acceptance: float) -> float:
    """Expected tokens a sequence gains per target iteration with k draft tokens accepted each w.p. α."""
    if acceptance >= 1.0:
        return float(k + 1)
    return (1.0 - acceptance ** (k + 1)) / (1.0 - acceptance)


@dataclass(frozen=True)
class Speculation:
    k: int
    tokens_per_iteration: float  # E
    fixed_s: float  # k draft steps' base (an iteration with a decoding sequence)
    per_seq_s: float  # k * (the target's per_prefill_token + the draft's per_seq), per decoding sequence
    per_kv_s: float  # k * the draft's per_kv_token, per KV token of the decoding sequences
    draft_prefill_s: float  # the draft's per_prefill_token (it prefills every prompt too)

    def add_cost(self, s: Server, i0: int, fresh: list[Job]) -> None:
        """Add the speculation's cost to the segment of `s` starting after iteration i0, whose decoding
        requests (`n_grow`) include the `fresh` ones that prefill in its first iteration (they speculate from
        the second on: their share of the first comes off the segment's one-time prefill term)."""
        n = s.n_grow
        if not n:
            return
        per_kv_s = self.per_kv_s
        s.iteration_s += self.fixed_s + self.per_seq_s * n + per_kv_s * (s.sum_kv_base + n * (i0 + 1))
        s.growth_s += per_kv_s * n
        if fresh:
            kv = sum(job.inp_eff + job.kv_ahead for job in fresh)  # theirs in the first iteration
            s.prefill_s -= (self.fixed_s if len(fresh) == n else 0.0) + self.per_seq_s * len(fresh) + per_kv_s * kv

    def end(self, job: Job, f: int) -> int:
        """The iteration that ends the run of `job` whose prefill ends with iteration f."""
        return f + self.decode_iterations(job.rem_out - 1)

    def admission_blocks(self, job: Job, bs: int) -> int:
        """KV blocks `job` needs to be admitted (paged): its prompt and what it holds ahead (set here)."""
        job.kv_ahead = self.held_ahead(job.rem_out - 1)
        return -(-(job.inp_eff + job.kv_ahead) // bs)

    def decode_iterations(self, tokens: int) -> int:
        """Iterations that generate `tokens` tokens after the first (>= 0)."""
        return max(math.ceil(tokens / self.tokens_per_iteration - 1e-9), 0)

    def held_ahead(self, tokens: int) -> int:
        """KV tokens a request with `tokens` still to generate after its first holds ahead of its growth."""
        return tokens - self.decode_iterations(tokens)

    def generated(self, iterations: int, rem_out: int) -> int:
        """Tokens generated in the first `iterations` iterations of a run (the first one emits one token)."""
        if iterations <= 0:
            return 0
        return min(1 + math.floor(self.tokens_per_iteration * (iterations - 1) + 1e-9), rem_out)


def speculation(spec: GpuPoolSpec, per_prefill_token_s: float) -> Speculation | None:
    """The pool's speculation given the target's per_prefill_token; None when speculative decoding is off."""
    sp = spec.speculative
    if sp is None:
        return None
    d = draft_spec(spec)
    if d is None:  # n-gram
        base = per_seq = per_kv = per_prefill = 0.0
    else:
        draft = derived_iteration(d)
        base, per_seq, per_kv, per_prefill = draft.base, draft.per_seq, draft.per_kv_token, draft.per_prefill_token
    k = sp.k
    return Speculation(
        k=k,
        tokens_per_iteration=tokens_per_iteration(k, sp.acceptance),
        fixed_s=k * base,
        per_seq_s=k * (per_prefill_token_s + per_seq),
        per_kv_s=k * per_kv,
        draft_prefill_s=per_prefill,
    )
