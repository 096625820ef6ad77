"""Prefill/decode disaggregation (backends/gpu/disaggregation.py): reductions (an infinite link and ample
servers leave TTFT = queue + prefill; one prefill server of max_batch 1 is an M/D/1 queue), the KV transfer
time, the bill of both pools, conservation, validation and a two-pool plan."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from backends.gpu.catalog import model_of
from sim.app.cli import app
from sim.engine import yaml12
from sim.engine.loading import load_config_text
from sim.engine.replication import ReplicationResult, simulate
from tests.queueing_formulas import pk_wait

BASE, PER_PREFILL, INPUT = 0.01, 1e-4, 500

PD = f"""
name: pd
seed: 3
horizon_h: 0.1
workload:
  arrivals: {{kind: constant, mean_rps: 2}}
  classes:
    - name: chat
      share: 1.0
      input_tokens: {{dist: constant, value: {INPUT}}}
      output_tokens: {{dist: geometric, mean: 40}}
routing: {{policy: gpu_only}}
backends:
  gpu_pools:
    prefill:
      servers: 50
      price_per_server_hour_usd: 3.5
      max_batch: 256
      iteration_s: {{base: {BASE}, per_prefill_token: {PER_PREFILL}}}
      cold_start_s: {{dist: constant, value: 0}}
      max_prefill_tokens: null  # each prompt prefilled in its first iteration (the reductions' engine)
      disaggregation: {{decode_pool: decode, link_gb_s: null}}
    decode:
      servers: 50
      price_per_server_hour_usd: 2.0
      max_batch: 256
      iteration_s: {{base: {BASE}, per_prefill_token: {PER_PREFILL}}}
      cold_start_s: {{dist: constant, value: 0}}
      max_prefill_tokens: null
output: {{requests: true, report: false}}
"""


def run(text: str, *overrides: str) -> ReplicationResult:
    return simulate(load_config_text(text, overrides), 0)


def served(r: ReplicationResult) -> dict[str, np.ndarray]:
    q = r.requests
    assert q is not None
    ok = q["status"] == 1
    return {k: v[ok] for k, v in q.items()}


def test_infinite_link_and_ample_servers_leave_ttft_queue_plus_prefill() -> None:
    """Every request finds an idle prefill server (no queue): TTFT = its prefill iteration, base + per-token
    prefill, to rounding (1e-9 s); the decode pool then adds one base iteration per further token."""
    r = run(PD)
    q = served(r)
    assert q["arrival_at"].size > 500 and r.metrics["failed"] == 0
    ttft = q["first_token_at"] - q["arrival_at"]
    np.testing.assert_allclose(ttft, BASE + PER_PREFILL * INPUT, rtol=0, atol=1e-9)
    np.testing.assert_allclose(q["done_at"] - q["first_token_at"], BASE * (q["output_tokens"] - 1), rtol=0, atol=1e-9)
    mixed = run(PD, "backends.gpu_pools.prefill.disaggregation=null")  # one pool of both phases: the same TTFT
    np.testing.assert_allclose(served(mixed)["first_token_at"] - served(mixed)["arrival_at"], ttft, atol=1e-9)


def test_the_kv_transfer_takes_its_bytes_over_the_link_plus_latency() -> None:
    r = run(
        PD,
        "backends.gpu_pools.prefill.disaggregation.link_gb_s=2.5",
        "backends.gpu_pools.prefill.disaggregation.link_latency_s=0.003",
    )
    q = served(r)
    exp = load_config_text(PD)
    spec = exp.backends.gpu_pools["prefill"]
    transfer = INPUT * model_of(spec).kv_bytes_per_token(spec.kv_cache_dtype) / 2.5e9 + 0.003
    assert 0.02 < transfer < 1.0  # llama-3-8b: 128 KiB a token, 500 tokens over 2.5 GB/s
    long = q["output_tokens"] > 1
    decode = q["done_at"] - q["first_token_at"] - BASE * (q["output_tokens"] - 1)
    np.testing.assert_allclose(decode[long], transfer, rtol=0, atol=1e-9)
    np.testing.assert_allclose(decode[~long], 0.0, atol=1e-12)  # a one-token answer ends with its prefill


def test_one_prefill_server_of_batch_one_is_an_md1_queue() -> None:
    """TTFT = queue + prefill: with one prefill server admitting one request at a time and every prompt of
    500 tokens, the prefill pool is M/D/1 (S = base + 500 x per_prefill = 0.06 s, rho = 0.6); its mean TTFT
    is Pollaczek-Khinchine's wait + S. Tolerance 6%: three times the ~2% standard error of a mean over the
    ~1,500 busy periods of 30 minutes."""
    r = run(
        PD,
        "horizon_h=0.5",
        "workload.arrivals.mean_rps=10",
        "backends.gpu_pools.prefill.servers=1",
        "backends.gpu_pools.prefill.max_batch=1",
        "backends.gpu_pools.decode.servers=20",
        "workload.classes.0.output_tokens={dist: constant, value: 2}",
    )
    s = BASE + PER_PREFILL * INPUT
    expect = pk_wait(10.0, s, s * s) + s
    assert r.metrics["ttft_mean_s"] == pytest.approx(expect, rel=0.06)
    assert r.breakdown["gpu_utilization.pool.prefill"] == pytest.approx(0.6, rel=0.03)


def test_the_bill_adds_up_over_both_pools() -> None:
    """Cold starts 0, no failures: each pool is paid servers x price x horizon, the GPU cost is their sum."""
    r = run(PD, "backends.gpu_pools.prefill.servers=3", "backends.gpu_pools.decode.servers=5")
    b, m = r.breakdown, r.metrics
    assert b["cost_gpu_usd.pool.prefill"] == pytest.approx(3 * 3.5 * 0.1, rel=1e-12)
    assert b["cost_gpu_usd.pool.decode"] == pytest.approx(5 * 2.0 * 0.1, rel=1e-12)
    assert m["cost_gpu_usd"] == pytest.approx(b["cost_gpu_usd.pool.prefill"] + b["cost_gpu_usd.pool.decode"], rel=1e-12)
    assert m["cost_total_usd"] == pytest.approx(m["cost_gpu_usd"] + m["cost_api_usd"] + m["cost_fixed_usd"], rel=1e-12)
    monthly = b["cost_gpu_monthly_usd.pool.prefill"] + b["cost_gpu_monthly_usd.pool.decode"]
    assert monthly == pytest.approx((3 * 3.5 + 5 * 2.0) * 730, rel=1e-9)
    for pool in ("prefill", "decode"):
        assert 0 < b[f"gpu_utilization.pool.{pool}"] <= 1


@st.composite
def pd_configs(draw: st.DrawFn) -> dict[str, Any]:
    d = yaml.safe_load(PD)
    d["horizon_h"] = 0.05
    d["seed"] = draw(st.integers(0, 2**16))
    d["workload"]["arrivals"]["mean_rps"] = draw(st.sampled_from([1.0, 10.0, 40.0]))
    d["workload"]["classes"][0]["timeout_s"] = draw(st.sampled_from([None, 0.5]))
    d["workload"]["classes"][0]["input_tokens"] = {"dist": "lognormal", "median": 300, "sigma": 1.0}
    for name in ("prefill", "decode"):
        pool = d["backends"]["gpu_pools"][name]
        pool["servers"] = draw(st.integers(1, 3))
        pool["max_batch"] = draw(st.integers(1, 16))
        pool["kv_cache_tokens"] = draw(st.sampled_from([20_000, 200_000]))
        pool["max_prefill_tokens"] = draw(st.sampled_from([None, 256]))  # chunked prefill too
        if draw(st.booleans()):
            pool["failures"] = {"mtbf_h": 0.02, "mttr_h": 0.005}
    d["backends"]["gpu_pools"]["prefill"]["disaggregation"]["link_gb_s"] = draw(st.sampled_from([None, 1.0, 50.0]))
    return d


@settings(max_examples=15, deadline=None)
@given(d=pd_configs())
def test_every_request_ends_once_and_decodes_after_its_transfer(d: dict[str, Any]) -> None:
    r = simulate(load_config_text(yaml12.dump(d)), 0)
    m = r.metrics
    assert m["requests"] == m["served"] + m["failed"] + m["dropped"] + m["in_flight"]
    assert m["served"] == m["served_by_gpu"]
    q = served(r)
    assert (q["arrival_at"] <= q["start_at"]).all()
    assert (q["start_at"] < q["first_token_at"] + 1e-12).all()
    assert (q["first_token_at"] <= q["done_at"] + 1e-9).all()  # one-token answers: the same instant, rounded
    assert all(math.isfinite(v) for v in (m["cost_gpu_usd"], m["cost_total_usd"]))


BAD = """\
name: x
horizon_h: 0.1
routing: {policy: by_class, by_class: {default: "gpu:decode"}}
backends:
  gpu_pools:
    prefill:
      disaggregation: {decode_pool: decode}
    decode:
      model: llama-3-70b
      server_routing: {policy: round_robin}
    lone:
      disaggregation: {decode_pool: nowhere}
"""


def test_bad_disaggregation_is_reported_with_its_line() -> None:
    from tests.test_config_errors import assert_user_error, capsim

    assert_user_error(
        capsim("validate", "-", stdin=BAD),
        "backends.gpu_pools.prefill.disaggregation.decode_pool (line 7): 'decode' serves another model",
        "backends.gpu_pools.lone.disaggregation.decode_pool (line 12): names no other pool",
        "backends.gpu_pools.decode.server_routing.policy (line 10): a decode pool",
        "backends.gpu_pools.decode (line 8): a decode pool is reached through its prefill pool",
    )
    shorthand = "name: x\nbackends:\n  gpu_pool:\n    disaggregation: {decode_pool: gpu}\n"
    assert_user_error(capsim("validate", "-", stdin=shorthand), "backends.gpu_pool.disaggregation (line 4):")


def test_plan_sizes_both_pools(tmp_path: Path) -> None:
    """`capsim plan` varies both pools' server counts (one a list, one a searched range)."""
    cfg = tmp_path / "pd.yaml"
    text = PD.replace("horizon_h: 0.1", "horizon_h: 0.02").replace("mean_rps: 2", "mean_rps: 20")
    cfg.write_text(text.replace("max_batch: 256", "max_batch: 2"))
    args = [
        "plan",
        str(cfg),
        "--reps",
        "2",
        "--max-reps",
        "2",
        "--workers",
        "1",
        "--json",
        "--out",
        str(tmp_path / "p"),
    ]
    args += ["--target", "ttft_p95_s<=0.5", "--target", "e2e_p95_s<=3", "--confidence", "0.5"]
    args += ["--vary", "backends.gpu_pools.prefill.servers=1,2", "--vary", "backends.gpu_pools.decode.servers=1..8"]
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 0, r.output
    best = json.loads(r.stdout)["best"]["values"]
    assert set(best) == {"backends.gpu_pools.prefill.servers", "backends.gpu_pools.decode.servers"}
    # one prefill server prefills 2 prompts in 0.01 + 2 x 500 x 1e-4 = 0.11 s: 18 req/s < 20, overloaded
    assert best["backends.gpu_pools.prefill.servers"] == 2
    assert best["backends.gpu_pools.decode.servers"] > 1


def _one_failing(failing: str) -> str:
    """One server per pool; only `failing`'s fails (often: its uptime is far from 1 within 0.1 h)."""
    d = yaml.safe_load(PD)
    for name, pool in d["backends"]["gpu_pools"].items():
        pool["servers"] = 1
        if name == failing:
            pool["failures"] = {"mtbf_h": 0.01, "mttr_h": 0.005}
    return yaml12.dump(d)


@pytest.mark.parametrize("failing", ["prefill", "decode"])
def test_a_disaggregated_path_is_up_only_while_both_pools_are(failing: str) -> None:
    """The other pool never fails (healthy all along), so the path's uptime is exactly the failing pool's: a
    request can be served only while a prefill and a decode server are both up (it was counted up while
    either was, giving 1.0)."""
    r = run(_one_failing(failing))
    own = r.breakdown[f"uptime.pool.{failing}"]
    assert r.breakdown[f"uptime.pool.{'decode' if failing == 'prefill' else 'prefill'}"] == 1.0
    assert own is not None and own < 0.95
    assert r.metrics["uptime"] == pytest.approx(own, rel=1e-12)


def test_a_path_of_two_failing_pools_is_up_at_most_while_the_less_healthy_is() -> None:
    """Both pools fail, each on its own stream: the path is up at most while the less healthy pool is, and
    less than the healthier one (the union of the two, as it was counted, is at least the healthier one)."""
    d = yaml.safe_load(_one_failing("prefill"))
    d["backends"]["gpu_pools"]["decode"]["failures"] = {"mtbf_h": 0.01, "mttr_h": 0.005}
    r = run(yaml12.dump(d))
    pre, dec = r.breakdown["uptime.pool.prefill"], r.breakdown["uptime.pool.decode"]
    assert pre is not None and dec is not None and pre < 1.0 and dec < 1.0
    assert r.metrics["uptime"] <= min(pre, dec) + 1e-12
    assert r.metrics["uptime"] < max(pre, dec)
