"""routing.by_size: a request whose prompt is longer than `input_tokens_gt` goes to the rule's target (long
prompts to the big model), over whatever the policy chose for its class; the first rule that applies decides.

The rule reads the request's own sizes and draws no random number, so the arrivals and sizes are the same
with and without it (common random numbers): only where each request goes changes."""

from __future__ import annotations

import math

import numpy as np
import pytest
from test_fleets import TWO_POOLS, _all, _exp, _num, _validate

from sim.core.request_block import PATH_API, PATH_GPU, SERVED, STAGE_ESCALATED
from sim.engine.replication import simulate

# prompts of 1..600 tokens in both classes; light -> pool a (index 0), heavy -> pool b (index 1)
SIZES = [
    "workload.classes.0.input_tokens={dist: uniform, low: 1, high: 600}",
    "workload.classes.1.input_tokens={dist: uniform, low: 1, high: 600}",
    "output.requests=true",
]
LONG_HEAVY_TO_A = "routing.by_size=[{when: {input_tokens_gt: 500}, to: 'gpu:a', classes: [heavy]}]"


def _requests(*overrides: str, rep: int = 0) -> tuple[dict[str, float | None], dict[str, np.ndarray]]:
    r = simulate(_exp(*SIZES, *overrides), rep)
    assert r.requests is not None
    return _all(r), r.requests


def test_requests_over_the_threshold_go_to_the_rules_target_and_the_rest_do_not() -> None:
    m, req = _requests(LONG_HEAVY_TO_A)
    heavy = req["class_idx"] == 1
    long = req["input_tokens"] > 500
    assert (heavy & long).sum() > 100 and (heavy & ~long).sum() > 100  # both sides are exercised
    # every request is routed to a pool here (no cache): its pool is decided when it is routed
    assert np.all(req["pool"][heavy & long] == 0)  # the rule's target, pool a
    assert np.all(req["pool"][heavy & ~long] == 1)  # the class's own target, pool b
    assert np.all(req["pool"][~heavy] == 0)  # the rule names heavy only: light stays on a, whatever its size
    served = req["status"] == SERVED
    assert np.all(req["path"][served] == PATH_GPU)
    assert _num(m, "served_by_gpu.pool.a") == (served & ((~heavy) | long)).sum()


def test_a_rule_to_an_api_and_the_first_rule_that_applies_decides() -> None:
    rules = (
        "routing.by_size=[{when: {input_tokens_gt: 550}, to: api},"
        " {when: {input_tokens_gt: 400}, to: 'gpu:a', classes: [heavy]}]"
    )
    _, req = _requests(rules)
    size, heavy = req["input_tokens"], req["class_idx"] == 1
    to_api = size > 550
    api_rows = req["path"] == PATH_API
    assert to_api.sum() > 50
    assert np.array_equal(api_rows, to_api)  # only, and all, the prompts over 550 tokens reach the API
    mid_heavy = heavy & (size > 400) & ~to_api
    assert mid_heavy.sum() > 50 and np.all(req["pool"][mid_heavy] == 0)
    assert np.all(req["pool"][heavy & (size <= 400)] == 1)


def test_crn_the_rule_changes_only_where_requests_go() -> None:
    m0, base = _requests()
    m1, sized = _requests(LONG_HEAVY_TO_A)
    for col in ("arrival_at", "class_idx", "input_tokens", "output_tokens"):
        assert np.array_equal(base[col], sized[col]), col
    # a rule no prompt passes is no rule at all: the same run, metric for metric
    m2, _ = _requests("routing.by_size=[{when: {input_tokens_gt: 600}, to: 'gpu:a'}]")
    assert m2 == m0
    assert m1 != m0


@pytest.mark.parametrize("rep", [0, 1])
def test_conservation_with_by_size(rep: int) -> None:
    """Every request is accounted for once, on exactly one path; the pools' parts add up to the totals."""
    rules = "routing.by_size=[{when: {input_tokens_gt: 550}, to: api}, {when: {input_tokens_gt: 500}, to: 'gpu:a'}]"
    m, req = _requests(rules, rep=rep)
    n = _num(m, "requests")
    assert n == len(req["arrival_at"])
    assert n == sum(_num(m, k) for k in ("served", "failed", "dropped", "in_flight"))
    pools = ("a", "b")
    served_gpu = sum(_num(m, f"served_by_gpu.pool.{p}") for p in pools)
    assert served_gpu == _num(m, "served_by_gpu")
    assert _num(m, "served") == served_gpu + _num(m, "served_by_api")
    assert _num(m, "cost_gpu_usd") == math.fsum(_num(m, f"cost_gpu_usd.pool.{p}") for p in pools)
    parts = _num(m, "cost_gpu_usd") + _num(m, "cost_api_usd") + _num(m, "cost_fixed_usd")
    assert _num(m, "cost_total_usd") == pytest.approx(parts, rel=1e-12)
    api = req["path"] == PATH_API  # the API line is the routed prompts' own prices
    assert api.sum() > 50 and _num(m, "cost_api_usd") == pytest.approx(math.fsum(req["cost_usd"][api]), rel=1e-9)


def test_a_request_routed_by_size_is_not_escalated() -> None:
    esc = "routing.escalate={light: {to: 'gpu:b', fraction: 1.0, carry_output: false}}"
    rule = "routing.by_size=[{when: {input_tokens_gt: 500}, to: 'gpu:b', classes: [light]}]"
    _, req = _requests(esc, rule)
    light, long = req["class_idx"] == 0, req["input_tokens"] > 500
    done = req["status"] == SERVED
    assert np.all(req["stage"][light & long] != STAGE_ESCALATED)  # the rule chose its model: one call
    assert np.any(req["stage"][light & ~long & done] == STAGE_ESCALATED)


@pytest.mark.parametrize(
    ("rules", "expected"),
    [
        ("[{when: {input_tokens_gt: 10}, to: 'gpu:z'}]", "routing.by_size.0.to (line 15): names unknown GPU pool 'z'"),
        ("[{when: {input_tokens_gt: 10}, to: 'api:nobody'}]", "routing.by_size.0.to (line 15)"),
        ("[{when: {input_tokens_gt: 10}, to: gpux}]", "routing.by_size.0.to (line 15)"),
        ("[{when: {input_tokens_gt: 10}, to: 'gpu:a', classes: [nobody]}]", "routing.by_size.0.classes.0 (line 15)"),
        ("[{when: {input_tokens_gt: -1}, to: 'gpu:a'}]", "routing.by_size.0.when.input_tokens_gt (line 15)"),
        ("[{when: {input_tokens_lt: 10}, to: 'gpu:a'}]", "routing.by_size.0.when"),
        (
            "[{when: {input_tokens_gt: 100}, to: 'gpu:a'},"
            " {when: {input_tokens_gt: 200}, to: 'gpu:b', classes: [light]}]",
            "routing.by_size.1.when.input_tokens_gt (line 15): rule 1 is never reached",
        ),
    ],
)
def test_by_size_problems_are_refused_at_validate(rules: str, expected: str) -> None:
    text = TWO_POOLS.replace("routing:\n", f"routing:\n  by_size: {rules}\n", 1)
    proc = _validate(text)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    assert any(line.startswith(expected) for line in proc.stderr.splitlines()), proc.stderr


def test_a_larger_first_threshold_before_a_smaller_one_is_accepted() -> None:
    rules = "[{when: {input_tokens_gt: 500}, to: api}, {when: {input_tokens_gt: 100}, to: 'gpu:a'}]"
    proc = _validate(TWO_POOLS.replace("routing:\n", f"routing:\n  by_size: {rules}\n", 1))
    assert proc.returncode == 0, proc.stderr


SMALL_KV_A = TWO_POOLS.replace(
    "a: {servers: 2, max_batch: 1, kv_cache_tokens: 1000000000", "a: {servers: 2, max_batch: 1, kv_cache_tokens: 1000"
)
LONG_PROMPTS = "{dist: uniform, low: 1, high: 5000}"


def _with(text: str, rules: str, light_inputs: str, heavy_inputs: str) -> str:
    text = text.replace("routing:\n", f"routing:\n  by_size: {rules}\n", 1)
    light, heavy = text.split("- {name: heavy", 1)
    light = light.replace("input_tokens: {dist: constant, value: 1}", f"input_tokens: {light_inputs}")
    heavy = heavy.replace("input_tokens: {dist: constant, value: 1}", f"input_tokens: {heavy_inputs}")
    return light + "- {name: heavy" + heavy


def test_the_kv_check_sees_the_prompts_a_rule_sends_to_a_pool() -> None:
    """Pool a holds 993 tokens per request (62 blocks of 16, + 1): a rule sending the heavy class's prompts
    over 2,000 tokens there fails every one of them, so validate refuses it, naming the rule; over 100 tokens
    the smallest it sends (101 + 1) fits."""
    text = _with(
        SMALL_KV_A, "[{when: {input_tokens_gt: 2000}, to: 'gpu:a'}]", "{dist: constant, value: 1}", LONG_PROMPTS
    )
    proc = _validate(text)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    assert "backends.gpu_pools.a.kv_cache_tokens" in proc.stderr
    assert (
        "holds 993 token(s) per request, but the smallest request routing.by_size.0 sends there from class 'heavy'"
        in proc.stderr
    )
    assert "needs 2002" in proc.stderr
    ok = _with(SMALL_KV_A, "[{when: {input_tokens_gt: 100}, to: 'gpu:a'}]", "{dist: constant, value: 1}", LONG_PROMPTS)
    assert _validate(ok).returncode == 0


def test_the_kv_check_skips_what_no_request_reaches() -> None:
    """A class whose every prompt (3,000 tokens) a rule sends to the API never reaches its own pool a (993
    tokens): accepted, where the check used to refuse it; a rule whose threshold is above every prompt of the
    class (600 tokens at most) sends nothing to pool a: accepted too."""
    to_api = _with(
        SMALL_KV_A.replace('by_class: {light: "gpu:a", heavy: "gpu:b"}', 'by_class: {light: "gpu:b", heavy: "gpu:a"}'),
        "[{when: {input_tokens_gt: 2000}, to: api}]",
        "{dist: constant, value: 1}",
        "{dist: constant, value: 3000}",
    )
    assert _validate(to_api).returncode == 0, _validate(to_api).stderr
    without_rule = to_api.replace("  by_size: [{when: {input_tokens_gt: 2000}, to: api}]\n", "")
    assert _validate(without_rule).returncode == 2
    unreached = _with(
        SMALL_KV_A,
        "[{when: {input_tokens_gt: 2000}, to: 'gpu:a'}]",
        "{dist: constant, value: 1}",
        "{dist: uniform, low: 1, high: 600}",
    )
    assert _validate(unreached).returncode == 0, _validate(unreached).stderr
