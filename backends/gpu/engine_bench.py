"""vLLM's serving benchmark, replayed against one simulated GPU server.

`benchmark_serving` sends N prompts with Poisson inter-arrival times at a request rate (or all at once,
rate = inf) and reports request throughput = completed / duration (first send to last completion), mean
TTFT and mean TPOT = (e2e - TTFT) / (output tokens - 1) over requests with at least two output tokens.
`serve_benchmark` does the same with a GpuPool of one server, so the calibration and its checks compare
like with like (benchmarks/calibrate_iteration.py, benchmarks/vllm_h100.py, tests/test_gpu_calibration.py).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import simpy

from backends.gpu.pool import GpuPool
from sim.config.backends import GpuPoolSpec
from sim.core.latency import latencies
from sim.core.request_block import SERVED, RequestBlock


@dataclass(frozen=True)
class BenchResult:
    rate: float
    requests: int
    duration_s: float
    throughput_rps: float
    ttft_mean_s: float
    tpot_mean_s: float
    preemptions: int
    events_per_request: float


def serve_benchmark(
    spec: GpuPoolSpec, inputs: np.ndarray, outputs: np.ndarray, rate: float, rng: np.random.Generator
) -> BenchResult:
    """Send the requests at Poisson `rate` (math.inf: all at t = 0) to a one-server pool; run to the end."""
    n = len(inputs)
    if math.isinf(rate):
        arrivals = np.zeros(n)
    else:
        arrivals = np.cumsum(rng.exponential(1.0 / rate, n))
        arrivals -= arrivals[0]
    block = RequestBlock(
        0,
        0.0,
        float(arrivals[-1]) + 1.0,
        arrivals,
        np.zeros(n, dtype=np.int16),
        inputs.astype(np.int64),
        outputs.astype(np.int64),
    )
    env = simpy.Environment()
    one = {"servers": 1, "cold_start_s": {"dist": "constant", "value": 0.0}, "autoscaler": {}, "schedule": None}
    warm = GpuPoolSpec.model_validate({**spec.model_dump(), **one, "failures": {}})
    pool = GpuPool(env, warm, [0], [None], np.random.default_rng(0), math.inf, lambda b: None)
    times = arrivals.tolist()
    state = [0]

    def fire(_e: simpy.Event) -> None:
        j = state[0]
        now = env.now
        while j < n and times[j] <= now:
            pool.submit(block, j, 0, None)
            j += 1
        state[0] = j
        if j < n:
            ev = simpy.Timeout(env, times[j] - now)
            ev.callbacks.append(fire)

    fire(simpy.Timeout(env, 0))
    env.run()
    served = block.status == SERVED
    lat = latencies(block, served)  # every answer is a GPU stream: TPOT over those with two tokens or more
    duration = float(block.done_at[served].max() - arrivals[0])
    return BenchResult(
        rate=rate,
        requests=int(served.sum()),
        duration_s=duration,
        throughput_rps=float(served.sum()) / duration,
        ttft_mean_s=float(lat.ttft_s.mean()),
        tpot_mean_s=float(np.mean(lat.tpot_s)),
        preemptions=pool.ledger.preemptions,
        events_per_request=pool.ledger.num_events / n,
    )
