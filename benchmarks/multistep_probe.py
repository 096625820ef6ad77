"""Probe: candidate per-round terms of vLLM 0.6.0's multi-step scheduling, tried on the LambdaLabs runs, not kept.

Four terms, each exactly zero for a pool with `num_scheduler_steps: 1` (they act only in backends/gpu/multistep.py's
rounds), added here around the model (docs/calibration.md, "Multi-step round costs"); the model's own `pf_seq`
(catalog.prefill_prompt_s, fitted here) is set to 0 first, so every row is the model without it plus the row's terms:

- `pf_step`: seconds per prefill-only step (eager-mode kernel launches, the Python input preparation of a prefill);
  fits these bursts as well as `pf_seq` but not vLLM's published Poisson runs (benchmarks/corner_probe.py);
- `pf_seq`: seconds per prompt in a prefill-only step (a new sequence group's bookkeeping); kept
  (backends/gpu/efficiency.py MULTISTEP_PREFILL_PROMPT_S);
- `round_seq`: seconds per running sequence, once per decode round (scheduling and output processing at the round's
  end, serialised with the GPU);
- `step_seq`: seconds per running sequence taken off every decode step of a round (the family's per-sequence CPU
  cost `per_seq_s`, which async output processing could hide under the GPU inside a round).

Split (named): fitted on the H100 dense vLLM 0.6.0 runs at TP 1 and 2 (9 runs); held out: the other dense vLLM 0.6.0
runs (A100 at every TP, H100 at TP 4 and 8: 22 runs); the Mixtral runs are reported apart. Errors: mean TPOT
replayed as served (benchmarks/validate_lambda.py), simulated / measured - 1.

Run:  PYTHONPATH=. python benchmarks/multistep_probe.py [--grid "{'pf_step': [0, 0.01], 'step_seq': [0, 1.108e-5]}"]
      PYTHONPATH=. python benchmarks/multistep_probe.py --fit     (each term alone fitted on the 9 runs, a few seconds)
(with every term 0 the probe checks that it reproduces validate_lambda's replay)
"""

from __future__ import annotations

import argparse
import ast
import itertools
import sys
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import validate_lambda as vl  # noqa: E402

from backends.gpu import batching, catalog, multistep  # noqa: E402

TERMS = ("pf_step", "pf_seq", "round_seq", "step_seq")
BOUNDS = {"pf_step": 0.05, "pf_seq": 0.01, "round_seq": 2e-3, "step_seq": 1.108e-5}  # step_seq: at most per_seq_s
DEFAULT_GRID = "{'pf_step': [0, 0.005, 0.01, 0.015], 'step_seq': [0, 1.108e-5], 'round_seq': [0, 1e-4]}"


class _Shifted:
    """The batch engine seen by one round with some of its costs shifted; everything else is the engine's."""

    def __init__(self, engine: Any, **shift: float) -> None:
        object.__setattr__(self, "_engine", engine)
        object.__setattr__(self, "_shift", shift)

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._engine, name)
        return value + self._shift[name] if name in self._shift else value

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self._engine, name, value)


def install(pf_step: float = 0.0, pf_seq: float = 0.0, round_seq: float = 0.0, step_seq: float = 0.0) -> None:
    """Replace the pool's round function by one with the terms (all 0: the model as it is)."""

    def start_round(engine: Any, s: Any, now: float, admitted: list) -> None:
        if admitted:  # prefill step: iteration = base + per_seq * prompts + ..., plus pf_step + pf_seq * prompts
            multistep.prefill_step(_Shifted(engine, base=pf_step, per_seq=pf_seq), s, now, admitted)
        else:  # decode round: P = schedule_s (+ round_seq * n), each step base - schedule_s + per_seq * n + ...
            extra = round_seq * len(s.running)
            multistep.decode_round(_Shifted(engine, schedule_s=extra, base=extra, per_seq=-step_seq), s, now)

    batching.start_round = start_round  # type: ignore[assignment]


def dense_fit(run: vl.Run) -> bool:
    return vl.fit_role(run) == vl.PREFILL_FIT


def errors(runs: list[vl.Run]) -> dict[str, tuple[float, float]]:
    out = {}
    for r in runs:
        rep = vl.replay(r, r.scheduler_steps, True)
        out[r.name] = (rep.tpot_ms / r.tpot_ms - 1.0, rep.throughput_rps / r.throughput_rps - 1.0)
    return out


def summary(err: dict[str, tuple[float, float]], runs: list[vl.Run]) -> str:
    e = np.array([err[r.name][0] for r in runs])
    q = np.array([err[r.name][1] for r in runs])
    worst = e[np.argmax(np.abs(e))]
    rms = float(np.sqrt(np.mean(np.log1p(e) ** 2)))
    within = int(np.sum(np.abs(e) <= 0.15))
    return f"{e.mean():+.1%} / {worst:+.1%} / {within}/{len(e)} (rms log {rms:.3f}; req/s {q.mean():+.1%})"


def fit_term(term: str, fit: list[vl.Run]) -> float:
    """The term's value minimising the fit runs' squared log errors of mean TPOT (the others 0)."""
    from scipy.optimize import minimize_scalar

    def loss(x: float) -> float:
        install(**{term: x})
        return float(sum(np.log1p(e) ** 2 for e, _ in errors(fit).values()))

    res = minimize_scalar(loss, bounds=(0.0, BOUNDS[term]), method="bounded", options={"xatol": BOUNDS[term] * 1e-3})
    return float(res.x)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--grid", default=DEFAULT_GRID, help="a dict of term -> values (Python literal)")
    ap.add_argument("--fit", action="store_true", help="fit each term alone on the fit runs, then report it")
    args = ap.parse_args()
    grid = ast.literal_eval(args.grid)
    if set(grid) - set(TERMS):
        ap.error(f"terms: {', '.join(TERMS)}")
    # the terms on top of the model without the one it carries (catalog.prefill_prompt_s, which `pf_seq` is): the
    # fit of `pf_seq` here is the value in backends/gpu/efficiency.py
    catalog.MULTISTEP_PREFILL_PROMPT_S = 0.0  # type: ignore[misc]
    runs = [r for r in vl.load_runs() if r.vllm_version == "0.6.0"]
    dense = [r for r in runs if not r.model.startswith("mixtral")]
    fit = [r for r in dense if dense_fit(r)]
    held = [r for r in dense if not dense_fit(r)]
    moe = [r for r in runs if r.model.startswith("mixtral")]
    model = batching.start_round
    reference = errors(runs)  # the model as it is
    if args.fit:
        try:
            grid = {"none": [0.0]} | {t: [fit_term(t, fit)] for t in TERMS}
        finally:
            batching.start_round = model
        points = [{} if t == "none" else {t: v[0]} for t, v in grid.items()]
    else:
        points = [dict(zip(grid, values, strict=True)) for values in itertools.product(*grid.values())]
    print("| " + " | ".join(TERMS) + " | in fit (9): mean / worst / within 15% | held out (22) | Mixtral 0.6.0 (7) |")
    print("|" + "---|" * (len(TERMS) + 3))
    try:
        for kw in points:
            install(**kw)
            err = errors(runs)
            if not any(kw.values()) and err != reference:
                print("the probe with every term 0 differs from the model", file=sys.stderr)
                return 1
            cells = [f"{kw.get(t, 0.0):g}" for t in TERMS] + [summary(err, fit), summary(err, held), summary(err, moe)]
            print("| " + " | ".join(cells) + " |")
    finally:
        batching.start_round = model
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
