"""The root of an experiment config and the checks that span sections."""

from __future__ import annotations

import math
import re
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from sim.config.backends import BackendsSpec
from sim.config.base import Frozen
from sim.config.cache import CacheSpec
from sim.config.limits import LimitsSpec
from sim.config.routing import RoutingSpec
from sim.config.workload import WorkloadSpec

# a name is used as a path component: no separator, no NUL, no '..', not hidden
SAFE_NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9_.-]*")

Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]

TARGET_RE = re.compile(r"^\s*([a-z0-9_]+)\s*(<=|>=)\s*([-+0-9.eE]+)\s*$")


Money = Annotated[float, Field(ge=0, le=1.0e9)]
# self_hosted: charged only when a GPU pool is provisioned (the run has a GPU path with servers, a schedule or
# an autoscaler); always: charged to every run, API-only included
CostScope = Literal["self_hosted", "always"]


class OperationsCost(Frozen):
    """Operations work: hours per month x an hourly rate (on-call, upgrades, incident handling)."""

    hours_per_month: Money = 0.0
    usd_per_hour: Money = 0.0
    scope: CostScope = "self_hosted"


class EngineersCost(Frozen):
    """People: full-time equivalents x yearly salary (loaded cost) / 12 per month."""

    fte: Annotated[float, Field(ge=0, le=10_000)] = 0.0
    salary_usd_per_year: Money = 0.0
    scope: CostScope = "self_hosted"


class MonitoringCost(Frozen):
    """Monitoring and logging subscriptions, per month."""

    monthly_usd: Money = 0.0
    scope: CostScope = "self_hosted"


class StorageCost(Frozen):
    """Storage of the model's weights (and their copies), per GB-month."""

    gb: Annotated[float, Field(ge=0, le=1.0e9)] | None = None  # null: one copy of the model's weights
    usd_per_gb_month: Money = 0.0
    scope: CostScope = "self_hosted"


class EgressCost(Frozen):
    """Network egress of the answers: served output tokens x bytes_per_token, per GB (usage-priced)."""

    usd_per_gb: Money = 0.0
    bytes_per_token: Annotated[float, Field(gt=0, le=1.0e6)] = 4.0
    scope: CostScope = "self_hosted"


class RedundancyCost(Frozen):
    """N+1: spare servers kept provisioned beside the pool (not serving), at the pool's server-hour price."""

    spare_servers: Annotated[int, Field(ge=0, le=100_000)] = 0
    scope: CostScope = "self_hosted"


class TcoSpec(Frozen):
    """Total cost of ownership beyond the GPU and API lines (docs/metrics.md, "Total cost of ownership")."""

    operations: OperationsCost = OperationsCost()
    engineers: EngineersCost = EngineersCost()
    monitoring: MonitoringCost = MonitoringCost()
    storage: StorageCost = StorageCost()
    egress: EgressCost = EgressCost()
    redundancy: RedundancyCost = RedundancyCost()


class CostsSpec(Frozen):
    # a fixed monthly overhead; by default the overhead of running your own servers (fixed_scope: self_hosted)
    fixed_monthly_usd: Money = 0.0
    fixed_scope: CostScope = "self_hosted"
    hours_per_month: Annotated[float, Field(gt=0, le=744)] = 730.0
    tco: TcoSpec = TcoSpec()


def parse_target(text: str) -> tuple[str, str, float]:
    """'peak_ttft_p95_s<=2.0' -> ('peak_ttft_p95_s', '<=', 2.0); raises ValueError on a bad target."""
    from sim.core.metrics import METRIC_NAMES

    m = TARGET_RE.match(text)
    if not m:
        raise ValueError(f"target {text!r} is not of the form METRIC<=VALUE or METRIC>=VALUE")
    metric, op, value = m.group(1), m.group(2), float(m.group(3))
    if not math.isfinite(value):
        raise ValueError(f"target {text!r} has a value that is not a finite number ({m.group(3)} reads as {value})")
    if metric not in METRIC_NAMES:
        raise ValueError(f"target {text!r} names unknown metric {metric!r}")
    return metric, op, value


class PlanSpec(Frozen):
    targets: list[str] = Field(default_factory=lambda: ["peak_ttft_p95_s<=2.0", "availability>=0.999"])
    confidence: Annotated[float, Field(gt=0, lt=1)] = 0.95

    @field_validator("targets")
    @classmethod
    def _targets(cls, v: list[str]) -> list[str]:
        for t in v:
            parse_target(t)
        return v


SweepScalar = bool | int | float | str | None


class OutputSpec(Frozen):
    requests: bool = False
    timeseries: bool = True
    report: bool = True


class Experiment(Frozen):
    name: str = Field(default="experiment", min_length=1, max_length=100)
    seed: Annotated[int, Field(ge=0, le=2**63 - 1)] = 0
    replications: Annotated[int, Field(ge=1, le=1_000_000)] = 20
    horizon_h: Annotated[float, Field(gt=0, le=24 * 366)] = 24.0
    warmup_h: Annotated[float, Field(ge=0)] = 0.0
    start_weekday: Weekday = "mon"
    workload: WorkloadSpec = WorkloadSpec()
    cache: CacheSpec = CacheSpec()
    routing: RoutingSpec = RoutingSpec()
    backends: BackendsSpec = BackendsSpec()
    costs: CostsSpec = CostsSpec()
    plan: PlanSpec = PlanSpec()
    output: OutputSpec = OutputSpec()
    limits: LimitsSpec = LimitsSpec()
    # `capsim run` over a grid: dotted key -> values (see docs/config.md, "sweep"); empty: a single run
    sweep: dict[str, Annotated[list[SweepScalar], Field(min_length=1, max_length=1000)]] = Field(default_factory=dict)

    @field_validator("name")
    @classmethod
    def _name_is_a_safe_folder_name(cls, v: str) -> str:
        """The name becomes a folder of results/ (results/<name>/<time>): one plain path component only."""
        if not SAFE_NAME.fullmatch(v):
            raise ValueError(
                "must be a plain folder name: letters, digits, '_', '-' and '.', not starting with '.' "
                f"(it names the folder results/<name>/), got {v!r}"
            )
        return v

    @model_validator(mode="after")
    def _cross_checks(self) -> Experiment:
        if self.warmup_h >= self.horizon_h:
            raise ValueError(f"warmup_h must be < horizon_h, got {self.warmup_h} >= {self.horizon_h}")
        return self
