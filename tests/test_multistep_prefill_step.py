"""Multi-step scheduling: the cost of each prompt in a prefill-only step (catalog.prefill_prompt_s,
MULTISTEP_PREFILL_PROMPT_S).

* Known answer: a lone request on an idle H100 + Llama-3-8B pool with N = 10 gets its first token at the derived
  prefill iteration plus MULTISTEP_PREFILL_PROMPT_S, and its decode rounds are untouched (they do not pay it).
* Reduction: with one scheduler step or an explicit iteration_s the term is 0 and the figures do not depend on the
  constant (the default experiment is untouched); with N > 1 a prefill-only step of k prompts pays it k times,
  exactly (once per step when each prompt fills a step of its own).
* Monotone: a dearer prefill step never lowers a burst's mean TPOT or TTFT, nor raises its throughput.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from backends.gpu import catalog
from backends.gpu.catalog import iteration_model, prefill_prompt_s
from backends.gpu.efficiency import MULTISTEP_PREFILL_PROMPT_S
from backends.gpu.engine_bench import serve_benchmark
from sim.config.backends import GpuPoolSpec


def _spec(steps: int, **extra: object) -> GpuPoolSpec:
    return GpuPoolSpec.model_validate(
        {"servers": 1, "gpu": "h100", "model": "llama-3-8b", "num_scheduler_steps": steps, **extra}
    )


def _burst(spec: GpuPoolSpec, n: int = 120, seed: int = 3):
    rng = np.random.default_rng(seed)
    ins = rng.integers(4, 800, n)
    outs = rng.integers(1, 300, n)
    return serve_benchmark(spec, ins, outs, math.inf, np.random.default_rng(0))


def test_the_term_is_zero_with_one_step_or_an_explicit_iteration() -> None:
    assert MULTISTEP_PREFILL_PROMPT_S > 0.0
    assert prefill_prompt_s(_spec(10)) == MULTISTEP_PREFILL_PROMPT_S
    assert prefill_prompt_s(_spec(1)) == 0.0
    explicit = {"base": 0.008, "per_seq": 2e-5, "per_prefill_token": 2e-5, "per_kv_token": 6e-8}
    assert prefill_prompt_s(_spec(10, iteration_s=explicit)) == 0.0


def test_one_step_results_do_not_depend_on_the_constant(monkeypatch: pytest.MonkeyPatch) -> None:
    before = _burst(_spec(1))
    monkeypatch.setattr(catalog, "MULTISTEP_PREFILL_PROMPT_S", 0.5)
    assert _burst(_spec(1)) == before


def _with_and_without(monkeypatch: pytest.MonkeyPatch, ins: np.ndarray, outs: np.ndarray, c: float = 0.01):
    """The same burst served with the constant 0 and with c, N = 10, a 2,048-token prefill budget."""
    spec = _spec(10, max_prefill_tokens=2048)
    served = []
    for value in (0.0, c):
        monkeypatch.setattr(catalog, "MULTISTEP_PREFILL_PROMPT_S", value)
        served.append(serve_benchmark(spec, ins, outs, math.inf, np.random.default_rng(0)))
    return served


def test_a_lone_prefill_step_pays_it_once_and_the_rounds_do_not() -> None:
    spec = _spec(10)
    it = iteration_model(spec)
    inp, out = 500, 21  # one prefill step, then two rounds of 10 decode steps
    r = serve_benchmark(spec, np.array([inp]), np.array([out]), math.inf, np.random.default_rng(0))
    prefill = it.base + it.per_seq + (it.per_prefill_token + it.per_kv_token) * inp
    assert r.ttft_mean_s == pytest.approx(prefill + MULTISTEP_PREFILL_PROMPT_S, rel=1e-12)
    decode = 2 * it.per_schedule + 20 * (it.base - it.per_schedule + it.per_seq)
    decode += it.per_kv_token * (20 * inp + 20 * 21 // 2)
    assert r.tpot_mean_s * (out - 1) == pytest.approx(decode, rel=1e-12)


def test_at_zero_the_term_vanishes_and_each_prefill_step_pays_it_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """Four prompts that each fill a prefill step (2,000 of 2,048 tokens), 2 tokens out: with the constant c their
    first tokens come c, 2c, 3c, 4c later than with 0 (mean TTFT + 2.5c), the decode round after them moves by 4c,
    and TPOT by (4c - the prefill's own shift) / 1 averaged: the round is not charged."""
    zero, ten = _with_and_without(monkeypatch, np.full(4, 2000), np.full(4, 2))
    assert ten.ttft_mean_s - zero.ttft_mean_s == pytest.approx(0.025, rel=1e-9)
    assert ten.duration_s - zero.duration_s == pytest.approx(0.04, rel=1e-9)
    # request k (1..4) waits 4c - kc more between its first token and the round's end: mean (3+2+1+0)c/4
    assert ten.tpot_mean_s - zero.tpot_mean_s == pytest.approx(0.015, rel=1e-9)


def test_a_prefill_step_of_k_prompts_pays_it_k_times(monkeypatch: pytest.MonkeyPatch) -> None:
    """Four prompts of 400 tokens arrive at once, 2 tokens out: the first finds the server idle and is prefilled in a
    step of its own, the other three share the next (1,200 of 2,048 tokens). With the constant c the first step is c
    dearer and the second 3c (a fixed cost per step would make it c): first tokens come c, 4c, 4c, 4c later (mean
    3.25c; per step it would be 1.75c), the round after them 4c, and the first request's one gap 3c (mean 0.75c)."""
    zero, ten = _with_and_without(monkeypatch, np.full(4, 400), np.full(4, 2))
    assert ten.ttft_mean_s - zero.ttft_mean_s == pytest.approx(0.0325, rel=1e-9)
    assert ten.duration_s - zero.duration_s == pytest.approx(0.04, rel=1e-9)
    assert ten.tpot_mean_s - zero.tpot_mean_s == pytest.approx(0.0075, rel=1e-9)
