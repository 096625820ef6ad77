"""Speculative decoding against batch size: TPOT and throughput with and without it, on one server.

Usage: PYTHONPATH=. python benchmarks/speculative_batch.py [--gpu h100] [--model llama-3-70b] [--tp 4]
       [--draft llama-3-8b] [--k 4] [--acceptance 0.7] [--requests 256] [--input 512] [--output 256]

For each max_batch (1, 8, 32, 128, 256) it sends `--requests` identical requests at t = 0 to one warm
server (backends.gpu.engine_bench.serve_benchmark; with max_batch 1, 16 requests tell the rate) and prints
the mean TPOT and the throughput without speculation, with the draft model and with n-gram drafting, and
the ratios. The expected tokens per decode iteration are E = (1 - a^(k+1)) / (1 - a). These are model
outputs (the engine's closed form), not timings: they do not depend on the machine.
"""

from __future__ import annotations

import argparse
import math

import numpy as np

from backends.gpu.engine_bench import serve_benchmark
from backends.gpu.speculative import tokens_per_iteration
from sim.config.backends import GpuPoolSpec


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--gpu", default="h100")
    ap.add_argument("--model", default="llama-3-70b")
    ap.add_argument("--tp", type=int, default=4)
    ap.add_argument("--draft", default="llama-3-8b")
    ap.add_argument("--k", type=int, default=4)
    ap.add_argument("--acceptance", type=float, default=0.7)
    ap.add_argument("--requests", type=int, default=256)
    ap.add_argument("--input", type=int, default=512)
    ap.add_argument("--output", type=int, default=256)
    args = ap.parse_args()
    e = tokens_per_iteration(args.k, args.acceptance)
    print(f"{args.model} on {args.tp} x {args.gpu}, k = {args.k}, acceptance {args.acceptance}: E = {e:.3f}")
    print(
        "| max_batch | TPOT none (ms) | TPOT draft (ms) | TPOT ngram (ms) | throughput draft / none |"
        " ngram / none | events/request none, draft |"
    )
    print("|---|---|---|---|---|---|---|")
    rng = np.random.default_rng(0)
    for max_batch in (1, 8, 32, 128, 256):
        pool = {"servers": 1, "gpu": args.gpu, "model": args.model, "tensor_parallel": args.tp, "max_batch": max_batch}
        n = args.requests if max_batch > 1 else min(args.requests, 16)
        inputs, outputs = np.full(n, args.input), np.full(n, args.output)
        res = {}
        for name, sp in (("none", None), ("draft", args.draft), ("ngram", "ngram")):
            extra = {} if sp is None else {"speculative": {"draft": sp, "k": args.k, "acceptance": args.acceptance}}
            spec = GpuPoolSpec.model_validate({**pool, **extra})
            res[name] = serve_benchmark(spec, inputs, outputs, math.inf, rng)
        a, b, c = res["none"], res["draft"], res["ngram"]
        print(
            f"| {max_batch} | {a.tpot_mean_s * 1e3:.2f} | {b.tpot_mean_s * 1e3:.2f} | {c.tpot_mean_s * 1e3:.2f} |"
            f" {b.throughput_rps / a.throughput_rps:.2f} | {c.throughput_rps / a.throughput_rps:.2f} |"
            f" {a.events_per_request:.2f}, {b.events_per_request:.2f} |"
        )


if __name__ == "__main__":
    main()
