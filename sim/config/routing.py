"""`routing:` which backend serves a request, and where it goes when that backend cannot."""

from __future__ import annotations

from typing import Annotated, Literal, NamedTuple

from pydantic import Field, field_validator

from sim.config.base import Frozen

Fallback = Literal["none", "api", "cache"]


class Route(NamedTuple):
    """A parsed routing target: `gpu`, or a provider (`api` for backends.api, else a name from backends.apis),
    possibly through its batch API."""

    kind: Literal["gpu", "api"]
    provider: str | None  # None: backends.api (or the GPU pool)
    batch: bool


def parse_route(target: str) -> Route:
    """`gpu`, `api`, `api_batch`, `api:<name>`, `api_batch:<name>`: the one place these are read."""
    if target == "gpu":
        return Route("gpu", None, False)
    head, sep, name = target.partition(":")
    if head in ("api", "api_batch") and (not sep or name):
        return Route("api", name or None, head == "api_batch")
    raise ValueError(f"unknown routing target {target!r}: expected gpu, api, api_batch, api:<name> or api_batch:<name>")


def check_target(target: str) -> str:
    parse_route(target)
    return target


class OverflowSpec(Frozen):
    """Spill a GPU-bound request to `target` when (trigger queue) the GPU queue per ready server exceeds
    `max_queue`, or (trigger slo) its predicted queue wait exceeds slo_fraction x its class's slo_ttft_s."""

    max_queue: Annotated[float, Field(ge=0)] = 4.0  # waiting requests per GPU server before spilling
    target: str = "api"
    trigger: Literal["queue", "slo"] = "queue"
    slo_fraction: Annotated[float, Field(gt=0, le=100)] = 1.0

    @field_validator("target")
    @classmethod
    def _target(cls, v: str) -> str:
        return check_target(v)


class RoutingSpec(Frozen):
    # a policy's name: a module of backends/routing/policies/ (checked in sim.engine.checks)
    policy: Annotated[str, Field(min_length=1, max_length=100)] = "gpu_only"
    by_class: dict[str, str] = Field(default_factory=dict)
    overflow: OverflowSpec = OverflowSpec()
    fallback: Fallback = "none"
    fallback_target: str = "api"  # the provider that `fallback: api` sends to: api or api:<name>

    @field_validator("fallback_target")
    @classmethod
    def _fallback_target(cls, v: str) -> str:
        try:
            route: Route | None = parse_route(v)
        except ValueError:
            route = None
        if route is not None and route.kind == "api" and not route.batch:
            return v
        raise ValueError(f"fallback_target must be api or api:<name>, got {v!r}")

    @field_validator("by_class")
    @classmethod
    def _targets(cls, v: dict[str, str]) -> dict[str, str]:
        for target in v.values():
            check_target(target)
        return v
