"""Speculative decoding (backends/gpu/speculative.py).

* The expectation: tokens per iteration (1 - α^(k+1)) / (1 - α), k + 1 at α = 1, 1 at α = 0.
* α = 1 yields k + 1 tokens per iteration: a lone request's n tokens after the first take ceil(n / (k + 1))
  iterations, each the target's iteration plus the verification of k more tokens (exact arithmetic), under
  both schedulers.
* α = 0 yields one token per iteration and is slower than no speculation by exactly the draft's cost: its
  prefill of the prompt, and in every decode iteration its k steps (the draft model's own iteration, derived
  from the catalog) plus the target's verification of k more tokens (exact arithmetic, a catalog pool, both
  schedulers, chunked or not).
* Gains shrink with the batch: the throughput gain of the same speculation at max_batch 1 exceeds that at
  max_batch 32, at 256 smaller still (all requests at once, a derived H100 pool).
* The draft model's weights and KV take memory: fewer KV tokens than without it.
* KV: a request holds, from its admission, what speculation adds beyond one token per iteration, so it ends
  holding its prompt and output as without it; the aggregates agree with a per-request recount.
* Conservation, causality, max_batch and KV capacity under speculation (hypothesis: paged and reserve,
  chunked or not, v0 and v1, preemptions, failures, several servers).
* validate refuses an unknown or mixture-of-experts draft, a v1 budget below max_batch x (k + 1) and
  speculation on a prefill pool, each with its dotted path.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from strategies import GpuCase, gpu_cases, speculations
from test_config_errors import assert_user_error, capsim
from test_gpu_kv_invariants import check_conservation, run_pool

from backends.gpu.batching import BatchEngine
from backends.gpu.catalog import ceil_div, derived_iteration, kv_capacity
from backends.gpu.engine_bench import serve_benchmark
from backends.gpu.server import Server
from backends.gpu.speculative import tokens_per_iteration
from sim.config.backends import GpuPoolSpec
from sim.core.request_block import SERVED


def test_expected_tokens_per_iteration() -> None:
    assert tokens_per_iteration(4, 1.0) == 5.0
    assert tokens_per_iteration(4, 0.0) == 1.0
    a, k = 0.7, 3
    assert tokens_per_iteration(k, a) == pytest.approx(sum(a**i for i in range(k + 1)), rel=1e-12)


def _lone(prompt: int, out: int, chunk: int | None = None) -> GpuCase:
    return GpuCase([0.5], [prompt], [out], [0], 0.01, 0.001, 1e-4, 0.0, 8, 100_000, True, 16, chunk)


@pytest.mark.parametrize("scheduler", ["v0", "v1"])
@pytest.mark.parametrize(("k", "out"), [(1, 2), (3, 100), (4, 101), (7, 9)])
def test_acceptance_one_yields_k_plus_one_tokens_per_iteration(k: int, out: int, scheduler: str) -> None:
    c = _lone(50, out, chunk=8192 if scheduler == "v1" else None)
    spec = {"draft": "ngram", "k": k, "acceptance": 1.0}
    _, none = run_pool(c, [], scheduler=scheduler)
    pool, block = run_pool(c, [], speculative=spec, scheduler=scheduler)
    assert pool.engine.spec_dec is not None
    iterations = math.ceil((out - 1) / (k + 1))
    per_iteration = c.base + c.per_seq + k * c.per_prefill  # ngram: no draft model; verify k more tokens
    assert block.done_at[0] - block.first_token_at[0] == pytest.approx(iterations * per_iteration, rel=1e-12)
    assert block.first_token_at[0] == none.first_token_at[0]  # the prefill iteration speculates nothing


H100_70B = {
    "servers": 1,
    "gpu": "h100",
    "model": "llama-3-70b",
    "tensor_parallel": 4,
    "max_batch": 8,
    "cold_start_s": {"dist": "constant", "value": 0},
}


@pytest.mark.parametrize(("scheduler", "chunk"), [("v0", None), ("v0", 256), ("v1", 256), ("v1", 8192)])
def test_acceptance_zero_is_slower_than_none_by_the_draft_cost(scheduler: str, chunk: int | None) -> None:
    prompt, out, k = 300, 40, 4
    pool = {**H100_70B, "max_prefill_tokens": chunk, "scheduler": scheduler}
    spec = GpuPoolSpec.model_validate(pool)
    it = derived_iteration(spec)
    draft = derived_iteration(GpuPoolSpec.model_validate({**pool, "model": "llama-3-8b"}))
    rng = np.random.default_rng(0)
    inputs, outputs = np.array([prompt]), np.array([out])
    none = serve_benchmark(spec, inputs, outputs, math.inf, rng)
    sp = GpuPoolSpec.model_validate({**pool, "speculative": {"draft": "llama-3-8b", "k": k, "acceptance": 0.0}})
    slow = serve_benchmark(sp, inputs, outputs, math.inf, rng)
    # the draft prefills the prompt too; the prefill iteration drafts nothing
    assert slow.ttft_mean_s - none.ttft_mean_s == pytest.approx(draft.per_prefill_token * prompt, rel=1e-9)
    # decode iteration i (1..out-1) holds prompt + i KV tokens; the draft model reads its own KV of them
    extra = sum(
        k * (it.per_prefill_token + draft.base + draft.per_seq + draft.per_kv_token * (prompt + i))
        for i in range(1, out)
    )
    assert (slow.tpot_mean_s - none.tpot_mean_s) * (out - 1) == pytest.approx(extra, rel=1e-9)
    assert slow.events_per_request == none.events_per_request  # still closed-form segments


def test_gains_shrink_with_batch_size() -> None:
    rng = np.random.default_rng(3)
    n = 256
    inputs = np.full(n, 200)
    outputs = np.full(n, 200)
    gains = []
    for max_batch in (1, 32, 256):
        pool = {"servers": 1, "gpu": "h100", "model": "llama-3-8b", "max_batch": max_batch, "max_prefill_tokens": 8192}
        base = GpuPoolSpec.model_validate(pool)
        spec = GpuPoolSpec.model_validate({**pool, "speculative": {"draft": "ngram", "k": 4, "acceptance": 0.7}})
        count = n if max_batch > 1 else 16  # one at a time: 16 requests tell the rate
        a = serve_benchmark(base, inputs[:count], outputs[:count], math.inf, rng)
        b = serve_benchmark(spec, inputs[:count], outputs[:count], math.inf, rng)
        gains.append(b.throughput_rps / a.throughput_rps)
    # alone: E = 2.77 tokens per iteration for little more than one weight stream
    assert gains[0] > 2.0
    assert gains[0] > gains[1] > gains[2]


def test_a_draft_model_takes_kv_memory() -> None:
    spec = GpuPoolSpec.model_validate(H100_70B)
    with_draft = GpuPoolSpec.model_validate(
        {**H100_70B, "speculative": {"draft": "llama-3-8b", "k": 4, "acceptance": 0.7}}
    )
    ngram = GpuPoolSpec.model_validate({**H100_70B, "speculative": {"draft": "ngram", "k": 4, "acceptance": 0.7}})
    assert kv_capacity(ngram) == kv_capacity(spec)
    assert kv_capacity(with_draft) < kv_capacity(spec)


def _held(engine: BatchEngine, s: Server, it: int) -> int:
    """KV blocks the batch needs in iteration `it`, recounted per request from the model's rule: from its
    admission on, a request holds its prompt and what speculation will add beyond one token per iteration,
    plus one token per iteration after its prefill iteration."""
    sd = engine.spec_dec
    assert sd is not None
    total = 0
    for job in s.running.values():
        n = job.rem_out - 1  # tokens this run generates after its first
        tokens = job.inp_eff + n - math.ceil(n / sd.tokens_per_iteration - 1e-9)
        if job.prefill_iter >= 0:
            tokens += it - job.prefill_iter
        total += ceil_div(tokens, engine.bs)
    return total


@st.composite
def spec_cases(draw: st.DrawFn) -> tuple[GpuCase, dict[str, object], str]:
    c = draw(gpu_cases(max_requests=30))
    sp = draw(speculations())
    scheduler = draw(st.sampled_from(["v0", "v1"]))
    if scheduler == "v1":
        c = dataclasses.replace(c, chunk=max(c.chunk or 64, c.max_batch * (sp["k"] + 1)))
    return c, sp, scheduler


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(spec_cases(), st.sampled_from(["requeue", "fail"]), st.floats(0.002, 0.05), st.integers(1, 3))
def test_speculation_loses_no_request_and_keeps_causality_and_kv(
    case: tuple[GpuCase, dict[str, object], str], on_failure: str, mtbf_h: float, servers: int
) -> None:
    c, sp, scheduler = case
    pool, block = check_conservation(c, on_failure, mtbf_h, servers, recount=_held, scheduler=scheduler, speculative=sp)
    assert pool.engine.spec_dec is not None
    served = block.status == SERVED
    assert (block.first_token_at[served] >= block.start_at[served]).all()
    assert (block.start_at[served] >= block.arrival_at[served]).all()


def test_speculation_is_checked_at_validate() -> None:
    def pool(extra: str) -> str:
        return f"name: x\nbackends:\n  gpu_pools:\n    big:\n      gpu: h100\n      max_batch: 64\n{extra}"

    text = pool("      speculative: {draft: llama-9, k: 4, acceptance: 0.7}\n")
    assert_user_error(capsim("validate", "-", stdin=text), "backends.gpu_pools.big.speculative.draft", "llama-9")
    text = pool("      speculative: {draft: mixtral-8x7b, k: 4, acceptance: 0.7}\n")
    assert_user_error(capsim("validate", "-", stdin=text), "backends.gpu_pools.big.speculative.draft", "mixture")
    text = pool(
        "      scheduler: v1\n      max_prefill_tokens: 256\n      speculative: {draft: ngram, k: 4, acceptance: 0.7}\n"
    )
    assert_user_error(
        capsim("validate", "-", stdin=text),
        "backends.gpu_pools.big.max_prefill_tokens (line",
        "max_batch x (k + 1) = 320",
    )
    text = pool("      speculative: {draft: ngram, k: 0, acceptance: 0.7}\n")
    assert_user_error(capsim("validate", "-", stdin=text), "backends.gpu_pools.big.speculative.k (line")
    text = pool("      speculative: {draft: ngram, k: 2, acceptance: 1.5}\n")
    assert_user_error(capsim("validate", "-", stdin=text), "backends.gpu_pools.big.speculative.acceptance (line")
    text = (
        "name: x\nbackends:\n  gpu_pools:\n    pre:\n      gpu: h100\n      disaggregation: {decode_pool: dec}\n"
        "      speculative: {draft: ngram, k: 2, acceptance: 0.5}\n    dec:\n      gpu: h100\n"
    )
    assert_user_error(capsim("validate", "-", stdin=text), "backends.gpu_pools.pre.speculative", "decode pool")
    proc = capsim("validate", "experiments/default.yaml", "--set", "backends.gpu_pool.speculative.k=3")
    assert proc.returncode == 2
