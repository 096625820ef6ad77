"""`by_class`: each class to the target `routing.by_class` names for it."""

from __future__ import annotations

from collections.abc import Sequence

from backends.routing.policy import StaticPolicy
from sim.config import Experiment
from sim.config.routing import RoutingSpec


class ByClass(StaticPolicy):
    name = "by_class"
    mixes = True

    def class_targets(self, routing: RoutingSpec, classes: Sequence[str]) -> list[str]:
        return [routing.by_class[c] for c in classes]

    def problems(self, exp: Experiment) -> list[tuple[str, str]]:
        names = {c.name for c in exp.workload.classes}
        return [
            ("routing.by_class", f"policy by_class has no target for class {name!r}")
            for name in sorted(names - set(exp.routing.by_class))
        ]


POLICY = ByClass()
