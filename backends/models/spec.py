"""A transformer's shape, read from a Hugging Face `config.json`, and the parameter and byte counts derived from it.

Counted: the attention projections (Q, K, V, O), the gated MLP (three hidden x intermediate matrices) or, in a
mixture-of-experts layer, the router, every routed expert's gated MLP and the shared experts, the embedding
table and the LM head (one matrix when the embeddings are tied). Left out: norms, biases, rotary tables,
attention sinks (well under 0.1% of any model here). Multimodal wrappers are read through their
`text_config`; the vision tower is not counted (it does not take part in decoding).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from backends.models.moe import expected_experts
from backends.models.precision import kv_bytes_per_value, weight_bytes_per_param


class ModelConfigError(ValueError):
    """A config.json that cannot be read as a model capsim understands (the message says why)."""


# model_type -> (family, MoE keys style, tied-embedding default of the transformers config class)
_DENSE = {"llama": False, "mistral": False, "qwen2": False, "qwen3": False, "gemma": True, "gemma2": True,
          "gemma3_text": True}  # fmt: skip
_MOE = {"mixtral": False, "qwen2_moe": False, "qwen3_moe": False, "gpt_oss": False}
_WRAPPERS = {"gemma3"}  # multimodal: the language model is under text_config
_REFUSED = {
    "deepseek_v2": "multi-head latent attention (MLA) is not modelled",
    "deepseek_v3": "multi-head latent attention (MLA) is not modelled",
    "kimi_k2": "multi-head latent attention (MLA) is not modelled",
    "qwen3_next": "linear-attention (gated delta) layers are not modelled",
    "falcon_h1": "state-space (mamba) layers are not modelled",
    "jamba": "state-space (mamba) layers are not modelled",
}
SUPPORTED_ARCHITECTURES = tuple(sorted([*_DENSE, *_MOE, *_WRAPPERS]))


@dataclass(frozen=True)
class ModelSpec:
    name: str
    architecture: str  # the config's model_type
    layers: int
    hidden: int
    heads: int
    kv_heads: int  # < heads: grouped-query attention
    head_dim: int
    intermediate: int  # dense MLP width (gated: three hidden x intermediate matrices)
    vocab: int
    tied_embeddings: bool
    num_experts: int = 0  # routed experts per MoE layer (0: dense)
    experts_per_token: int = 0  # top-k
    moe_intermediate: int = 0  # one routed expert's MLP width
    shared_intermediate: int = 0  # total width of the always-active shared expert(s) of a MoE layer
    moe_layers: int = 0  # layers whose MLP is a mixture of experts (the others are dense)
    params_b: float | None = None  # published parameter count (billions): used for the totals when given
    source: str = ""

    # ---- parameter counts -------------------------------------------------------------------------
    @property
    def is_moe(self) -> bool:
        return self.num_experts > 0

    @property
    def attention_params(self) -> int:
        """Q, K, V, O of one layer."""
        h = self.hidden
        return 2 * h * self.heads * self.head_dim + 2 * h * self.kv_heads * self.head_dim

    @property
    def dense_mlp_params(self) -> int:
        return 3 * self.hidden * self.intermediate

    @property
    def expert_params(self) -> int:
        """One routed expert of one layer."""
        return 3 * self.hidden * self.moe_intermediate

    @property
    def moe_fixed_params(self) -> int:
        """The parts of a MoE layer's MLP every token uses: router and shared experts."""
        return self.hidden * self.num_experts + 3 * self.hidden * self.shared_intermediate

    @property
    def dense_layers(self) -> int:
        return self.layers - self.moe_layers

    @property
    def embedding_params(self) -> int:
        """Embedding table plus LM head (one matrix when tied)."""
        return self.vocab * self.hidden * (1 if self.tied_embeddings else 2)

    @property
    def dense_params(self) -> int:
        """Every layer's parameters a decode iteration streams whatever the batch: attention, dense MLPs, routers
        and shared experts (routed experts excluded)."""
        return (
            self.layers * self.attention_params
            + self.dense_layers * self.dense_mlp_params
            + self.moe_layers * self.moe_fixed_params
        )

    @property
    def layer_params_total(self) -> int:
        """All transformer-layer parameters (every routed expert included)."""
        return self.dense_params + self.moe_layers * self.num_experts * self.expert_params

    @property
    def computed_params(self) -> int:
        return self.layer_params_total + self.embedding_params

    @property
    def total_params(self) -> float:
        return self.params_b * 1e9 if self.params_b is not None else float(self.computed_params)

    @property
    def active_params(self) -> float:
        """Parameters one token uses: dense part, its top-k experts, embeddings and LM head."""
        routed = self.moe_layers * self.experts_per_token * self.expert_params
        return float(self.dense_params + routed + self.embedding_params)

    @property
    def lm_head_params(self) -> int:
        return self.vocab * self.hidden

    @property
    def flop_params(self) -> float:
        """Parameters multiplied per token (2 FLOPs each): the layers' active part and the LM head (the
        embedding table is only gathered)."""
        return float(self.dense_params + self.moe_layers * self.experts_per_token * self.expert_params) + float(
            self.lm_head_params
        )

    def streamed_params(self, tokens: float = 1.0) -> float:
        """Parameters read from HBM by one iteration over `tokens` batched tokens: the dense part, the LM head,
        and the distinct routed experts those tokens touch (uniform routing, backends.models.moe)."""
        fixed = float(self.dense_params + self.lm_head_params)
        if not self.is_moe:
            return fixed
        touched = expected_experts(tokens, self.experts_per_token, self.num_experts)
        return fixed + self.moe_layers * touched * self.expert_params

    # ---- bytes ----------------------------------------------------------------------------------------
    def weight_bytes(self, quantization: str = "bf16") -> float:
        """Bytes of the weights: the transformer layers at the quantization's width, the embedding table and
        LM head kept in bf16 (as vLLM and the usual FP8/GPTQ/AWQ checkpoints keep them)."""
        width = weight_bytes_per_param(quantization)
        if width == 2.0:
            return self.total_params * 2.0
        emb = float(self.embedding_params)
        return emb * 2.0 + (self.total_params - emb) * width

    def kv_bytes_per_token(self, kv_cache_dtype: str = "auto") -> float:
        """K and V of every layer for one token (full attention in every layer: sliding windows not credited)."""
        return 2.0 * self.layers * self.kv_heads * self.head_dim * kv_bytes_per_value(kv_cache_dtype)


# ---- reading config.json --------------------------------------------------------------------------------
def _int(cfg: dict[str, Any], key: str, where: str, *, default: int | None = None, minimum: int = 1) -> int:
    v = cfg.get(key)
    if v is None:
        if default is not None:
            return default
        raise ModelConfigError(f"{where}: missing {key!r}")
    if isinstance(v, bool) or not isinstance(v, int):
        raise ModelConfigError(f"{where}: {key!r} must be an integer, got {v!r}")
    if v < minimum:
        raise ModelConfigError(f"{where}: {key!r} must be >= {minimum}, got {v}")
    return v


def _first_int(cfg: dict[str, Any], keys: tuple[str, ...], where: str) -> int:
    for k in keys:
        if cfg.get(k) is not None:
            return _int(cfg, k, where)
    raise ModelConfigError(f"{where}: missing {' or '.join(repr(k) for k in keys)}")


def _moe_layers(cfg: dict[str, Any], arch: str, layers: int, where: str) -> int:
    if arch in ("qwen2_moe", "qwen3_moe"):
        step = _int(cfg, "decoder_sparse_step", where, default=1)
        only = cfg.get("mlp_only_layers") or []
        if not isinstance(only, list) or not all(isinstance(i, int) and not isinstance(i, bool) for i in only):
            raise ModelConfigError(f"{where}: 'mlp_only_layers' must be a list of layer indices")
        return sum(1 for i in range(layers) if i not in only and (i + 1) % step == 0)
    return layers


def from_hf_config(cfg: dict[str, Any], name: str, where: str | None = None, source: str = "") -> ModelSpec:
    """A ModelSpec from the dict of a Hugging Face config.json; ModelConfigError for what is not understood."""
    where = where or name
    if not isinstance(cfg, dict):
        raise ModelConfigError(f"{where}: a config.json holds a JSON object")
    arch = cfg.get("model_type")
    if not isinstance(arch, str):
        raise ModelConfigError(f"{where}: missing 'model_type' (which architecture is it?)")
    if arch in _WRAPPERS:
        text = cfg.get("text_config")
        if not isinstance(text, dict):
            raise ModelConfigError(f"{where}: {arch} config without a 'text_config' object")
        cfg = {**text, "model_type": text.get("model_type", f"{arch}_text")}
        arch = cfg["model_type"]
    if arch in _REFUSED:
        raise ModelConfigError(f"{where}: model_type {arch!r} is not supported: {_REFUSED[arch]}")
    if arch not in _DENSE and arch not in _MOE:
        raise ModelConfigError(
            f"{where}: unknown model_type {arch!r}; understood: {', '.join(SUPPORTED_ARCHITECTURES)}"
        )
    layers = _int(cfg, "num_hidden_layers", where)
    hidden = _int(cfg, "hidden_size", where)
    heads = _int(cfg, "num_attention_heads", where)
    kv_heads = _int(cfg, "num_key_value_heads", where, default=heads)
    if heads % kv_heads:
        raise ModelConfigError(f"{where}: num_attention_heads ({heads}) is not a multiple of num_key_value_heads "
                               f"({kv_heads})")  # fmt: skip
    head_dim = _int(cfg, "head_dim", where, default=hidden // heads)
    vocab = _int(cfg, "vocab_size", where)
    tied = cfg.get("tie_word_embeddings", _DENSE.get(arch, _MOE.get(arch)))
    if not isinstance(tied, bool):
        raise ModelConfigError(f"{where}: 'tie_word_embeddings' must be true or false, got {tied!r}")
    moe: dict[str, int] = {}
    intermediate = 0
    if arch in _MOE:
        experts = _first_int(cfg, ("num_local_experts", "num_experts"), where)
        top_k = _first_int(cfg, ("num_experts_per_tok", "experts_per_token"), where)
        if top_k > experts:
            raise ModelConfigError(f"{where}: num_experts_per_tok ({top_k}) exceeds the number of experts ({experts})")
        width = _first_int(cfg, ("moe_intermediate_size", "intermediate_size"), where)
        shared = _int(cfg, "shared_expert_intermediate_size", where, default=0, minimum=0)
        moe_layers = _moe_layers(cfg, arch, layers, where)
        if moe_layers < layers:
            intermediate = _int(cfg, "intermediate_size", where)
        moe = {"num_experts": experts, "experts_per_token": top_k, "moe_intermediate": width,
               "shared_intermediate": shared, "moe_layers": moe_layers}  # fmt: skip
    else:
        intermediate = _int(cfg, "intermediate_size", where)
    return ModelSpec(
        name=name,
        architecture=arch,
        layers=layers,
        hidden=hidden,
        heads=heads,
        kv_heads=kv_heads,
        head_dim=head_dim,
        intermediate=intermediate,
        vocab=vocab,
        tied_embeddings=tied,
        source=source,
        **moe,
    )


def load_hf_config(path: str | Path, name: str | None = None) -> ModelSpec:
    """Read a config.json file (no network); ModelConfigError with the path for anything wrong with it."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as e:
        raise ModelConfigError(f"{p}: cannot read ({e.strerror or e})") from None
    try:
        cfg = json.loads(text, parse_constant=_no_constant)
    except ValueError as e:
        raise ModelConfigError(f"{p}: not valid JSON ({e})") from None
    label = name or (p.parent.name if p.name == "config.json" else p.stem)
    return from_hf_config(cfg, label, where=str(p), source=str(p))


def _no_constant(token: str) -> float:
    raise ValueError(f"{token} is not a number JSON allows")
