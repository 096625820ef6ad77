"""`api_only`: every request goes to backends.api."""

from __future__ import annotations

from collections.abc import Sequence

from backends.routing.policy import StaticPolicy
from sim.config.routing import RoutingSpec


class ApiOnly(StaticPolicy):
    name = "api_only"

    def class_targets(self, routing: RoutingSpec, classes: Sequence[str]) -> list[str]:
        return ["api"] * len(classes)


POLICY = ApiOnly()
