"""Out-of-corner validation: LambdaLabs' vLLM serving runs replayed with the catalog's factors (no fitting).

Data: benchmarks/data/lambda_vllm/*.json, one vLLM `benchmark_serving.py --save-result` run each (its numbers and
per-request lengths only), from LambdaLabsML/vllm-benchmark (provenance per file in that folder's README): 1-8 x
A100-80GB / H100-80GB SXM, Llama-3/3.1 8B-405B (bf16, FP8), Mixtral, ShareGPT prompts, all sent at once
(request rate inf), vLLM 0.6.0 with `--num-scheduler-steps 10` (dated runs from 2024-09-07 on) or vLLM 0.5.4.

Each run is replayed on one simulated server (backends/gpu/engine_bench.py) as it was served: its GPU, tensor
parallel degree, model and weight precision, vLLM v0 without chunked prefill (a prefill iteration holds at most
max_num_batched_tokens = max(max_model_len, 2048) prompt tokens), `max_num_seqs` 256, paged KV in blocks of 16,
`gpu_memory_utilization` 0.95 (the benchmark's setting), the run's own per-request input and output lengths (a
request vLLM recorded with 0 output tokens generated one, an end-of-sequence token, after its prefill), all at
t = 0, in ORDERS seeded random orders (averaged). Three terms are fitted on explicit parts of these runs
(`fit_role`); every other factor is the catalog's, and the rest of the runs are held out.

Columns: measured mean TPOT and request throughput (completed / duration); simulated with one scheduler step per
iteration (capsim's default); and, when the pool has the `num_scheduler_steps` key, simulated with the run's own
scheduler steps. Then the error distribution per family (GPU x model x precision) and per TP.

Run:  PYTHONPATH=. python benchmarks/validate_lambda.py [--orders N] [--check-doc docs/calibration.md]
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from sim.config.backends import GpuPoolSpec

DATA = Path(__file__).resolve().parent / "data" / "lambda_vllm"
DOC_BEGIN = "<!-- validate_lambda: begin -->"
DOC_END = "<!-- validate_lambda: end -->"


@dataclass(frozen=True)
class Run:
    name: str
    gpu: str
    tp: int
    model: str
    quantization: str
    max_model_len: int
    vllm_version: str
    scheduler_steps: int
    num_prompts: int
    duration_s: float
    completed: int
    tpot_ms: float
    ttft_ms: float
    throughput_rps: float
    input_lens: tuple[int, ...]
    output_lens: tuple[int, ...]
    source: dict[str, str]


def load_run(path: Path) -> Run:
    d = json.loads(path.read_text())
    c = d["capsim"]
    return Run(
        name=path.stem,
        gpu=c["gpu"],
        tp=int(c["tensor_parallel"]),
        model=c["model"],
        quantization=c["quantization"],
        max_model_len=int(c["max_model_len"]),
        vllm_version=c["vllm_version"],
        scheduler_steps=int(c["num_scheduler_steps"]),
        num_prompts=int(d["num_prompts"]),
        duration_s=float(d["duration"]),
        completed=int(d["completed"]),
        tpot_ms=float(d["mean_tpot_ms"]),
        ttft_ms=float(d["mean_ttft_ms"]),
        throughput_rps=float(d["completed"]) / float(d["duration"]),
        input_lens=tuple(int(x) for x in d["input_lens"]),
        output_lens=tuple(int(x) for x in d["output_lens"]),
        source=dict(d["source"]),
    )


def load_runs(folder: Path = DATA) -> list[Run]:
    """Every run in the folder, in the table's order (GPU, TP, model, precision, prompts, vLLM version)."""
    runs = [load_run(path) for path in folder.glob("*.json")]
    return sorted(runs, key=lambda r: (r.gpu, r.tp, r.model, r.quantization, r.num_prompts, r.vllm_version))


# The fits on these runs (benchmarks/fit_lambda.py), each on an explicit part, the rest held out:
# - `moe_compute` per family: the Mixtral-8x7B runs on vLLM 0.6.0, except the 80-prompt run on 2 x H100, whose
#   80 prompts took 24.6 s against 32.2 s for 320 (most requests' first inter-token gap is 7.4 s: a stall no
#   iteration model represents); held out: Mixtral-8x22B, that 80-prompt run, and the vLLM 0.5.4 Mixtral runs;
# - `engine_version: vllm-0.5`'s host cost: the single-GPU vLLM 0.5.4 runs; held out: 0.5.4 at TP > 1.
# - multi-step's prefill-step cost per prompt (efficiency.MULTISTEP_PREFILL_PROMPT_S, multistep_probe.py): the dense
#   vLLM 0.6.0 runs on H100 at TP 1 and 2; held out: every A100 run, H100 at TP 4 and 8.
MOE_FIT = "moe_compute"
HOST_FIT = "vllm-0.5 host"
PREFILL_FIT = "prefill step"


def fit_role(run: Run) -> str:
    """The fit a run is in ('' : held out)."""
    if run.model == "mixtral-8x7b" and run.vllm_version == "0.6.0":
        return "" if (run.gpu, run.tp, run.num_prompts) == ("h100", 2, 80) else MOE_FIT
    if run.vllm_version == "0.5.4" and run.tp == 1 and not run.model.startswith("mixtral"):
        return HOST_FIT
    if run.vllm_version == "0.6.0" and run.gpu == "h100" and run.tp <= 2 and not run.model.startswith("mixtral"):
        return PREFILL_FIT
    return ""


def engine_version(run: Run) -> str:
    """capsim's `engine_version` for the run's vLLM release."""
    return "vllm-0.5" if run.vllm_version.startswith("0.5") else "vllm-0.6"


def has_engine_version() -> bool:
    from sim.config.backends import GpuPoolSpec

    return "engine_version" in GpuPoolSpec.model_fields


def has_scheduler_steps() -> bool:
    from sim.config.backends import GpuPoolSpec

    return "num_scheduler_steps" in GpuPoolSpec.model_fields


def pool_spec(run: Run, steps: int | None, as_served: bool = False) -> GpuPoolSpec:
    """The pool replaying `run`: with `as_served`, also the run's engine release (`engine_version`)."""
    from sim.config.backends import GpuPoolSpec

    spec = {
        "gpu": run.gpu,
        "model": run.model,
        "quantization": run.quantization,
        "tensor_parallel": run.tp,
        "max_batch": 256,  # vLLM's max_num_seqs
        "kv_policy": "paged",
        "kv_block_tokens": 16,
        "gpu_memory_utilization": 0.95,
        "max_prefill_tokens": max(run.max_model_len, 2048),  # v0 without chunked prefill: max_num_batched_tokens
        "scheduler": "v0",
    }
    if steps is not None:
        spec["num_scheduler_steps"] = steps
    if as_served:
        spec["engine_version"] = engine_version(run)
    return GpuPoolSpec.model_validate(spec)


@dataclass(frozen=True)
class Replay:
    tpot_ms: float
    ttft_ms: float
    throughput_rps: float


# A burst sent at once reaches the engine in an order the client does not set (in the 70B run on 4 x H100 the
# first prompts prefilled are about the 215th to 260th sent), and with 320 prompts the mean TPOT depends on which
# short answers are prefilled early (they wait longest for the first decode round): the replay averages ORDERS
# seeded random orders (0: the file's order).
ORDERS = 16


def replay(run: Run, steps: int | None = None, as_served: bool = False, orders: int | None = None) -> Replay:
    """The run replayed all at once on one simulated server, the mean over `orders` seeded random orders of its
    requests (0: the file's order); deterministic."""
    from backends.gpu.engine_bench import serve_benchmark

    ins = np.maximum(1, np.asarray(run.input_lens, dtype=np.int64))
    outs = np.maximum(1, np.asarray(run.output_lens, dtype=np.int64))  # 0 recorded: one (EOS) token generated
    spec = pool_spec(run, steps, as_served)
    n = len(ins)
    orders = ORDERS if orders is None else orders
    perms = [np.random.default_rng(k).permutation(n) for k in range(orders)] if orders else [np.arange(n)]
    rs = [serve_benchmark(spec, ins[p], outs[p], math.inf, np.random.default_rng(0)) for p in perms]
    return Replay(
        float(np.mean([r.tpot_mean_s for r in rs])) * 1e3,
        float(np.mean([r.ttft_mean_s for r in rs])) * 1e3,
        float(np.mean([r.throughput_rps for r in rs])),
    )


def _err(sim: float, meas: float) -> float:
    return sim / meas - 1.0


def table(runs: list[Run], own_steps: bool) -> tuple[list[str], list[dict]]:
    head = "| GPU | model | TP | dtype | vLLM (steps) | prompts | in fit | measured TPOT ms | sim TPOT ms (err) |"
    sep = "|---|---|---|---|---|---|---|---|---|"
    if own_steps:
        head += " sim as served TPOT ms (err) |"
        sep += "---|"
    head += " measured req/s | sim req/s (err) |"
    sep += "---|---|"
    if own_steps:
        head += " sim as served req/s (err) |"
        sep += "---|"
    rows, recs = [head, sep], []
    for run in runs:
        one = replay(run, 1 if own_steps else None)
        own = replay(run, run.scheduler_steps, has_engine_version()) if own_steps else None
        rec = {"run": run, "one": one, "own": own}
        recs.append(rec)
        cells = [
            run.gpu,
            run.model,
            str(run.tp),
            run.quantization,
            f"{run.vllm_version} ({run.scheduler_steps})",
            str(run.num_prompts),
            fit_role(run) or "no",
            f"{run.tpot_ms:.2f}",
            f"{one.tpot_ms:.2f} ({_err(one.tpot_ms, run.tpot_ms):+.1%})",
        ]
        if own is not None:
            cells.append(f"{own.tpot_ms:.2f} ({_err(own.tpot_ms, run.tpot_ms):+.1%})")
        cells += [
            f"{run.throughput_rps:.3f}",
            f"{one.throughput_rps:.3f} ({_err(one.throughput_rps, run.throughput_rps):+.1%})",
        ]
        if own is not None:
            cells.append(f"{own.throughput_rps:.3f} ({_err(own.throughput_rps, run.throughput_rps):+.1%})")
        rows.append("| " + " | ".join(cells) + " |")
    return rows, recs


def summary(recs: list[dict], own_steps: bool) -> list[str]:
    """Mean and worst TPOT error and mean throughput error per group: family, TP, engine, load, all."""
    variants = [("one", "1 step")] + ([("own", "as served")] if own_steps else [])
    keys = (
        lambda r: f"{r.gpu} {'MoE' if r.model.startswith('mixtral') else 'dense'} {r.quantization}",
        lambda r: f"TP {r.tp}",
        lambda r: f"vLLM {r.vllm_version} ({r.scheduler_steps} steps)",
        lambda r: f"{r.num_prompts} prompts",
        lambda r: f"in fit: {fit_role(r)}" if fit_role(r) else "held out",
        lambda r: (
            f"held out: {'MoE' if r.model.startswith('mixtral') else 'dense'} vLLM {r.vllm_version}"
            if not fit_role(r)
            else None
        ),
        lambda r: "all",
    )
    head = "| group | runs |"
    sep = "|---|---|"
    for _, label in variants:
        head += f" TPOT err mean ({label}) | TPOT err worst ({label}) | TPOT within 15% ({label}) |"
        head += f" req/s err mean ({label}) |"
        sep += "---|---|---|---|"
    rows = [head, sep]
    for key in keys:
        groups: dict[str, list[dict]] = {}
        for rec in sorted(recs, key=lambda m: (key(m["run"]) or "", m["run"].name)):
            name = key(rec["run"])
            if name is not None:
                groups.setdefault(name, []).append(rec)
        for name in sorted(groups, key=_natural):
            members = groups[name]
            cells = [name, str(len(members))]
            for v, _ in variants:
                te = np.array([_err(m[v].tpot_ms, m["run"].tpot_ms) for m in members])
                he = np.array([_err(m[v].throughput_rps, m["run"].throughput_rps) for m in members])
                worst = te[np.argmax(np.abs(te))]
                within = f"{int(np.sum(np.abs(te) <= 0.15))}/{len(te)}"
                cells += [f"{te.mean():+.1%}", f"{worst:+.1%}", within, f"{he.mean():+.1%}"]
            rows.append("| " + " | ".join(cells) + " |")
    return rows


def _natural(text: str) -> list:
    """Sort key: numbers in the text compare as numbers (TP 2 before TP 8, 10 prompts before 320)."""
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", text)]


def render(runs: list[Run], own_steps: bool) -> str:
    rows, recs = table(runs, own_steps)
    return "\n".join(rows) + "\n\n" + "\n".join(summary(recs, own_steps)) + "\n"


def doc_block(doc: Path) -> str:
    text = doc.read_text()
    start, end = text.index(DOC_BEGIN) + len(DOC_BEGIN), text.index(DOC_END)
    return text[start:end].strip("\n") + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check-doc", type=Path, help="exit 1 unless this file's validate_lambda block equals the output")
    ap.add_argument("--orders", type=int, help=f"random orders averaged (0: the file's order; default {ORDERS})")
    args = ap.parse_args()
    if args.orders is not None:
        globals()["ORDERS"] = args.orders
    out = render(load_runs(), has_scheduler_steps())
    if args.check_doc is not None:
        if doc_block(args.check_doc) != out:
            print(f"{args.check_doc}: the validate_lambda table differs from a fresh run", file=sys.stderr)
            return 1
        return 0
    print(out, end="")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
