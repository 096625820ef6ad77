"""The bill, through the simulator's own cost path: cached input, batch API, GPU server-hours, fixed overhead,
and the attribution of every dollar to a class, a path, a provider and a token kind."""

from __future__ import annotations

import math

import pytest

from sim.engine.loading import load_config_text
from sim.engine.replication import simulate

API_ONLY = """
name: bill
seed: 11
horizon_h: 1
workload:
  arrivals: {kind: constant, mean_rps: 10}
  classes:
    - {name: interactive, share: 0.6, input_tokens: {dist: constant, value: 800},
       output_tokens: {dist: constant, value: 200}}
    - {name: batch, share: 0.4, input_tokens: {dist: constant, value: 800},
       output_tokens: {dist: constant, value: 200}, slo_ttft_s: 86400}
routing: {policy: api_only}
backends:
  api: {price_input_per_mtok_usd: 2.50, price_cached_input_per_mtok_usd: 0.25, price_output_per_mtok_usd: 10.0,
        batch_discount: 0.5}
"""


def run(text: str, *overrides: str) -> tuple[dict, dict]:
    r = simulate(load_config_text(text, overrides), 0)
    return r.metrics, r.breakdown


def input_spend(b: dict) -> float:
    return b["cost_api_usd.tokens.input"] + b["cost_api_usd.tokens.cached_input"]


def test_cached_input_40_percent_at_10_percent_price_cuts_input_spend_36_percent() -> None:
    m0, b0 = run(API_ONLY)
    m1, b1 = run(API_ONLY, "cache.prompt.cached_input_fraction=0.4")
    assert m0["requests"] == m1["requests"] > 30_000  # common random numbers: the same requests
    assert 1.0 - input_spend(b1) / input_spend(b0) == pytest.approx(0.36, rel=1e-12)
    # output spend untouched; with output free the whole bill drops 36%
    assert b1["cost_api_usd.tokens.output"] == pytest.approx(b0["cost_api_usd.tokens.output"], rel=1e-12)
    free_out = "backends.api.price_output_per_mtok_usd=0"
    m2, _ = run(API_ONLY, free_out)
    m3, _ = run(API_ONLY, free_out, "cache.prompt.cached_input_fraction=0.4")
    assert 1.0 - m3["cost_api_usd"] / m2["cost_api_usd"] == pytest.approx(0.36, rel=1e-12)


def test_batch_class_through_batch_api_at_half_price_cuts_spend_by_half_its_share() -> None:
    m0, b0 = run(API_ONLY)
    by_class = ("routing.policy=by_class", "routing.by_class.interactive=api", "routing.by_class.batch=api_batch")
    m1, b1 = run(API_ONLY, *by_class)
    share = b0["cost_api_usd.class.batch"] / m0["cost_api_usd"]
    cut = 1.0 - m1["cost_api_usd"] / m0["cost_api_usd"]
    assert cut == pytest.approx(0.5 * share, rel=1e-12)  # exact: the batch class pays half
    # a 40% class by requests (identical sizes): its spend share is 0.4 within sampling error
    n = m0["requests"]
    se = math.sqrt(0.4 * 0.6 / n)
    assert abs(share - 0.4) < 4 * se
    assert abs(cut - 0.2) < 4 * 0.5 * se
    assert m1["served_by_api_batch"] == b1["served.class.batch"]
    assert b1["cost_total_usd.path.api_batch"] == pytest.approx(0.5 * b0["cost_api_usd.class.batch"], rel=1e-12)


GPU_MONTH = """
name: h100-month
seed: 1
horizon_h: 730
workload:
  arrivals: {kind: constant, mean_rps: 0.005}
  classes: [{name: c, share: 1.0, input_tokens: {dist: constant, value: 100},
             output_tokens: {dist: constant, value: 10}}]
routing: {policy: gpu_only}
backends:
  gpu_pool: {servers: 1, price_per_server_hour_usd: 2.69, gpu: h100, model: llama-3-8b}
costs: {fixed_monthly_usd: 0, hours_per_month: 730}
"""


def test_one_h100_for_a_730_hour_month() -> None:
    m, b = run(GPU_MONTH)
    assert m["cost_gpu_usd"] == pytest.approx(1963.70, abs=1e-6)
    assert m["monthly_cost_usd"] == pytest.approx(1963.70, abs=1e-6)
    m, b = run(GPU_MONTH, "costs.fixed_monthly_usd=1000")
    assert m["cost_fixed_usd"] == pytest.approx(1000.0, abs=1e-9)
    assert m["monthly_cost_usd"] == pytest.approx(2963.70, abs=1e-6)
    tokens = m["tokens_in"] + m["tokens_out"]
    assert m["cost_per_1k_tokens_usd"] == pytest.approx(2963.70 / tokens * 1000, rel=1e-12)
    # a 1-hour horizon scales to the same month
    m, _ = run(GPU_MONTH, "horizon_h=1", "workload.arrivals.mean_rps=1", "costs.fixed_monthly_usd=1000")
    assert m["cost_total_usd"] == pytest.approx(2.69 + 1000 / 730, rel=1e-12)
    assert m["monthly_cost_usd"] == pytest.approx(2963.70, rel=1e-12)


HYBRID = """
name: attribution
seed: 5
horizon_h: 2
warmup_h: 0.25
workload:
  arrivals: {kind: diurnal, mean_rps: 3}
  classes:
    - {name: chat, share: 0.7}
    - {name: docs, share: 0.2, input_tokens: {dist: lognormal, median: 3000, sigma: 0.5}}
    - {name: nightly, share: 0.1, slo_ttft_s: 86400}
cache:
  prompt: {cached_input_fraction: 0.3}
routing:
  policy: by_class
  by_class: {chat: gpu, docs: "api:cheap", nightly: api_batch}
backends:
  apis:
    cheap: {price_input_per_mtok_usd: 0.15, price_cached_input_per_mtok_usd: 0.075, price_output_per_mtok_usd: 0.6}
  gpu_pool: {servers: 1}
costs: {fixed_monthly_usd: 5000}
"""


def test_every_dollar_is_attributed() -> None:
    m, b = run(HYBRID)
    api = m["cost_api_usd"]
    assert api > 0 and m["cost_gpu_usd"] > 0 and m["cost_fixed_usd"] > 0
    tokens = sum(b[f"cost_api_usd.tokens.{k}"] for k in ("input", "cached_input", "output"))
    assert tokens == pytest.approx(api, rel=1e-9)
    providers = b["cost_api_usd.provider.api"] + b["cost_api_usd.provider.cheap"]
    assert providers == pytest.approx(api, rel=1e-12)
    assert b["cost_api_usd.provider.cheap"] == pytest.approx(b["cost_api_usd.class.docs"], rel=1e-12)
    assert b["cost_total_usd.path.api_batch"] == pytest.approx(b["cost_api_usd.class.nightly"], rel=1e-12)
    paths = sum(b[f"cost_total_usd.path.{p}"] for p in ("api", "api_batch", "gpu", "fixed"))
    assert paths == pytest.approx(m["cost_total_usd"], rel=1e-12)
    classes = sum(b[f"cost_total_usd.class.{c}"] for c in ("chat", "docs", "nightly"))
    assert classes == pytest.approx(m["cost_total_usd"], rel=1e-12)
    assert b["cost_gpu_usd.class.chat"] == pytest.approx(m["cost_gpu_usd"], rel=1e-12)  # only chat uses the GPU
    for c in ("chat", "docs", "nightly"):
        per_1k = b[f"cost_total_usd.class.{c}"] / b[f"tokens.class.{c}"] * 1000
        assert b[f"cost_per_1k_tokens_usd.class.{c}"] == pytest.approx(per_1k, rel=1e-12)
