"""Stage 1 of the GPU calibration (docs/calibration.md): the kernel factors from a GPU kernel profile.

Vidur's H100 profile of Llama-2-7B (non-attention operators, TP 1/2/4/8, 1-4096 batched tokens;
benchmarks/data/vidur_h100_llama2_7b_mlp_medians.csv) gives the time of one iteration's layers:

    t(n, tp) = L*layer_bytes/(tp*BW*memory) + L*kernel_s + n*(2*L*layer_params/(tp*FLOPS*compute)
               + L*act_bytes_per_hidden*hidden/(BW*memory)),

with compute = decode_compute for n <= 256 (decode batches: small GEMMs, partly hidden under the weight
stream) and prefill_compute for n > 256. Five factors, fitted by least squares on relative errors. Stage 2
(the engine's CPU costs from serving benchmarks) is backends/models/serving_fit.py.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

from backends.gpu.catalog import GPUS, MODELS, Efficiency, layer_seconds

DECODE_MAX_TOKENS = 256
LAYER_OPS = [
    "input_layernorm",
    "attn_pre_proj",
    "attn_rope",
    "attn_post_proj",
    "post_attention_layernorm",
    "mlp_up_proj",
    "mlp_act",
    "mlp_down_proj",
    "add",
]  # per layer; `emb` (the embedding gather) runs once per model and is left out


def load_vidur(path: Path) -> pd.DataFrame:
    """Vidur's per-operator medians (ms) with `t_s`, the layers' time per iteration in seconds."""
    d = pd.read_csv(path)
    layers = MODELS["llama-2-7b"].layers
    d["t_s"] = sum(d[f"{op}_median_ms"] for op in LAYER_OPS) * layers * 1e-3
    return d


def vidur_predict(eff: Efficiency, n: np.ndarray, tp: np.ndarray) -> np.ndarray:
    m, g = MODELS["llama-2-7b"], GPUS["h100"]
    out = np.empty(len(n))
    for k, (tokens, t) in enumerate(zip(n.tolist(), tp.tolist(), strict=True)):
        compute = eff.decode_compute if tokens <= DECODE_MAX_TOKENS else eff.prefill_compute
        out[k] = layer_seconds(m, g, eff, int(t), tokens, compute)
    return out


def fit_stage1(d: pd.DataFrame, start: Efficiency) -> tuple[Efficiency, np.ndarray]:
    """The five kernel factors fitted to a Vidur profile; returns them (other factors from `start`) and the
    relative residuals."""
    from scipy.optimize import least_squares

    n = d["num_tokens"].to_numpy(float)
    tp = d["num_tensor_parallel_workers"].to_numpy(int)
    t = d["t_s"].to_numpy()

    def with_params(p: np.ndarray) -> Efficiency:
        return replace(
            start,
            memory=float(p[0]),
            kernel_s=float(p[1]) * 1e-6,
            decode_compute=float(p[2]),
            prefill_compute=float(p[3]),
            act_bytes_per_hidden=float(p[4]),
        )

    def resid(p: np.ndarray) -> np.ndarray:
        return (vidur_predict(with_params(p), n, tp) - t) / t

    r = least_squares(resid, [0.8, 20.0, 0.5, 0.6, 10.0], bounds=([0.05, 0, 0.01, 0.01, 0], [1, 1000, 1, 1, 1000]))
    return with_params(r.x), resid(r.x)


def stage1_table(d: pd.DataFrame, res: np.ndarray) -> list[str]:
    rows = ["| TP | regime | rows | rms error | mean error | max abs error |", "|---|---|---|---|---|---|"]
    dec = d["num_tokens"].to_numpy() <= DECODE_MAX_TOKENS
    tp = d["num_tensor_parallel_workers"].to_numpy()
    for k in (1, 2, 4, 8):
        for name, mask in (("decode (n <= 256)", dec), ("prefill (n > 256)", ~dec)):
            sel = (tp == k) & mask
            e = res[sel]
            rms, worst = np.sqrt(np.mean(e**2)), np.abs(e).max()
            rows.append(f"| {k} | {name} | {sel.sum()} | {rms:.1%} | {e.mean():+.1%} | {worst:.1%} |")
    rows.append(
        f"| all | all | {len(res)} | {np.sqrt(np.mean(res**2)):.1%} | {res.mean():+.1%} | {np.abs(res).max():.1%} |"
    )
    return rows
