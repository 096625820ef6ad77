"""Deployment profiles: the efficiency factors `capsim calibrate` fits to a user's own benchmark results.

A profile file (YAML) holds the GPU family's efficiency factors with the fitted ones replaced, which factors
were fitted, the residual table (every measured quantity against the simulated one) and the inputs'
provenance (file names, SHA-256, comment lines). `backends.gpu_pool.profile: profile.yaml` makes a pool
derive its iteration model from the profile's factors instead of its GPU family's (backends/gpu/catalog.py).
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, ValidationError

from backends.gpu.efficiency import ALLREDUCE_BUS_SHARE
from sim.config.base import Finite, Frozen

PROFILE_FORMAT = 1


class EfficiencyFactors(Frozen):
    """The factors of backends.gpu.catalog.Efficiency (same names and units)."""

    memory: Annotated[float, Field(gt=0, le=1.5)]
    kernel_s: Annotated[float, Field(ge=0, le=1.0)]
    decode_compute: Annotated[float, Field(gt=0, le=4.0)]  # effective: GEMM work partly hidden under the weights
    prefill_compute: Annotated[float, Field(gt=0, le=1.5)]
    act_bytes_per_hidden: Annotated[float, Field(ge=0, le=1e6)]
    overhead_s: Annotated[float, Field(ge=0, le=10.0)]
    per_seq_s: Annotated[float, Field(ge=0, le=1.0)]
    allreduce_s: Annotated[float, Field(ge=0, le=1.0)]
    interconnect: Annotated[float, Field(gt=0, le=1.0)] = ALLREDUCE_BUS_SHARE  # profiles written before it: default
    attention: Annotated[float, Field(gt=0, le=1.5)] | None = None  # None (profiles written before it): memory
    moe_compute: Annotated[float, Field(gt=0, le=4.0)] | None = None  # None: routed experts as the dense GEMMs


class ResidualRow(Frozen):
    source: str
    request_rate: str  # "2", "inf"
    quantity: str  # mean_tpot_ms | mean_ttft_ms | throughput_rps
    measured: Finite
    simulated: Finite
    error: Finite  # simulated / measured - 1
    in_fit: bool


class ProfileInput(Frozen):
    file: str
    sha256: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
    points: Annotated[int, Field(ge=0)]
    role: Literal["fit", "holdout"]
    notes: list[str] = Field(default_factory=list)


class DeploymentProfile(Frozen):
    capsim_profile: Literal[1]
    gpu: str
    family: str
    model: str
    tensor_parallel: Annotated[int, Field(ge=1, le=64)]
    max_batch: Annotated[int, Field(ge=1)]
    max_prefill_tokens: Annotated[int, Field(ge=1)] | None = None  # the benchmarked engine's chunked-prefill budget
    num_scheduler_steps: Annotated[int, Field(ge=1)] = 1  # the benchmarked engine's --num-scheduler-steps
    lengths: Literal["constant", "sharegpt"]
    samples: Annotated[int, Field(ge=1)]
    efficiency: EfficiencyFactors
    fitted: list[str]
    loss: Finite  # sum of squared log errors of the fitted quantities
    residuals: list[ResidualRow]
    inputs: list[ProfileInput]
    capsim_version: str
    created_utc: str


class ProfileError(ValueError):
    """A profile file that cannot be used, with what is wrong."""


def read_profile(path: str | Path) -> DeploymentProfile:
    """Load and check a profile file (ProfileError with a one-line reason)."""
    p = Path(path)
    try:
        st = p.stat()
    except OSError as exc:
        raise ProfileError(f"profile {p} cannot be read ({exc.strerror or exc})") from None
    return _read_cached(str(p), st.st_mtime_ns, st.st_size)


@functools.lru_cache(maxsize=32)
def _read_cached(path: str, mtime_ns: int, size: int) -> DeploymentProfile:
    import yaml

    try:
        doc = yaml.safe_load(Path(path).read_text(encoding="utf-8"))  # written by yaml12.dump: plain data
    except (OSError, UnicodeDecodeError) as exc:
        raise ProfileError(f"profile {path} cannot be read ({exc})") from None
    except Exception as exc:  # noqa: BLE001 - any YAML error is the answer
        raise ProfileError(f"profile {path} is not valid YAML ({type(exc).__name__})") from None
    if not isinstance(doc, dict) or doc.get("capsim_profile") != PROFILE_FORMAT:
        raise ProfileError(f"profile {path} is not a capsim profile (written by `capsim calibrate`: capsim_profile: 1)")
    try:
        return DeploymentProfile.model_validate(doc)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(x) for x in first["loc"])
        raise ProfileError(f"profile {path}: {where}: {first['msg']}") from None
