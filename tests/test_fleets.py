"""Fleets: several named GPU pools (backends.gpu_pools), targets gpu:<name>, pool-to-pool overflow, fallback
chains and the no-LLM target (routing target `none`).

Textbook reduction: two pools fed by class are two independent M/M/c queues (a Poisson stream split by
independent class draws is two independent Poisson streams), so each pool's mean wait is its own Erlang C.
"""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from sim.core.request_block import SERVED
from sim.engine.executor import Executor
from sim.engine.loading import load_config_text
from sim.engine.replication import ReplicationResult, simulate
from tests.queueing_formulas import mmc_wait

ROOT = Path(__file__).resolve().parents[1]

# pool a: c = 2, E[S] = 1 s; pool b: c = 3, E[S] = 0.5 s (max_batch 1, geometric tokens of mean 1000: M/M/c to
# -0.05% in the wait, tests/test_textbook.py); 5 requests/s, 20% to a: rho_a = 0.5, rho_b = 4 x 0.5 / 3 = 0.667
TWO_POOLS = """\
name: two-pools
seed: 5
replications: 2
horizon_h: 0.5
warmup_h: 0.1
workload:
  arrivals: {kind: constant, mean_rps: 5.0}
  classes:
    - {name: light, share: 0.2, input_tokens: {dist: constant, value: 1},
       output_tokens: {dist: geometric, mean: 1000}, slo_ttft_s: 3600}
    - {name: heavy, share: 0.8, input_tokens: {dist: constant, value: 1},
       output_tokens: {dist: geometric, mean: 1000}, slo_ttft_s: 3600}
cache: {response: {enabled: false}}
routing:
  policy: by_class
  by_class: {light: "gpu:a", heavy: "gpu:b"}
backends:
  gpu_pools:
    a: {servers: 2, max_batch: 1, kv_cache_tokens: 1000000000, iteration_s: {base: 0.001},
        cold_start_s: {dist: constant, value: 0}, max_prefill_tokens: null, price_per_server_hour_usd: 1.5}
    b: {servers: 3, max_batch: 1, kv_cache_tokens: 1000000000, iteration_s: {base: 0.0005},
        cold_start_s: {dist: constant, value: 0}, max_prefill_tokens: null, price_per_server_hour_usd: 2.25}
output: {timeseries: true, report: false}
"""


def _exp(*overrides: str, text: str = TWO_POOLS):  # type: ignore[no-untyped-def]
    return load_config_text(text, list(overrides))


def _all(r: ReplicationResult) -> dict[str, float | None]:
    return {**r.metrics, **r.breakdown}


def _num(m: dict[str, float | None], key: str) -> float:
    v = m[key]
    assert v is not None, key
    return float(v)


@pytest.mark.slow
def test_two_pools_fed_by_class_each_match_erlang_c() -> None:
    """Each pool's mean queue wait is its M/M/c Erlang C value.

    Tolerance: 4 standard errors of the mean over the replications (SE from their spread). The sizing
    (6 x 1.5 h) gives SE ~ 4% for each pool (pool a: ~32k customers, relative variance 58/N for M/M/2 at rho
    0.5; measured 3.8% for a, 3.7% for b, errors +0.5% and +5.6%); the test also asserts SE < 7%, so the check
    stays meaningful. ~25 s of CPU."""
    exp = _exp("replications=6", "horizon_h=1.6", "warmup_h=0.1")
    results = list(Executor(workers=2).run(exp, range(exp.replications)))
    for pool, c, lam, es in (("a", 2, 1.0, 1.0), ("b", 3, 4.0, 0.5)):
        w = np.array([_num(_all(r), f"queue_wait_mean_s.pool.{pool}") for r in results])
        util = np.array([_num(_all(r), f"gpu_utilization.pool.{pool}") for r in results])
        assert len(w) == exp.replications
        wq = mmc_wait(c, lam, es)
        mean, se = float(w.mean()), float(w.std(ddof=1) / math.sqrt(len(w)))
        print(f"\npool {pool}: Wq {mean:.4f} s vs Erlang C {wq:.4f} s ({mean / wq - 1:+.2%}, SE {se / wq:.2%})")
        assert se < 0.07 * wq, f"pool {pool}: experiment too small (SE {se / wq:.1%})"
        assert abs(mean - wq) < 4 * se, f"pool {pool}: Wq {mean:.4f} vs Erlang C {wq:.4f}, SE {se:.4f}"
        rho = lam * es / c  # each server's busy fraction, within 4 standard errors
        assert abs(util.mean() - rho) < 4 * util.std(ddof=1) / math.sqrt(len(util)), (pool, util.mean(), rho)


def test_crn_more_servers_in_one_pool_never_raise_its_wait() -> None:
    """Common random numbers: the same arrivals and sizes, pool a with 1..4 servers (FCFS, max_batch 1). Pool
    a's mean wait never rises; pool b (its own streams, its own class) is untouched, bit for bit."""
    for rep in range(3):
        waits, b_metrics = [], []
        for servers in (1, 2, 3, 4):
            m = _all(simulate(_exp(f"backends.gpu_pools.a.servers={servers}", "workload.arrivals.mean_rps=5.5"), rep))
            waits.append(_num(m, "queue_wait_mean_s.pool.a"))
            b_metrics.append({k: v for k, v in m.items() if k.endswith(".pool.b")})
        assert all(w2 <= w1 for w1, w2 in zip(waits, waits[1:], strict=False)), waits
        assert waits[0] > waits[-1]
        assert all(bm == b_metrics[0] for bm in b_metrics)


CONSERVATION_CASES = {
    "by class": [],
    "overflow a to b": ["routing.policy=overflow", "routing.overflow.target=gpu:b", "routing.overflow.max_queue=0"],
    "overflow a to api": ["routing.policy=overflow", "routing.overflow.max_queue=0"],
    "fallback chain": [
        "routing.policy=gpu_only",
        "backends.gpu_pools.a.failures.mtbf_h=0.05",
        "backends.gpu_pools.a.failures.mttr_h=0.1",
        "routing.fallback=api",
        "routing.fallback_target=[gpu:b, api]",
    ],
    "no llm": ["routing.by_class.light=none"],
}


@pytest.mark.parametrize("case", sorted(CONSERVATION_CASES))
def test_conservation_across_pools(case: str) -> None:
    """Every request is accounted for once; the pools' parts add up to the totals exactly."""
    r = simulate(_exp(*CONSERVATION_CASES[case]), 1)
    m = _all(r)
    n = _num(m, "requests")
    assert n == sum(_num(m, k) for k in ("served", "failed", "dropped", "in_flight"))
    pools = sorted(k.split(".pool.", 1)[1] for k in m if k.startswith("cost_gpu_usd.pool."))
    assert pools
    served_gpu = sum(_num(m, f"served_by_gpu.pool.{p}") for p in pools)
    assert served_gpu == _num(m, "served_by_gpu")
    no_llm = _num(m, "served.class.light") if case == "no llm" else 0.0
    assert _num(m, "served") == _num(m, "cache_hits") + served_gpu + _num(m, "served_by_api") + no_llm
    # the bill: the pools' costs add up to the GPU line exactly (math.fsum, correctly rounded)
    assert _num(m, "cost_gpu_usd") == math.fsum(_num(m, f"cost_gpu_usd.pool.{p}") for p in pools)
    assert _num(m, "cost_tco_gpu_monthly_usd") == math.fsum(_num(m, f"cost_gpu_monthly_usd.pool.{p}") for p in pools)
    for p in pools:  # a pool's horizon cost is its server-hours at its own price
        price = 1.5 if p == "a" else 2.25
        assert _num(m, f"cost_gpu_usd.pool.{p}") == pytest.approx(_num(m, f"server_hours.pool.{p}") * price, rel=1e-12)
    ts = r.timeseries  # the per-minute series of the pools add up to the totals
    for col in ("busy_servers", "healthy_servers", "capacity_used_servers"):
        assert np.allclose(ts[col], sum(ts[f"{col}.pool.{p}"] for p in pools), rtol=1e-12, atol=1e-12)


def test_overflow_goes_from_one_pool_to_another() -> None:
    m = _all(simulate(_exp(*CONSERVATION_CASES["overflow a to b"], "routing.by_class={}"), 0))
    # every class targets the first pool (a); what spills is served by b, nothing by an API
    assert _num(m, "served_by_gpu.pool.a") > 0 and _num(m, "served_by_gpu.pool.b") > 0
    assert _num(m, "served_by_api") == 0 and _num(m, "cost_api_usd") == 0


def test_fallback_chain_reaches_the_second_pool_then_the_api() -> None:
    case = CONSERVATION_CASES["fallback chain"]
    m = _all(simulate(_exp(*case, "routing.by_class={}"), 0))
    assert _num(m, "served_by_gpu.pool.b") > 0  # pool a's failures went on to pool b
    # with pool b down too (no servers), the chain's last hop is the API
    b_down = ["backends.gpu_pools.b.failures.mtbf_h=0.02", "backends.gpu_pools.b.failures.mttr_h=0.5"]
    m2 = _all(simulate(_exp(*case, "routing.by_class={}", "backends.gpu_pools.b.servers=1", *b_down), 0))
    assert _num(m2, "served_by_api") > 0


def test_no_llm_target_is_served_at_its_latency_for_free() -> None:
    exp = _exp("routing.by_class.light=none", "routing.none_latency_s=0.2", "output.requests=true")
    r = simulate(exp, 0)
    m = _all(r)
    req = r.requests
    assert req is not None
    light = req["class_idx"] == 0
    late = int((req["arrival_at"][light] > exp.horizon_h * 3600.0 - 0.2).sum())  # still answering at the horizon
    assert _num(m, "served.class.light") == _num(m, "requests.class.light") - late > 0
    assert "cost_gpu_usd.pool.a" not in m  # no class routes to pool a: it is not provisioned
    light &= req["status"] == SERVED
    ttft = req["first_token_at"][light] - req["arrival_at"][light]
    assert np.allclose(ttft, 0.2, rtol=0, atol=1e-9) and np.all(req["cost_usd"][light] == 0.0)


def test_shorthand_is_the_pool_named_gpu() -> None:
    """backends.gpu_pool is the pool named `gpu`: the same run, metric for metric."""
    pool = "{servers: 2, max_batch: 1, kv_cache_tokens: 1000000000, iteration_s: {base: 0.001}, cold_start_s: {dist: constant, value: 0}}"  # noqa: E501
    one = TWO_POOLS.split("cache:")[0] + f"routing: {{policy: gpu_only}}\nbackends:\n  gpu_pool: {pool}\n"
    named = TWO_POOLS.split("cache:")[0] + f"routing: {{policy: gpu_only}}\nbackends:\n  gpu_pools:\n    gpu: {pool}\n"
    a, b = simulate(_exp(text=one), 0), simulate(_exp(text=named), 0)
    assert a.metrics == b.metrics
    assert b.breakdown["served_by_gpu.pool.gpu"] == b.metrics["served_by_gpu"]


def _escalate(spec: str) -> tuple[str, str]:
    return ("by_class: {", f"escalate: {spec}\n  by_class: {{")


def _validate(text: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sim", "validate", "-"],
        input=text,
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (('"gpu:b"}', '"gpu:c"}'), "routing.by_class.heavy (line 16): names unknown GPU pool 'c'; pools: a, b"),
        (
            ("routing:\n", "routing:\n  fallback: api\n  fallback_target: [gpu:b, api, gpu:b]\n"),
            "routing.fallback_target.2 (line 16): 'gpu:b' is already hop 0 of the chain: a loop",
        ),
        (("backends:\n", "backends:\n  gpu_pool: {servers: 7}\n"), "backends (line 17): give the GPU pools either"),
        (("by_class: {", "overflow: {target: none}\n  by_class: {"), "routing.overflow.target (line 16)"),
        (("    a: {", "    A: {"), "backends.gpu_pools.A"),
        (
            ("by_class: {", "escalate: {nobody: {to: api, fraction: 0.5}}\n  by_class: {"),
            "routing.escalate.nobody (line 16)",
        ),
        (
            ("by_class: {", "escalate: {light: {to: 'gpu:a', fraction: 0.5}}\n  by_class: {"),
            "routing.escalate.light.to (line 16)",
        ),
        (
            ("by_class: {", "escalate: {light: {to: 'gpu:z', fraction: 0.5}}\n  by_class: {"),
            "routing.escalate.light.to (line 16)",
        ),
        (
            ("by_class: {", "escalate: {light: {to: none, fraction: 0.5}}\n  by_class: {"),
            "routing.escalate.light.to (line 16)",
        ),
    ],
)
def test_fleet_config_problems_are_refused_at_validate(edit: tuple[str, str], expected: str) -> None:
    assert edit[0] in TWO_POOLS
    text = TWO_POOLS.replace(edit[0], edit[1], 1)
    proc = _validate(text)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    assert any(line.startswith(expected) for line in proc.stderr.splitlines()), proc.stderr


# -- cascades (routing.escalate) ---------------------------------------------------------------------------
CASCADE = [
    "routing.by_class.light=api",
    "backends.apis={premium: {price_input_per_mtok_usd: 5.0, price_output_per_mtok_usd: 20.0}}",
    "backends.api.price_input_per_mtok_usd=0.5",
    "backends.api.price_output_per_mtok_usd=1.5",
    "backends.api.price_cached_input_per_mtok_usd=0.25",
    "output.requests=true",
]


def _cascade(fraction: float, rep: int = 0, *more: str) -> ReplicationResult:
    esc = f"routing.escalate={{light: {{to: 'api:premium', fraction: {fraction}}}}}"
    return simulate(_exp(*CASCADE, esc, *more), rep)


def test_escalated_requests_are_paid_twice_and_counted_once() -> None:
    r = _cascade(0.25)
    m = _all(r)
    assert _num(m, "requests") == sum(_num(m, k) for k in ("served", "failed", "dropped", "in_flight"))
    req = r.requests
    assert req is not None
    light = (req["class_idx"] == 0) & (req["status"] == SERVED)
    esc = light & (req["stage"] == 2)
    once = light & (req["stage"] != 2)
    out = req["output_tokens"]
    inp = req["input_tokens"]  # an escalated row's prompt carries the first answer (carry_output)
    first = (inp - out) * 0.5 / 1e6 + out * 1.5 / 1e6
    second = inp * 5.0 / 1e6 + out * 20.0 / 1e6
    assert np.allclose(req["cost_usd"][esc], first[esc] + second[esc], rtol=1e-12, atol=0)
    assert np.allclose(req["cost_usd"][once], inp[once] * 0.5 / 1e6 + out[once] * 1.5 / 1e6, rtol=1e-12, atol=0)
    assert _num(m, "escalated_requests") == int((req["stage"] == 2).sum()) == _num(m, "escalated_requests.class.light")
    assert _num(m, "cost_api_usd") == pytest.approx(float(req["cost_usd"].sum()), rel=1e-12)
    # the final answer is the premium one: TTFT after the first answer's end
    assert np.all(req["first_token_at"][esc] > req["arrival_at"][esc] + 0.0)


def test_escalation_share_is_within_its_binomial_interval() -> None:
    """P = 0.25 of the light class: the escalated share over 3 replications (~4,300 requests) lies within the
    99.9% normal interval of a binomial proportion, 3.29 sqrt(P (1 - P) / n) (~ +-2.2 points)."""
    p = 0.25
    k = n = 0.0
    for rep in range(3):
        m = _all(_cascade(p, rep))
        k += _num(m, "escalated_requests.class.light")
        n += _num(m, "requests.class.light") - _num(m, "in_flight")  # in flight at the horizon: not yet decided
    half = 3.29 * math.sqrt(p * (1 - p) / n)
    assert abs(k / n - p) < half, (k / n, half)


def test_crn_a_larger_fraction_only_adds_escalated_requests() -> None:
    sets = []
    for p in (0.1, 0.3, 0.6):
        req = _cascade(p, 2).requests
        assert req is not None
        sets.append(set(req["arrival_at"][req["stage"] == 2].tolist()))
    assert sets[0] <= sets[1] <= sets[2] and len(sets[0]) < len(sets[2])


def test_escalation_from_a_gpu_pool_to_another() -> None:
    m = _all(simulate(_exp("routing.escalate={light: {to: 'gpu:b', fraction: 1.0, carry_output: false}}"), 0))
    # every light request is answered by a, then by b: b serves every request, a serves none finally
    assert _num(m, "escalated_requests") > 0
    assert _num(m, "served_by_gpu.pool.b") == _num(m, "served")


def test_plan_varies_a_named_pools_servers_and_the_resolved_config_round_trips() -> None:
    """`capsim plan --vary backends.gpu_pools.<name>.servers=...` derives each candidate through this path."""
    from sim.engine.loading import resolved_yaml
    from sim.engine.variants import derive

    exp = _exp()
    three = derive(exp, [("backends.gpu_pools.a.servers", 3)])
    assert three.backends.pools()["a"].servers == 3 and three.backends.pools()["b"].servers == 3
    text = resolved_yaml(three)
    assert "gpu_pool:" not in text and "gpu_pools:" in text
    assert load_config_text(text, []) == three
