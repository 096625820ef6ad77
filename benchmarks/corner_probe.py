"""Probe: the calibrated H100 corner's all-at-once misses (issue 16), replayed several ways; nothing here is kept.

The published vLLM v0.6.0 runs (backends/models/published/*.csv, `--num-scheduler-steps 10`) replayed as
`capsim calibrate` replays them (backends/models/serving_fit.residuals: one server, max_batch 256, paged KV, 8,192
prompt tokens a prefill step, multi-step rounds of 10), with the factors of a profile (default: the refit of
docs/calibration.md's "now" column, rounded as printed there), in these variants:

- `as calibrated`: the profile's explicit iteration, no extra cost per prefill-only step (what the docs' table shows);
- `+ prefill step`: the same plus catalog.MULTISTEP_PREFILL_PROMPT_S (1.87 ms) per prompt of a prefill-only step,
  charged as the LambdaLabs replay charges it (benchmarks/validate_lambda.py);
- `catalog N=10`: the catalog's own factors (fitted with one scheduler step) and its derived iteration with
  num_scheduler_steps 10: what a pool gets from `gpu: h100, model: llama-3-8b, num_scheduler_steps: 10`, the term
  included;
- `max_batch 512`: `+ prefill step` with max_num_seqs 512 (the published configuration does not say 256; a
  hypothesis, see the bound below).

Also the occupancy bound: between its first and last token a request is in the engine's running set (no request is
preempted here: 256 x 718 tokens is under half the KV cache), so the sum over requests of e2e - TTFT is at most
max_batch x duration. For constant output lengths that sum is mean TPOT x (out - 1) x requests exactly, so the
largest mean TPOT any replay with max_batch B can give is B x duration / (requests x (out - 1)); for ShareGPT
(per-request ratios) the same bound holds for the token-weighted TPOT, printed for reference.

Run:  PYTHONPATH=. python benchmarks/corner_probe.py [--samples 4] [--profile results/h100-profile.yaml]
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PUBLISHED = ROOT / "backends" / "models" / "published"
# docs/calibration.md, "Every published point", the refit as configured (N = 10), as printed there
DOC_REFIT = {"overhead_s": 4.35e-3, "per_seq_s": 9.6e-6, "attention": 0.678}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=int, default=2, help="replays per run (calibrate's default 2)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--profile", default=None, help="a profile from capsim calibrate (default: the docs' refit)")
    ap.add_argument("--refit", action="store_true", help="also refit under each hypothesis (about 3 minutes)")
    args = ap.parse_args()
    import numpy as np

    from backends.gpu import batching, catalog
    from backends.gpu.catalog import efficiency, gpu_of
    from backends.models.bench_results import read_bench_file
    from backends.models.serving_fit import pool_with, simulate_point
    from sim.app.calibrate_command import pool_spec

    t0 = time.perf_counter()
    spec = pool_spec("h100", "llama-3-8b", 1, 256, "bf16", 8192, 10)
    base = efficiency(gpu_of(spec).family)
    if args.profile:
        from backends.models.profile import read_profile

        prof = read_profile(args.profile)
        eff = dataclasses.replace(base, **{k: getattr(prof.efficiency, k) for k in DOC_REFIT})
    else:
        eff = dataclasses.replace(base, **DOC_REFIT)
    model = batching.prefill_prompt_s

    def charged(s):  # the LambdaLabs replay's charge: every multi-step pool pays it, explicit iteration or not
        return catalog.MULTISTEP_PREFILL_PROMPT_S if s.num_scheduler_steps > 1 else 0.0

    variants = {
        "as calibrated": (pool_with(spec, eff), model),
        "+ prefill step": (pool_with(spec, eff), charged),
        "catalog N=10": (spec, model),
        "max_batch 512": (pool_with(spec.model_copy(update={"max_batch": 512}), eff), charged),
    }
    print(
        f"factors: overhead_s {eff.overhead_s * 1e3:.3f} ms, per_seq_s {eff.per_seq_s * 1e6:.2f} us, attention "
        f"{eff.attention:.3f}; {args.samples} replay(s) a run"
    )
    head = " | ".join(f"{v}: sim / err" for v in variants)
    print(f"| run | rate | quantity | measured | {head} |")
    print("|---|---|---|---|" + "---|" * len(variants))
    for path in sorted(PUBLISHED.glob("*.csv")):
        points = read_bench_file(path).points
        for i, p in enumerate(points):
            sims = {}
            for name, (pool, fn) in variants.items():
                batching.prefill_prompt_s = fn
                try:
                    sims[name] = simulate_point(pool, p, i, "sharegpt", args.samples, args.seed)
                finally:
                    batching.prefill_prompt_s = model
            quantities = [("mean TPOT", "tpot_ms", p.measured.get("mean_tpot_ms"))]
            quantities.append(("mean TTFT", "ttft_ms", p.measured.get("mean_ttft_ms")))
            if math.isinf(p.request_rate):
                quantities.append(("req/s", "throughput_rps", p.completed / p.duration_s))
            for label, attr, measured in quantities:
                if measured is None:
                    continue
                cells = " | ".join(
                    f"{getattr(s, attr):.4g} / {getattr(s, attr) / measured - 1:+.1%}" for s in sims.values()
                )
                rate = "inf" if math.isinf(p.request_rate) else f"{p.request_rate:g}"
                print(f"| {p.source} | {rate} | {label} | {measured:.4g} | {cells} |")
            if math.isinf(p.request_rate) and "mean_tpot_ms" in p.measured:
                for batch in (256, 512):
                    bound = batch * p.duration_s / (p.completed * (p.output_mean - 1)) * 1e3
                    print(
                        f"  occupancy bound, max_batch {batch}: mean TPOT <= {bound:.1f} ms"
                        f" (published {p.measured['mean_tpot_ms']:g} ms; exact for constant lengths)"
                    )
    spread(spec, eff, charged, args.seed, np, batching, model)
    detail(pool_with(spec, eff), np)
    if args.refit:
        refit(spec, base, model)
    print(f"({time.perf_counter() - t0:.0f} s)")


def detail(pool, np) -> None:
    """(c), (d): one replay of each all-at-once run as calibrated, per request: mean of the per-request TPOTs (vLLM's
    mean TPOT) against the token-weighted one, the share of the decode spans in the batch's capacity, and the
    prefill-only steps (their time, and how much of it falls after the first decode round: later waves' prefills
    that stall the running decodes)."""
    from backends.gpu import engine_bench, multistep
    from backends.models.bench_results import read_bench_file
    from backends.models.serving_fit import point_lengths

    for name in ("sharegpt", "decode-heavy"):
        p = [
            q
            for q in read_bench_file(PUBLISHED / f"vllm-v0.6.0_h100_llama-3-8b_{name}.csv").points
            if math.isinf(q.request_rate)
        ][0]
        got, steps, first_round = {}, [], []
        lat0, pf0, dr0 = engine_bench.latencies, multistep.prefill_step, multistep.decode_round

        def grab(b, served, _l=lat0, _got=got):
            _got["b"], _got["lat"] = b, _l(b, served)
            return _got["lat"]

        def pf(engine, s, now, admitted, _f=pf0, _steps=steps):
            _f(engine, s, now, admitted)
            _steps.append((now, s.prefill_s + s.iteration_s))

        def dr(engine, s, now, _f=dr0, _first=first_round):
            if not _first:
                _first.append(now)
            _f(engine, s, now)

        engine_bench.latencies, multistep.prefill_step, multistep.decode_round = grab, pf, dr
        try:
            rng = np.random.default_rng(np.random.SeedSequence(0, spawn_key=(3, 0)))
            ins, outs = point_lengths(p, "sharegpt", rng)
            r = engine_bench.serve_benchmark(pool, ins, outs, math.inf, rng)
        finally:
            engine_bench.latencies, multistep.prefill_step, multistep.decode_round = lat0, pf0, dr0
        lat, b = got["lat"], got["b"]
        o = b.output_tokens[b.output_tokens >= 2] - 1
        span = lat.tpot_s * o
        short = o <= 9
        pf_total = sum(d for _, d in steps)
        pf_late = sum(d for t, d in steps if t >= first_round[0])
        print(
            f"{name} inf, one replay as calibrated: mean TPOT {lat.tpot_s.mean() * 1e3:.2f} ms, token-weighted "
            f"{span.sum() / o.sum() * 1e3:.2f} ms; outputs of 2-10 tokens {short.mean():.1%} of requests, their mean "
            f"TPOT {lat.tpot_s[short].mean() * 1e3 if short.any() else float('nan'):.1f} ms; decode spans "
            f"{span.sum() / (pool.max_batch * r.duration_s):.1%} of max_batch x duration ({r.duration_s:.2f} s); "
            f"{len(steps)} prefill-only steps, {pf_total:.2f} s, {pf_late:.2f} s of them after the first decode round"
        )


def refit(spec, base, model) -> None:
    """The refit (overhead_s, per_seq_s, attention on the ShareGPT and decode-heavy runs, prefill-heavy held out, as
    docs/calibration.md's command) under each hypothesis."""
    import dataclasses as dc

    from backends.gpu import batching, catalog
    from backends.models.bench_results import read_bench_file
    from backends.models.serving_fit import fit_efficiency, residuals

    fit = [
        q
        for n in ("sharegpt", "decode-heavy")
        for q in read_bench_file(PUBLISHED / f"vllm-v0.6.0_h100_llama-3-8b_{n}.csv").points
    ]
    held = read_bench_file(PUBLISHED / "vllm-v0.6.0_h100_llama-3-8b_prefill-heavy.csv").points
    cases = [
        (256, 0.0, None),
        (256, catalog.MULTISTEP_PREFILL_PROMPT_S, None),
        (512, 0.0, None),
        (512, catalog.MULTISTEP_PREFILL_PROMPT_S, None),
        (256, 0.0, 0.5),
        (512, 0.0, 0.5),
    ]
    for batch, term, pc in cases:
        batching.prefill_prompt_s = lambda s, t=term: t if s.num_scheduler_steps > 1 else 0.0
        try:
            sp = spec.model_copy(update={"max_batch": batch})
            start = base if pc is None else dc.replace(base, prefill_compute=pc)
            r = fit_efficiency(sp, start, fit, ["overhead_s", "per_seq_s", "attention"], "sharegpt", 2, 0)
            rows = r.residuals + residuals(sp, r.efficiency, held, "sharegpt", 2, 0, False)
        finally:
            batching.prefill_prompt_s = model
        e = r.efficiency
        errs = ", ".join(
            f"{x.point.source.split('_')[-1][:-4]} {x.point.request_rate:g} {x.quantity[:-3].replace('mean_', '')}"
            f" {x.error:+.1%}"
            for x in rows
        )
        print(
            f"refit max_batch {batch}, prompt cost {term * 1e3:.2f} ms, prefill_compute {e.prefill_compute:.2f}: "
            f"overhead_s {e.overhead_s * 1e3:.2f} ms, per_seq_s {e.per_seq_s * 1e6:.2f} us, attention "
            f"{e.attention:.3f}, loss {r.loss:.4f}; {errs}"
        )


def spread(spec, eff, charged, seed, np, batching, model) -> None:
    """(b) the order and draw of the 500 ShareGPT prompts: 8 replays' spread (each a random draw in random order)."""
    from backends.models.bench_results import read_bench_file
    from backends.models.serving_fit import pool_with, simulate_point

    p = [
        q
        for q in read_bench_file(PUBLISHED / "vllm-v0.6.0_h100_llama-3-8b_sharegpt.csv").points
        if math.isinf(q.request_rate)
    ][0]
    batching.prefill_prompt_s = charged
    try:
        sims = [simulate_point(pool_with(spec, eff), p, 3, "sharegpt", 1, seed + k) for k in range(8)]
    finally:
        batching.prefill_prompt_s = model
    for attr in ("tpot_ms", "ttft_ms", "throughput_rps"):
        v = np.array([getattr(s, attr) for s in sims])
        print(
            f"ShareGPT inf, 8 draws (+ prefill step): {attr} mean {v.mean():.4g}, sd {v.std(ddof=1):.3g}, "
            f"range {v.min():.4g}-{v.max():.4g}"
        )


if __name__ == "__main__":
    main()
