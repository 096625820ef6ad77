"""`backends:` paid LLM APIs and the self-hosted GPU pool."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, field_validator

from sim.config.api import ApiSpec, NonNegPrice
from sim.config.autoscaling import AutoscalerSpec, ServerSchedule
from sim.config.base import Frozen
from sim.config.distributions import DistSpec


class IterationSpec(Frozen):
    """Seconds per continuous-batching iteration: base + per_seq*n + per_prefill_token*P + per_kv_token*KV."""

    base: Annotated[float, Field(ge=0, le=100)] = 0.0
    per_seq: Annotated[float, Field(ge=0, le=10)] = 0.0
    per_prefill_token: Annotated[float, Field(ge=0, le=10)] = 0.0
    per_kv_token: Annotated[float, Field(ge=0, le=10)] = 0.0


class FailureSpec(Frozen):
    """Per-server failures: healthy (serving) time to failure ~ Exponential(mtbf_h), repair ~ Exponential(mttr_h),
    then a cold start. Requests on a failed server go back to the front of the queue (requeue) or fail."""

    mtbf_h: Annotated[float, Field(gt=0)] | None = None  # null: servers never fail
    mttr_h: Annotated[float, Field(gt=0)] = 0.5
    on_failure: Literal["requeue", "fail"] = "requeue"


class GpuPoolSpec(Frozen):
    servers: Annotated[int, Field(ge=0, le=100_000)] = 4
    # null: the GPU's catalog price per GPU-hour x tensor_parallel (backends.catalog.server_price)
    price_per_server_hour_usd: NonNegPrice | None = None
    gpu: str = "h100"
    model: str = "llama-3-8b"
    tensor_parallel: Annotated[int, Field(ge=1, le=64)] = 1
    max_batch: Annotated[int, Field(ge=1, le=100_000)] = 64
    kv_cache_tokens: Annotated[int, Field(ge=1)] | None = None  # null: derived from gpu and model
    iteration_s: IterationSpec | None = None  # null: derived from gpu, model and tensor_parallel
    # null: derived from the model's weight size (backends.catalog.derived_cold_start_s, ~40 s for an 8B model)
    cold_start_s: DistSpec | None = None
    failures: FailureSpec = FailureSpec()
    # paged: KV held = input + generated tokens in blocks, newest request preempted (recomputed) on overflow;
    # reserve: admission reserves input + output tokens up front, never preempts
    kv_policy: Literal["paged", "reserve"] = "paged"
    kv_block_tokens: Annotated[int, Field(ge=1, le=4096)] = 16
    max_prefill_tokens: Annotated[int, Field(ge=1, le=10_000_000)] | None = None  # null: no chunked prefill
    autoscaler: AutoscalerSpec = AutoscalerSpec()
    schedule: ServerSchedule | None = None  # servers provisioned in each hour of the day (00h..23h)

    @field_validator("gpu", "model")
    @classmethod
    def _lower(cls, v: str) -> str:
        return v.strip().lower()


class BackendsSpec(Frozen):
    api: ApiSpec = ApiSpec()
    apis: dict[str, ApiSpec] = Field(default_factory=dict)
    gpu_pool: GpuPoolSpec = GpuPoolSpec()
