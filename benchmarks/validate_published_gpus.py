"""Held-out validation beyond the calibrated corner: published vLLM runs on H200 and MI300X, replayed as configured.

Data: benchmarks/data/published_gpu_runs.csv (provenance in benchmarks/data/README.md): vLLM's nightly performance
pipeline (buildkite.com/vllm/performance-benchmark) on H200, with the same tests on 8 x H100 and A100-SXM4-80GB as
controls (calibrated GPUs), and Oracle's vLLM latency sweep of Llama-3.1-405B FP8 on 8 x MI300X. Nothing here is
fitted: every factor is the catalog's, so every row is held out.

Each row is replayed on one simulated server (backends/gpu/engine_bench.py) built as a user would build it: the
catalog GPU and model, `tensor_parallel`, `quantization`, vLLM v0's defaults (`max_batch` 256 = max_num_seqs,
paged KV in blocks of 16, `gpu_memory_utilization` 0.9, 8,192 prompt tokens an iteration, one scheduler step):

- latency (vLLM benchmark_latency): `count` prompts of `input_len` tokens sent at once, each generating exactly
  `output_len` tokens; the measured mean latency of the batch against the simulated time to its last token;
- throughput (benchmark_throughput): `count` ShareGPT-like prompts (workloads/sharegpt.py) at once; requests/s,
  the mean over SAMPLES seeded draws;
- serving (benchmark_serving): `count` ShareGPT-like prompts at Poisson `rate`; the measured mean ITL against the
  simulated mean TPOT (at 1 req/s the batch is small and the two are close), the mean over SAMPLES draws.

Run:  PYTHONPATH=. python benchmarks/validate_published_gpus.py [--samples N] [--check-doc docs/calibration.md]
"""

from __future__ import annotations

import argparse
import csv
import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from sim.config.backends import GpuPoolSpec

DATA = Path(__file__).resolve().parent / "data" / "published_gpu_runs.csv"
DOC_BEGIN = "<!-- validate_published_gpus: begin -->"
DOC_END = "<!-- validate_published_gpus: end -->"
SAMPLES = 4
CALIBRATED = ("h100", "a100-80gb")  # the corner: these rows are controls, not held-out GPUs


@dataclass(frozen=True)
class Point:
    source: str
    gpu: str
    tp: int
    model: str
    quantization: str
    test: str
    count: int
    input_len: int | None
    output_len: int | None
    rate: float
    quantity: str
    measured: float
    unit: str
    engine: str = ""


def load_points(path: Path = DATA) -> list[Point]:
    with path.open() as fh:
        rows = csv.DictReader(line for line in fh if not line.startswith("#"))
        return [
            Point(
                source=r["source"],
                gpu=r["gpu"],
                tp=int(r["tp"]),
                model=r["model"],
                quantization=r["quantization"],
                test=r["test"],
                count=int(r["count"]),
                input_len=int(r["input_len"]) if r["input_len"] else None,
                output_len=int(r["output_len"]) if r["output_len"] else None,
                rate=float(r["rate"]),
                quantity=r["quantity"],
                measured=float(r["measured"]),
                unit=r["unit"],
                engine=r["engine"],
            )
            for r in rows
        ]


# `vllm serve --enable-chunked-prefill` on vLLM v0: one token budget an iteration (max_num_batched_tokens) shared by
# decodes and prompt chunks, decodes first, which capsim's `scheduler: v1` models; 512 tokens, v0's default budget
# with chunked prefill (not recorded in the result files: an assumption, see docs/calibration.md).
CHUNKED_BUDGET = 512


def pool_spec(p: Point, engine_version: str | None = None) -> GpuPoolSpec:
    """The pool a user would configure for the point; `engine_version` overrides the release's host costs."""
    from sim.config.backends import GpuPoolSpec

    chunked = "chunked prefill" in p.engine
    release = engine_version or ("vllm-0.5" if "0.5." in p.engine else "vllm-0.6")
    return GpuPoolSpec.model_validate(
        {
            "gpu": p.gpu,
            "model": p.model,
            "quantization": p.quantization,
            "tensor_parallel": p.tp,
            "max_batch": 256,
            "kv_policy": "paged",
            "kv_block_tokens": 16,
            "gpu_memory_utilization": 0.9,
            "max_prefill_tokens": CHUNKED_BUDGET if chunked else 8192,
            "scheduler": "v1" if chunked else "v0",
            "engine_version": release,
        }
    )


def simulate(p: Point, samples: int = SAMPLES, engine_version: str | None = None) -> float:
    """The simulated counterpart of the point's measured quantity, in its unit."""
    from backends.gpu.engine_bench import serve_benchmark
    from workloads.sharegpt import sample_sharegpt

    spec = pool_spec(p, engine_version)
    if p.test == "latency":
        assert p.input_len is not None and p.output_len is not None
        ins = np.full(p.count, p.input_len, dtype=np.int64)
        outs = np.full(p.count, p.output_len, dtype=np.int64)
        r = serve_benchmark(spec, ins, outs, math.inf, np.random.default_rng(0))
        return r.duration_s * 1e3
    vals = []
    for seed in range(samples):
        rng = np.random.default_rng(8000 + seed)
        if p.input_len is not None and p.output_len is not None:  # the run's mean lengths
            ins = np.full(p.count, p.input_len, dtype=np.int64)
            outs = np.full(p.count, p.output_len, dtype=np.int64)
        else:
            ins, outs = sample_sharegpt(rng, p.count)
        r = serve_benchmark(spec, ins, outs, p.rate, rng)
        vals.append(r.throughput_rps if p.test == "throughput" else r.tpot_mean_s * 1e3)
    return float(np.mean(vals))


def _label(p: Point) -> str:
    if p.test == "latency":
        return f"latency, {p.count} x {p.input_len}/{p.output_len} at once"
    if p.test == "throughput":
        return f"throughput, {p.count} ShareGPT at once"
    if p.input_len is None:
        return f"serving, {p.count} ShareGPT at {p.rate:g} req/s"
    return f"serving, {p.count} x {p.input_len}/{p.output_len} at {p.rate:g} req/s"


def _build(source: str) -> str:
    if "buildkite" in source:
        return source.rsplit("/", 1)[-1]
    return "Crusoe run" if "crusoe" in source else "OCI blog"


def render(points: list[Point], samples: int = SAMPLES) -> str:
    head = "| GPU | model | TP | dtype | test | source | measured | simulated | error |"
    rows = [head, "|---|---|---|---|---|---|---|---|---|"]
    errs: dict[str, list[float]] = {}
    for p in points:
        sim = simulate(p, samples)
        err = sim / p.measured - 1.0
        role = "control" if p.gpu in CALIBRATED else "held out"
        errs.setdefault(f"{p.gpu} {p.test} ({role})", []).append(err)
        cells = [p.gpu, p.model, str(p.tp), p.quantization, _label(p), _build(p.source)]
        cells += [f"{p.measured:g} {p.unit}", f"{sim:.4g} {p.unit}", f"{err:+.1%}"]
        rows.append("| " + " | ".join(cells) + " |")
    out = "\n".join(rows) + "\n\n| group | points | mean error | worst error | within 15% |\n|---|---|---|---|---|\n"
    for name in sorted(errs):
        e = np.array(errs[name])
        worst = e[np.argmax(np.abs(e))]
        out += f"| {name} | {len(e)} | {e.mean():+.1%} | {worst:+.1%} | {int(np.sum(np.abs(e) <= 0.15))}/{len(e)} |\n"
    v05 = [p for p in points if "0.5." in p.engine]
    if v05:  # the host-cost sensitivity of the vLLM 0.5.x runs: the same pools with vLLM 0.6's host costs
        out += "\n| GPU | model | TP | dtype | test | measured"
        out += " | simulated, vllm-0.5 host costs (as served) | simulated, vllm-0.6 |\n"
        out += "|---|---|---|---|---|---|---|---|\n"
        for p in v05:
            a, b = simulate(p, samples), simulate(p, samples, "vllm-0.6")
            cells = [p.gpu, p.model, str(p.tp), p.quantization, _label(p), f"{p.measured:g} {p.unit}"]
            cells += [f"{a:.4g} ({a / p.measured - 1:+.1%})", f"{b:.4g} ({b / p.measured - 1:+.1%})"]
            out += "| " + " | ".join(cells) + " |\n"
    return out


def doc_block(doc: Path) -> str:
    text = doc.read_text()
    start, end = text.index(DOC_BEGIN) + len(DOC_BEGIN), text.index(DOC_END)
    return text[start:end].strip("\n") + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=int, default=SAMPLES, help="ShareGPT draws averaged per throughput/serving row")
    ap.add_argument("--check-doc", type=Path, help="exit 1 unless this file's block equals the output")
    args = ap.parse_args()
    out = render(load_points(), args.samples)
    if args.check_doc is not None:
        if doc_block(args.check_doc) != out:
            print(f"{args.check_doc}: the validate_published_gpus table differs from a fresh run", file=sys.stderr)
            return 1
        return 0
    print(out, end="")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
