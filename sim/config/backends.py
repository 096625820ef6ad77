"""`backends:` paid LLM APIs and the self-hosted GPU pool."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Discriminator, Field, StringConstraints, Tag, ValidationInfo, field_validator, model_validator

from sim.config.api import ApiSpec, NonNegPrice
from sim.config.autoscaling import AutoscalerSpec, ServerSchedule
from sim.config.base import Frozen
from sim.config.disaggregation import DisaggregationSpec
from sim.config.distributions import DistSpec, absolute_if_beside_config
from sim.config.server_routing import ServerPrefixCacheSpec, ServerRoutingSpec
from sim.config.speculative import SpeculativeSpec


class IterationSpec(Frozen):
    """Seconds per continuous-batching iteration: base + per_seq*n + per_prefill_token*P + per_kv_token*KV."""

    base: Annotated[float, Field(ge=0, le=100)] = 0.0
    per_seq: Annotated[float, Field(ge=0, le=10)] = 0.0
    per_prefill_token: Annotated[float, Field(ge=0, le=10)] = 0.0
    per_kv_token: Annotated[float, Field(ge=0, le=10)] = 0.0
    # the part of base that is the engine's CPU cost of one scheduling; with num_scheduler_steps N > 1 a round of
    # N decode steps pays it once (derived: the family's overhead_s)
    per_schedule: Annotated[float, Field(ge=0, le=100)] = 0.0


class FailureSpec(Frozen):
    """Per-server failures: healthy (serving) time to failure ~ Exponential(mtbf_h), repair ~ Exponential(mttr_h),
    then a cold start. Requests on a failed server go back to the front of the queue (requeue) or fail."""

    mtbf_h: Annotated[float, Field(gt=0)] | None = None  # null: servers never fail
    mttr_h: Annotated[float, Field(gt=0)] = 0.5
    on_failure: Literal["requeue", "fail"] = "requeue"


class HfModelRef(Frozen):
    """A model given by its Hugging Face config.json (read locally, no network)."""

    hf_config: Annotated[str, Field(min_length=1, max_length=4096)]
    name: Annotated[str, Field(min_length=1, max_length=200)] | None = None  # null: the file's folder or stem

    @field_validator("hf_config")
    @classmethod
    def _beside_config(cls, v: str, info: ValidationInfo) -> str:
        return absolute_if_beside_config(v, info) or v


class GpuHardwareSpec(Frozen):
    """A GPU given by its specifications (dense tensor rates, no sparsity)."""

    name: Annotated[str, Field(min_length=1, max_length=100)]
    memory_gb: Annotated[float, Field(gt=0, le=100_000)]
    hbm_tb_s: Annotated[float, Field(gt=0, le=1_000)]
    bf16_tflops: Annotated[float, Field(gt=0, le=1_000_000)]
    fp8_tflops: Annotated[float, Field(ge=0, le=1_000_000)] = 0.0  # 0: no FP8 tensor cores
    interconnect_gb_s: Annotated[float, Field(gt=0, le=100_000)] = 32.0  # per GPU, one direction
    price_per_gpu_hour_usd: NonNegPrice
    family: Annotated[str, Field(min_length=1, max_length=50)] = "custom"  # efficiency factors (hopper: fitted)


def _by_name_or_spec(v: object) -> str:
    return "by_name" if isinstance(v, str) else "by_spec"


# a catalog name or a mapping; the tags never reach a user's message (sim/engine/loading.py drops them)
GpuChoice = Annotated[
    Annotated[str, Tag("by_name")] | Annotated[GpuHardwareSpec, Tag("by_spec")], Discriminator(_by_name_or_spec)
]
ModelChoice = Annotated[
    Annotated[str, Tag("by_name")] | Annotated[HfModelRef, Tag("by_spec")], Discriminator(_by_name_or_spec)
]
UNION_TAGS = frozenset({"by_name", "by_spec"})


class GpuPoolSpec(Frozen):
    servers: Annotated[int, Field(ge=0, le=100_000)] = 4
    # null: the GPU's catalog price per GPU-hour x tensor_parallel (backends.catalog.server_price)
    price_per_server_hour_usd: NonNegPrice | None = None
    gpu: GpuChoice = "h100"  # a catalog name or the GPU's specifications
    model: ModelChoice = "llama-3-8b"  # a catalog name or {hf_config: path/to/config.json}
    quantization: Literal["bf16", "fp8", "int8", "int4"] = "bf16"  # weights (backends/models/precision.py)
    kv_cache_dtype: Literal["auto", "fp8"] = "auto"  # auto: bf16
    tensor_parallel: Annotated[int, Field(ge=1, le=64)] = 1
    max_batch: Annotated[int, Field(ge=1, le=100_000)] = 256  # vLLM's max_num_seqs default
    kv_cache_tokens: Annotated[int, Field(ge=1)] | None = None  # null: derived from gpu and model
    iteration_s: IterationSpec | None = None  # null: derived from gpu, model and tensor_parallel
    # null: derived from the model's weight size (backends.catalog.derived_cold_start_s, ~40 s for an 8B model)
    cold_start_s: DistSpec | None = None
    # servers provisioned at t = 0 start warm (the deployment is running when the horizon starts); true: they
    # cold-start like every later start (after a repair, on scale-up)
    initial_cold_start: bool = False
    # vLLM's gpu_memory_utilization: the share of each GPU's HBM the engine manages (weights, activations, KV)
    gpu_memory_utilization: Annotated[float, Field(gt=0.0, le=1.0)] = 0.9
    failures: FailureSpec = FailureSpec()
    # paged: KV held = input + generated tokens in blocks, newest request preempted (recomputed) on overflow;
    # reserve: admission reserves input + output tokens up front, never preempts
    kv_policy: Literal["paged", "reserve"] = "paged"
    kv_block_tokens: Annotated[int, Field(ge=1, le=4096)] = 16
    # chunked prefill: prompt tokens per iteration (vLLM's max_num_batched_tokens); auto: vLLM's default for the
    # GPU (backends.gpu.catalog.prefill_token_budget: 8192 on GPUs of >= 70 GiB other than A100, else 2048);
    # null: no chunked prefill, an iteration prefills all its admissions
    max_prefill_tokens: Annotated[int, Field(ge=1, le=10_000_000)] | Literal["auto"] | None = "auto"
    # v0: admissions limited by max_batch and KV, max_prefill_tokens caps an iteration's prompt tokens; v1 (vLLM
    # V1): max_prefill_tokens is the iteration's token budget (max_num_batched_tokens), decodes take one token
    # each, the rest goes to prefill chunks, and a waiting request is admitted only while budget is left
    scheduler: Literal["v0", "v1"] = "v0"
    speculative: SpeculativeSpec | None = None  # null: no speculative decoding (backends/gpu/speculative.py)
    # vLLM v0.6's multi-step scheduling (--num-scheduler-steps; backends/gpu/multistep.py): the scheduler runs once
    # every N decode steps, admissions only then, and a step that prefills runs alone (the decodes wait), with
    # max_prefill_tokens capping its prompt tokens (no chunked prefill, as v0.6.0); 1: schedule every iteration
    num_scheduler_steps: Annotated[int, Field(ge=1, le=1024)] = 1
    # the serving engine's release, for its host (CPU) cost per sequence and step in the derived iteration model
    # (backends/gpu/efficiency.py): vllm-0.6, the engine the catalog's CPU costs were fitted on (no extra cost);
    # vllm-0.5 (v0.5.x: input preparation, sampling and output processing in Python per sequence, every step)
    engine_version: Literal["vllm-0.6", "vllm-0.5"] = "vllm-0.6"
    autoscaler: AutoscalerSpec = AutoscalerSpec()
    schedule: ServerSchedule | None = None  # servers provisioned in each hour of the day (00h..23h)
    # a profile file written by `capsim calibrate` (path beside the config): its efficiency factors replace the
    # GPU family's in the derived iteration model (backends/models/profile.py)
    profile: Annotated[str, Field(min_length=1, max_length=4096)] | None = None
    server_routing: ServerRoutingSpec = ServerRoutingSpec()  # which server takes a request
    prefix_cache: ServerPrefixCacheSpec = ServerPrefixCacheSpec()  # per-server prefix caching (hash_ids)
    disaggregation: DisaggregationSpec | None = None  # this pool prefills, disaggregation.decode_pool decodes

    @field_validator("profile")
    @classmethod
    def _profile_beside_config(cls, v: str | None, info: ValidationInfo) -> str | None:
        return absolute_if_beside_config(v, info)

    @field_validator("gpu", "model")
    @classmethod
    def _lower(cls, v: object) -> object:
        return v.strip().lower() if isinstance(v, str) else v


# a pool's name: routed to as gpu:<name>, and a part of its metrics' names (gpu_utilization.pool.<name>)
PoolName = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_-]{0,39}$")]
SHORTHAND_POOL = "gpu"  # the name of backends.gpu_pool's pool
MAX_POOLS = 16


class BackendsSpec(Frozen):
    api: ApiSpec = ApiSpec()
    apis: dict[str, ApiSpec] = Field(default_factory=dict)
    gpu_pool: GpuPoolSpec = GpuPoolSpec()  # the one-pool shorthand: the pool named `gpu`
    # several named pools (different GPU, model, price, scaling per pool); `gpu` alone targets the first
    gpu_pools: Annotated[dict[PoolName, GpuPoolSpec], Field(max_length=MAX_POOLS)] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _one_way(self) -> BackendsSpec:
        if self.gpu_pools and self.gpu_pool != GpuPoolSpec():
            raise ValueError("give the GPU pools either as gpu_pool (one pool, named gpu) or as gpu_pools, not both")
        return self

    def pools(self) -> dict[str, GpuPoolSpec]:
        """Every GPU pool by name, in the config's order (gpu_pool alone: one pool named `gpu`)."""
        return dict(self.gpu_pools) if self.gpu_pools else {SHORTHAND_POOL: self.gpu_pool}

    def pool_role(self, name: str) -> str:
        """`prefill` (it has a disaggregation), `decode` (another pool's decode_pool) or `mixed` (both phases)."""
        pools = self.pools()
        if pools[name].disaggregation is not None:
            return "prefill"
        if any(p.disaggregation is not None and p.disaggregation.decode_pool == name for p in pools.values()):
            return "decode"
        return "mixed"

    def pool_key(self, name: str) -> str:
        """The dotted config path of a pool's section."""
        return f"backends.gpu_pools.{name}" if self.gpu_pools else "backends.gpu_pool"
