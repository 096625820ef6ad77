"""Prefill/decode disaggregation: a prefill pool hands each prompt's KV to a decode pool over a link.

A pool with `disaggregation` (role prefill) serves every request as a one-token request: its prefill, in a
batch of its own servers, ends with the first token, so TTFT = queue + prefill on the prefill pool, the
first token emitted at the end of the prefill iteration as DistServe and Dynamo do. When that iteration ends
the request leaves the prefill batch (its KV memory there is freed) and its KV travels to `decode_pool`
in

    transfer_s = input tokens x KV bytes per token (the model's, at kv_cache_dtype) / link_gb_s + link_latency_s

each transfer at the link's full speed (no contention between transfers, no overlap with the prefill).
It then joins the decode pool's queue (role decode) with its prompt's KV already computed (nothing to
prefill) and is admitted when a decode batch has a slot and KV memory for it; there it generates the
remaining output - 1 tokens, one per iteration. A one-token answer is finished by its prefill. Both pools
are paid, busy and counted as pools of their own (per-pool utilization and cost); the request belongs to the
decode pool once handed over (per-pool latencies). A decode server that fails restarts its requests' decode
from the transferred KV (the prefill is not repeated).
"""

from __future__ import annotations

import math

import simpy

from backends.gpu.catalog import model_of
from backends.gpu.pool import GpuPool
from sim.config.backends import BackendsSpec, GpuPoolSpec
from sim.core.request_block import PENDING, RequestBlock
from sim.core.ticks import Tick, call_later


class KvHandoff:
    """The prefill pool's `on_served` hook: a prefilled request travels to the decode pool."""

    def __init__(
        self,
        env: simpy.Environment,
        spec: GpuPoolSpec,
        decode: GpuPool,
        decode_index: int,
        priorities: list[int],
    ):
        self.env = env
        self.decode = decode
        self.decode_index = decode_index
        self.priorities = priorities
        d = spec.disaggregation
        assert d is not None
        self.latency_s = d.link_latency_s
        # seconds per prompt token on the link (0: instantaneous)
        per_byte = 0.0 if d.link_gb_s is None else 1.0 / (d.link_gb_s * 1e9)
        self.s_per_token = model_of(spec).kv_bytes_per_token(spec.kv_cache_dtype) * per_byte

    def on_prefilled(self, block: RequestBlock, i: int, at: float) -> bool:
        """Request i's prefill (and first token) ended at `at`: send its KV on (True), unless its answer is
        that one token (False: it is served)."""
        if int(block.output_tokens[i]) <= 1:
            return False
        block.status[i] = PENDING  # in flight again: on the link, then on the decode pool
        block.done_at[i] = math.nan
        block.pool[i] = self.decode_index
        delay = int(block.input_tokens[i]) * self.s_per_token + self.latency_s
        call_later(self.env, delay, self._arrived, (block, i))
        self.decode.ledger.num_events += 1
        return True

    def _arrived(self, tick: Tick) -> None:
        block, i = tick.data
        self.decode.submit(block, i, self.priorities[int(block.class_idx[i])], None)


def connect_pools(
    backends: BackendsSpec, pools: list[GpuPool | None], env: simpy.Environment, priorities: list[int]
) -> None:
    """Hand every prefill pool's requests to its decode pool (both provisioned: Router.pools_used)."""
    names = list(backends.pools())
    for j, spec in enumerate(backends.pools().values()):
        prefill = pools[j]
        if spec.disaggregation is None or prefill is None:
            continue
        k = names.index(spec.disaggregation.decode_pool)
        decode = pools[k]
        assert decode is not None
        prefill.on_served = KvHandoff(env, spec, decode, k, priorities).on_prefilled
