"""The held-out data beyond the corner (benchmarks/data/published_gpu_runs.csv) and its replay.

* Every row names a source that the data README cites, maps to a catalog deployment capsim accepts, and carries
  the unit of its test; the H100/A100 rows are the controls, the others the held-out GPUs.
* The latency replay reduces to its known answer: one request of I prompt tokens and O output tokens at once takes
  one prefill iteration and O - 1 decode iterations of the derived iteration model.
* The replayed batch latency does not fall as the batch grows (each iteration's time is non-decreasing in its
  sequences and KV).
* docs/calibration.md's table is what benchmarks/validate_published_gpus.py prints now (no stale table).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from backends.gpu.catalog import iteration_model
from benchmarks import validate_published_gpus as vpg

ROOT = Path(__file__).resolve().parents[1]
POINTS = vpg.load_points()
UNITS = {"latency": "ms", "throughput": "req/s", "serving": "ms"}


def test_every_row_is_cited_and_is_a_deployment_capsim_accepts() -> None:
    readme = (ROOT / "benchmarks" / "data" / "README.md").read_text()
    assert len(POINTS) >= 30
    held_out = {p.gpu for p in POINTS if p.gpu not in vpg.CALIBRATED}
    assert held_out == {"h200", "l40s", "mi300x"}
    for p in POINTS:
        folder = p.source.rsplit("/", 1)[0] + "/"  # a folder of result files is cited once
        assert p.source in readme or folder in readme, p.source
        assert p.unit == UNITS[p.test] and p.measured > 0
        vpg.pool_spec(p)  # validates against the catalog (GPU, model, quantization, TP that fits)


def test_one_request_takes_one_prefill_and_output_minus_one_decodes() -> None:
    base = next(p for p in POINTS if p.gpu == "h200" and p.test == "latency" and p.model == "llama-3.1-8b")
    p = dataclasses.replace(base, count=1, input_len=100, output_len=50)
    it = iteration_model(vpg.pool_spec(p))
    prefill = it.base + it.per_seq + it.per_prefill_token * 100
    # decode k (1..O-1) reads the prompt's and the k generated tokens' KV; bracket the one-token accounting
    low = prefill + sum(it.base + it.per_seq + it.per_kv_token * (100 + k - 1) for k in range(1, 50))
    decodes = sum(it.base + it.per_seq + it.per_kv_token * (100 + k) for k in range(1, 50))
    high = prefill + it.per_kv_token * 100 + decodes
    sim_s = vpg.simulate(p) / 1e3
    assert low * (1 - 1e-9) <= sim_s <= high * (1 + 1e-9)


@pytest.mark.parametrize("gpu", ["h200", "mi300x"])
def test_the_batch_latency_does_not_fall_as_the_batch_grows(gpu: str) -> None:
    base = next(p for p in POINTS if p.gpu == gpu and p.test == "latency")
    lat = [vpg.simulate(dataclasses.replace(base, count=n)) for n in (1, 2, 8, 32, 128)]
    assert all(b >= a for a, b in zip(lat, lat[1:], strict=False)), lat


def test_the_documented_table_is_the_current_models() -> None:
    doc = vpg.doc_block(ROOT / "docs" / "calibration.md")
    assert doc == vpg.render(POINTS)
