"""`backends:` paid LLM APIs and the self-hosted GPU pool."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, field_validator

from sim.config.api import ApiSpec, NonNegPrice
from sim.config.base import Frozen
from sim.config.distributions import ConstantSpec, DistSpec


class IterationSpec(Frozen):
    """Seconds per continuous-batching iteration: base + per_seq*n + per_prefill_token*P + per_kv_token*KV."""

    base: Annotated[float, Field(ge=0, le=100)] = 0.0
    per_seq: Annotated[float, Field(ge=0, le=10)] = 0.0
    per_prefill_token: Annotated[float, Field(ge=0, le=10)] = 0.0
    per_kv_token: Annotated[float, Field(ge=0, le=10)] = 0.0


class FailureSpec(Frozen):
    mtbf_h: Annotated[float, Field(gt=0)] | None = None  # null: servers never fail
    mttr_h: Annotated[float, Field(gt=0)] = 0.5
    on_failure: Literal["requeue", "fail"] = "requeue"


class GpuPoolSpec(Frozen):
    servers: Annotated[int, Field(ge=0, le=100_000)] = 4
    price_per_server_hour_usd: NonNegPrice = 2.69
    gpu: str = "h100"
    model: str = "llama-3-8b"
    tensor_parallel: Annotated[int, Field(ge=1, le=64)] = 1
    max_batch: Annotated[int, Field(ge=1, le=100_000)] = 64
    kv_cache_tokens: Annotated[int, Field(ge=1)] | None = None  # null: derived from gpu and model
    iteration_s: IterationSpec | None = None  # null: derived from gpu, model and tensor_parallel
    cold_start_s: DistSpec = ConstantSpec(dist="constant", value=0.0)
    failures: FailureSpec = FailureSpec()

    @field_validator("gpu", "model")
    @classmethod
    def _lower(cls, v: str) -> str:
        return v.strip().lower()


class BackendsSpec(Frozen):
    api: ApiSpec = ApiSpec()
    apis: dict[str, ApiSpec] = Field(default_factory=dict)
    gpu_pool: GpuPoolSpec = GpuPoolSpec()
