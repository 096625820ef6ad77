"""The models capsim ships: each a Hugging Face config.json under hf/ (README there: sources and licences)
with the published parameter totals the counts are checked against (tests/test_models.py)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path

from backends.models.spec import ModelSpec, load_hf_config

HF_DIR = Path(__file__).parent / "hf"


@dataclass(frozen=True)
class Shipped:
    repo: str  # the Hugging Face repository the config.json is that of
    licence: str
    params_b: float  # published total parameters, billions
    active_b: float | None = None  # published active parameters per token (MoE), billions


SHIPPED: dict[str, Shipped] = {
    "llama-3.1-8b": Shipped("meta-llama/Llama-3.1-8B", "Llama 3.1 Community License", 8.03),
    "llama-3.1-70b": Shipped("meta-llama/Llama-3.1-70B", "Llama 3.1 Community License", 70.6),
    "llama-3.1-405b": Shipped("meta-llama/Llama-3.1-405B", "Llama 3.1 Community License", 405.9),
    "qwen2.5-7b": Shipped("Qwen/Qwen2.5-7B", "Apache-2.0", 7.61),
    "qwen2.5-72b": Shipped("Qwen/Qwen2.5-72B", "Qwen License Agreement", 72.7),
    "qwen3-8b": Shipped("Qwen/Qwen3-8B", "Apache-2.0", 8.2),
    "qwen3-32b": Shipped("Qwen/Qwen3-32B", "Apache-2.0", 32.8),
    "qwen3-30b-a3b": Shipped("Qwen/Qwen3-30B-A3B", "Apache-2.0", 30.5, 3.3),
    "qwen3-235b-a22b": Shipped("Qwen/Qwen3-235B-A22B", "Apache-2.0", 235.0, 22.0),
    "mixtral-8x7b": Shipped("mistralai/Mixtral-8x7B-v0.1", "Apache-2.0", 46.7, 12.9),
    "mixtral-8x22b": Shipped("mistralai/Mixtral-8x22B-v0.1", "Apache-2.0", 141.0, 39.0),
    "gpt-oss-20b": Shipped("openai/gpt-oss-20b", "Apache-2.0", 20.91, 3.61),
    "gpt-oss-120b": Shipped("openai/gpt-oss-120b", "Apache-2.0", 116.83, 5.13),
    "gemma-2-9b": Shipped("google/gemma-2-9b", "Gemma Terms of Use", 9.24),
    "gemma-2-27b": Shipped("google/gemma-2-27b", "Gemma Terms of Use", 27.2),
    "gemma-3-27b": Shipped("google/gemma-3-27b-it", "Gemma Terms of Use", 27.4),
}


@cache
def shipped_model(name: str) -> ModelSpec:
    """The ModelSpec of a shipped model (KeyError for a name not in SHIPPED)."""
    s = SHIPPED[name]
    spec = load_hf_config(HF_DIR / f"{name}.json", name)
    return ModelSpec(**{**spec.__dict__, "source": f"{s.repo} config.json ({s.licence})"})
