"""summary.json statistics: t intervals everywhere, bootstrap intervals for percentile metrics, P(meet) targets."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from sim.config.experiment import PlanSpec
from sim.core.rng import name_key
from sim.core.stats import bootstrap_interval, t_interval, wilson_interval
from sim.engine.replication import ReplicationResult
from sim.engine.results import build_summary, is_percentile_metric
from sim.engine.targets import Target, proportion, targets_summary, verdict
from tests.planning_configs import load, mgc_config

CONTRACT_KEYS = {"mean", "ci95_low", "ci95_high", "p5", "p50", "p95"}


def _fake_results(n: int, seed: int = 1) -> list[ReplicationResult]:
    rng = np.random.default_rng(seed)
    out = []
    for r in range(n):
        out.append(
            ReplicationResult(
                replication=r,
                metrics={
                    "requests": float(rng.poisson(1000)),
                    "ttft_p95_s": float(rng.lognormal(0.0, 0.5)),
                    "peak_ttft_p95_s": float(rng.lognormal(0.5, 0.8)),
                    "availability": float(1.0 - rng.exponential(0.0005)),
                    "monthly_cost_usd": 7855.0,
                },
            )
        )
    return out


def test_percentile_metric_names() -> None:
    assert is_percentile_metric("ttft_p95_s") and is_percentile_metric("peak_ttft_p95_s")
    assert is_percentile_metric("e2e_p50_s") and is_percentile_metric("ttft_p99_s")
    assert not is_percentile_metric("ttft_mean_s") and not is_percentile_metric("requests")
    assert not is_percentile_metric("availability")


def test_summary_keeps_contract_keys_and_adds_bootstrap_for_percentiles() -> None:
    exp = load(mgc_config())
    results = _fake_results(25)
    s = build_summary(exp, results)
    json.dumps(s, allow_nan=False)
    for name, m in s["metrics"].items():
        assert set(m) >= CONTRACT_KEYS
        assert ("boot95_low" in m) == is_percentile_metric(name)
    vals = [r.metrics["peak_ttft_p95_s"] for r in results]
    m = s["metrics"]["peak_ttft_p95_s"]
    mean, lo, hi = t_interval(vals)
    assert (m["mean"], m["ci95_low"], m["ci95_high"]) == pytest.approx((mean, lo, hi))
    assert m["boot95_low"] < m["mean"] < m["boot95_high"]
    # the bootstrap interval is the percentile bootstrap of the mean, reproducible (fixed seed per metric)
    blo, bhi = bootstrap_interval(vals, 0.95, n_boot=2000, seed=name_key("peak_ttft_p95_s"))
    assert (m["boot95_low"], m["boot95_high"]) == pytest.approx((blo, bhi))
    assert build_summary(exp, results)["metrics"] == s["metrics"]
    # a metric nobody produced stays JSON-safe
    assert s["metrics"]["ttft_p50_s"]["boot95_low"] is None


def test_bootstrap_and_t_intervals_agree_roughly_for_symmetric_data() -> None:
    exp = load(mgc_config())
    rng = np.random.default_rng(7)
    results = [ReplicationResult(r, {"ttft_p95_s": float(rng.normal(2.0, 0.2))}) for r in range(200)]
    m = build_summary(exp, results)["metrics"]["ttft_p95_s"]
    t_width = m["ci95_high"] - m["ci95_low"]
    b_width = m["boot95_high"] - m["boot95_low"]
    assert b_width == pytest.approx(t_width, rel=0.2)


def test_targets_section_counts_and_wilson() -> None:
    exp = load(mgc_config(plan={"targets": ["peak_ttft_p95_s<=2.0", "availability>=0.999"], "confidence": 0.8}))
    results = _fake_results(30)
    s = build_summary(exp, results)
    t = s["targets"]
    assert t["confidence"] == 0.8
    k1 = sum(1 for r in results if r.metrics["peak_ttft_p95_s"] <= 2.0)
    k2 = sum(1 for r in results if r.metrics["availability"] >= 0.999)
    k_all = sum(1 for r in results if r.metrics["peak_ttft_p95_s"] <= 2.0 and r.metrics["availability"] >= 0.999)
    assert [i["met"] for i in t["items"]] == [k1, k2]
    assert t["all"]["met"] == k_all and t["all"]["n"] == 30
    assert t["all"]["p_meet"] == pytest.approx(k_all / 30)
    lo, hi = wilson_interval(k_all, 30, 0.95)
    assert (t["all"]["wilson95_low"], t["all"]["wilson95_high"]) == pytest.approx((lo, hi))
    assert t["all"]["verdict"] == verdict(lo, hi, 0.8)


def test_no_targets_no_section() -> None:
    exp = load(mgc_config(plan={"targets": [], "confidence": 0.9}))
    assert "targets" not in build_summary(exp, _fake_results(3))


def test_target_semantics() -> None:
    le, ge = Target.parse("ttft_p95_s<=2"), Target.parse("availability >= 0.999")
    assert le.met_by({"ttft_p95_s": 2.0}) and not le.met_by({"ttft_p95_s": 2.0001})
    assert ge.met_by({"availability": 0.999}) and not ge.met_by({"availability": 0.998})
    # a replication without the metric (no request in the peak hour) does not meet it
    assert not le.met_by({}) and not le.met_by({"ttft_p95_s": None}) and not le.met_by({"ttft_p95_s": math.nan})
    with pytest.raises(ValueError):
        Target.parse("no_such_metric<=1")
    with pytest.raises(ValueError):
        PlanSpec(targets=["ttft_p95_s<2"])


def test_verdicts() -> None:
    assert proportion(0, 10, 0.9)["verdict"] == "fails"
    assert proportion(10, 10, 0.9)["verdict"] == "undecided"  # Wilson low 0.72 < 0.9: not enough evidence
    assert proportion(40, 40, 0.9)["verdict"] == "meets"  # Wilson low 0.912
    assert proportion(80, 80, 0.95)["verdict"] == "meets"  # Wilson low 0.954
    assert proportion(0, 0, 0.9)["verdict"] == "undecided"
    s = targets_summary([Target.parse("ttft_p95_s<=1")], [{"ttft_p95_s": 0.5}] * 3, 0.5)
    assert s["all"]["met"] == 3


def test_run_writes_targets_and_bootstrap(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from sim.app.run_command import run_experiment
    from sim.engine.executor import Executor

    exp = load(mgc_config(servers=5, replications=3, horizon_h=0.2))
    assert run_experiment(exp, out=tmp_path / "r", executor=Executor(workers=1), quiet=True) == 0
    s = json.loads((tmp_path / "r" / "summary.json").read_text())
    assert s["targets"]["all"]["n"] == 3
    assert "boot95_low" in s["metrics"]["ttft_p95_s"]
    assert "boot95_low" not in s["metrics"]["ttft_mean_s"]


def test_summary_table_prints_targets(capsys) -> None:  # type: ignore[no-untyped-def]
    from pathlib import Path

    from sim.app.summary_table import print_summary

    exp = load(mgc_config())
    print_summary(build_summary(exp, _fake_results(5)), Path("x"))
    out = capsys.readouterr().out
    assert "P(meet)" in out and "queue_wait_mean_s<=0.25" in out and "bootstrap" in out
