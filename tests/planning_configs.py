"""Tiny experiment configs for the planning tests (sweeps, plan, breakeven, Dask): seconds, not minutes."""

from __future__ import annotations

from typing import Any

from sim.config import Experiment
from sim.engine import yaml12
from sim.engine.loading import load_config_text


def mgc_config(servers: int = 4, rps: float = 4.0, horizon_h: float = 0.5, **extra: Any) -> dict[str, Any]:
    """An M/G/c queue: one class, 1-token prompts, geometric outputs (mean 20) at 0.04 s per token, batch 1.

    Service time = 0.04 s x tokens (mean 0.8 s), so the offered load is rps x 0.8 Erlangs."""
    cfg: dict[str, Any] = {
        "name": "mgc",
        "seed": 3,
        "replications": 4,
        "horizon_h": horizon_h,
        "workload": {
            "arrivals": {"kind": "constant", "mean_rps": rps},
            "classes": [
                {
                    "name": "default",
                    "share": 1.0,
                    "input_tokens": {"dist": "constant", "value": 1},
                    "output_tokens": {"dist": "geometric", "mean": 20},
                    "slo_ttft_s": 2.0,
                }
            ],
        },
        "routing": {"policy": "gpu_only"},
        "backends": {
            "api": {
                "price_input_per_mtok_usd": 15.0,
                "price_output_per_mtok_usd": 15.0,
                "ttft_s": {"dist": "constant", "value": 0.5},
            },
            "gpu_pool": {
                "servers": servers,
                "max_batch": 1,
                "iteration_s": {"base": 0.04},
                "cold_start_s": {"dist": "constant", "value": 0},  # an M/M/c reduction: no start-up
                "max_prefill_tokens": None,  # each prompt prefilled in its first iteration
            },
        },
        "output": {"timeseries": False, "report": False},
        "plan": {"targets": ["queue_wait_mean_s<=0.25"], "confidence": 0.9},
    }
    cfg.update(extra)
    return cfg


def load(cfg: dict[str, Any]) -> Experiment:
    return load_config_text(yaml12.dump(cfg))


def write(tmp_path: Any, cfg: dict[str, Any], name: str = "exp.yaml") -> str:
    path = tmp_path / name
    path.write_text(yaml12.dump(cfg), encoding="utf-8")
    return str(path)
