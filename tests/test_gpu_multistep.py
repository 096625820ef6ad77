"""num_scheduler_steps: vLLM v0.6's multi-step scheduling (backends/gpu/multistep.py).

* Same requests, one server: every request's admission, first-token and completion times and the preemption
  count equal tests/gpu_reference.py's step-by-step loop (`simulate_multistep_reference`: paged and reserved
  KV, priorities, preemption with lookahead, prefill budgets that bind), 2 to 10 steps.
* N = 1 is today's model: the same cases equal the v0 per-iteration reference, and a whole experiment with
  `num_scheduler_steps: 1` set has the metrics of one without the key.
* Closed forms: a request arriving during a round is admitted exactly at the round's end; requests sent all at
  once run prefill-only steps (budget and max_batch bound) then rounds of N steps, every time known by hand.
* Conservation and causality under failures, preemptions and 1-3 servers.
"""

from __future__ import annotations

import numpy as np
import pytest
import simpy
from gpu_support import feed, gpu_experiment, make_block
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from strategies import GpuCase, gpu_cases
from test_gpu_kv_invariants import _spec, assert_same_times, check_conservation, matches_reference, reference_of

from backends.gpu.pool import GpuPool
from sim.config.backends import GpuPoolSpec
from sim.core.request_block import RequestBlock
from sim.engine.replication import simulate


def run_multistep(c: GpuCase, steps: int) -> tuple[GpuPool, RequestBlock]:
    env = simpy.Environment()
    block = make_block(np.array(c.arrivals), np.array(c.inputs), np.array(c.outputs), np.array(c.priorities))
    prios = [0, 1]
    spec = _spec(c, num_scheduler_steps=steps)
    pool = GpuPool(env, spec, prios, [None, None], np.random.default_rng(0), 1e9, lambda b: None)
    feed(env, pool, block, prios)
    env.run()
    return pool, block


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(gpu_cases(), st.sampled_from([2, 3, 10]))
def test_multistep_equals_step_by_step_reference(c: GpuCase, steps: int) -> None:
    pool, block = run_multistep(c, steps)
    ref = reference_of(c, steps=steps)
    assert_same_times(pool, block, ref)
    assert ref.max_batch_seen <= c.max_batch


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(gpu_cases())
def test_one_step_is_todays_model(c: GpuCase) -> None:
    matches_reference(c, num_scheduler_steps=1)


def test_one_step_leaves_an_experiment_unchanged_and_ten_reach_the_engine() -> None:
    pool = {"servers": 1, "gpu": "h100", "model": "llama-3-8b"}
    classes = [
        {
            "name": "default",
            "input_tokens": {"dist": "geometric", "mean": 400},
            "output_tokens": {"dist": "geometric", "mean": 100},
        }
    ]
    m = simulate(gpu_experiment(8.0, 0.05, pool, classes=classes, seed=3), 0).metrics
    m1 = simulate(gpu_experiment(8.0, 0.05, {**pool, "num_scheduler_steps": 1}, classes=classes, seed=3), 0).metrics
    m10 = simulate(gpu_experiment(8.0, 0.05, {**pool, "num_scheduler_steps": 10}, classes=classes, seed=3), 0).metrics
    assert m1 == m
    assert m10["ttft_p95_s"] != m["ttft_p95_s"]


BASE, PER_SEQ, PER_PREFILL = 2.0**-8, 2.0**-12, 2.0**-16  # dyadic: every sum below is exact


def _case(arrivals: list[float], inp: int, out: int, max_batch: int, budget: int | None) -> GpuCase:
    n = len(arrivals)
    return GpuCase(
        arrivals, [inp] * n, [out] * n, [0] * n, BASE, PER_SEQ, PER_PREFILL, 0.0, max_batch, 1 << 20, True, 16, budget
    )


def test_an_arrival_waits_for_the_end_of_the_round() -> None:
    steps = 4
    step = BASE + PER_SEQ  # one decode step of the lone running request (no KV cost)
    prefill_a = BASE + PER_SEQ + 100 * PER_PREFILL
    arrive_b = prefill_a + 1.5 * step  # in the middle of A's first round
    c = _case([0.0, arrive_b], 100, 40, 8, None)
    _, block = run_multistep(c, steps)
    assert block.start_at[0] == 0.0 and block.first_token_at[0] == prefill_a
    assert block.start_at[1] == prefill_a + steps * step
    # N = 1 admits B at the next iteration boundary, and its prefill joins A's iteration
    _, block1 = run_multistep(c, 1)
    assert block1.start_at[1] == prefill_a + 2 * step


def test_all_at_once_prefill_steps_then_rounds() -> None:
    """6 requests at t = 0 (100 in, 2N + 1 out), max_batch 4, 200 prompt tokens a step, N = 4: the first
    arrives at an idle server and prefills alone; then [1, 2], then [3] (the batch is full); two rounds of N
    steps with 4 running (the prefill gave each its first token, 2N decode steps give the rest); then [4, 5]
    prefill together and decode two rounds with 2 running."""
    steps = 4
    c = _case([0.0] * 6, 100, 2 * steps + 1, 4, 200)
    pool, block = run_multistep(c, steps)

    def prefill(k: int) -> float:
        return BASE + PER_SEQ * k + 100 * k * PER_PREFILL

    def rounds(n: int) -> float:
        return 2 * steps * (BASE + PER_SEQ * n)

    p1 = prefill(1)
    p2 = p1 + prefill(2)
    p3 = p2 + prefill(1)
    wave1 = p3 + rounds(4)
    p4 = wave1 + prefill(2)
    wave2 = p4 + rounds(2)
    np.testing.assert_array_equal(block.start_at, [0.0, p1, p1, p2, wave1, wave1])
    np.testing.assert_array_equal(block.first_token_at, [p1, p2, p2, p3, p4, p4])
    np.testing.assert_array_equal(block.done_at, [wave1] * 4 + [wave2] * 2)
    # one timer per prefill step and per round: 4 prefill steps, 2 + 2 rounds
    assert pool.ledger.num_events == 4 + 2 * 2
    assert pool.ledger.preemptions == 0


def test_a_round_ends_after_n_steps_even_if_its_requests_are_done() -> None:
    """A request whose last token falls inside a round is answered at the round's end (vLLM processes a
    round's outputs then): 1 + 5 tokens with N = 4 take the prefill step and two full rounds."""
    steps = 4
    c = _case([0.0], 100, 6, 4, None)
    _, block = run_multistep(c, steps)
    assert block.done_at[0] == BASE + PER_SEQ + 100 * PER_PREFILL + 2 * steps * (BASE + PER_SEQ)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    gpu_cases(max_requests=60),
    st.sampled_from(["requeue", "fail"]),
    st.floats(0.002, 0.05),
    st.integers(1, 3),
    st.sampled_from([2, 10]),
)
def test_no_request_lost_with_multistep(c: GpuCase, on_failure: str, mtbf_h: float, servers: int, steps: int) -> None:
    check_conservation(c, on_failure, mtbf_h, servers, audit=False, num_scheduler_steps=steps)


def test_multistep_refuses_the_v1_scheduler() -> None:
    spec = _spec(_case([0.0], 10, 2, 4, 64), num_scheduler_steps=4, scheduler="v1")
    with pytest.raises(ValueError, match="multi-step"):
        GpuPool(simpy.Environment(), spec, [0], [None], np.random.default_rng(0), 1.0, lambda b: None)


def test_a_round_pays_the_scheduling_cost_once() -> None:
    """Derived H100 + Llama-3-8B, N = 10: a lone request of 1 + 10r tokens decodes r rounds, each paying
    overhead_s once and 10 steps of base - overhead_s + per_seq + per_kv * KV (KV = prompt + j at step j)."""
    from backends.gpu.catalog import iteration_model, pool_efficiency, prefill_prompt_s

    steps, r, inp = 10, 3, 500
    spec = GpuPoolSpec.model_validate(
        {"servers": 1, "gpu": "h100", "model": "llama-3-8b", "num_scheduler_steps": steps, "initial_cold_start": False}
    )
    it, overhead = iteration_model(spec), pool_efficiency(spec).overhead_s
    assert it.per_schedule == overhead > 0.0
    env = simpy.Environment()
    block = make_block(np.array([0.0]), np.array([inp]), np.array([1 + steps * r]), np.array([0]))
    pool = GpuPool(env, spec, [0], [None], np.random.default_rng(0), 1e9, lambda b: None)
    feed(env, pool, block, [0])
    env.run()
    decode_steps = steps * r
    kv = decode_steps * inp + decode_steps * (decode_steps + 1) // 2
    expected = r * overhead + decode_steps * (it.base - overhead + it.per_seq) + it.per_kv_token * kv
    assert block.done_at[0] - block.first_token_at[0] == pytest.approx(expected, rel=1e-12)
    assert block.first_token_at[0] == pytest.approx(
        it.base + it.per_seq + (it.per_prefill_token + it.per_kv_token) * inp + prefill_prompt_s(spec)
    )
