"""Shared pieces of the config models."""

from __future__ import annotations

import math
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict


class Frozen(BaseModel):
    """Every config model: immutable, unknown keys rejected, NaN/inf rejected, strict types (no bool or
    string taken for a number, no float with a fraction taken for an integer: `servers: true` is refused)."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False, validate_default=True, strict=True)


def _finite(v: float) -> float:
    if not math.isfinite(v):
        raise ValueError(f"must be a finite number, got {v}")
    return v


Finite = Annotated[float, AfterValidator(_finite)]
