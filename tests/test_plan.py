"""`capsim plan`: galloping + bisection, common random numbers, sequential replications, CLI contract."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from typer.testing import CliRunner

from sim.app.cli import app
from sim.engine.targets import Target
from sim.studies.plan import Planner, PlanOptions, VaryRange
from tests.planning_configs import load, mgc_config, write

KEY = "backends.gpu_pool.servers"


def erlang_c_wait(lam: float, mean_s: float, c: int) -> float:
    """Mean wait in queue of M/M/c (Erlang C)."""
    a = lam * mean_s
    if a >= c:
        return math.inf
    terms = sum(a**k / math.factorial(k) for k in range(c))
    top = a**c / math.factorial(c) * c / (c - a)
    p_wait = top / (terms + top)
    return p_wait * mean_s / (c - a)


def test_vary_range_parse() -> None:
    v = VaryRange.parse("backends.gpu_pool.servers=1..32")
    assert (v.key, v.lo, v.hi, v.integer) == (KEY, 1, 32, True)
    r = VaryRange.parse("backends.api.output_tokens_per_s = 10.5..400")
    assert not r.integer and r.lo == 10.5 and r.value(20.25) == 20.25
    for bad in ("servers=5", "servers=9..2", "servers=a..b", "=1..2"):
        with pytest.raises(ValueError):
            VaryRange.parse(bad)


def test_plan_reduces_to_erlang_c() -> None:
    """M/G/c with near-exponential service: the answer is the smallest c whose Erlang C wait is <= target."""
    lam, mean_s, target = 4.0, 0.8, 0.25
    waits = {c: erlang_c_wait(lam, mean_s, c) for c in range(1, 10)}
    expected = min(c for c, w in waits.items() if w <= target)
    assert expected == 5 and waits[4] > 2 * target and waits[5] < target / 1.5  # a clear-cut case
    exp = load(mgc_config(rps=lam, horizon_h=0.25))
    targets = (Target.parse("queue_wait_mean_s<=0.25"),)
    # without the screens: galloping 1, 2, 4, 8 then bisection 6, 5
    planner = Planner(exp, VaryRange.parse(f"{KEY}=1..40"), PlanOptions(targets, 0.8, 5, 20, screens=False))
    result = planner.search()
    assert result.value == expected
    assert result.order == [1, 2, 4, 8, 6, 5]
    # with them (the default), 1..3 servers are below the arrival rate (3.2 Erlangs): 4 fails, 5 meets
    screened = Planner(exp, VaryRange.parse(f"{KEY}=1..40"), PlanOptions(targets, 0.8, 5, 20)).search()
    assert screened.value == expected and screened.order == [4, 5] and sorted(screened.screened) == [1, 2, 3]
    assert screened.candidates[5].metrics == result.candidates[5].metrics  # the same replications
    doc = result.to_json()
    tried = {e["value"]: e for e in doc["tried"]}
    # clear failures stop at the first replications; values that meet get more until the interval clears P
    assert tried[4]["replications"] == 5 and tried[4]["p_meet"] == 0 and tried[4]["decision"] == "fails"
    assert tried[5]["replications"] == 20 and tried[5]["decision"] == "meets"
    assert tried[5]["p_meet_low"] >= 0.8
    # the answer's monthly cost: 5 servers x $2.69 x 730 h
    assert doc["monthly_cost_usd"] == pytest.approx(5 * 2.69 * 730)


def test_candidates_share_replications() -> None:
    """Common random numbers across candidates: replication r of every candidate sees the same requests."""
    exp = load(mgc_config(rps=4.0, horizon_h=0.2))
    planner = Planner(
        exp, VaryRange.parse(f"{KEY}=3..8"), PlanOptions((Target.parse("queue_wait_mean_s<=0.25"),), 0.9, 3, 6)
    )
    planner.search()
    reqs = {v: [c.metrics[r]["requests"] for r in range(3)] for v, c in planner.candidates.items()}
    assert len(reqs) >= 2 and len({tuple(x) for x in reqs.values()}) == 1
    # revisiting a candidate with more replications only runs the new ones
    c = planner.candidates[max(planner.candidates)]
    before = dict(c.metrics)
    planner.ensure(c, len(before) + 2)
    assert all(c.metrics[r] == before[r] for r in before) and len(c.metrics) == len(before) + 2


def test_sequential_adds_replications_where_close() -> None:
    """At a load where some replications meet and some do not, the candidate gets more than n0."""
    exp = load(mgc_config(rps=4.0, horizon_h=0.1))
    # queue wait with 5 servers scatters around ~0.12 s over 6-minute runs
    planner = Planner(
        exp, VaryRange.parse(f"{KEY}=5..5"), PlanOptions((Target.parse("queue_wait_mean_s<=0.12"),), 0.5, 4, 32)
    )
    planner.search()
    c = planner.candidates[5]
    k = sum(1 for m in c.metrics.values() if m["queue_wait_mean_s"] <= 0.12)
    assert 0 < k < len(c.metrics)
    assert len(c.metrics) > 4


def test_real_key_bisection_matches_formula() -> None:
    """API-only, constant 101 output tokens and TTFT 0.5 s: e2e = 0.5 + 100 / tokens_per_s, so e2e <= 1.5 s
    needs tokens_per_s >= 100."""
    cfg = mgc_config(rps=2.0, horizon_h=0.05, routing={"policy": "api_only"})
    cfg["workload"]["classes"][0]["output_tokens"] = {"dist": "constant", "value": 101}
    exp = load(cfg)
    vary = VaryRange.parse("backends.api.output_tokens_per_s=10..410")
    planner = Planner(exp, vary, PlanOptions((Target.parse("e2e_p95_s<=1.5"),), 0.5, 2, 2, tol=2.0))
    result = planner.search()
    assert result.value is not None and 99.0 <= result.value <= 102.5


def test_cli_json_contract_and_exit_codes(tmp_path: Path) -> None:
    runner = CliRunner()
    cfg = write(tmp_path, mgc_config(rps=4.0, horizon_h=0.2))
    base = ["plan", cfg, "--reps", "3", "--max-reps", "6", "--workers", "1"]
    r = runner.invoke(app, [*base, "--vary", f"{KEY}=1..12", "--json", "--out", str(tmp_path / "p")])
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert {"key", "value", "confidence", "monthly_cost_usd", "tried"} <= set(doc)
    assert doc["key"] == KEY and doc["confidence"] == 0.9 and doc["value"] == 5
    for e in doc["tried"]:
        assert {"value", "p_meet", "replications"} <= set(e)
    assert json.loads((tmp_path / "p" / "plan.json").read_text())["value"] == 5
    # --target and --confidence override the config's plan section
    r = runner.invoke(
        app, [*base, "--vary", f"{KEY}=1..12", "--target", "queue_wait_mean_s<=5", "--confidence", "0.6", "--json"]
    )
    assert r.exit_code == 0 and json.loads(r.stdout)["confidence"] == 0.6
    assert json.loads(r.stdout)["value"] < 5
    # no value in range meets: exit 3, still a JSON answer with value null
    r = runner.invoke(app, [*base, "--vary", f"{KEY}=1..3", "--json"])
    assert r.exit_code == 3
    assert json.loads(r.stdout)["value"] is None
    # text output names the answer and its cost
    r = runner.invoke(app, [*base, "--vary", f"{KEY}=4..6", "--quiet"])
    assert r.exit_code == 0 and "answer" in r.stdout and "$" in r.stdout


@pytest.mark.parametrize(
    "args",
    [
        ["--vary", "servers=1..4"],  # not a config key
        ["--vary", f"{KEY}=5..1"],
        ["--vary", f"{KEY}=1..4", "--target", "nope<=1"],
        ["--vary", f"{KEY}=1..4", "--confidence", "1.5"],
        ["--vary", f"{KEY}=1..4", "--reps", "10", "--max-reps", "5"],
        ["--vary", f"{KEY}=-3..4"],
    ],
)
def test_cli_bad_arguments_exit_2(tmp_path: Path, args: list[str]) -> None:
    r = CliRunner().invoke(app, ["plan", write(tmp_path, mgc_config()), *args])
    assert r.exit_code == 2, r.output
    assert "Traceback" not in r.output
