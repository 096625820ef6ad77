"""`capsim validate`'s checks of a pool's engine options: the scheduler's token budget, speculative decoding, multi-step
scheduling."""

from __future__ import annotations

from backends.gpu.catalog import prefill_token_budget
from sim.config.backends import GpuPoolSpec


def engine_problems(spec: GpuPoolSpec) -> list[tuple[str, str]]:
    """(dotted path under backends.gpu_pool, message) for each problem."""
    problems = []
    budget = prefill_token_budget(spec)
    sp = spec.speculative
    if spec.scheduler == "v1" and budget is not None and budget < spec.max_batch:
        problems.append(
            (
                "backends.gpu_pool.max_prefill_tokens",
                f"scheduler v1: the token budget ({budget}) must be at least max_batch ({spec.max_batch}), as vLLM"
                " requires (max_num_batched_tokens >= max_num_seqs): every running request decodes a token"
                " each iteration",
            )
        )
    elif spec.scheduler == "v1" and budget is not None and sp is not None and budget < spec.max_batch * (sp.k + 1):
        problems.append(
            (
                "backends.gpu_pool.max_prefill_tokens",
                f"scheduler v1 with speculative decoding: the token budget ({budget}) must be at least max_batch x"
                f" (k + 1) = {spec.max_batch * (sp.k + 1)}: every running request verifies k + 1 tokens each"
                " iteration; raise max_prefill_tokens, or lower max_batch or speculative.k",
            )
        )
    if sp is not None and spec.disaggregation is not None:
        problems.append(
            (
                "backends.gpu_pool.speculative",
                "a prefill pool (disaggregation) emits one token per request, so it has nothing to speculate: give"
                " speculative to its decode pool",
            )
        )
    it = spec.iteration_s
    if it is not None and it.per_schedule > it.base:
        problems.append(
            (
                "backends.gpu_pool.iteration_s.per_schedule",
                f"per_schedule ({it.per_schedule:g} s) is the part of base ({it.base:g} s) that one scheduling"
                " costs: it cannot exceed base",
            )
        )
    if spec.num_scheduler_steps > 1 and (spec.scheduler == "v1" or sp is not None):
        problems.append(
            (
                "backends.gpu_pool.num_scheduler_steps",
                f"multi-step scheduling ({spec.num_scheduler_steps} steps) is vLLM v0's (v0.6), without speculative"
                " decoding; vLLM V1 schedules every step: use scheduler v0 without speculative, or"
                " num_scheduler_steps 1",
            )
        )
    if spec.engine_version == "vllm-0.5":
        problems += _engine_version_problems(spec)
    return problems


def _engine_version_problems(spec: GpuPoolSpec) -> list[tuple[str, str]]:
    """vLLM 0.5's host cost is a term of the derived iteration model, for an engine that schedules every step."""
    path = "backends.gpu_pool.engine_version"
    if spec.iteration_s is not None:
        return [
            (path, "engine_version sets a host cost of the derived iteration model; iteration_s is explicit: give one")
        ]
    if spec.profile is not None:
        return [(path, "engine_version vllm-0.5 with a profile: the profile's CPU costs were fitted on its own engine")]
    if spec.num_scheduler_steps > 1:
        return [(path, "vLLM 0.5 has no multi-step scheduling (added in v0.6.0): use num_scheduler_steps 1")]
    if spec.scheduler == "v1":
        return [(path, "vLLM 0.5 has no V1 scheduler (V1 came with v0.8): use scheduler v0")]
    return []
