"""Multi-turn conversations: users who arrive along the curve and come back with the whole context.

Sessions start as a Poisson process with the rate curve divided by E[turns] (so `mean_rps` stays the mean
request rate, up to conversations cut by the horizon). A session has K >= 1 turns (`turns`, an integer
distribution) and a class drawn by share; turn 1 arrives at the start, turn j + 1 arrives `think_time_s`
after turn j (open loop: the think time includes reading the answer). Turn j sends the conversation so far:

    input_1 = m_1,   input_j = min(max_context_tokens, input_{j-1} + output_{j-1} + m_j)   (untruncated sum)

with new messages m_j from `message_tokens` (default: the class's input_tokens) and outputs from the
class's output_tokens. With `hash_block_tokens` B > 0 each request carries prefix-block hashes: the k-th
full block of a session's context has the same id in every turn that holds it (turn j+1's prompt starts
with turn j's), the partial last block and every block of a truncated context get fresh ids. All draws
come from the "sessions" stream, in order of session start.
"""

from __future__ import annotations

import numpy as np

from sim.config import Experiment
from sim.core.rng import stream
from workloads.distributions import make_distribution
from workloads.ragged import ragged_gather
from workloads.token_counts import make_token_distribution

FRESH_BASE = np.int64(2**62)  # ids of blocks that nobody else shares
SESSION_SHIFT = 24  # session uid << 24 | block index


class SessionMaker:
    def __init__(self, exp: Experiment, replication: int):
        spec = exp.workload.sessions
        assert spec is not None
        self.spec = spec
        classes = exp.workload.classes
        self.shares = np.array([c.share for c in classes], dtype=np.float64)
        self.shares /= self.shares.sum()
        self.turns = make_token_distribution(spec.turns)
        self.think = make_distribution(spec.think_time_s)
        common = make_token_distribution(spec.message_tokens) if spec.message_tokens is not None else None
        self.msg = [common or make_token_distribution(c.input_tokens) for c in classes]
        self.out = [make_token_distribution(c.output_tokens) for c in classes]
        self.rng = stream(exp.seed, replication, "sessions")
        self.next_uid = 0
        self.fresh = FRESH_BASE
        self.started = 0
        # pending turns (sorted by time at the end of each call)
        self._t = np.zeros(0)
        self._c = np.zeros(0, dtype=np.int16)
        self._in = np.zeros(0, dtype=np.int64)
        self._out = np.zeros(0, dtype=np.int64)
        self._sess = np.zeros(0, dtype=np.int64)
        self._h = np.zeros(0, dtype=np.int64)
        self._ho = np.zeros(1, dtype=np.int64)

    @property
    def mean_turns(self) -> float:
        return float(self.turns.mean)

    def _new_sessions(self, starts: np.ndarray) -> None:
        s = starts.size
        if s == 0:
            return
        rng = self.rng
        cls = rng.choice(self.shares.size, size=s, p=self.shares).astype(np.int16)
        k = np.maximum(self.turns.sample(rng, s), 1).astype(np.int64)
        total = int(k.sum())
        sess = np.repeat(np.arange(s), k)
        first = np.zeros(s + 1, dtype=np.int64)
        np.cumsum(k, out=first[1:])
        turn = np.arange(total, dtype=np.int64) - first[sess]
        think = np.where(turn > 0, np.maximum(self.think.sample(rng, total), 0.0), 0.0)
        csum = np.cumsum(think)
        times = starts[sess] + csum - (csum[first[:-1]] - think[first[:-1]])[sess]
        tcls = cls[sess]
        msg = np.empty(total, dtype=np.int64)
        out = np.empty(total, dtype=np.int64)
        for c in range(self.shares.size):
            sel = np.flatnonzero(tcls == c)
            if sel.size:
                msg[sel] = self.msg[c].sample(rng, sel.size)
                out[sel] = self.out[c].sample(rng, sel.size)
        # context: all earlier messages and answers of the session, plus this turn's message
        grow = np.cumsum(msg + out) - (msg + out)  # before this turn, over the whole flat array
        ctx = grow - grow[first[:-1]][sess] + msg
        inputs = np.minimum(ctx, self.spec.max_context_tokens)
        uid = self.next_uid + np.arange(s, dtype=np.int64)
        self.next_uid += s
        self.started += s
        hashes, offsets = self._hashes(uid[sess], inputs, ctx > self.spec.max_context_tokens)
        self._append(times, tcls, inputs, out, uid[sess], hashes, offsets)

    def _hashes(self, uid: np.ndarray, inputs: np.ndarray, truncated: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        b = self.spec.hash_block_tokens
        n = inputs.size
        if b == 0:
            return np.zeros(0, dtype=np.int64), np.zeros(n + 1, dtype=np.int64)
        nblocks = -(-inputs // b)
        offsets = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(nblocks, out=offsets[1:])
        row = np.repeat(np.arange(n), nblocks)
        idx = np.arange(offsets[-1], dtype=np.int64) - offsets[:-1][row]
        ids = (uid[row] << SESSION_SHIFT) | idx
        full = (idx + 1) * b <= inputs[row]
        fresh = ~full | truncated[row]
        nf = int(fresh.sum())
        ids[fresh] = self.fresh + np.arange(nf, dtype=np.int64)
        self.fresh += nf
        return ids, offsets

    def _append(
        self,
        t: np.ndarray,
        c: np.ndarray,
        i: np.ndarray,
        o: np.ndarray,
        s: np.ndarray,
        h: np.ndarray,
        ho: np.ndarray,
    ) -> None:
        self._t = np.concatenate([self._t, t])
        self._c = np.concatenate([self._c, c])
        self._in = np.concatenate([self._in, i])
        self._out = np.concatenate([self._out, o])
        self._sess = np.concatenate([self._sess, s])
        self._h = np.concatenate([self._h, h])
        self._ho = np.concatenate([self._ho, ho[1:] + self._ho[-1]])

    def turns_between(
        self, starts: np.ndarray, t1: float
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, tuple[np.ndarray, np.ndarray]]:
        """Start sessions at `starts` (all < t1) and return every pending turn before t1, sorted:
        (times, class, input tokens, output tokens, session uid, (hash_ids, hash_offsets))."""
        self._new_sessions(starts)
        order = np.argsort(self._t, kind="stable")
        cut = int(np.searchsorted(self._t[order], t1, side="left"))
        now, later = order[:cut], order[cut:]
        h_now = ragged_gather(self._h, self._ho, now)
        out = (self._t[now], self._c[now], self._in[now], self._out[now], self._sess[now], h_now)
        self._h, self._ho = ragged_gather(self._h, self._ho, later)
        self._t, self._c, self._in = self._t[later], self._c[later], self._in[later]
        self._out, self._sess = self._out[later], self._sess[later]
        return out
