"""The routing section's checks at `capsim validate` (part of sim.engine.checks' run_problems): cascades,
by-size rules, the fallback chain, and every target naming a provider or pool the config has."""

from __future__ import annotations

from backends.routing.registry import policy_of, unknown_policy_message
from sim.config.experiment import Experiment
from sim.config.routing import parse_route


def escalate_problems(exp: Experiment) -> list[tuple[str, str]]:
    """A cascade names a known class and a known model other than the class's own target; both its calls are
    resolved when they start (a GPU pool, or an API without rate limits: backends/routing/escalation.py)."""
    routing = exp.routing
    classes = [c.name for c in exp.workload.classes]
    if not routing.escalate or unknown_policy_message(routing.policy) is not None:
        return []
    problems: list[tuple[str, str]] = []
    known = [c for c in routing.escalate if c in classes]
    for name in routing.escalate:
        if name not in classes:
            problems.append(
                (f"routing.escalate.{name}", f"names unknown class {name!r}; classes: {', '.join(classes)}")
            )
    if routing.policy == "by_class" and any(c not in routing.by_class for c in known):
        return problems  # reported by the policy
    targets = dict(zip(classes, policy_of(routing.policy).class_targets(routing, classes), strict=True))
    first = next(iter(exp.backends.pools()))

    def canonical(t: str) -> tuple[str, str | None, bool]:
        r = parse_route(t)
        return (r.kind, r.provider or (first if r.kind == "gpu" else None), r.batch)

    def rate_limited(t: str) -> bool:
        r = parse_route(t)
        if r.kind != "api" or r.batch:
            return False
        api = exp.backends.api if r.provider is None else exp.backends.apis.get(r.provider)
        return api is not None and (api.rate_limit.rpm is not None or api.rate_limit.tpm is not None)

    for name in known:
        key = f"routing.escalate.{name}"
        to = routing.escalate[name].to
        found = target_problems(exp, f"{key}.to", to)
        problems.extend(found)
        if found:
            continue
        own = targets[name]
        if parse_route(own).kind == "none":
            problems.append((key, f"class {name!r} is answered without a model (target none): nothing to escalate"))
        elif canonical(to) == canonical(own):
            problems.append((f"{key}.to", f"{to!r} is class {name!r}'s own target: an escalation goes elsewhere"))
        for which, t in (("its own target", own), ("the escalation target", to)):
            if rate_limited(t):
                problems.append(
                    (
                        f"{key}.to" if t == to else key,
                        f"{which} {t!r} has a rate limit: a cascade needs calls that "
                        "are answered when they start (a GPU pool, or an API without rate_limit rpm/tpm)",
                    )  # fmt: skip
                )
    return problems


def size_rule_problems(exp: Experiment) -> list[tuple[str, str]]:
    """routing.by_size: each rule names known classes and a known target, and can apply to some request (a rule
    after one with a threshold no higher over the same classes or more would never be reached)."""
    classes = [c.name for c in exp.workload.classes]
    problems: list[tuple[str, str]] = []
    seen: list[tuple[int, set[str]]] = []  # earlier rules: (threshold, classes)
    for k, rule in enumerate(exp.routing.by_size):
        key = f"routing.by_size.{k}"
        problems.extend(target_problems(exp, f"{key}.to", rule.to))
        for m, name in enumerate(rule.classes or []):
            if name not in classes:
                problems.append((f"{key}.classes.{m}", f"names unknown class {name!r}; classes: {', '.join(classes)}"))
        mine = set(classes) if rule.classes is None else set(rule.classes) & set(classes)
        for i, (gt, theirs) in enumerate(seen):
            if gt <= rule.when.input_tokens_gt and mine <= theirs:
                problems.append(
                    (
                        f"{key}.when.input_tokens_gt",
                        f"rule {k} is never reached: rule {i} (input_tokens_gt: {gt}) already takes every request"
                        " it would; order the rules from the largest threshold down",
                    )
                )
                break
        seen.append((rule.when.input_tokens_gt, mine))
    return problems


def fallback_problems(exp: Experiment) -> list[tuple[str, str]]:
    """The fallback chain names known backends, each once (a chain that comes back to a target it has left
    would be a loop; hops only move forward, so a chain of n targets ends after at most n hops)."""
    routing = exp.routing
    chain = routing.fallback_chain()
    single = isinstance(routing.fallback_target, str)
    first = next(iter(exp.backends.pools()))
    problems: list[tuple[str, str]] = []
    seen: dict[tuple[str, str | None, bool], int] = {}
    for k, target in enumerate(chain):
        key = "routing.fallback_target" if single else f"routing.fallback_target.{k}"
        problems.extend(target_problems(exp, key, target))
        route = parse_route(target)
        canonical = (route.kind, route.provider or (first if route.kind == "gpu" else None), route.batch)
        if canonical in seen:
            problems.append((key, f"{target!r} is already hop {seen[canonical]} of the chain: a loop"))
        seen.setdefault(canonical, k)
    return problems


def target_problems(exp: Experiment, key: str, target: str) -> list[tuple[str, str]]:
    """A routing target that names a provider or a GPU pool the config does not have."""
    route = parse_route(target)
    if route.provider is None:
        return []
    if route.kind == "api" and route.provider not in exp.backends.apis:
        return [(key, f"names unknown API provider {route.provider!r}")]
    pools = exp.backends.pools()
    if route.kind == "gpu" and route.provider not in pools:
        return [(key, f"names unknown GPU pool {route.provider!r}; pools: {', '.join(pools)}")]
    return []
