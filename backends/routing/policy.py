"""The `RoutingPolicy` protocol: what a value of `routing.policy` decides.

A policy gives each class a target when its requests arrive (decided for a whole block at once) and may
decide again per GPU-bound arrival (an overflow spill, one event per arrival). Policies live one per file in
`backends/routing/policies/`; `backends/routing/registry.py` finds them there by their `POLICY` object.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from backends.gpu.pool import GpuPool
    from sim.config import Experiment
    from sim.config.routing import RoutingSpec


class Spiller(Protocol):
    """A decision per GPU-bound arrival: send this request to the policy's `spill_target` instead."""

    def spill(self, now: float, c: int) -> bool:
        """Whether the request of class index `c` arriving at `now` goes to the spill target."""
        ...

    def admitted(self, c: int, now: float) -> None:
        """The request of class index `c` joined the GPU pool at `now` (was not spilled)."""
        ...


class RoutingPolicy(Protocol):
    name: str  # its value of routing.policy
    mixes: bool  # sends part of the traffic to the GPU pool and part to APIs (breakeven's hybrid uses it as is)

    def class_targets(self, routing: RoutingSpec, classes: Sequence[str]) -> list[str]:
        """The target of each class's requests when they arrive: gpu, api, api_batch, api:<name>, ..."""
        ...

    def spill_target(self, routing: RoutingSpec) -> str | None:
        """Where a per-arrival decision sends a GPU-bound request; None: the policy decides per class only."""
        ...

    def spiller(self, exp: Experiment, pool: GpuPool) -> Spiller | None:
        """The per-arrival decision of one replication (None when spill_target is None)."""
        ...

    def problems(self, exp: Experiment) -> list[tuple[str, str]]:
        """What this policy refuses in a config, as (dotted path, message)."""
        ...


class StaticPolicy:
    """Defaults for a policy that decides per class only: no spill, nothing to refuse."""

    name = ""
    mixes = False

    def spill_target(self, routing: RoutingSpec) -> str | None:
        return None

    def spiller(self, exp: Experiment, pool: GpuPool) -> Spiller | None:
        return None

    def problems(self, exp: Experiment) -> list[tuple[str, str]]:
        return []
