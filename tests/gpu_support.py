"""Helpers for the GPU pool tests: small experiments built in code, and a pool driven directly."""

from __future__ import annotations

from typing import Any

import numpy as np
import simpy

from sim.config import Experiment
from sim.core.request_block import RequestBlock


def gpu_experiment(
    rate: float,
    horizon_h: float,
    pool: dict[str, Any],
    classes: list[dict[str, Any]] | None = None,
    warmup_h: float = 0.0,
    seed: int = 1,
    arrivals: dict[str, Any] | None = None,
) -> Experiment:
    """A gpu_only experiment with constant Poisson arrivals (unless `arrivals` says otherwise)."""
    if classes is None:
        classes = [
            {
                "name": "default",
                "input_tokens": {"dist": "constant", "value": 1},
                "output_tokens": {"dist": "geometric", "mean": 20},
            }
        ]
    data = {
        "seed": seed,
        "replications": 1,
        "horizon_h": horizon_h,
        "warmup_h": warmup_h,
        "workload": {"arrivals": arrivals or {"kind": "constant", "mean_rps": rate}, "classes": classes},
        "routing": {"policy": "gpu_only"},
        "backends": {"gpu_pool": pool},
        "output": {"timeseries": False, "report": False},
    }
    return Experiment.model_validate(data)


def chat_yaml(name: str, seed: int, replications: int, horizon_h: float, servers: int) -> str:
    """A small chat experiment as YAML text (constant 5 req/s, one lognormal/geometric class, H100 pool)."""
    return f"""\
name: {name}
seed: {seed}
replications: {replications}
horizon_h: {horizon_h}
workload:
  arrivals: {{kind: constant, mean_rps: 5}}
  classes:
    - name: chat
      share: 1.0
      input_tokens: {{dist: lognormal, median: 500, sigma: 0.8}}
      output_tokens: {{dist: geometric, mean: 150}}
backends:
  gpu_pool: {{servers: {servers}, gpu: h100, model: llama-3-8b, max_batch: 64}}
output: {{report: false}}
"""


def make_block(arrivals: np.ndarray, inputs: np.ndarray, outputs: np.ndarray, classes: np.ndarray | None = None):
    n = len(arrivals)
    return RequestBlock(
        0,
        0.0,
        float(arrivals[-1]) + 1.0 if n else 1.0,
        np.asarray(arrivals, dtype=np.float64),
        np.zeros(n, dtype=np.int16) if classes is None else np.asarray(classes, dtype=np.int16),
        np.asarray(inputs, dtype=np.int64),
        np.asarray(outputs, dtype=np.int64),
    )


def feed(env: simpy.Environment, pool: Any, block: RequestBlock, priorities: list[int]) -> None:
    """Submit each request of a block to the pool at its arrival time (one event per request)."""
    times = block.arrival_at.tolist()
    cls = block.class_idx.tolist()

    def at(k: int) -> None:
        ev = simpy.Timeout(env, max(times[k] - env.now, 0.0))

        def fire(_e: simpy.Event) -> None:
            pool.submit(block, k, priorities[cls[k]], None)
            if k + 1 < len(times):
                at(k + 1)

        ev.callbacks.append(fire)  # type: ignore[union-attr]

    if times:
        at(0)


# -- test hooks on a pool (kept out of the pool's hot objects) ------------------------------------------


def unbounded(pool: Any) -> None:
    """Switch the pool's overload bound off: every arrival gets a Job and waits (to compare with the bound)."""
    pool.bound.refuses = lambda priority, now: False


def audit_segments(pool: Any, audit: Any) -> None:
    """Call `audit(engine, server, m)` whenever the batching engine sets a server's timer m iterations ahead
    (at every segment start, and when a claim or an undrain brings the next boundary forward)."""
    engine = pool.engine
    set_timer = engine.set_timer

    def audited(s: Any, m: int, *earlier: bool) -> None:
        audit(engine, s, m)
        set_timer(s, m, *earlier)

    engine.set_timer = audited
