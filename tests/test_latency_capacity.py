"""The report's latency-bound capacity: the largest batch whose iteration time keeps the per-token latency
targets, from the pool's iteration model (backends/models/latency_capacity.py, docs/metrics.md)."""

from __future__ import annotations

import copy
import math
from pathlib import Path
from typing import Any

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from backends.gpu.catalog import derived_iteration, derived_moe
from backends.models.latency_capacity import LatencyBound, TokenMix, latency_bound_batch, per_token_limit, token_mix
from backends.models.latency_capacity import latency_bound as latency_bound_of
from sim.app.cli import app
from sim.config.backends import GpuPoolSpec
from sim.config.workload import RequestClass
from sim.report.charts_day import capacity_lines
from sim.report.data import load
from tests.planning_configs import load as load_config
from tests.planning_configs import mgc_config, write

CONST_CLASS = {
    "name": "c",
    "share": 1.0,
    "input_tokens": {"dist": "constant", "value": 100},
    "output_tokens": {"dist": "constant", "value": 50},
}


def _config(target: str, max_batch: int = 64, classes: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    cfg = mgc_config(servers=3)
    cfg["workload"]["classes"] = classes or [CONST_CLASS]
    cfg["backends"]["gpu_pool"].update(
        max_batch=max_batch,
        iteration_s={"base": 0.01, "per_seq": 0.001, "per_prefill_token": 1e-4, "per_kv_token": 1e-6},
    )
    cfg["plan"] = {"targets": [target, "availability>=0.99"]}
    return cfg


def latency_bound(cfg: dict[str, Any]) -> LatencyBound:
    return latency_bound_of(load_config(cfg))


def _classes(*dicts: dict[str, Any]) -> list[RequestClass]:
    return [RequestClass.model_validate(d) for d in dicts]


def test_hand_computation_linear_model() -> None:
    """Constant 100-token prompts, 50-token answers: per decode iteration a sequence prefills 100/50 = 2 prompt
    tokens and holds on average 100 + (50 - 1)/2 = 124.5 KV tokens, so t(n) = 0.01 + n x 0.0013245."""
    mix = token_mix(_classes(CONST_CLASS))
    assert (mix.prefill_per_iteration, mix.kv_per_seq) == (2.0, 124.5)
    per_seq = 0.001 + 1e-4 * 2 + 1e-6 * 124.5
    expected = math.floor((0.03 - 0.01) / per_seq)  # 15
    assert expected == 15
    b = latency_bound(_config("tpot_mean_s<=0.03"))
    assert b.binds and b.batch == expected and b.limit_s == 0.03
    assert b.iteration_at_batch_s <= 0.03 < 0.01 + (expected + 1) * per_seq
    # an e2e target spreads over the mean answer: 1.5 s / 50 tokens = the same 0.03 s per token
    e = latency_bound(_config("e2e_mean_s<=1.5"))
    assert e.batch == expected and math.isclose(e.limit_s or 0.0, 0.03)


def test_loose_slo_gives_max_batch_and_tight_one_zero() -> None:
    loose = latency_bound(_config("tpot_mean_s<=1.0", max_batch=64))
    assert loose.batch == 64 and not loose.binds
    none = latency_bound(_config("peak_ttft_p95_s<=2.0"))  # no per-token target: nothing bounds the batch
    assert none.batch == 64 and none.limit_s is None
    tight = latency_bound(_config("tpot_mean_s<=0.005"))  # below base: not even one sequence
    assert tight.batch == 0


def test_geometric_answers_hold_mean_minus_one_extra_kv() -> None:
    """Geometric K with mean m: E[K^2]/E[K] = 2m - 1, so kv = E[I] + m - 1."""
    cls = {**CONST_CLASS, "output_tokens": {"dist": "geometric", "mean": 40}}
    mix = token_mix(_classes(cls))
    assert math.isclose(mix.kv_per_seq, 100 + 40 - 1, rel_tol=1e-9)
    # a two-class mix weighs by share
    other = {**CONST_CLASS, "name": "d", "share": 0.25, "input_tokens": {"dist": "constant", "value": 300}}
    mixed = token_mix(_classes({**CONST_CLASS, "share": 0.75}, other))
    assert math.isclose(mixed.input_mean, 150.0) and mixed.output_mean == 50.0


def test_tightest_target_wins() -> None:
    mix = TokenMix(input_mean=100.0, output_mean=50.0, kv_per_seq=124.5)
    got = per_token_limit(["e2e_p95_s<=2.0", "tpot_mean_s<=0.05", "availability>=0.9"], mix)
    assert got == (0.04, "e2e_p95_s<=2.0")
    assert per_token_limit(["tpot_mean_s>=0.05", "ttft_p95_s<=1"], mix) is None


@settings(max_examples=25, deadline=None)
@given(
    model=st.sampled_from(["llama-3-8b", "llama-3-70b", "mixtral-8x7b"]),
    tp=st.sampled_from([1, 2, 4]),
    limit_ms=st.floats(5.0, 80.0),
)
def test_derived_model_bound_is_the_largest_batch_meeting_the_budget(model: str, tp: int, limit_ms: float) -> None:
    """On the derived (GPU x model) iteration model, the bisection equals a brute-force scan of t(n) built here
    from derived_iteration's coefficients (and the MoE experts' streaming)."""
    spec = GpuPoolSpec(gpu="h100", model=model, tensor_parallel=tp, max_batch=256)
    mix = TokenMix(input_mean=600.0, output_mean=220.0, kv_per_seq=900.0)
    it, moe = derived_iteration(spec), derived_moe(spec)
    n = np.arange(0, 257)
    t = it.base + n * (it.per_seq + it.per_prefill_token * 600 / 220 + it.per_kv_token * 900.0)
    if moe is not None:
        t = t + np.array([moe.seconds(float(k)) for k in n])
    ok = np.nonzero(t <= limit_ms / 1e3)[0]
    expected = int(ok.max()) if len(ok) and ok.max() > 0 else 0
    assert latency_bound_batch(spec, limit_ms / 1e3, mix) == expected


def test_chart_line_is_healthy_servers_times_the_bound(tmp_path: Path) -> None:
    cfg = _config("tpot_mean_s<=0.03")
    cfg.update(horizon_h=0.05, replications=2, output={"timeseries": True, "report": False})
    cfg["workload"]["arrivals"]["mean_rps"] = 2.0
    out = tmp_path / "tight"
    r = CliRunner().invoke(app, ["run", write(tmp_path, cfg), "--out", str(out), "--quiet", "--workers", "1"])
    assert r.exit_code == 0, r.output
    lines = capacity_lines(load(out))
    assert len(lines) == 2
    full, bound = lines
    assert "x 64" in full.label and "latency-bound = healthy servers x 15" in bound.label
    np.testing.assert_array_equal(bound.per_minute, full.per_minute / 64 * 15)
    assert np.nanmax(full.per_minute) == 3 * 64  # 3 healthy servers
    # loose: one line, servers x max_batch, saying the target is met
    loose = copy.deepcopy(cfg)
    loose["plan"]["targets"] = ["tpot_mean_s<=1.0"]
    out2 = tmp_path / "loose"
    r = CliRunner().invoke(app, ["run", write(tmp_path, loose, "l.yaml"), "--out", str(out2), "--quiet"])
    assert r.exit_code == 0, r.output
    (only,) = capacity_lines(load(out2))
    assert "meets tpot_mean_s<=1.0" in only.label and np.nanmax(only.per_minute) == 3 * 64
