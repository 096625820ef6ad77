"""Overflow routing: spill to the API when the GPU queue per server exceeds max_queue, or when the predicted
wait exceeds the class's SLO."""

from __future__ import annotations

import numpy as np
import pytest

from backends.routing.wait_predictor import WaitPredictor
from sim.core.request_block import PATH_API, PATH_GPU
from sim.engine.loading import load_config_text
from sim.engine.replication import simulate

# one server, 8 slots, 20 ms iterations, 50 output tokens on average: ~8 requests/s; 10/s are offered
OVERLOADED = """
name: overflow
seed: 6
horizon_h: 0.5
workload:
  arrivals: {kind: constant, mean_rps: 10}
  classes:
    - {name: chat, share: 1.0, input_tokens: {dist: constant, value: 200},
       output_tokens: {dist: geometric, mean: 50}, slo_ttft_s: 2.0}
routing:
  policy: gpu_only
  overflow: {max_queue: 4, target: api}
backends:
  gpu_pool:
    servers: 1
    max_batch: 8
    iteration_s: {base: 0.02}
    cold_start_s: {dist: constant, value: 0}   # the test is about the queue, not about the start
output: {requests: true}
"""


def run(*overrides: str):
    r = simulate(load_config_text(OVERLOADED, overrides), 0)
    m = r.metrics
    assert m["requests"] == m["served"] + m["failed"] + m["dropped"] + m["in_flight"]
    return r


def test_queue_trigger_spills_the_excess() -> None:
    gpu = run().metrics
    ovf = run("routing.policy=overflow").metrics
    assert gpu["served_by_api"] == 0 and gpu["ttft_p95_s"] > 60  # the queue grows all along
    assert ovf["served_by_api"] > 0.1 * ovf["requests"]
    assert ovf["ttft_p95_s"] < 2.0  # at most 4 waiting: ~0.5 s of wait
    assert ovf["served_by_gpu"] <= gpu["served_by_gpu"] * 1.05
    never = run("routing.policy=overflow", "routing.overflow.max_queue=1000000").metrics
    assert never["served_by_api"] == 0 and never["ttft_p95_s"] == gpu["ttft_p95_s"]


def test_slo_trigger_keeps_the_slo() -> None:
    gpu = run().metrics
    edge = run("routing.policy=overflow", "routing.overflow.trigger=slo").metrics
    # spilling only when the predicted wait passes the SLO keeps the queue at the SLO's edge: the mean wait is
    # below it, the tail is not, so a margin (slo_fraction < 1) is what keeps attainment high
    assert edge["served_by_api"] > 0 and edge["slo_attainment"] > gpu["slo_attainment"] + 0.5
    margin = run("routing.policy=overflow", "routing.overflow.trigger=slo", "routing.overflow.slo_fraction=0.5")
    m = margin.metrics
    assert m["slo_attainment"] > 0.97 and m["served_by_api"] > edge["served_by_api"]
    lax = OVERLOADED.replace("slo_ttft_s: 2.0", "slo_ttft_s: 100000")
    m = simulate(load_config_text(lax, ["routing.policy=overflow", "routing.overflow.trigger=slo"]), 0).metrics
    assert m["served_by_api"] == 0 and m["ttft_p95_s"] == gpu["ttft_p95_s"]


def test_slo_trigger_spills_only_the_strict_class() -> None:
    two = OVERLOADED.replace(
        "output_tokens: {dist: geometric, mean: 50}, slo_ttft_s: 2.0}",
        "output_tokens: {dist: geometric, mean: 50}, slo_ttft_s: 2.0, share: 0.6}\n"
        "    - {name: report, share: 0.4, input_tokens: {dist: constant, value: 200},\n"
        "       output_tokens: {dist: geometric, mean: 50}, slo_ttft_s: 3600, priority: 1}",
    ).replace("{name: chat, share: 1.0,", "{name: chat,")
    r = simulate(load_config_text(two, ["routing.policy=overflow", "routing.overflow.trigger=slo"]), 0)
    q = r.requests
    api = q["path"] == PATH_API
    assert api.sum() > 0 and np.all(q["class_idx"][api] == 0)


def test_predicted_wait_tracks_the_realised_wait(monkeypatch: pytest.MonkeyPatch) -> None:
    """M/M/2-like pool (max_batch 1, geometric outputs): mean predicted wait ~ mean realised wait."""
    seen: list[float] = []
    real_predict = WaitPredictor.predict

    def spy(self: WaitPredictor, priority: int, now: float = 0.0) -> float:
        w = real_predict(self, priority, now)
        seen.append(w)
        return w

    monkeypatch.setattr(WaitPredictor, "predict", spy)
    exp = load_config_text(
        OVERLOADED,
        [
            "routing.policy=overflow",
            "routing.overflow.trigger=slo",
            "routing.overflow.slo_fraction=100",
            "backends.gpu_pool.servers=2",
            "backends.gpu_pool.max_batch=1",
            "backends.gpu_pool.iteration_s={base: 0.0008}",  # service 40 ms mean; 2 servers, rho = 0.8 at 40/s
            "workload.arrivals.mean_rps=40",
            "horizon_h=0.25",
        ],
    )
    r = simulate(exp, 0)
    q = r.requests
    assert np.all(q["path"][q["status"] != 0] == PATH_GPU) and len(seen) == len(q["arrival_at"])
    predicted = np.array(seen)
    realised = q["start_at"] - q["arrival_at"]
    done = ~np.isnan(realised)
    assert done.mean() > 0.99
    assert predicted[done].mean() == pytest.approx(realised[done].mean(), rel=0.1)
