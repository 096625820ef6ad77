"""The occupancy bound on an all-at-once run's mean TPOT (docs/calibration.md, "The corner's all-at-once misses").

Between its first and its last token a request is in the engine's running set, so the sum over requests of
e2e - TTFT is at most max_batch x duration. With every output the same length `out`, that sum is exactly
mean TPOT x (out - 1) x requests, so no replay can give a mean TPOT above max_batch x duration / (requests x (out - 1)).

* Known answer (the data alone): the published decode-heavy run (500 x 462 in / 256 out at once, 31 req/s: 16.129 s)
  allows at most 256 x 16.129 / (500 x 255) = 32.38 ms at max_num_seqs 256, against the published 44 ms.
* Invariant (can fail): the simulated burst respects the bound with its own duration, with one scheduler step and
  with ten, at max_batch 256 and 64; and with distinct output lengths the token-weighted TPOT does.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from backends.gpu import engine_bench
from backends.models.bench_results import read_bench_file
from sim.app.calibrate_command import pool_spec

ROOT = Path(__file__).resolve().parents[1]
DECODE_HEAVY = ROOT / "backends" / "models" / "published" / "vllm-v0.6.0_h100_llama-3-8b_decode-heavy.csv"


def _bound_ms(batch: int, duration_s: float, requests: int, out: float) -> float:
    return batch * duration_s / (requests * (out - 1)) * 1e3


def test_the_published_decode_heavy_tpot_exceeds_what_256_running_sequences_allow() -> None:
    p = next(q for q in read_bench_file(DECODE_HEAVY).points if math.isinf(q.request_rate))
    bound = _bound_ms(256, p.duration_s, p.completed, p.output_mean)
    assert bound == pytest.approx(256 * 16.129 / (500 * 255) * 1e3, rel=1e-9)
    assert bound == pytest.approx(32.38, abs=0.01)
    assert p.measured["mean_tpot_ms"] / bound == pytest.approx(1.359, abs=0.001)  # 36% more than 256 slots hold


@pytest.mark.parametrize(("steps", "batch"), [(1, 256), (10, 256), (10, 64)])
def test_a_simulated_burst_keeps_within_the_bound(steps: int, batch: int) -> None:
    spec = pool_spec("h100", "llama-3-8b", 1, batch, "bf16", 8192, steps)
    n, out = 400, 120
    r = engine_bench.serve_benchmark(spec, np.full(n, 462), np.full(n, out), math.inf, np.random.default_rng(0))
    bound = _bound_ms(batch, r.duration_s, n, out)
    tpot = r.tpot_mean_s * 1e3
    assert tpot <= bound * (1 + 1e-9)
    assert tpot >= 0.5 * bound  # and not trivially far under it (0.60-0.72 of it at these sizes)


def test_distinct_lengths_bound_the_token_weighted_tpot() -> None:
    rng = np.random.default_rng(5)
    n, batch = 300, 64
    ins, outs = rng.integers(50, 600, n), rng.integers(2, 200, n)
    got = {}
    real = engine_bench.latencies

    def grab(b, served):
        got["b"], got["lat"] = b, real(b, served)
        return got["lat"]

    engine_bench.latencies = grab
    try:
        r = engine_bench.serve_benchmark(
            pool_spec("h100", "llama-3-8b", 1, batch, "bf16", 8192, 10), ins, outs, math.inf, np.random.default_rng(0)
        )
    finally:
        engine_bench.latencies = real
    spans = got["lat"].tpot_s * (got["b"].output_tokens - 1)
    assert spans.sum() <= batch * r.duration_s * (1 + 1e-9)
