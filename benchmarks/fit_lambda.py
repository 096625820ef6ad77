"""Fit the two terms the LambdaLabs vLLM runs identify, each on its explicit part of the runs (the rest held out).

- `moe_compute` per GPU family (backends/gpu/efficiency.py): the achieved share of the tensor rate of a MoE
  layer's routed-expert GEMMs (vLLM's fused-MoE kernel). Fit: the family's Mixtral-8x7B runs on vLLM 0.6.0
  (benchmarks/validate_lambda.py `fit_role`); held out: Mixtral-8x22B, the stalled 80-prompt run, vLLM 0.5.4.
- `engine_version: vllm-0.5`'s host cost (`ENGINE_HOST_COST`): the extra CPU seconds per scheduler step and per
  sequence and step of vLLM 0.5.4's driver. Fit: the single-GPU 0.5.4 runs of dense models; held out: TP > 1.

Loss: the sum of squared log errors of the runs' mean TPOT, replayed as served (validate_lambda.replay). Prints
the fitted values (paste them into backends/gpu/efficiency.py) and the in-fit and held-out errors per run.

Run:  PYTHONPATH=. python benchmarks/fit_lambda.py      (about a minute)
"""

from __future__ import annotations

import dataclasses
import math
import sys
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from scipy.optimize import least_squares, minimize_scalar

sys.path.insert(0, str(Path(__file__).resolve().parent))

import validate_lambda as vl  # noqa: E402

from backends.gpu import efficiency as eff_mod  # noqa: E402
from backends.gpu.catalog import gpu_of  # noqa: E402


@contextmanager
def factors(family: str | None = None, moe_compute: float | None = None, host: tuple[float, float] | None = None):
    """The catalog's factors with a trial value in place, restored afterwards."""
    saved_eff, saved_host = dict(eff_mod.EFFICIENCY), dict(eff_mod.ENGINE_HOST_COST)
    try:
        if family is not None:
            eff_mod.EFFICIENCY[family] = dataclasses.replace(eff_mod.EFFICIENCY[family], moe_compute=moe_compute)
        if host is not None:
            eff_mod.ENGINE_HOST_COST["vllm-0.5"] = eff_mod.EngineHostCost(overhead_s=host[0], per_seq_s=host[1])
        yield
    finally:
        eff_mod.EFFICIENCY.clear()
        eff_mod.EFFICIENCY.update(saved_eff)
        eff_mod.ENGINE_HOST_COST.clear()
        eff_mod.ENGINE_HOST_COST.update(saved_host)


def log_errors(runs: list[vl.Run]) -> np.ndarray:
    return np.array([math.log(vl.replay(r, r.scheduler_steps, True).tpot_ms / r.tpot_ms) for r in runs])


def fit_moe(family: str, runs: list[vl.Run]) -> float:
    def loss(x: float) -> float:
        with factors(family, moe_compute=math.exp(x)):
            return float(np.sum(log_errors(runs) ** 2))

    res = minimize_scalar(loss, bounds=(math.log(0.02), math.log(2.0)), method="bounded", options={"xatol": 1e-3})
    return math.exp(res.x)


def fit_host(runs: list[vl.Run]) -> tuple[float, float]:
    def residuals(x: np.ndarray) -> np.ndarray:  # x: (overhead ms, per-sequence us)
        with factors(host=(x[0] * 1e-3, x[1] * 1e-6)):
            return log_errors(runs)

    res = least_squares(residuals, x0=[1.0, 100.0], bounds=([0.0, 0.0], [50.0, 2000.0]), diff_step=1e-2)
    return res.x[0] * 1e-3, res.x[1] * 1e-6


def report(runs: list[vl.Run]) -> None:
    for r in runs:
        rep = vl.replay(r, r.scheduler_steps, True)
        tpot, rps = rep.tpot_ms / r.tpot_ms - 1, rep.throughput_rps / r.throughput_rps - 1
        print(f"  {vl.fit_role(r) or 'held out':14s} {r.name:52s} TPOT {tpot:+.1%}  req/s {rps:+.1%}")


def _family(run: vl.Run) -> str:
    return gpu_of(vl.pool_spec(run, None)).family


def main() -> int:
    runs = vl.load_runs()
    for family in ("ampere", "hopper"):
        fit = [r for r in runs if vl.fit_role(r) == vl.MOE_FIT and _family(r) == family]
        value = fit_moe(family, fit)
        print(f"{family} moe_compute = {value:.4f} (fitted on {len(fit)} runs)")
        with factors(family, moe_compute=value):
            report([r for r in runs if r.model.startswith("mixtral") and _family(r) == family])
    fit = [r for r in runs if vl.fit_role(r) == vl.HOST_FIT]
    overhead_s, per_seq_s = fit_host(fit)
    print(f"vllm-0.5 host: overhead_s = {overhead_s:.4g}, per_seq_s = {per_seq_s:.4g} (fitted on {len(fit)} runs)")
    with factors(host=(overhead_s, per_seq_s)):
        report([r for r in runs if r.vllm_version.startswith("0.5")])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
