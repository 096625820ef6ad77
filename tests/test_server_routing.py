"""Server routing in a GPU pool (least_loaded | round_robin | prefix_affinity) and each server's prefix cache
(backends/gpu/server_routing.py): reductions to the pool as it was and to the global prefix cache,
conservation, and what affinity buys on shared prefixes."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from backends.gpu.server import READY, Server
from backends.gpu.server_policies.prefix_affinity import Affinity
from backends.gpu.server_policies.round_robin import Rotation
from sim.engine.loading import load_config_text
from sim.engine.replication import ReplicationResult, simulate
from tests.strategies import experiment_dicts, to_experiment

MOONCAKE = """
name: mooncake-one-server
seed: 5
horizon_h: 0.03
workload:
  arrivals: {kind: trace, file: mooncake_fast25_conversation_trace.jsonl, peak_hour: 0}
  classes: [{name: chat, share: 1.0}]
routing: {policy: gpu_only}
backends:
  gpu_pool:
    servers: 1
    max_batch: 100000
    kv_cache_tokens: 1000000000
    iteration_s: {base: 0.001, per_prefill_token: 0.000001}
    cold_start_s: {dist: constant, value: 0}
output: {requests: true, report: false}
"""

SESSIONS = """
name: sessions
seed: 9
horizon_h: 0.25
workload:
  arrivals: {kind: constant, mean_rps: 4}
  sessions:
    turns: {dist: geometric, mean: 6}
    think_time_s: {dist: exponential, mean: 20}
    message_tokens: {dist: lognormal, median: 300, sigma: 0.5}
    hash_block_tokens: 256
  classes: [{name: chat, share: 1.0, output_tokens: {dist: geometric, mean: 40}}]
routing: {policy: gpu_only}
backends:
  gpu_pool:
    servers: 4
    max_batch: 32
    kv_cache_tokens: 200000
    iteration_s: {base: 0.01, per_seq: 0.0002, per_prefill_token: 0.00002}
    cold_start_s: {dist: constant, value: 0}
    prefix_cache: {enabled: true, block_tokens: 256}
output: {requests: true, report: false}
"""


def run(text: str, *overrides: str) -> ReplicationResult:
    return simulate(load_config_text(text, overrides), 0)


def same_requests(a: ReplicationResult, b: ReplicationResult) -> None:
    assert a.requests is not None and b.requests is not None
    for col in ("arrival_at", "start_at", "first_token_at", "done_at", "status"):
        np.testing.assert_array_equal(a.requests[col], b.requests[col], err_msg=col)


# -- reductions ---------------------------------------------------------------------------------------------
def test_affinity_on_one_server_finds_what_the_global_prefix_cache_finds() -> None:
    """One server whose KV holds every block: the same hit tokens, request by request, as cache.prefix."""
    glob = run(MOONCAKE, "cache.prefix.enabled=true", "cache.prefix.capacity_blocks=100000000")
    mine = run(
        MOONCAKE,
        "backends.gpu_pool.prefix_cache.enabled=true",
        "backends.gpu_pool.server_routing.policy=prefix_affinity",
    )
    assert glob.requests is not None and mine.requests is not None
    assert glob.metrics["requests"] > 300
    np.testing.assert_array_equal(glob.requests["cached_tokens"], mine.requests["cached_tokens"])
    assert mine.breakdown["gpu_prefix_cached_tokens"] == glob.metrics["prefix_cached_tokens"] > 0
    assert mine.breakdown["gpu_prefix_hit_rate"] == glob.metrics["prefix_hit_rate"]
    assert mine.breakdown["gpu_prefix_hit_rate.server.gpu_0"] == glob.metrics["prefix_hit_rate"]
    same_requests(glob, mine)  # and so the same prefill, the same timeline


def test_a_server_cache_holds_only_the_kv_its_batch_leaves_free() -> None:
    """The same server with KV for a few prompts: fewer hits than with room for all, never more."""
    big = run(MOONCAKE, "backends.gpu_pool.prefix_cache.enabled=true")
    small = run(MOONCAKE, "backends.gpu_pool.prefix_cache.enabled=true", "backends.gpu_pool.kv_cache_tokens=200000")
    assert 0 < small.breakdown["gpu_prefix_cached_tokens"] < big.breakdown["gpu_prefix_cached_tokens"]


SMALL = """
name: small
seed: 4
horizon_h: 0.2
workload:
  arrivals: {kind: constant, mean_rps: 6}
  classes: [{name: c, share: 1.0, output_tokens: {dist: geometric, mean: 30}, timeout_s: 5}]
routing: {policy: gpu_only}
backends:
  gpu_pool:
    servers: 1
    max_batch: 8
    kv_cache_tokens: 20000
    iteration_s: {base: 0.01, per_seq: 0.001, per_prefill_token: 0.00002}
    cold_start_s: {dist: constant, value: 0}
output: {requests: true, report: false}
"""


@pytest.mark.parametrize("load", ["6", "40"])  # light, and overloaded (queueing, timeouts, preemptions)
def test_least_loaded_is_the_pool_as_it_was(load: str) -> None:
    """least_loaded with server caches but no hash_ids runs the same timeline as the pool without them, and
    round_robin on one server pins each request to the boundary at which the shared queue would admit it."""
    rate = f"workload.arrivals.mean_rps={load}"
    base = run(SMALL, rate)
    same_requests(base, run(SMALL, rate, "backends.gpu_pool.server_routing.policy=least_loaded"))
    same_requests(base, run(SMALL, rate, "backends.gpu_pool.prefix_cache.enabled=true"))
    same_requests(base, run(SMALL, rate, "backends.gpu_pool.server_routing.policy=round_robin"))


# -- the policies' choices -----------------------------------------------------------------------------------
def servers(n: int) -> list[Server]:
    out = [Server(i, 16) for i in range(n)]
    for s in out:
        s.state = READY
    return out


def test_affinity_takes_the_longest_prefix_within_the_load_cap() -> None:
    s = servers(3)
    assert Affinity(4, 0.3).pick(s, [5, 0, 2], [3, 0, 3], 6) is s[2]  # longest match, the less loaded of two
    assert Affinity(1, 0.3).pick(s, [5, 0, 2], [3, 0, 3], 6) is s[1]  # 2 over the least loaded: over the cap
    assert Affinity(2, 0.3).pick(s, [5, 0, 2], [3, 0, 3], 6) is s[2]  # exactly at the cap: still affinity
    assert Affinity(9, 0.3).pick(s, [3, 1, 1], [0, 0, 0], 6) is s[1]  # cached nowhere: least loaded, lowest
    assert Affinity(9, 0.3).pick(s, [1, 1, 4], [0, 2, 0], 6) is s[1]
    assert Affinity(9, 0.5).pick(s, [1, 0, 4], [2, 0, 0], 6) is s[1]  # 2 of 6 blocks < half: least loaded
    assert Affinity(9, 0.5).pick(s, [1, 0, 4], [3, 0, 0], 6) is s[0]  # 3 of 6: affinity


def test_round_robin_turns_over_the_servers_with_room() -> None:
    s = servers(4)
    rot = Rotation()
    zeros = [0, 0, 0, 0]
    assert [rot.pick(s, zeros, zeros, 0).idx for _ in range(5)] == [0, 1, 2, 3, 0]
    assert rot.pick([s[0], s[3]], [0, 0], [0, 0], 0).idx == 3  # 1 and 2 are full: the next one with room


def test_affinity_keeps_conversations_where_their_context_is_cached() -> None:
    """Sessions (each turn resends the conversation; no block is shared across sessions): with ample KV and
    a load cap that never binds, affinity sends every turn to the server holding its context, so 4 servers
    find what one global cache finds (within 1%: a turn whose server had no room goes elsewhere); least
    loaded and round robin spread the turns and find much less, and prefill more (a longer TTFT)."""
    glob = run(
        SESSIONS,
        "backends.gpu_pool.prefix_cache.enabled=false",
        "cache.prefix.enabled=true",
        "cache.prefix.block_tokens=256",
        "cache.prefix.capacity_blocks=100000000",
    )
    pa = run(SESSIONS, "backends.gpu_pool.server_routing.policy=prefix_affinity")
    ll = run(SESSIONS, "backends.gpu_pool.server_routing.policy=least_loaded")
    rr = run(SESSIONS, "backends.gpu_pool.server_routing.policy=round_robin")
    hit_pa = pa.breakdown["gpu_prefix_hit_rate"]
    assert hit_pa == pytest.approx(glob.metrics["prefix_hit_rate"], rel=0.01)
    assert hit_pa > 0.5
    for other in (ll, rr):
        assert other.breakdown["gpu_prefix_hit_rate"] < hit_pa - 0.15
        assert pa.metrics["ttft_mean_s"] < other.metrics["ttft_mean_s"]
    rates = [pa.breakdown[f"gpu_prefix_hit_rate.server.gpu_{k}"] for k in range(4)]
    assert all(r is not None and r > 0.3 for r in rates)


# -- conservation ----------------------------------------------------------------------------------------------
@st.composite
def routed_configs(draw: st.DrawFn) -> dict[str, Any]:
    d = draw(experiment_dicts(policies=("gpu_only",), cache=False, max_classes=2))
    d["workload"]["sessions"] = {
        "turns": {"dist": "geometric", "mean": draw(st.sampled_from([1, 3]))},
        "think_time_s": {"dist": "exponential", "mean": 10},
        "hash_block_tokens": draw(st.sampled_from([4, 16])),
        "max_context_tokens": 400,
    }
    pool = d["backends"]["gpu_pool"]
    pool["server_routing"] = {
        "policy": draw(st.sampled_from(["least_loaded", "round_robin", "prefix_affinity"])),
        "load_cap": draw(st.integers(0, 4)),
    }
    pool["prefix_cache"] = {"enabled": True, "block_tokens": d["workload"]["sessions"]["hash_block_tokens"]}
    if draw(st.booleans()):
        pool["failures"] = {"mtbf_h": 0.05, "mttr_h": 0.01}
    return d


@settings(max_examples=25, deadline=None)
@given(d=routed_configs())
def test_every_request_ends_once_and_hits_stay_within_prompts(d: dict[str, Any]) -> None:
    exp = to_experiment(d)
    res = simulate(exp, 0)
    m, b = res.metrics, res.breakdown
    assert m["requests"] == m["served"] + m["failed"] + m["dropped"] + m["in_flight"]
    assert m["served"] == m["served_by_gpu"]
    q = res.requests
    assert q is not None
    cached = q["cached_tokens"]
    assert (cached >= 0).all() and (cached <= np.maximum(q["input_tokens"] - 1, 0)).all()
    per_server = [v for k, v in b.items() if k.startswith("gpu_prefix_hit_rate.server.")]
    assert len(per_server) == exp.backends.gpu_pool.servers
    assert 0 <= b["gpu_prefix_cached_tokens"] <= b["gpu_prefix_looked_up_tokens"]
    assert b["gpu_prefix_cached_tokens"] <= int(cached.sum())  # looked-up requests before warm-up not counted
    served = q["status"] == 1
    assert (q["first_token_at"][served] >= q["start_at"][served]).all()


# -- validation ----------------------------------------------------------------------------------------------
BAD_ROUTING = """\
name: x
horizon_h: 0.1
cache:
  prefix: {enabled: true}
backends:
  gpu_pools:
    big:
      servers: 2
      server_routing: {policy: sticky}
    small:
      servers: 1
      server_routing: {policy: prefix_affinity, load_cap: -1}
    other:
      server_routing: {policy: prefix_affinity}
      prefix_cache: {enabled: true}
"""


def test_bad_server_routing_is_reported_with_its_line() -> None:
    from tests.test_config_errors import assert_user_error, capsim

    lines = assert_user_error(
        capsim("validate", "-", stdin=BAD_ROUTING),
        "backends.gpu_pools.small.server_routing.load_cap (line 12):",
    )
    assert len(lines) == 1  # pydantic's problems first; the policy checks follow once the types are right
    fixed = BAD_ROUTING.replace("load_cap: -1", "load_cap: 3")
    assert_user_error(
        capsim("validate", "-", stdin=fixed),
        "backends.gpu_pools.big.server_routing.policy (line 9): Input should be 'least_loaded'",
        "backends.gpu_pools.small.server_routing.policy (line 12): prefix_affinity routes by the servers' prefix",
        "backends.gpu_pools.other.prefix_cache.enabled (line 15): the servers' prefix caches replace the global",
    )
    assert_user_error(
        capsim("validate", "-", "--set", "backends.gpu_pools.big.server_routing.policy=rr", stdin=fixed),
        "backends.gpu_pools.big.server_routing.policy (line ",
        "'rr'",
    )
