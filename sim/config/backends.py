"""`backends:` paid LLM APIs and the self-hosted GPU pool."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, field_validator

from sim.config.base import Frozen
from sim.config.distributions import ConstantSpec, DistSpec, LognormalSpec, UniformSpec

NonNegPrice = Annotated[float, Field(ge=0, le=1.0e6)]


class RateLimitSpec(Frozen):
    rpm: Annotated[float, Field(gt=0)] | None = None
    tpm: Annotated[float, Field(gt=0)] | None = None
    max_retries: Annotated[int, Field(ge=0, le=100)] = 5
    backoff_s: Annotated[float, Field(ge=0, le=3600)] = 1.0


class OutageSpec(Frozen):
    mtbf_h: Annotated[float, Field(gt=0)] | None = None  # null: never down
    mttr_h: Annotated[float, Field(gt=0)] = 0.75


class ApiSpec(Frozen):
    price_input_per_mtok_usd: NonNegPrice = 2.50
    price_cached_input_per_mtok_usd: NonNegPrice = 1.25
    price_output_per_mtok_usd: NonNegPrice = 10.00
    batch_discount: Annotated[float, Field(ge=0, le=1)] = 0.5  # price factor of the batch API
    batch_delay_s: DistSpec = UniformSpec(dist="uniform", low=60.0, high=3600.0)
    ttft_s: DistSpec = LognormalSpec(dist="lognormal", median=0.45, sigma=0.35)
    output_tokens_per_s: Annotated[float, Field(gt=0, le=1.0e6)] = 110.0
    rate_limit: RateLimitSpec = RateLimitSpec()
    outages: OutageSpec = OutageSpec()


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
