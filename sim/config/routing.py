"""`routing:` which backend serves a request, and where it goes when that backend cannot."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, field_validator

from sim.config.base import Frozen

Policy = Literal["gpu_only", "api_only", "by_class", "overflow"]
Fallback = Literal["none", "api", "cache"]


def check_target(target: str) -> str:
    if target in ("gpu", "api", "api_batch"):
        return target
    if target.startswith("api:") and len(target) > 4:
        return target
    raise ValueError(f"unknown routing target {target!r}: expected gpu, api, api_batch or api:<name>")


class OverflowSpec(Frozen):
    max_queue: Annotated[float, Field(ge=0)] = 4.0  # waiting requests per GPU server before spilling
    target: str = "api"

    @field_validator("target")
    @classmethod
    def _target(cls, v: str) -> str:
        return check_target(v)


class RoutingSpec(Frozen):
    policy: Policy = "gpu_only"
    by_class: dict[str, str] = Field(default_factory=dict)
    overflow: OverflowSpec = OverflowSpec()
    fallback: Fallback = "none"

    @field_validator("by_class")
    @classmethod
    def _targets(cls, v: dict[str, str]) -> dict[str, str]:
        for target in v.values():
            check_target(target)
        return v
