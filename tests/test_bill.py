"""The monthly bill (sim/engine/bill.py): a calendar month of the workload's own calendar whatever the horizon,
server prices that follow the hardware, break-even volumes under the calendar, cost scopes, TCO parts."""

from __future__ import annotations

import math

import pytest

from backends.gpu.catalog import GPUS, MODELS, derived_kv_tokens, server_price
from sim.config.backends import GpuPoolSpec
from sim.core.stats import t_interval
from sim.engine.bill import month_requests, month_server_hours, span_requests
from sim.engine.loading import load_config_text
from sim.engine.replication import simulate
from sim.studies.breakeven import class_token_means, rate_for_volume

# API-only, a weekday/weekend calendar, Wednesday 00:00 start; prices per 1M tokens: input 3, output 15
API_WEEK = """
name: calendar
seed: 4
horizon_h: 24
start_weekday: wed
workload:
  arrivals: {kind: diurnal, mean_rps: 0.05, peak_hour: 9, peak_to_mean: 3, weekend_factor: 0.4}
  classes:
    - {name: chat, share: 1.0, input_tokens: {dist: lognormal, median: 600, sigma: 0.9},
       output_tokens: {dist: geometric, mean: 200}}
routing: {policy: api_only}
backends:
  api: {price_input_per_mtok_usd: 3.0, price_cached_input_per_mtok_usd: 3.0, price_output_per_mtok_usd: 15.0}
output: {timeseries: false}
"""
HPM = 730.0


def analytic_api_month(mean_rps: float, weekend_factor: float, usd_per_request: float) -> float:
    """730/168 weeks x (5 weekdays + 2 weekend days x factor) x 86,400 s x mean_rps requests x E[cost]."""
    return HPM / 168.0 * (5.0 + 2.0 * weekend_factor) * 86400.0 * mean_rps * usd_per_request


def months(text: str, reps: int, *overrides: str) -> list[float]:
    exp = load_config_text(text, list(overrides))
    return [float(simulate(exp, r).metrics["monthly_cost_usd"]) for r in range(reps)]


def test_expected_month_volume_is_exact() -> None:
    exp = load_config_text(API_WEEK)
    assert month_requests(exp) == pytest.approx(HPM / 168.0 * 5.8 * 86400.0 * 0.05, rel=1e-14)
    # a Wednesday holds one weekday's volume (the von Mises day integrates to one mean day)
    assert span_requests(exp) == pytest.approx(86400.0 * 0.05, rel=1e-9)
    sat = load_config_text(API_WEEK, ["start_weekday=sat"])
    assert span_requests(sat) == pytest.approx(0.4 * 86400.0 * 0.05, rel=1e-9)
    week = load_config_text(API_WEEK, ["horizon_h=168"])
    assert span_requests(week) == pytest.approx(5.8 * 86400.0 * 0.05, rel=1e-9)


def test_constant_sizes_give_the_analytic_month_from_any_horizon_exactly() -> None:
    """With constant sizes every request costs the same, so the month is exact arithmetic from any span."""
    sizes = [
        "workload.classes.0.input_tokens={dist: constant, value: 600}",
        "workload.classes.0.output_tokens={dist: constant, value: 200}",
    ]
    per_request = (600 * 3.0 + 200 * 15.0) / 1e6
    want = analytic_api_month(0.05, 0.4, per_request)
    for span in (["start_weekday=wed"], ["start_weekday=sat"], ["horizon_h=168"], ["horizon_h=3", "warmup_h=1"]):
        for m in months(API_WEEK, 2, *sizes, *span):
            assert m == pytest.approx(want, rel=1e-12)


def test_weekday_weekend_and_week_horizons_agree_with_the_analytic_month() -> None:
    """Random sizes: each horizon's 8-replication mean lies within 4 standard errors of the analytic month,
    and the three agree with each other. Before the calendar month, the Wednesday gave +20.7% (30.42 mean
    days instead of 25.2 weekday-equivalents) and the Saturday -51.7%: hundreds of standard errors."""
    e_in = 600 * math.exp(0.9**2 / 2)
    per_request = (e_in * 3.0 + 200 * 15.0) / 1e6
    want = analytic_api_month(0.05, 0.4, per_request)
    means = []
    for span in (["start_weekday=wed"], ["start_weekday=sat"], ["horizon_h=168", "start_weekday=mon"]):
        values = months(API_WEEK, 8, *span)
        ci = t_interval(values)
        assert ci is not None
        mean, low, high = ci
        se = (high - low) / 2 / 2.365  # t(7) 97.5% quantile
        assert abs(mean - want) <= 4 * se, (span, mean, want, se)
        means.append((mean, se))
    for (a, sa), (b, sb) in zip(means, means[1:], strict=False):
        assert abs(a - b) <= 4 * math.hypot(sa, sb)


def test_default_server_price_is_the_catalog_gpu_price_times_tensor_parallel() -> None:
    for name, g in GPUS.items():
        for tp in (1, 2, 4, 8):
            spec = GpuPoolSpec(gpu=name, tensor_parallel=tp)
            p = server_price(spec)
            assert p.usd_per_hour == pytest.approx(g.price_per_gpu_hour_usd * tp, rel=1e-15)
            assert g.price_as_of in p.source and name in p.source
        assert g.price_source and g.price_as_of
    given = server_price(GpuPoolSpec(gpu="h200", tensor_parallel=4, price_per_server_hour_usd=9.0))
    assert given.usd_per_hour == 9.0 and "price_per_server_hour_usd" in given.source


GPU_MONTH = """
name: gpu-month
seed: 1
horizon_h: 1
workload:
  arrivals: {kind: constant, mean_rps: 0.01}
  classes: [{name: c, share: 1.0, input_tokens: {dist: constant, value: 100},
             output_tokens: {dist: constant, value: 10}}]
routing: {policy: gpu_only}
backends:
  gpu_pool: {servers: 1, gpu: h100, model: llama-3-8b}
output: {timeseries: false}
"""


def gpu_metrics(*overrides: str) -> dict:
    return simulate(load_config_text(GPU_MONTH, list(overrides)), 0).metrics


@pytest.mark.parametrize(
    ("gpu", "tp", "servers"), [("h100", 1, 1), ("h100", 1, 3), ("h100", 4, 1), ("h200", 1, 1), ("l40s", 1, 1)]
)
def test_a_month_of_servers_costs_their_catalog_price(gpu: str, tp: int, servers: int) -> None:
    assert derived_kv_tokens(GpuPoolSpec(gpu=gpu, tensor_parallel=tp, model="llama-3-8b")) > 0
    m = gpu_metrics(f"backends.gpu_pool.gpu={gpu}", f"backends.gpu_pool.tensor_parallel={tp}",
                    f"backends.gpu_pool.servers={servers}")  # fmt: skip
    want = servers * GPUS[gpu].price_per_gpu_hour_usd * tp * HPM
    assert m["cost_tco_gpu_monthly_usd"] == pytest.approx(want, rel=1e-12)
    assert m["monthly_cost_usd"] == pytest.approx(want, rel=1e-12)


def test_known_facts_one_and_three_h100s() -> None:
    assert gpu_metrics()["monthly_cost_usd"] == pytest.approx(1963.70, abs=1e-9)  # 2.69 x 730
    assert gpu_metrics("backends.gpu_pool.servers=3")["monthly_cost_usd"] == pytest.approx(5891.10, abs=1e-9)
    m = gpu_metrics("backends.gpu_pool.tensor_parallel=4")
    assert m["monthly_cost_usd"] == pytest.approx(4 * 2.69 * 730, abs=1e-9)  # 7,854.80, not 1,963.70


def test_autoscaled_server_hours_are_billed_per_weekday() -> None:
    """Mon..Sun at 2 servers on weekdays, 1 at the weekend: a month is 730/7 x (5 x 2 + 2 x 1) server-hours;
    a Tuesday alone stands for every weekday and, with no weekend simulated, for the weekend too."""
    exp = load_config_text(API_WEEK, ["start_weekday=mon", "horizon_h=168"])
    day = 86400.0
    intervals = [(0.0, 7 * day), *[(d * day, (d + 1) * day) for d in range(5)]]
    assert month_server_hours(exp, intervals, 0.0, 7 * day) == pytest.approx(730 / 7 * 12, rel=1e-12)
    tue = load_config_text(API_WEEK, ["start_weekday=tue"])
    assert month_server_hours(tue, [(0.0, day), (0.0, day)], 0.0, day) == pytest.approx(730 * 2, rel=1e-12)
    # a weekend day simulated beside a weekday: each kind bills its own provisioning
    fri = load_config_text(API_WEEK, ["start_weekday=fri", "horizon_h=48"])
    two = [(0.0, 2 * day), (0.0, day)]  # 2 servers on Friday, 1 on Saturday
    assert month_server_hours(fri, two, 0.0, 2 * day) == pytest.approx(730 / 7 * (5 * 2 + 2 * 1), rel=1e-12)


def test_breakeven_volume_is_the_calendar_months_tokens() -> None:
    """Over a week horizon the API-only month at 500M tokens is 500M x $15/1M = $7,500 (exactly, with constant
    sizes; before, the rate ignored the weekend and the month came out 17.3% low)."""
    text = API_WEEK.replace("price_input_per_mtok_usd: 3.0", "price_input_per_mtok_usd: 15.0")
    text = text.replace("price_cached_input_per_mtok_usd: 3.0", "price_cached_input_per_mtok_usd: 15.0")
    sizes = [
        "workload.classes.0.input_tokens={dist: constant, value: 10000}",
        "workload.classes.0.output_tokens={dist: constant, value: 5000}",
        "horizon_h=168",
        "start_weekday=mon",
    ]
    exp = load_config_text(text, sizes)
    rps = rate_for_volume(exp, 5e8)
    e_in, e_out = class_token_means(exp)
    assert month_requests(load_config_text(text, [*sizes, f"workload.arrivals.mean_rps={rps!r}"])) * (
        e_in + e_out
    ) == pytest.approx(5e8, rel=1e-12)
    for m in months(text, 2, *sizes, f"workload.arrivals.mean_rps={rps!r}"):
        assert m == pytest.approx(7500.0, rel=1e-12)


def test_fixed_costs_follow_their_scope() -> None:
    api_only = gpu_metrics("routing.policy=api_only", "costs.fixed_monthly_usd=1000")
    assert api_only["cost_fixed_usd"] == 0.0 and api_only["cost_tco_fixed_monthly_usd"] == 0.0
    always = gpu_metrics("routing.policy=api_only", "costs.fixed_monthly_usd=1000", "costs.fixed_scope=always")
    assert always["cost_tco_fixed_monthly_usd"] == 1000.0
    assert always["cost_fixed_usd"] == pytest.approx(1000.0 / HPM, rel=1e-12)
    gpu = gpu_metrics("costs.fixed_monthly_usd=1000")
    assert gpu["monthly_cost_usd"] == pytest.approx(1963.70 + 1000.0, abs=1e-9)


def test_tco_components_add_up_in_scope() -> None:
    tco = [
        "costs.tco.operations={hours_per_month: 20, usd_per_hour: 150}",
        "costs.tco.engineers={fte: 0.5, salary_usd_per_year: 180000}",
        "costs.tco.monitoring={monthly_usd: 300, scope: always}",
        "costs.tco.storage={usd_per_gb_month: 0.1}",
        "costs.tco.egress={usd_per_gb: 0.09, bytes_per_token: 4}",
        "costs.tco.redundancy={spare_servers: 1}",
    ]
    m = gpu_metrics(*tco)
    weights_gb = MODELS["llama-3-8b"].weight_bytes() / 1e9
    parts = {
        "gpu": 1963.70,
        "operations": 3000.0,
        "engineers": 7500.0,
        "monitoring": 300.0,
        "storage": 0.1 * weights_gb,
        "redundancy": 1963.70,
    }
    for k, v in parts.items():
        assert m[f"cost_tco_{k}_monthly_usd"] == pytest.approx(v, rel=1e-12), k
    assert m["cost_tco_egress_monthly_usd"] > 0
    total = sum(m[f"cost_tco_{k}_monthly_usd"] for k in (*parts, "api", "fixed", "egress"))
    assert m["monthly_cost_usd"] == pytest.approx(total, rel=1e-12)
    assert m["horizon_cost_usd"] == pytest.approx(m["cost_total_usd"], rel=1e-15)
    # an API-only run keeps only the always-on part
    api = gpu_metrics("routing.policy=api_only", *tco)
    assert api["cost_tco_monitoring_monthly_usd"] == 300.0
    assert api["cost_tco_operations_monthly_usd"] == api["cost_tco_redundancy_monthly_usd"] == 0.0
