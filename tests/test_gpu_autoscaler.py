"""Scheduled and autoscaled capacity: GPU cost is billed on provisioned time only, every scale-up
cold-starts, scale-to-zero works, and no request is lost while servers come and go."""

from __future__ import annotations

import numpy as np
import pytest
from gpu_support import gpu_experiment

from sim.core.timeseries import total_length
from sim.engine.replication import Replication

PRICE = 2.69
CLASSES = [
    {
        "name": "chat",
        "input_tokens": {"dist": "constant", "value": 100},
        "output_tokens": {"dist": "geometric", "mean": 50},
    }
]


def _run(exp):  # type: ignore[no-untyped-def]
    rep = Replication(exp, 0)
    res = rep.run()
    return rep, res


def test_schedule_bills_scheduled_server_hours_only() -> None:
    schedule = [0] * 8 + [4] * 10 + [1] * 6
    pool = {"schedule": schedule, "cold_start_s": {"dist": "constant", "value": 120}, "iteration_s": {"base": 0.01}}
    exp = gpu_experiment(0.0, horizon_h=24.0, pool=pool, arrivals={"kind": "constant", "mean_rps": 0.0})
    rep, res = _run(exp)
    assert res.metrics["cost_gpu_usd"] == pytest.approx(sum(schedule) * PRICE)
    assert rep.pool is not None
    healthy_h = total_length(rep.pool.ledger.healthy_intervals, 0, 86400) / 3600
    # every server that starts is paid but not serving for its cold start: 4 at 08:00, none later
    assert healthy_h == pytest.approx(sum(schedule) - 4 * 120 / 3600)


def test_autoscaler_scales_to_zero_and_cold_starts_on_every_scale_up() -> None:
    cold = 90.0
    mult = [0.0] * 24
    mult[9] = mult[10] = 1.0  # traffic from 09:00 to 11:00 only
    pool = {
        "servers": 0,
        "gpu": "h100",
        "model": "llama-3-8b",
        "cold_start_s": {"dist": "constant", "value": cold},
        "autoscaler": {
            "enabled": True,
            "min_servers": 0,
            "max_servers": 6,
            "target_in_flight_per_server": 24,
            "scale_down_delay_s": 600,
            "evaluate_every_s": 20,
        },
    }
    exp = gpu_experiment(
        0.0,
        horizon_h=24.0,
        pool=pool,
        classes=CLASSES,
        arrivals={"kind": "hourly", "mean_rps": 2.0, "multipliers": mult, "weekend_factor": 1.0},
    )
    exp = exp.model_copy(update={"output": exp.output.model_copy(update={"requests": True})})
    rep = Replication(exp, 0)
    pool_obj = rep.pool
    assert pool_obj is not None
    busy: list[tuple[float, float]] = []
    pool_obj.ledger.busy.record = busy
    res = rep.run()
    m = res.metrics
    paid_s = total_length(pool_obj.ledger.provisioned_intervals, 0, 86400)
    assert m["cost_gpu_usd"] == pytest.approx(paid_s / 3600 * PRICE)
    # paid only around the two busy hours (+ cold starts and the scale-down delay), not 24 h
    assert paid_s / 3600 < 0.25 * 24
    assert m["served"] == m["requests"] and m["failed"] == 0 and m["in_flight"] == 0
    starts = sorted(a for a, _ in pool_obj.ledger.provisioned_intervals)
    healthy = sorted(pool_obj.ledger.healthy_intervals)
    assert len(starts) == len(healthy) >= 1
    for t0, (h0, _) in zip(starts, healthy, strict=True):
        assert h0 == pytest.approx(t0 + cold)  # cold start on every scale-up
    assert busy and pool_obj.ledger.busy.total_length() == pytest.approx(sum(b - a for a, b in busy))
    for a, b in busy:  # busy only while provisioned
        assert any(p0 <= a and b <= p1 + 1e-9 for p0, p1 in pool_obj.ledger.provisioned_intervals)
    req = res.requests
    assert req is not None
    ttft = req["first_token_at"] - req["arrival_at"]
    assert np.nanmax(ttft) >= cold * 0.9  # the first request after scale-to-zero waits for a cold start
    assert pool_obj.controller.scale_ups >= 1 and pool_obj.controller.scale_downs >= 1
    assert all(s.state == 0 for s in pool_obj.servers)  # OFF again at the end of the day


def test_queue_wait_target_and_schedule_floor() -> None:
    schedule = [1] * 24
    pool = {
        "servers": 1,
        "gpu": "h100",
        "model": "llama-3-8b",
        "max_batch": 8,
        "cold_start_s": {"dist": "constant", "value": 30},
        "schedule": schedule,
        "autoscaler": {"enabled": True, "max_servers": 5, "target_queue_wait_s": 1.0, "evaluate_every_s": 10},
    }
    exp = gpu_experiment(20.0, horizon_h=1.0, pool=pool, classes=CLASSES)
    rep, res = _run(exp)
    assert rep.pool is not None
    assert rep.pool.controller.scale_ups >= 1
    assert max(s.state != 0 for s in rep.pool.servers)
    assert res.metrics["served"] + res.metrics["in_flight"] == res.metrics["requests"]
    # never below the schedule's floor of one server
    paid_s = total_length(rep.pool.ledger.provisioned_intervals, 0, 3600)
    assert paid_s >= 3600 - 1e-6
