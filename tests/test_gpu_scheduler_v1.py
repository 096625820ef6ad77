"""scheduler: v1 (vLLM V1's token budget, backends/gpu/token_budget.py).

* Same requests, one server: every request's admission, first-token and completion times and the number of
  preemptions equal tests/gpu_reference.py's per-iteration loop run with `v1=True` (paged and reserved KV,
  priorities, preemption with recompute, budgets that bind), and the KV and batch invariants hold.
* Reduction: with a budget no iteration reaches, v1 is v0 without chunked prefill, exactly: 3,000 requests on
  two loaded servers (paged with preemptions, and reserved KV) get bit-identical admission, first-token and
  completion times (exact, not statistical: on the same requests v1's segments end at the same boundaries
  and add the same terms in the same order), and a whole experiment without a budget the same metrics.
* A lone prompt longer than the budget takes ceil(prompt / budget) iterations to its first token.
* Conservation and causality under failures, preemptions and several servers.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from gpu_support import gpu_experiment
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from strategies import GpuCase, gpu_cases
from test_gpu_kv_invariants import check_conservation, matches_reference, run_pool

from sim.core.request_block import SERVED
from sim.engine.replication import simulate


@st.composite
def v1_cases(draw: st.DrawFn) -> GpuCase:
    """A gpu case whose budget is at least max_batch (vLLM's own rule) and often binds."""
    c = draw(gpu_cases())
    budget = draw(st.sampled_from([c.max_batch, c.max_batch + 3, 16, 64, 200]))
    return dataclasses.replace(c, chunk=max(budget, c.max_batch))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(v1_cases())
def test_v1_equals_per_iteration_reference(c: GpuCase) -> None:
    matches_reference(c, v1=True)


def _loaded_case(paged: bool, budget: int | None, n: int = 3000) -> GpuCase:
    rng = np.random.default_rng(11)
    arrivals = np.cumsum(rng.exponential(1 / 40.0, n))
    inputs = np.minimum(rng.lognormal(np.log(200), 0.8, n).astype(int) + 1, 3000)
    outputs = rng.geometric(1 / 40.0, n)
    return GpuCase(
        arrivals.tolist(),
        inputs.tolist(),
        outputs.tolist(),
        rng.integers(0, 2, n).tolist(),
        0.01,
        0.0005,
        2e-5,
        1e-6,
        16,
        8000,
        paged,
        16 if paged else 1,
        budget,
    )


@pytest.mark.parametrize("paged", [True, False])
def test_v1_with_a_budget_never_reached_is_v0_without_chunking(paged: bool) -> None:
    violations: list[str] = []
    _, v0 = run_pool(_loaded_case(paged, None), violations, servers=2)
    pool1, v1 = run_pool(_loaded_case(paged, 10_000_000), violations, servers=2, scheduler="v1")
    assert not violations
    np.testing.assert_array_equal(v0.status, v1.status)
    assert (v1.status == SERVED).all()
    for col in ("start_at", "first_token_at", "done_at"):
        np.testing.assert_allclose(getattr(v1, col), getattr(v0, col), rtol=1e-9, atol=1e-9)
    assert float(np.mean(v1.start_at - v1.arrival_at)) > 0.05  # loaded: requests queue, batches change often


def test_v1_without_a_budget_is_v0_on_a_whole_experiment() -> None:
    pool = {
        "servers": 2,
        "max_batch": 16,
        "kv_cache_tokens": 6000,
        "max_prefill_tokens": None,
        "iteration_s": {"base": 0.01, "per_seq": 0.0005, "per_prefill_token": 2e-5, "per_kv_token": 1e-6},
        "cold_start_s": {"dist": "constant", "value": 0},
    }
    classes = [
        {
            "name": "chat",
            "input_tokens": {"dist": "lognormal", "median": 200, "sigma": 0.8},
            "output_tokens": {"dist": "geometric", "mean": 40},
        }
    ]
    m0 = simulate(gpu_experiment(12.0, 0.1, pool, classes=classes, seed=7), 0).metrics
    m1 = simulate(gpu_experiment(12.0, 0.1, {**pool, "scheduler": "v1"}, classes=classes, seed=7), 0).metrics
    assert m1 == m0  # null budget: v1 is v0 without chunking by construction, bit for bit


@pytest.mark.parametrize(("prompt", "budget"), [(1000, 256), (1024, 256), (257, 256), (256, 256), (5000, 64)])
def test_a_prompt_over_the_budget_takes_ceil_prompt_over_budget_iterations(prompt: int, budget: int) -> None:
    base, per_seq, per_prefill, per_kv = 0.01, 0.001, 1e-4, 1e-6
    c = GpuCase([0.5], [prompt], [3], [0], base, per_seq, per_prefill, per_kv, 8, 100_000, True, 16, budget)
    pool, block = run_pool(c, [], scheduler="v1")
    iterations = math.ceil(prompt / budget)
    ttft = iterations * (base + per_seq + per_kv * prompt) + per_prefill * prompt
    assert block.first_token_at[0] - block.arrival_at[0] == pytest.approx(ttft, rel=1e-12)
    # closed form: the chunks before the last are one segment, the last runs on with the decodes
    pool0, _ = run_pool(dataclasses.replace(c, chunk=None), [])
    assert pool.ledger.num_events - pool0.ledger.num_events == (1 if iterations > 1 else 0)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(v1_cases(), st.sampled_from(["requeue", "fail"]), st.floats(0.002, 0.05), st.integers(1, 3))
def test_v1_loses_no_request_and_keeps_causality(c: GpuCase, on_failure: str, mtbf_h: float, servers: int) -> None:
    _, block = check_conservation(c, on_failure, mtbf_h, servers, scheduler="v1")
    served = block.status == SERVED
    assert (block.first_token_at[served] >= block.start_at[served]).all()
    assert (block.start_at[served] >= block.arrival_at[served]).all()
