"""`capsim breakeven`: volumes, rates, API cost against the formula, crossing, JSON contract, chart."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from sim.app.cli import app
from sim.engine.variants import derive
from sim.studies.breakeven import (
    crossing,
    monthly_tokens,
    naive_servers,
    parse_volumes,
    rate_for_volume,
    server_capacity_rps,
)
from tests.planning_configs import load, mgc_config, write

CONTRACT = {
    "volumes",
    "api_monthly_usd",
    "self_hosted_monthly_usd",
    "hybrid_monthly_usd",
    "self_hosted_servers",
    "breakeven_tokens_per_month",
}


def test_parse_volumes() -> None:
    assert parse_volumes("2B,100M, 500M") == [1e8, 5e8, 2e9]
    assert parse_volumes("1.5e9,10k,3T") == [1e4, 1.5e9, 3e12]
    for bad in ("", "abc", "-5M", "0", "10X"):
        with pytest.raises(ValueError):
            parse_volumes(bad)


def test_rate_and_volume_are_inverse() -> None:
    exp = load(mgc_config())
    # 1 input token + geometric mean 20 output tokens per request
    assert monthly_tokens(exp) == pytest.approx(4.0 * 21 * 3600 * 730)
    rps = rate_for_volume(exp, 2e9)
    assert monthly_tokens(derive(exp, [("workload.arrivals.mean_rps", rps)])) == pytest.approx(2e9)


def test_naive_sizing_from_full_batch_throughput() -> None:
    exp = load(mgc_config(rps=4.0))
    # batch 1, 0.04 s per iteration, 20 tokens per request: 1.25 requests/s per server
    assert server_capacity_rps(exp) == pytest.approx(1 / 0.8)
    assert naive_servers(exp) == 4  # 4 / 1.25 = 3.2 -> 4 (Erlang C needs 5 for a 0.25 s mean wait)


def test_crossing_interpolates() -> None:
    v = [1.0, 2.0, 4.0]
    assert crossing(v, [3.0, 1.0, -1.0]) == pytest.approx(3.0)
    assert crossing(v, [-1.0, -2.0, -3.0]) is None
    assert crossing(v, [1.0, None, -1.0]) is None
    assert crossing(v, [2.0, 0.0, -1.0]) == pytest.approx(2.0)


def test_cli_breakeven(tmp_path: Path) -> None:
    # 1,000-token prompts (free to prefill here) + 20 output tokens: one server carries ~1,276 tokens/s
    cfg = mgc_config(horizon_h=1.0, costs={"fixed_monthly_usd": 1000.0})
    cfg["workload"]["classes"][0]["input_tokens"] = {"dist": "constant", "value": 1000}
    path = write(tmp_path, cfg)
    args = ["breakeven", path, "--volumes", "100M,1B,3B", "--reps", "3", "--max-reps", "6", "--workers", "2"]
    r = CliRunner().invoke(app, [*args, "--json", "--out", str(tmp_path / "be")])
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert set(doc) >= CONTRACT
    assert doc["volumes"] == [1e8, 1e9, 3e9]
    # API-only at $15 per million tokens, input and output alike: cost = volume x 15e-6, up to Poisson noise
    # (3 one-hour replications: ~400, ~4,000, ~12,000 requests; 4 standard errors allowed)
    for v, c, n in zip(doc["volumes"], doc["api_monthly_usd"], (400, 4000, 12000), strict=True):
        assert c == pytest.approx(v * 15e-6, rel=4 / (3 * n) ** 0.5)
    servers = doc["self_hosted_servers"]
    assert servers == sorted(servers) and servers[0] >= 1
    assert all(n >= k for n, k in zip(servers, doc["naive_servers"], strict=True))
    # self-hosted = servers x $2.69 x 730 + fixed overhead
    for n, c in zip(servers, doc["self_hosted_monthly_usd"], strict=True):
        assert c == pytest.approx(n * 2.69 * 730 + 1000.0)
    # at 100M tokens the API is cheaper ($1,500 vs >= $2,964), at 1B dearer: the crossing lies in between
    be = doc["breakeven_tokens_per_month"]
    assert be is not None and 1e8 < be < 1e9
    lo, hi = doc["breakeven_interval"]
    assert lo <= be <= hi
    # hybrid (overflow) is never dearer than the cheaper pure option by more than sampling noise
    for h, a, s in zip(doc["hybrid_monthly_usd"], doc["api_monthly_usd"], doc["self_hosted_monthly_usd"], strict=True):
        assert h <= min(a, s) * 1.05
    assert (tmp_path / "be" / "breakeven.json").exists()
    png = (tmp_path / "be" / "breakeven.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("volumes", ["", "lots", "-1M"])
def test_cli_bad_volumes_exit_2(tmp_path: Path, volumes: str) -> None:
    r = CliRunner().invoke(app, ["breakeven", write(tmp_path, mgc_config()), "--volumes", volumes])
    assert r.exit_code == 2
    assert "Traceback" not in r.output


def test_cli_trace_arrivals_cannot_be_scaled(tmp_path: Path) -> None:
    trace = tmp_path / "t.csv"
    trace.write_text("TIMESTAMP,ContextTokens,GeneratedTokens\n0.0,10,5\n1.0,10,5\n")
    cfg = mgc_config()
    cfg["workload"]["arrivals"] = {"kind": "trace", "file": str(trace)}
    r = CliRunner().invoke(app, ["breakeven", write(tmp_path, cfg), "--volumes", "1M"])
    assert r.exit_code == 2


def test_breakeven_chooses_the_gpu_type(tmp_path: Path) -> None:
    """With --vary over GPU types, the self-hosted side is the same search per type and keeps the cheapest:
    the timing is the config's own iteration model here, so the same servers on an A100 ($1.30 per GPU-hour
    in the catalog) cost less than on an H100 ($2.69)."""
    cfg = mgc_config(horizon_h=0.1)
    cfg["workload"]["classes"][0]["input_tokens"] = {"dist": "constant", "value": 1000}
    path = write(tmp_path, cfg)
    args = ["breakeven", path, "--volumes", "1B", "--reps", "2", "--max-reps", "2", "--max-servers", "12"]
    r = CliRunner().invoke(app, [*args, "--workers", "1", "--json", "--vary", "backends.gpu_pool.gpu=h100,a100"])
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert doc["self_hosted_choice"] == [{"backends.gpu_pool.gpu": "a100"}]
    (n,) = doc["self_hosted_servers"]
    assert doc["self_hosted_monthly_usd"][0] == pytest.approx(n * 1.30 * 730)
    r = CliRunner().invoke(app, [*args, "--vary", "backends.gpu_pool.servers=1..4"])
    assert r.exit_code == 2 and "searched by breakeven" in r.output


def _fleet(tmp_path: Path) -> tuple[str, str]:
    """The same M/G/c workload with the shorthand pool, and with that pool named `gpu` beside a pool `big`
    (fewer, faster, dearer servers) that the fleet's own routing sends everything to."""
    cfg = mgc_config(horizon_h=0.1)
    cfg["workload"]["classes"][0]["input_tokens"] = {"dist": "constant", "value": 1000}
    one = write(tmp_path, cfg, "one.yaml")
    big = {"servers": 2, "max_batch": 1, "iteration_s": {"base": 0.02}, "price_per_server_hour_usd": 5.0}
    big["cold_start_s"] = {"dist": "constant", "value": 0}
    fleet = dict(cfg)
    fleet["backends"] = {"api": cfg["backends"]["api"], "gpu_pools": {"gpu": cfg["backends"]["gpu_pool"], "big": big}}
    fleet["routing"] = {"policy": "by_class", "by_class": {"default": "gpu:big"}}
    return one, write(tmp_path, fleet, "fleet.yaml")


def _breakeven(path: str, *more: str) -> dict:
    args = ["breakeven", path, "--volumes", "1B", "--reps", "2", "--max-reps", "2", "--max-servers", "12"]
    r = CliRunner().invoke(app, [*args, "--workers", "1", "--json", *more])
    assert r.exit_code == 0, r.output
    return json.loads(r.stdout)


def test_breakeven_over_named_pools_sizes_the_chosen_pool(tmp_path: Path) -> None:
    """Sizing the pool named `gpu` of a fleet is the shorthand's breakeven (the self-hosted side sends every
    class to it, the other pool is not reached, and the pool named gpu has the shorthand's random streams);
    sizing `big` prices its own servers; the per-pool fields name the fleet."""
    one, fleet = _fleet(tmp_path)
    a, b = _breakeven(one), _breakeven(fleet, "--pool", "gpu")
    assert set(b) >= CONTRACT
    for key in ("api_monthly_usd", "self_hosted_monthly_usd", "self_hosted_servers", "naive_servers"):
        assert b[key] == a[key], key
    assert a["pool"] == "gpu" and b["pool"] == "gpu"
    assert b["pools"] == {
        "gpu": {"servers": 4, "price_per_server_hour_usd": 2.69},
        "big": {"servers": 2, "price_per_server_hour_usd": 5.0},
    }
    # the hybrid side is the fleet as configured: everything to big (2 servers), gpu's servers searched
    (h,) = b["hybrid_servers_by_pool"]
    assert h == {"big": 2, "gpu": b["hybrid_servers"][0]}
    c = _breakeven(fleet, "--pool", "big")
    (n,) = c["self_hosted_servers"]
    assert c["pool"] == "big" and c["self_hosted_monthly_usd"][0] == pytest.approx(n * 5.0 * 730)
    assert c["api_monthly_usd"] == a["api_monthly_usd"]


def test_breakeven_refuses_an_unknown_pool(tmp_path: Path) -> None:
    _, fleet = _fleet(tmp_path)
    r = CliRunner().invoke(app, ["breakeven", fleet, "--volumes", "1B", "--pool", "nobody"])
    assert r.exit_code == 2 and "--pool: unknown GPU pool 'nobody'; pools: gpu, big" in r.output
    assert "Traceback" not in r.output
