"""Cascades (routing.escalate): a share of a class's requests, once answered by the class's own target, are
answered again by a bigger model; both calls are paid, and the user sees the final answer.

Which requests escalate is drawn per request on the `escalation` stream, one uniform number for every request
that reaches the routing policy (whatever its class or the configured shares), so common random numbers
hold: raising a fraction only adds requests to the escalated set. A request is escalated when its own
target served it: a GPU pool (the pool's `on_served` hook, at the first answer's last token) or an API
without rate limits (answered when its block is routed: the second call starts at the first answer's end).
A request whose first call failed, went to a fallback or spilled over, or that a `routing.by_size` rule
routed, is not escalated. On escalation the
row is reopened: its first cost stays in `cost_usd` (the second call's is added), its timestamps are
cleared and written again by the second call, and with `carry_output` its prompt grows by the first answer.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from sim.config import Experiment
from sim.core.request_block import (
    FLAG_FALLBACK,
    PATH_API,
    PATH_API_BATCH,
    PENDING,
    SERVED,
    STAGE_ESCALATED,
    STAGE_FIRST,
    RequestBlock,
)
from sim.core.rng import stream

# the router's second call: (block, requests, start times, target code, at an event)
SecondCall = Callable[[RequestBlock, np.ndarray, np.ndarray, int, bool], None]


class Escalation:
    def __init__(
        self, exp: Experiment, code: Callable[[str], int], second_call: SecondCall, seed: int, replication: int
    ):
        classes = exp.workload.classes
        spec = exp.routing.escalate
        self.second_call = second_call
        self.fraction = np.array([spec[c.name].fraction if c.name in spec else 0.0 for c in classes])
        self.to_code = [code(spec[c.name].to) for c in classes if c.name in spec]  # the targets used
        self.code_of = [code(spec[c.name].to) if c.name in spec else 0 for c in classes]
        self.carry = [spec[c.name].carry_output if c.name in spec else False for c in classes]
        self.rng = stream(seed, replication, "escalation")

    def draw(self, block: RequestBlock, todo: np.ndarray) -> np.ndarray:
        """The requests (of those routed by the policy) that will escalate once served; marked STAGE_FIRST."""
        u = self.rng.random(len(block))
        esc = todo & (u < self.fraction[block.class_idx])
        block.stage[esc] = STAGE_FIRST
        return esc

    def after_routing(self, block: RequestBlock, esc: np.ndarray) -> None:
        """Escalate the drawn requests an API answered while the block was routed (their second call starts
        when the first answer ends)."""
        path = block.path
        done = esc & (block.status == SERVED) & ((path == PATH_API) | (path == PATH_API_BATCH))
        done &= (block.flags & FLAG_FALLBACK) == 0
        idx = np.flatnonzero(done)
        if not len(idx):
            return
        block.pending += len(idx)
        for c in np.unique(block.class_idx[idx]).tolist():
            sel = idx[block.class_idx[idx] == c]
            self._second(block, sel, block.done_at[sel].copy(), c, at_event=False)

    def on_served(self, block: RequestBlock, i: int, at: float) -> bool:
        """A GPU pool served request i at `at`: escalate it now if it was drawn (True: taken over)."""
        if block.stage[i] != STAGE_FIRST or block.flags[i] & FLAG_FALLBACK:
            return False
        self._second(block, np.array([i]), np.array([at]), int(block.class_idx[i]), at_event=True)
        return True

    def _second(self, block: RequestBlock, idx: np.ndarray, t: np.ndarray, c: int, at_event: bool) -> None:
        """The second calls of requests idx (class c), starting at times t (each row still counts as pending)."""
        block.stage[idx] = STAGE_ESCALATED
        block.status[idx] = PENDING
        block.start_at[idx] = np.nan
        block.first_token_at[idx] = np.nan
        block.done_at[idx] = np.nan
        if self.carry[c]:
            out = block.output_tokens[idx]
            block.input_tokens[idx] += out
            block.prefill_tokens[idx] += out
        self.second_call(block, idx, t, self.code_of[c], at_event)
