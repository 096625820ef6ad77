"""`workload:` arrivals (the rate curve over time) and request classes (sizes, SLOs, priorities)."""

from __future__ import annotations

import math
from typing import Annotated, Literal

from pydantic import Field, model_validator

from sim.config.base import Frozen
from sim.config.distributions import DistSpec, GeometricSpec, LognormalSpec

ArrivalKind = Literal["constant", "diurnal", "hourly", "trace"]


class ArrivalsSpec(Frozen):
    """The arrival process. One model for every kind so `--set workload.arrivals.kind=...` stays easy;
    keys that do not apply to the chosen kind are ignored, keys it needs are checked."""

    kind: ArrivalKind = "diurnal"
    mean_rps: Annotated[float, Field(ge=0, le=1.0e6)] = 12.0
    # diurnal
    peak_hour: Annotated[float, Field(ge=0, lt=24)] = 9.0
    peak_to_mean: Annotated[float, Field(ge=1, le=50)] = 3.0
    weekend_factor: Annotated[float, Field(ge=0, le=10)] = 0.35
    # hourly: 24 multipliers, normalised so that the day's mean rate is mean_rps
    multipliers: list[Annotated[float, Field(ge=0)]] | None = None
    # trace replay
    file: str | None = None
    format: Literal["auto", "azure", "mooncake"] = "auto"
    time_column: str = "TIMESTAMP"
    input_column: str = "ContextTokens"
    output_column: str = "GeneratedTokens"
    speed: Annotated[float, Field(gt=0, le=1.0e4)] = 1.0
    loop: bool = False

    @model_validator(mode="after")
    def _kind_needs(self) -> ArrivalsSpec:
        if self.kind == "hourly":
            if self.multipliers is None or len(self.multipliers) != 24:
                got = "none" if self.multipliers is None else f"{len(self.multipliers)}"
                raise ValueError(f"kind 'hourly' needs 24 multipliers, got {got}")
            if sum(self.multipliers) <= 0:
                raise ValueError("hourly multipliers must not all be 0")
        if self.kind == "trace" and not self.file:
            raise ValueError("kind 'trace' needs a file")
        return self


class RequestClass(Frozen):
    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")
    share: Annotated[float, Field(ge=0, le=1)] = 1.0
    input_tokens: DistSpec = LognormalSpec(dist="lognormal", median=600, sigma=0.9)
    output_tokens: DistSpec = LognormalSpec(dist="lognormal", median=220, sigma=0.7)
    slo_ttft_s: Annotated[float, Field(gt=0)] = 2.0
    timeout_s: Annotated[float, Field(gt=0)] | None = None
    priority: Annotated[int, Field(ge=0, le=9)] = 0  # 0 is served first in the GPU queue


def _default_classes() -> list[RequestClass]:
    return [
        RequestClass(
            name="default",
            share=1.0,
            output_tokens=GeometricSpec(dist="geometric", mean=200),
        )
    ]


class WorkloadSpec(Frozen):
    arrivals: ArrivalsSpec = ArrivalsSpec()
    classes: Annotated[list[RequestClass], Field(min_length=1, max_length=64)] = Field(default_factory=_default_classes)

    @model_validator(mode="after")
    def _classes_ok(self) -> WorkloadSpec:
        names = [c.name for c in self.classes]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"class names must be unique, repeated: {', '.join(dupes)}")
        total = math.fsum(c.share for c in self.classes)
        if abs(total - 1.0) > 1e-6:
            raise ValueError(f"class shares must sum to 1, got {total:.6g}")
        return self
