"""`routing:` which backend serves a request, and where it goes when that backend cannot."""

from __future__ import annotations

from typing import Annotated, Literal, NamedTuple

from pydantic import Field, field_validator

from sim.config.base import Frozen

Fallback = Literal["none", "api", "cache"]


class Route(NamedTuple):
    """A parsed routing target: a GPU pool (`gpu`: the first, `gpu:<name>`: a pool of backends.gpu_pools), a
    provider (`api` for backends.api, else a name from backends.apis), possibly through its batch API, or
    `none` (no LLM: a deterministic workflow answered at routing.none_latency_s, at no token cost)."""

    kind: Literal["gpu", "api", "none"]
    provider: str | None  # None: backends.api, or the first GPU pool
    batch: bool


def parse_route(target: str) -> Route:
    """`gpu`, `gpu:<name>`, `api`, `api_batch`, `api:<name>`, `api_batch:<name>`, `none`: the one place these
    are read."""
    if target == "none":
        return Route("none", None, False)
    head, sep, name = target.partition(":")
    if head == "gpu" and (not sep or name):
        return Route("gpu", name or None, False)
    if head in ("api", "api_batch") and (not sep or name):
        return Route("api", name or None, head == "api_batch")
    raise ValueError(
        f"unknown routing target {target!r}: expected gpu, gpu:<name>, api, api_batch, api:<name>, "
        "api_batch:<name> or none"
    )


def check_target(target: str) -> str:
    parse_route(target)
    return target


MAX_FALLBACK_HOPS = 4


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


class EscalateSpec(Frozen):
    """A cascade: a share `fraction` of a class's requests, answered by the class's own target, are answered
    again by `to` (drawn per request on the escalation stream), with the first answer's tokens added to the
    prompt when `carry_output`. Both calls are paid; TTFT and e2e are those of the final answer."""

    to: str
    fraction: Annotated[float, Field(ge=0, le=1)]
    carry_output: bool = True

    @field_validator("to")
    @classmethod
    def _to(cls, v: str) -> str:
        if parse_route(v).kind == "none":
            raise ValueError("an escalation goes to a model: a GPU pool or an API, not none")
        return v


class SizeCondition(Frozen):
    """When a by-size rule applies: the request's prompt has more than `input_tokens_gt` tokens."""

    input_tokens_gt: Annotated[int, Field(ge=0, le=100_000_000)]


class SizeRule(Frozen):
    """`routing.by_size`: a request whose prompt passes `when` goes to `to` instead of its policy's target
    (long prompts to the big model); `classes` limits the rule to those classes (null: every class)."""

    when: SizeCondition
    to: str
    classes: Annotated[list[str], Field(min_length=1)] | None = None

    @field_validator("to")
    @classmethod
    def _to(cls, v: str) -> str:
        return check_target(v)


MAX_SIZE_RULES = 16


class RoutingSpec(Frozen):
    # a policy's name: a module of backends/routing/policies/ (checked in sim.engine.checks)
    policy: Annotated[str, Field(min_length=1, max_length=100)] = "gpu_only"
    by_class: dict[str, str] = Field(default_factory=dict)
    overflow: OverflowSpec = OverflowSpec()
    fallback: Fallback = "none"
    # where `fallback: api` sends a request whose backend is down or failed it: one target (api, api:<name>,
    # gpu, gpu:<name>) or a chain of them tried in order, at most MAX_FALLBACK_HOPS, each at most once
    fallback_target: str | list[str] = "api"
    none_latency_s: Annotated[float, Field(ge=0, le=3600)] = 0.05  # a `none` target's answer time
    escalate: dict[str, EscalateSpec] = Field(default_factory=dict)  # class name -> cascade
    # by prompt size, over the policy's class targets: the first rule whose `when` holds decides
    by_size: Annotated[list[SizeRule], Field(max_length=MAX_SIZE_RULES)] = Field(default_factory=list)

    @field_validator("fallback_target")
    @classmethod
    def _fallback_target(cls, v: str | list[str]) -> str | list[str]:
        chain = [v] if isinstance(v, str) else v
        if not 1 <= len(chain) <= MAX_FALLBACK_HOPS:
            raise ValueError(f"a fallback chain has 1 to {MAX_FALLBACK_HOPS} targets, got {len(chain)}")
        for t in chain:
            try:
                route: Route | None = parse_route(t)
            except ValueError:
                route = None
            if route is None or route.kind == "none" or route.batch:
                raise ValueError(f"fallback targets are api, api:<name>, gpu or gpu:<name>, got {t!r}")
        return v

    def fallback_chain(self) -> list[str]:
        """routing.fallback_target as a list: the targets a failed request tries, in order."""
        return [self.fallback_target] if isinstance(self.fallback_target, str) else list(self.fallback_target)

    @field_validator("by_class")
    @classmethod
    def _targets(cls, v: dict[str, str]) -> dict[str, str]:
        for target in v.values():
            check_target(target)
        return v
