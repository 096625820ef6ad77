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
when it straddles P (more replications would be needed to tell: `replications_needed` says how many, at
the share observed). Counting alone needs many: at P = 0.95 every one of 73 replications must meet.

The metric's own values decide with far fewer (`tolerance`): with 95% confidence, a share P of
replications lies below the normal tolerance bound mean + k s (k from the noncentral t distribution; for
`>=` targets, above mean - k s). The target is met when that bound is within it, failed when even the
other-side confidence bound of the P-quantile is outside it. This reading assumes the metric is roughly
normal across replications (a sum or mean over many requests usually is). `decision` is the Wilson verdict
when it is decided, else the tolerance verdict; `decided_by` says which. For all targets together each
target is read at quantile 1 - (1 - P)/m and confidence 1 - 0.05/m (m targets; the union bound).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sim.config.experiment import parse_target
from sim.core.stats import wilson_interval

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


MAX_REPLICATIONS_NEEDED = 1_000_000


def replications_needed(share: float, required: float, level: float = DECISION_LEVEL) -> int | None:
    """Fewest replications whose Wilson interval at this observed share clears the required probability
    (above it when the share is above, below it when below); None when the share equals it."""
    if share == required:
        return None
    above = share > required

    def decided(n: int) -> bool:
        low, high = wilson_interval(round(share * n), n, level)
        return low >= required if above else high < required

    hi = 1
    while not decided(hi):
        hi *= 2
        if hi > MAX_REPLICATIONS_NEEDED:
            return None
    lo = hi // 2
    while lo + 1 < hi:  # decided(hi), not decided(lo) (or lo == 0)
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if decided(mid) else (mid, hi)
    return hi


def proportion(successes: int, n: int, required: float, level: float = DECISION_LEVEL) -> dict[str, Any]:
    """Share of successes with its Wilson interval, the verdict against the required probability and how
    many replications a verdict would need at this share."""
    low, high = wilson_interval(successes, n, level)
    v = verdict(low, high, required) if n else "undecided"
    return {
        "met": int(successes),
        "n": int(n),
        "p_meet": successes / n if n else None,
        "wilson95_low": low,
        "wilson95_high": high,
        "verdict": v,
        "replications_needed": replications_needed(successes / n, required, level) if n and v == "undecided" else None,
    }


def tolerance_reading(
    target: Target, values: Sequence[Any], quantile: float, level: float = DECISION_LEVEL
) -> dict[str, Any]:
    """The normal tolerance bound of the metric at this quantile and confidence, and its verdict."""
    import numpy as np

    x = np.array([float(v) for v in values if v is not None and np.isfinite(float(v))], dtype=np.float64)
    out: dict[str, Any] = {"quantile": quantile, "level": level, "bound": None, "verdict": "undecided"}
    n = x.size
    if n < 2 or n < len(values):  # a replication without a value does not meet: counting decides
        return out
    from scipy import stats as sps  # here: a one-replication run needs no scipy.stats (~0.9 s to import)

    mean, sd = float(x.mean()), float(x.std(ddof=1))
    delta = float(sps.norm.ppf(quantile)) * math.sqrt(n)
    k_out = float(sps.nct.ppf(level, n - 1, delta)) / math.sqrt(n)  # one-sided tolerance factor
    k_in = float(sps.nct.ppf(1.0 - level, n - 1, delta)) / math.sqrt(n)  # lower confidence bound of the quantile
    if target.op == "<=":
        bound, inner = mean + k_out * sd, mean + k_in * sd
        met, failed = bound <= target.value, inner > target.value
    else:
        bound, inner = mean - k_out * sd, mean - k_in * sd
        met, failed = bound >= target.value, inner < target.value
    out["bound"] = bound
    out["verdict"] = "meets" if met else "fails" if failed else "undecided"
    return out


def _decision(wilson_verdict: str, tolerance_verdict: str) -> dict[str, str]:
    if wilson_verdict == "undefined":
        return {"decision": "undefined", "decided_by": "none"}
    if wilson_verdict != "undecided" or tolerance_verdict == "undecided":
        return {"decision": wilson_verdict, "decided_by": "count" if wilson_verdict != "undecided" else "none"}
    return {"decision": tolerance_verdict, "decided_by": "tolerance"}


def targets_summary(
    targets: Sequence[Target], metrics_per_rep: Sequence[Mapping[str, Any]], confidence: float
) -> dict[str, Any]:
    """The `targets` section of summary.json: P(meet) per target and for all targets together."""
    items = []
    m = max(1, len(targets))
    joint: list[str] = []
    for t in targets:
        reps = [row for row in metrics_per_rep if t.defined_in(row)]
        k = sum(1 for row in reps if t.met_by(row))
        item = {
            "target": str(t),
            "metric": t.metric,
            "op": t.op,
            "value": t.value,
            **_verdict(k, len(reps), confidence),
        }
        # a censored percentile (unserved requests counted) is no value to extrapolate from: counting decides
        censored = t.op == "<=" and any(row.get(f"{t.metric}.censored") for row in reps)
        values = [] if censored else [row.get(t.metric) for row in reps]
        item["tolerance"] = tolerance_reading(t, values, confidence)
        item.update(_decision(item["verdict"], item["tolerance"]["verdict"]))
        items.append(item)
        split = tolerance_reading(t, values, 1.0 - (1.0 - confidence) / m, 1.0 - (1.0 - DECISION_LEVEL) / m)
        joint.append(split["verdict"])
    reps = [row for row in metrics_per_rep if all(t.defined_in(row) for t in targets)]
    k_all = sum(1 for row in reps if meets_all(targets, row))
    every = _verdict(k_all, len(reps), confidence)
    if any(i["verdict"] == "undefined" for i in items):
        every["verdict"] = "undefined"
    tol_all = "fails" if "fails" in joint else "meets" if joint and all(v == "meets" for v in joint) else "undecided"
    every["tolerance"] = {"verdict": tol_all, "method": "each target at quantile 1 - (1 - P)/m, confidence 1 - 0.05/m"}
    every.update(_decision(every["verdict"], tol_all))
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
