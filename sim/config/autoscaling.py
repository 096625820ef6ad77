"""`backends.gpu_pool.autoscaler` and `backends.gpu_pool.schedule`: how many GPU servers are provisioned when."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, model_validator

from sim.config.base import Frozen


class AutoscalerSpec(Frozen):
    """A periodic controller: every `evaluate_every_s` it computes a desired server count from one target
    (requests in flight per provisioned server, or the wait of the oldest queued request), clips it to
    [min_servers, max_servers] (and to the schedule's floor for the hour, if any), and applies it once the
    desire has held for `scale_up_delay_s` (more servers) or `scale_down_delay_s` (fewer)."""

    enabled: bool = False
    min_servers: Annotated[int, Field(ge=0, le=100_000)] = 0  # 0 allows scale-to-zero
    max_servers: Annotated[int, Field(ge=1, le=100_000)] = 8
    target_in_flight_per_server: Annotated[float, Field(gt=0, le=1.0e6)] | None = None
    target_queue_wait_s: Annotated[float, Field(gt=0, le=1.0e6)] | None = None
    scale_up_delay_s: Annotated[float, Field(ge=0, le=86400)] = 0.0
    scale_down_delay_s: Annotated[float, Field(ge=0, le=86400)] = 300.0
    evaluate_every_s: Annotated[float, Field(gt=0, le=86400)] = 30.0

    @model_validator(mode="after")
    def _consistent(self) -> AutoscalerSpec:
        if self.min_servers > self.max_servers:
            raise ValueError(f"min_servers ({self.min_servers}) must be <= max_servers ({self.max_servers})")
        if self.enabled:
            given = [self.target_in_flight_per_server is not None, self.target_queue_wait_s is not None]
            if sum(given) != 1:
                raise ValueError(
                    "an enabled autoscaler needs exactly one target: target_in_flight_per_server or target_queue_wait_s"
                )
        return self


ServerSchedule = Annotated[list[Annotated[int, Field(ge=0, le=100_000)]], Field(min_length=24, max_length=24)]
