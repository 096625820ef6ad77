"""Server failures: uptime against the alternating-renewal formula, and what failures cost.

A server fails after Exponential(MTBF) of healthy service, is repaired in Exponential(MTTR) and then
cold-starts for c, so its long-run fraction of healthy time is MTBF / (MTBF + MTTR + c) (c = 0: the
textbook MTBF / (MTBF + MTTR)). With one server and gpu_only routing that is the `uptime` metric.
"""

from __future__ import annotations

import numpy as np
import pytest
from gpu_support import gpu_experiment
from scipy import stats

from sim.engine.replication import simulate

QUIET = {"kind": "constant", "mean_rps": 0.002}


def pool(mtbf_h: float, mttr_h: float, cold_s: float, servers: int = 1, on_failure: str = "requeue") -> dict:
    return {
        "servers": servers,
        "iteration_s": {"base": 0.01},
        "cold_start_s": {"dist": "constant", "value": cold_s},
        "failures": {"mtbf_h": mtbf_h, "mttr_h": mttr_h, "on_failure": on_failure},
    }


@pytest.mark.parametrize(("mtbf_h", "mttr_h", "cold_s"), [(0.2, 0.05, 0.0), (0.1, 0.02, 36.0)])
def test_uptime_matches_mtbf_over_cycle(mtbf_h: float, mttr_h: float, cold_s: float) -> None:
    expected = mtbf_h / (mtbf_h + mttr_h + cold_s / 3600.0)
    ups = []
    for rep in range(5):
        exp = gpu_experiment(0.0, horizon_h=200.0, pool=pool(mtbf_h, mttr_h, cold_s), arrivals=QUIET, seed=3)
        r = simulate(exp, rep)
        ups.append(r.metrics["uptime"])
    mean = float(np.mean(ups))
    half = stats.t.ppf(0.975, len(ups) - 1) * np.std(ups, ddof=1) / np.sqrt(len(ups))
    print(f"uptime sim {mean:.4f} +- {half:.4f}, MTBF/(MTBF+MTTR+c) = {expected:.4f}")
    assert half < 0.01
    assert abs(mean - expected) < max(2 * half, 0.002)


def test_failed_and_cold_time_is_paid_not_busy_and_healthy_series_reflects_it() -> None:
    hours = 50.0
    exp = gpu_experiment(0.0, horizon_h=hours, pool=pool(1.0, 0.5, 600.0, servers=3), arrivals=QUIET, seed=4)
    exp = exp.model_copy(update={"output": exp.output.model_copy(update={"timeseries": True})})
    r = simulate(exp, 0)
    m = r.metrics
    assert m["cost_gpu_usd"] == pytest.approx(3 * hours * 2.69)  # paid through failures and cold starts
    healthy = r.timeseries["healthy_servers"]
    expected = 3 * 1.0 / (1.0 + 0.5 + 600 / 3600)
    assert abs(float(np.mean(healthy)) - expected) < 0.3
    assert healthy.max() <= 3 + 1e-9 and healthy.min() >= -1e-9


def test_requests_on_a_failed_server_are_requeued_or_failed() -> None:
    busy = {"kind": "constant", "mean_rps": 20.0}
    classes = [
        {
            "name": "c",
            "input_tokens": {"dist": "constant", "value": 200},
            "output_tokens": {"dist": "geometric", "mean": 100},
        }
    ]
    for on_failure in ("requeue", "fail"):
        p = pool(0.05, 0.01, 30.0, servers=2, on_failure=on_failure) | {"gpu": "h100", "model": "llama-3-8b"}
        p.pop("iteration_s")
        r = simulate(gpu_experiment(0.0, horizon_h=2.0, pool=p, arrivals=busy, classes=classes, seed=5), 0)
        m = r.metrics
        assert m["served"] + m["failed"] + m["dropped"] + m["in_flight"] == m["requests"]
        if on_failure == "requeue":
            assert m["failed"] == 0
        else:
            assert m["failed"] > 0
        assert m["uptime"] < 1.0
