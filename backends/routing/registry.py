"""The routing policies by name: every module of `backends/routing/policies/` that defines `POLICY`.

Adding a policy is adding one file there (see backends/routing/policy.py for what it decides);
`routing.policy` accepts its name from then on, `capsim validate` lists it among the choices.
"""

from __future__ import annotations

from backends.routing import policies
from backends.routing.policy import RoutingPolicy
from sim.core.registry import discover

POLICIES: dict[str, RoutingPolicy] = discover(policies, "routing policies")


def policy_names() -> list[str]:
    return list(POLICIES)


def policy_of(name: str) -> RoutingPolicy:
    """The policy named `name` (a validated config names a known one: sim.engine.checks)."""
    return POLICIES[name]


def unknown_policy_message(name: object) -> str | None:
    """The problem with routing.policy, or None when it names a policy."""
    if isinstance(name, str) and name in POLICIES:
        return None
    choices = [repr(n) for n in POLICIES]
    return f"Input should be {', '.join(choices[:-1])} or {choices[-1]}, got {name!r}"
