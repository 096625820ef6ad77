"""The event-driven pool against a naive per-iteration reference, and its invariants under stress.

* Same requests, one server: every request's admission, first-token and completion times and the number
  of preemptions equal those of tests/gpu_reference.py, which visits every iteration (paged and reserved
  KV, chunked prefill, priorities, preemption with recompute).
* Invariants after every batch change: batch <= max_batch; KV in use <= capacity during every iteration
  of the segment (checked at its first and at its last iteration, the KV in use only grows in between);
  the pool's running KV aggregates equal a recount from the requests.
* Conservation under failures and preemptions: every request ends served, failed (only with
  on_failure=fail), or is still queued or running at the horizon; none is lost or finished twice.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import simpy
from gpu_reference import RefResult, simulate_multistep_reference, simulate_reference
from gpu_support import audit_segments, feed, make_block
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from strategies import GpuCase, gpu_cases

from backends.gpu.batching import BatchEngine
from backends.gpu.catalog import ceil_div
from backends.gpu.pool import GpuPool
from backends.gpu.server import Server
from sim.config.backends import GpuPoolSpec
from sim.core.request_block import FAILED, PENDING, SERVED, RequestBlock


def _spec(c: GpuCase, **extra: object) -> GpuPoolSpec:
    data = {
        "servers": 1,
        "max_batch": c.max_batch,
        "kv_cache_tokens": c.kv_tokens,
        "kv_policy": "paged" if c.paged else "reserve",
        "kv_block_tokens": c.block,
        "max_prefill_tokens": c.chunk,
        "iteration_s": {
            "base": c.base,
            "per_seq": c.per_seq,
            "per_prefill_token": c.per_prefill,
            "per_kv_token": c.per_kv,
        },
        "cold_start_s": {"dist": "constant", "value": 0},
    }
    data.update(extra)
    return GpuPoolSpec.model_validate(data)


def _recount(pool: BatchEngine, s: Server, it: int) -> int:
    total = 0
    for job in s.running.values():
        f = job.prefill_iter
        tokens = job.inp_eff if f < 0 or it <= f else job.inp_eff + it - f
        total += ceil_div(tokens, pool.bs) if pool.paged else 0
    return total + (0 if pool.paged else s.kv_reserved)


Recount = Callable[[BatchEngine, Server, int], int]


def auditor(violations: list[str], recount: Recount = _recount):
    """The batch and KV invariants after a batch change; `recount`: the KV blocks a server's running requests
    hold at an iteration, recomputed from each request (speculation passes its own)."""

    def audit(pool: BatchEngine, s: Server, m: int) -> None:
        if len(s.running) > pool.max_batch:
            violations.append(f"batch {len(s.running)} > {pool.max_batch}")
        first, last = s.iters + 1, s.iters + m  # the segment's iterations; KV in use grows over them
        if pool.paged:
            if s.blocks_at(first) != recount(pool, s, first):
                violations.append("block aggregates disagree with a recount")
            for it in (first, last):
                if recount(pool, s, it) > pool.cap_blocks:
                    violations.append(f"KV {recount(pool, s, it)} blocks > {pool.cap_blocks} at {it}")
        elif s.kv_reserved > pool.kv_capacity:
            violations.append(f"reserved KV {s.kv_reserved} > {pool.kv_capacity}")

    return audit


def run_pool(c: GpuCase, violations: list[str], **extra: object) -> tuple[GpuPool, object]:
    env = simpy.Environment()
    block = make_block(np.array(c.arrivals), np.array(c.inputs), np.array(c.outputs), np.array(c.priorities))
    prios = [0, 1]
    pool = GpuPool(env, _spec(c, **extra), prios, [None, None], np.random.default_rng(0), 1e9, lambda b: None)
    audit_segments(pool, auditor(violations))
    feed(env, pool, block, prios)
    env.run()
    return pool, block


# a priority-0 request arriving at the very instant of a boundary (0.125 + 0.001 == 0.126 exactly) is waiting
# then and is admitted ahead of the priority-1 request queued before it (the pool once admitted by event
# creation order: the boundary's timer was older than the arrival's)
TIE_AT_BOUNDARY = GpuCase(
    arrivals=[0.125, 0.1255, 0.126],
    inputs=[1, 1, 1],
    outputs=[1, 1, 1],
    priorities=[0, 1, 0],
    base=0.001,
    per_seq=0.0,
    per_prefill=0.0,
    per_kv=0.0,
    max_batch=1,
    kv_tokens=3,
    paged=True,
    block=1,
    chunk=None,
)


def reference_of(c: GpuCase, v1: bool = False, steps: int = 1) -> RefResult:
    """`c` on the per-iteration reference (v1 or v0), or on the step-by-step multi-step one (`steps` > 1)."""
    pool: dict[str, Any] = {
        "base": c.base,
        "per_seq": c.per_seq,
        "per_prefill": c.per_prefill,
        "per_kv": c.per_kv,
        "max_batch": c.max_batch,
        "kv_tokens": c.kv_tokens,
        "paged": c.paged,
        "block": c.block,
    }
    if steps > 1:
        return simulate_multistep_reference(
            c.arrivals, c.inputs, c.outputs, c.priorities, steps=steps, budget=c.chunk, **pool
        )
    return simulate_reference(c.arrivals, c.inputs, c.outputs, c.priorities, chunk=c.chunk, v1=v1, **pool)


def assert_same_times(pool: GpuPool, block: RequestBlock, ref: RefResult) -> None:
    """Every request served, at the reference's admission, first-token and completion times (1e-9), with
    the reference's preemption count."""
    assert (block.status == SERVED).all()
    np.testing.assert_allclose(block.start_at, ref.start_at, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(block.first_token_at, ref.first_token_at, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(block.done_at, ref.done_at, rtol=1e-9, atol=1e-9)
    assert pool.ledger.preemptions == ref.preemptions


def matches_reference(c: GpuCase, v1: bool = False, **extra: object) -> RefResult:
    """Run `c` on the pool (scheduler v1 or v0; `extra` pool keys) and on the per-iteration reference; every
    request's admission, first-token and completion time and the preemption count must agree. Returns the
    reference."""
    violations: list[str] = []
    pool, block = run_pool(c, violations, **({"scheduler": "v1"} if v1 else {}), **extra)
    ref = reference_of(c, v1)
    assert not violations, violations[:3]
    assert_same_times(pool, block, ref)
    return ref


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(gpu_cases())
@example(TIE_AT_BOUNDARY)
def test_pool_equals_per_iteration_reference(c: GpuCase) -> None:
    ref = matches_reference(c)
    assert ref.max_batch_seen <= c.max_batch
    assert ref.max_blocks <= (c.kv_tokens // c.block if c.paged else c.kv_tokens)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(gpu_cases(max_requests=60), st.sampled_from(["requeue", "fail"]), st.floats(0.002, 0.05), st.integers(1, 3))
def test_no_request_lost_under_failures_and_preemption(
    c: GpuCase, on_failure: str, mtbf_h: float, servers: int
) -> None:
    check_conservation(c, on_failure, mtbf_h, servers)


def check_conservation(
    c: GpuCase,
    on_failure: str,
    mtbf_h: float,
    servers: int,
    audit: bool = True,
    recount: Recount = _recount,
    **extra: object,
) -> tuple[GpuPool, RequestBlock]:
    """`c` on `servers` servers that fail (MTBF `mtbf_h`) with cold starts: every request ends served, failed
    (only with on_failure=fail), or is still queued or running at the horizon, none twice; times are causal;
    `audit`: the batch and KV invariants after every batch change, KV recounted by `recount` (`extra`: more
    pool keys). Returns the pool
    and the block, for a caller's own checks."""
    violations: list[str] = []
    horizon = c.arrivals[-1] + 30.0
    env = simpy.Environment()
    block = make_block(np.array(c.arrivals), np.array(c.inputs), np.array(c.outputs), np.array(c.priorities))
    prios = [0, 1]
    spec = _spec(
        c,
        servers=servers,
        failures={"mtbf_h": mtbf_h, "mttr_h": 0.001, "on_failure": on_failure},
        cold_start_s={"dist": "exponential", "mean": 0.5},
        **extra,
    )
    finished: list[int] = []
    pool = GpuPool(
        env,
        spec,
        prios,
        [None, None],
        np.random.default_rng(1),
        horizon,
        lambda b: finished.append(b.index),
        rng_failures=np.random.default_rng(2),
    )
    if audit:
        audit_segments(pool, auditor(violations, recount))
    busy: list[tuple[float, float]] = []
    pool.ledger.busy.record = busy
    done_count = {"n": 0}
    orig_finish = pool.engine.finish

    def counting_finish(b, i, status, at):  # type: ignore[no-untyped-def]
        assert b.status[i] == PENDING, "a request finished twice"
        done_count["n"] += 1
        orig_finish(b, i, status, at)

    pool.engine.finish = counting_finish  # type: ignore[method-assign]
    feed(env, pool, block, prios)
    env.run(until=horizon)
    pool.close(horizon)
    assert not violations, violations[:3]
    queued = sum(len(q) for q in pool.queue.queues.values())
    running = sum(len(s.running) for s in pool.servers)
    assert queued == pool.queued and running == pool.running_total
    pending = int((block.status == PENDING).sum())
    assert pending == queued + running, "a request was lost"
    assert done_count["n"] + pending == len(block)
    if on_failure == "requeue":
        assert not (block.status == FAILED).any()
    served = block.status == SERVED
    assert (block.done_at[served] >= block.first_token_at[served] - 1e-12).all()
    assert (block.first_token_at[served] >= block.arrival_at[served]).all()
    for a, b in pool.ledger.healthy_intervals + pool.ledger.provisioned_intervals + busy:
        assert 0.0 <= a <= b <= horizon + 1e-9
    assert not math.isnan(sum(b - a for a, b in busy))
    assert pool.ledger.busy.total_length() == pytest.approx(sum(b - a for a, b in busy))
    return pool, block
