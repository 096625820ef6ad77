"""Stage 1 of the GPU calibration (docs/calibration.md): a GPU family's kernel factors from kernel profiles.

Vidur's profiles (non-attention operators per layer, TP 1/2/4/8, median ms per number of batched tokens;
benchmarks/data/vidur_*_mlp_medians.csv, `PROFILES`) give the time of one iteration's layers:

    t(n, tp) = L*layer_bytes/(tp*BW*memory) + L*kernel_s + n*(2*L*layer_params/(tp*FLOPS*compute)
               + L*act_bytes_per_hidden*hidden/(BW*memory)),

with compute = decode_compute for n <= 256 (decode batches: small GEMMs, partly hidden under the weight
stream) and prefill_compute for n > 256. Five factors per GPU family, fitted over every profile of that family
(Hopper: Llama-2-7B and Llama-2-70B on H100; Ampere: Llama-3-8B on A100 80GB), decode rows first (fit_stage1).
Stage 2 (the engine's CPU costs from serving benchmarks) is
backends/models/serving_fit.py.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd

from backends.gpu.catalog import GPUS, MODELS, Efficiency, layer_seconds
from backends.models.spec import ModelSpec

DECODE_MAX_TOKENS = 256
# decode_compute is an effective factor: part of a decode batch's GEMM work hides under the weight stream, so the
# marginal cost of one more token can be below its FLOPs at peak (a factor above 1)
MAX_DECODE_COMPUTE = 4.0
MAX_TOKENS = 4096  # the profiles' common range (the A100 profile goes to 32,768: beyond any prefill budget here)
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

DATA = Path(__file__).resolve().parents[2] / "benchmarks" / "data"
# Llama-2-70B is not a catalog model (its shape is the profile's; 80 layers, vocabulary 32,000)
LLAMA2_70B = ModelSpec("llama-2-70b", "llama", 80, 8192, 64, 8, 128, 28672, 32000, False, params_b=68.98)


@dataclass(frozen=True)
class KernelProfile:
    """One Vidur profile: the GPU it was measured on, the model it ran, the file."""

    gpu: str
    model: ModelSpec
    path: Path

    @property
    def family(self) -> str:
        return GPUS[self.gpu].family

    @property
    def label(self) -> str:
        return f"{self.gpu} {self.model.name}"


PROFILES = (
    KernelProfile("h100", MODELS["llama-2-7b"], DATA / "vidur_h100_llama2_7b_mlp_medians.csv"),
    KernelProfile("h100", LLAMA2_70B, DATA / "vidur_h100_llama2_70b_mlp_medians.csv"),
    KernelProfile("a100-80gb", MODELS["llama-3-8b"], DATA / "vidur_a100_llama3_8b_mlp_medians.csv"),
)


def family_profiles(family: str) -> tuple[KernelProfile, ...]:
    return tuple(p for p in PROFILES if p.family == family)


def load_vidur(prof: KernelProfile) -> pd.DataFrame:
    """A profile's rows up to MAX_TOKENS with `t_s`, the layers' time per iteration in seconds, and `profile`."""
    d = pd.read_csv(prof.path)
    d = d[d["num_tokens"] <= MAX_TOKENS].reset_index(drop=True)
    shape = (d["n_embd"].iloc[0], d["n_head"].iloc[0], d["n_kv_head"].iloc[0], d["n_expanded_embd"].iloc[0])
    m = prof.model
    if shape != (m.hidden, m.heads, m.kv_heads, m.intermediate):
        raise ValueError(f"{prof.path.name}: shape {shape} is not {m.name}'s")
    d["t_s"] = sum(d[f"{op}_median_ms"] for op in LAYER_OPS) * m.layers * 1e-3
    d["profile"] = prof.label
    return d


def vidur_predict(eff: Efficiency, prof: KernelProfile, n: np.ndarray, tp: np.ndarray) -> np.ndarray:
    g = GPUS[prof.gpu]
    out = np.empty(len(n))
    for k, (tokens, t) in enumerate(zip(n.tolist(), tp.tolist(), strict=True)):
        compute = eff.decode_compute if tokens <= DECODE_MAX_TOKENS else eff.prefill_compute
        out[k] = layer_seconds(prof.model, g, eff, int(t), tokens, compute)
    return out


def fit_stage1(
    profiles: tuple[KernelProfile, ...], start: Efficiency
) -> tuple[Efficiency, list[tuple[KernelProfile, pd.DataFrame, np.ndarray]]]:
    """One family's kernel factors fitted to its profiles, in two least-squares steps on relative errors: the
    decode rows (n <= 256, what a serving iteration is) give memory, kernel_s, decode_compute and
    act_bytes_per_hidden; then the prefill rows give prefill_compute. Returns the factors (the others from
    `start`) and, per profile, its rows and their relative residuals (predicted / measured - 1)."""
    from scipy.optimize import least_squares

    data = [(p, load_vidur(p)) for p in profiles]

    def rel(eff: Efficiency, decode: bool | None = None) -> list[np.ndarray]:
        out = []
        for p, d in data:
            if decode is not None:
                d = d[(d["num_tokens"] <= DECODE_MAX_TOKENS) == decode]
            n, tp = d["num_tokens"].to_numpy(float), d["num_tensor_parallel_workers"].to_numpy(int)
            out.append(vidur_predict(eff, p, n, tp) / d["t_s"].to_numpy() - 1.0)
        return out

    def decode_eff(x: np.ndarray) -> Efficiency:
        return replace(
            start,
            memory=float(x[0]),
            kernel_s=float(x[1]) * 1e-6,
            decode_compute=float(x[2]),
            act_bytes_per_hidden=float(x[3]),
        )

    r = least_squares(
        lambda x: np.concatenate(rel(decode_eff(x), decode=True)),
        [0.8, 20.0, 0.5, 10.0],
        bounds=([0.05, 0, 0.01, 0], [1, 1000, MAX_DECODE_COMPUTE, 1000]),
    )
    eff = decode_eff(r.x)
    r = least_squares(
        lambda x: np.concatenate(rel(replace(eff, prefill_compute=float(x[0])), decode=False)),
        [0.6],
        bounds=([0.01], [1]),
    )
    eff = replace(eff, prefill_compute=float(r.x[0]))
    return eff, [(p, d, e) for (p, d), e in zip(data, rel(eff), strict=True)]


def stage1_table(fits: list[tuple[KernelProfile, pd.DataFrame, np.ndarray]]) -> list[str]:
    """Residuals per GPU x model x TP x regime (markdown)."""
    rows = [
        "| GPU | model | TP | regime | rows | rms error | mean error | max abs error |",
        "|---|---|---|---|---|---|---|---|",
    ]
    every = []
    for prof, d, res in fits:
        dec = d["num_tokens"].to_numpy() <= DECODE_MAX_TOKENS
        tp = d["num_tensor_parallel_workers"].to_numpy()
        for k in (1, 2, 4, 8):
            for name, mask in (("decode (n ≤ 256)", dec), ("prefill (n > 256)", ~dec)):
                sel = (tp == k) & mask
                e = res[sel]
                if not len(e):
                    continue
                rms, worst = np.sqrt(np.mean(e**2)), np.abs(e).max()
                rows.append(
                    f"| {prof.gpu} | {prof.model.name} | {k} | {name} | {sel.sum()} | {rms:.1%} | {e.mean():+.1%}"
                    f" | {worst:.1%} |"
                )
        every.append(res)
    allr = np.concatenate(every)
    rows.append(
        f"| all | | | | {len(allr)} | {np.sqrt(np.mean(allr**2)):.1%} | {allr.mean():+.1%} | {np.abs(allr).max():.1%} |"
    )
    return rows
