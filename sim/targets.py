"""Planning targets (`METRIC<=VALUE`, `METRIC>=VALUE`) and the probability that replications meet them.

A replication meets a target when its metric exists and satisfies the comparison; a replication that
produced no value for the metric (e.g. no request arrived in the peak hour) does not meet it. P(meet) is
estimated by the share of replications that meet every target, with a Wilson score interval.

The verdict of a set of replications against a required probability P (the plan's `confidence`):
`meets` when the whole Wilson interval lies at or above P, `fails` when it lies below P, `undecided`
when it straddles P (more replications would be needed to tell).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sim.config.experiment import parse_target
from sim.stats import wilson_interval

# Level of the Wilson interval used to decide whether a P(meet) estimate is clearly above or below P.
DECISION_LEVEL = 0.95


@dataclass(frozen=True)
class Target:
    metric: str
    op: str  # "<=" or ">="
    value: float

    @classmethod
    def parse(cls, text: str) -> Target:
        metric, op, value = parse_target(text)
        return cls(metric, op, value)

    def __str__(self) -> str:
        return f"{self.metric}{self.op}{self.value:g}"

    def met_by(self, metrics: Mapping[str, Any]) -> bool:
        v = metrics.get(self.metric)
        if v is None:
            return False
        v = float(v)
        if v != v:  # NaN
            return False
        return v <= self.value if self.op == "<=" else v >= self.value


def parse_targets(texts: Iterable[str]) -> list[Target]:
    return [Target.parse(t) for t in texts]


def meets_all(targets: Sequence[Target], metrics: Mapping[str, Any]) -> bool:
    return all(t.met_by(metrics) for t in targets)


def verdict(low: float, high: float, p: float) -> str:
    if low >= p:
        return "meets"
    if high < p:
        return "fails"
    return "undecided"


def proportion(successes: int, n: int, required: float, level: float = DECISION_LEVEL) -> dict[str, Any]:
    """Share of successes with its Wilson interval and the verdict against the required probability."""
    low, high = wilson_interval(successes, n, level)
    return {
        "met": int(successes),
        "n": int(n),
        "p_meet": successes / n if n else None,
        "wilson95_low": low,
        "wilson95_high": high,
        "verdict": verdict(low, high, required) if n else "undecided",
    }


def targets_summary(
    targets: Sequence[Target], metrics_per_rep: Sequence[Mapping[str, Any]], confidence: float
) -> dict[str, Any]:
    """The `targets` section of summary.json: P(meet) per target and for all targets together."""
    n = len(metrics_per_rep)
    items = []
    for t in targets:
        k = sum(1 for m in metrics_per_rep if t.met_by(m))
        items.append(
            {"target": str(t), "metric": t.metric, "op": t.op, "value": t.value, **proportion(k, n, confidence)}
        )
    k_all = sum(1 for m in metrics_per_rep if meets_all(targets, m))
    return {
        "confidence": confidence,
        "interval_level": DECISION_LEVEL,
        "items": items,
        "all": proportion(k_all, n, confidence),
    }
