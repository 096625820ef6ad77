"""`capsim calibrate FILES... --gpu G --model M [--tp N] --out PROFILE.yaml`: fit a deployment profile.

Reads vLLM benchmark results (backends/models/bench_results.py), fits the named efficiency factors by
replaying every run on one simulated server (backends/models/serving_fit.py), and writes the profile
(backends/models/profile.py): all factors, the fitted ones, the residual table of every measured quantity
(fitted and held out) and the inputs' provenance. Prints the residual table as Markdown.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import asdict
from pathlib import Path
from typing import Any

import typer

from sim.app.options import EXIT_OK, EXIT_USAGE, err

UNITS = {"mean_tpot_ms": "ms", "mean_ttft_ms": "ms", "throughput_rps": "req/s"}
NAMES = {"mean_tpot_ms": "mean TPOT", "mean_ttft_ms": "mean TTFT", "throughput_rps": "request throughput"}


def pool_spec(
    gpu: str,
    model: str,
    tp: int,
    max_batch: int,
    quantization: str,
    max_prefill_tokens: int = 8192,
    num_scheduler_steps: int = 1,
) -> Any:
    """The benchmarked deployment as a one-server pool with vLLM's defaults (paged KV, blocks of 16; chunked
    prefill of `max_prefill_tokens` per iteration, 0: none; with `num_scheduler_steps` > 1, vLLM v0.6's
    multi-step scheduling, where `max_prefill_tokens` caps a prefill step's prompt tokens)."""
    from sim.config.backends import GpuPoolSpec

    model_value: Any = {"hf_config": str(Path(model).resolve())} if model.endswith(".json") else model
    return GpuPoolSpec.model_validate(
        {
            "servers": 1,
            "gpu": gpu,
            "model": model_value,
            "tensor_parallel": tp,
            "max_batch": max_batch,
            "quantization": quantization,
            "kv_policy": "paged",
            "kv_block_tokens": 16,
            "max_prefill_tokens": max_prefill_tokens or None,
            "num_scheduler_steps": num_scheduler_steps,
        }
    )


def rate_label(rate: float) -> str:
    return "inf" if math.isinf(rate) else f"{rate:g}"


def markdown_table(rows: list[Any]) -> list[str]:
    out = [
        "| file | request rate (req/s) | quantity | measured | simulated | error | in fit |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        unit = UNITS[r.quantity]
        out.append(
            f"| {r.point.source} | {rate_label(r.point.request_rate)} | {NAMES[r.quantity]} | {r.measured:.4g} {unit} "
            f"| {r.simulated:.4g} {unit} | {r.error:+.1%} | {'yes' if r.in_fit else 'no'} |"
        )
    return out


def run_calibrate(
    files: list[Path],
    holdout: list[Path],
    gpu: str,
    model: str,
    tp: int,
    out: Path,
    lengths: str,
    fit: str,
    samples: int,
    seed: int,
    max_batch: int,
    quantization: str,
    max_prefill_tokens: int = 8192,
    num_scheduler_steps: int = 1,
) -> int:
    from pydantic import ValidationError

    from backends.gpu.catalog import catalog_problems, efficiency, gpu_of, model_of
    from backends.models.bench_results import LENGTH_SHAPES, BenchFileError, read_bench_file
    from backends.models.profile import DeploymentProfile
    from backends.models.serving_fit import fit_efficiency, residuals
    from sim.core.atomic import UnsafePath, write_text_atomic
    from sim.core.version import __version__
    from sim.engine import yaml12

    if lengths not in LENGTH_SHAPES:
        err(f"--lengths must be one of {', '.join(LENGTH_SHAPES)}, got {lengths!r}")
        return EXIT_USAGE
    try:
        spec = pool_spec(gpu, model, tp, max_batch, quantization, max_prefill_tokens, num_scheduler_steps)
    except ValidationError as exc:
        for e in exc.errors():
            err(f"--{'.'.join(str(x) for x in e['loc'][:1])}: {e['msg']}")
        return EXIT_USAGE
    problems = catalog_problems(spec)
    if problems:
        for path, msg in problems:
            err(f"{path.replace('backends.gpu_pool.', '--')}: {msg}")
        return EXIT_USAGE
    if model_of(spec).is_moe:
        err(f"--model: {model_of(spec).name} is a mixture-of-experts model; calibrate fits dense models only (yet)")
        return EXIT_USAGE
    try:
        fit_files = [read_bench_file(f) for f in files]
        held_files = [read_bench_file(f) for f in holdout]
    except BenchFileError as exc:
        err(str(exc))
        return EXIT_USAGE
    names = tuple(x.strip() for x in fit.split(",") if x.strip())
    points = [p for f in fit_files for p in f.points]
    held = [p for f in held_files for p in f.points]
    start = efficiency(gpu_of(spec).family)
    typer.echo(
        f"fitting {', '.join(names)} to {len(points)} benchmark run(s) of {gpu_of(spec).name} x {tp} + "
        f"{model_of(spec).name} ({samples} replay(s) each)...",
        err=True,
    )
    try:
        result = fit_efficiency(spec, start, points, names, lengths, samples, seed)
    except ValueError as exc:
        err(str(exc))
        return EXIT_USAGE
    rows = result.residuals + (residuals(spec, result.efficiency, held, lengths, samples, seed, False) if held else [])
    g = gpu_of(spec)
    profile = DeploymentProfile.model_validate(
        {
            "capsim_profile": 1,
            "gpu": g.name,
            "family": g.family,
            "model": model_of(spec).name,
            "tensor_parallel": tp,
            "max_batch": max_batch,
            "max_prefill_tokens": max_prefill_tokens or None,
            "num_scheduler_steps": num_scheduler_steps,
            "lengths": lengths,
            "samples": samples,
            "efficiency": asdict(result.efficiency),
            "fitted": list(names),
            "loss": result.loss,
            "residuals": [
                {
                    "source": r.point.source,
                    "request_rate": rate_label(r.point.request_rate),
                    "quantity": r.quantity,
                    "measured": r.measured,
                    "simulated": r.simulated,
                    "error": r.error,
                    "in_fit": r.in_fit,
                }
                for r in rows
            ],
            "inputs": [
                {"file": f.path.name, "sha256": f.sha256, "points": len(f.points), "role": role, "notes": f.notes}
                for role, group in (("fit", fit_files), ("holdout", held_files))
                for f in group
            ],
            "capsim_version": __version__,
            "created_utc": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        }
    )
    header = f"# capsim deployment profile (capsim calibrate): use it with backends.gpu_pool.profile: {out.name}\n"
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(out, header + yaml12.dump(profile.model_dump(mode="json")))
    except (OSError, UnsafePath) as exc:
        err(f"--out {out}: cannot write ({exc})")
        return EXIT_USAGE
    eff = result.efficiency
    typer.echo(
        "fitted: " + ", ".join(f"{n}={getattr(eff, n):.4g}" for n in names) + f" (loss {result.loss:.3g}, "
        f"{result.evaluations} evaluations)"
    )
    typer.echo("\n".join(markdown_table(rows)))
    typer.echo(str(out))
    return EXIT_OK


def calibrate(
    files: list[Path] = typer.Argument(..., metavar="FILES", help="vLLM `bench serve --save-result` JSON or CSV"),
    gpu: str = typer.Option(..., "--gpu", help="catalog GPU the benchmark ran on (h100, a100-80gb, ...)"),
    model: str = typer.Option(..., "--model", help="catalog model name, or a Hugging Face config.json"),
    tp: int = typer.Option(1, "--tp", min=1, max=64, help="tensor-parallel GPUs per server"),
    out: Path = typer.Option(..., "--out", help="the profile YAML to write"),
    holdout: list[Path] = typer.Option(None, "--holdout", help="result files to check the fit on, not fit to"),
    lengths: str = typer.Option("constant", "--lengths", help="constant | sharegpt: lengths when a file has none"),
    fit: str = typer.Option("overhead_s,per_seq_s", "--fit", help="comma-separated efficiency factors to fit"),
    samples: int = typer.Option(2, "--samples", min=1, max=50, help="replays per benchmark run (averaged)"),
    seed: int = typer.Option(0, "--seed", min=0, help="root seed of the replays"),
    max_batch: int = typer.Option(256, "--max-batch", min=1, help="the engine's max_num_seqs (vLLM: 256)"),
    quantization: str = typer.Option("bf16", "--quantization", help="bf16 | fp8 | int8 | int4 (weights)"),
    max_prefill_tokens: int = typer.Option(
        8192, "--max-prefill-tokens", min=0, help="the engine's max_num_batched_tokens (0: no chunked prefill)"
    ),
    num_scheduler_steps: int = typer.Option(
        1,
        "--num-scheduler-steps",
        min=1,
        max=1024,
        help="the engine's --num-scheduler-steps (vLLM v0.6 multi-step scheduling; 1: every step)",
    ),
) -> None:
    """Fit a deployment profile (efficiency factors) to serving-benchmark results; use it with
    backends.gpu_pool.profile."""
    code = run_calibrate(
        files,
        holdout or [],
        gpu,
        model,
        tp,
        out,
        lengths,
        fit,
        samples,
        seed,
        max_batch,
        quantization,
        max_prefill_tokens,
        num_scheduler_steps,
    )
    raise typer.Exit(code)
