"""`gpu_only`: every request goes to the GPU pool."""

from __future__ import annotations

from collections.abc import Sequence

from backends.routing.policy import StaticPolicy
from sim.config.routing import RoutingSpec


class GpuOnly(StaticPolicy):
    name = "gpu_only"

    def class_targets(self, routing: RoutingSpec, classes: Sequence[str]) -> list[str]:
        return ["gpu"] * len(classes)


POLICY = GpuOnly()
