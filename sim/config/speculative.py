"""`backends.gpu_pool.speculative`: speculative decoding (backends/gpu/speculative.py)."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, field_validator

from sim.config.base import Frozen

NGRAM = "ngram"  # speculative.draft: n-gram (prompt lookup) drafting, no draft model


class SpeculativeSpec(Frozen):
    """Speculative decoding: every iteration a draft proposes `k` tokens per decoding sequence, each accepted
    with probability `acceptance` given the ones before it, and the target model verifies the k + 1 positions
    at once. `draft`: a catalog model run on the pool's GPUs beside the target, or `ngram` (prompt lookup: no
    draft model, no draft cost)."""

    draft: Annotated[str, Field(min_length=1, max_length=200)]
    k: Annotated[int, Field(ge=1, le=64)]  # vLLM's num_speculative_tokens
    acceptance: Annotated[float, Field(ge=0, le=1)]  # per draft token, given the ones before it were accepted

    @field_validator("draft")
    @classmethod
    def _lower(cls, v: str) -> str:
        return v.strip().lower()
