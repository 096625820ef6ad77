"""Config specs of the distribution families (the runtime objects live in workloads.distributions)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator

from sim.config.base import Frozen

Pos = Annotated[float, Field(gt=0)]
NonNeg = Annotated[float, Field(ge=0)]


def absolute_if_beside_config(v: str | None, info: ValidationInfo) -> str | None:
    base = (info.context or {}).get("base_dir") if isinstance(info.context, dict) else None
    if v is None or base is None:
        return v
    p = Path(v).expanduser()
    if p.is_absolute():
        return v
    candidate = Path(base) / p
    return str(candidate.resolve()) if candidate.is_file() else v


class ConstantSpec(Frozen):
    dist: Literal["constant"]
    value: NonNeg


class ExponentialSpec(Frozen):
    dist: Literal["exponential"]
    mean: Pos


class GeometricSpec(Frozen):
    """Integers >= 1 with P(k) = p (1-p)^(k-1), p = 1/mean."""

    dist: Literal["geometric"]
    mean: Annotated[float, Field(ge=1)]


class LognormalSpec(Frozen):
    dist: Literal["lognormal"]
    median: Pos
    sigma: Annotated[float, Field(ge=0, le=10)]


class GammaSpec(Frozen):
    dist: Literal["gamma"]
    mean: Pos
    cv: Annotated[float, Field(gt=0, le=100)]


class UniformSpec(Frozen):
    dist: Literal["uniform"]
    low: NonNeg
    high: NonNeg

    @model_validator(mode="after")
    def _ordered(self) -> UniformSpec:
        if self.high < self.low:
            raise ValueError(f"high must be >= low, got low={self.low}, high={self.high}")
        return self


class ParetoSpec(Frozen):
    """Lomax-shifted Pareto: scale * (1 + Pareto(alpha)); a heavy tail for API latencies."""

    dist: Literal["pareto"]
    scale: Pos
    alpha: Annotated[float, Field(gt=2, le=100)]


class EmpiricalSpec(Frozen):
    """Values resampled from a column of a CSV or JSONL file (path relative to the config file)."""

    dist: Literal["empirical"]
    file: str = Field(min_length=1)
    column: str = Field(min_length=1)

    @field_validator("file")
    @classmethod
    def _file_beside_config(cls, v: str, info: ValidationInfo) -> str:
        return absolute_if_beside_config(v, info) or v


DistSpec = Annotated[
    ConstantSpec
    | ExponentialSpec
    | GeometricSpec
    | LognormalSpec
    | GammaSpec
    | UniformSpec
    | ParetoSpec
    | EmpiricalSpec,
    Field(discriminator="dist"),
]
