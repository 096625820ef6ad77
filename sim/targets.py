"""Planning targets (`METRIC<=VALUE`, `METRIC>=VALUE`) and the probability that replications meet them.

A replication meets a target when its metric exists and satisfies the comparison. A `<=` target on a
latency percentile that is censored (its rank falls among requests that got no answer, sim.censored) is not
met, whatever the reported floor reads: more of those requests are unserved than the percentile allows.
A replication in which the metric is undefined (e.g. `peak_ttft_p95_s` when the horizon holds no whole peak
hour) neither meets nor fails it: it is left out of that target's count, and a target undefined in every
replication has the verdict `undefined`. P(meet) is estimated by the share of replications that meet every
target, with a Wilson score interval.

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

    def defined_in(self, metrics: Mapping[str, Any]) -> bool:
        v = metrics.get(self.metric)
        return v is not None and float(v) == float(v)  # not None, not NaN

    def met_by(self, metrics: Mapping[str, Any]) -> bool:
        if not self.defined_in(metrics):
            return False
        v = float(metrics[self.metric])
        if self.op == "<=":
            return v <= self.value and not metrics.get(f"{self.metric}.censored")
        return v >= self.value


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
    items = []
    for t in targets:
        reps = [m for m in metrics_per_rep if t.defined_in(m)]
        k = sum(1 for m in reps if t.met_by(m))
        items.append(
            {"target": str(t), "metric": t.metric, "op": t.op, "value": t.value, **_verdict(k, len(reps), confidence)}
        )
    reps = [m for m in metrics_per_rep if all(t.defined_in(m) for t in targets)]
    k_all = sum(1 for m in reps if meets_all(targets, m))
    every = _verdict(k_all, len(reps), confidence)
    if any(i["verdict"] == "undefined" for i in items):
        every["verdict"] = "undefined"
    return {
        "confidence": confidence,
        "interval_level": DECISION_LEVEL,
        "items": items,
        "all": every,
    }


def _verdict(k: int, n: int, confidence: float) -> dict[str, Any]:
    """`proportion`, with the verdict `undefined` when the metric is defined in no replication."""
    out = proportion(k, n, confidence)
    if n == 0:
        out["verdict"] = "undefined"
    return out
