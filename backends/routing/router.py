"""Routing: which backend serves each request that no cache answered, and where failures go.

Per block, in order: exact response-cache hits (looked up by the replication), semantic-cache hits (a
lookup that costs `latency_s` to every request that reaches it), prefix-cache reuse (from hash_ids), then
the routing policy (backends/routing/policies/, one file each): its class targets are decided for a whole
block at once, then `routing.by_size` sends each request whose prompt passes a rule to that rule's target
(the first rule that applies; a function of the request's own sizes, so no random number is drawn and
common random numbers hold; such a request is not escalated); a policy that spills (`overflow`) decides
again when each GPU-bound request arrives, so GPU-bound requests become events.
API calls go through the dispatcher (backends.api_dispatch): vectorised when the provider has no rate
limit, resolved in time order otherwise. `routing.fallback` applies when a backend is down, a call ran out
of retries, or the GPU pool failed a request.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import simpy

from backends.api.dispatch import SOURCE_GPU, ApiDispatcher
from backends.api.provider import ApiBackend
from backends.cache.prefix import PrefixCache
from backends.cache.response import ResponseCache
from backends.cache.semantic import SemanticCache
from backends.gpu.admission_queue import DECODE
from backends.gpu.pool import GpuPool
from backends.routing.escalation import Escalation
from backends.routing.policy import Spiller
from backends.routing.registry import policy_of
from sim.config import Experiment
from sim.config.routing import parse_route
from sim.core.request_block import (
    FLAG_SEMANTIC_FALSE,
    FLAG_STALE,
    PATH_CACHE,
    PATH_NO_LLM,
    PATH_SEMANTIC,
    SERVED,
    RequestBlock,
)
from sim.core.rng import name_key, stream
from sim.core.ticks import Tick, call_later
from sim.core.timeseries import intersection

# target codes: provider k (>= 0), provider k through its batch API (1000 + k), GPU pool j (-1 - j), no LLM
TARGET_GPU = -1  # the first GPU pool
TARGET_BATCH_OFFSET = 1000
TARGET_NONE = -1_000_000


def pool_code(j: int) -> int:
    return -1 - j


def is_pool(code: int) -> bool:
    return TARGET_NONE < code < 0


class Router:
    def __init__(
        self,
        exp: Experiment,
        env: simpy.Environment,
        pools: list[GpuPool | None],
        apis: list[ApiBackend],
        replication: int = 0,
        response_cache: ResponseCache | None = None,
    ):
        self.exp = exp
        self.env = env
        self.pools = pools  # by index in backends.pools() (None: a pool no route uses)
        self.pool_index = {name: j for j, name in enumerate(exp.backends.pools())}
        self.apis = apis
        self.policy = policy_of(exp.routing.policy)
        self.hit_latency_s = exp.cache.response.hit_latency_s
        self.priorities = [c.priority for c in exp.workload.classes]
        self.timeouts = [c.timeout_s for c in exp.workload.classes]
        names = {a.name: a.index for a in apis}
        targets = self.policy.class_targets(exp.routing, [c.name for c in exp.workload.classes])
        self.class_target = np.array([self._code(t, names) for t in targets], dtype=np.int64)
        class_names = [c.name for c in exp.workload.classes]
        # by_size: (prompt tokens above, per class whether the rule applies, target code), in order
        self.size_rules = [
            (
                rule.when.input_tokens_gt,
                np.array([rule.classes is None or c in rule.classes for c in class_names], dtype=bool),
                self._code(rule.to, names),
            )
            for rule in exp.routing.by_size
        ]
        spill_target = self.policy.spill_target(exp.routing)
        self.spill_code = None if spill_target is None else self._code(spill_target, names)
        self.none_latency_s = exp.routing.none_latency_s
        self.fallback = exp.routing.fallback
        self.num_events = 0
        self.response_cache = response_cache
        sem = exp.cache.semantic
        seed = exp.seed
        self.semantic = SemanticCache(sem, stream(seed, replication, "semantic_cache")) if sem.enabled else None
        self.prefix = PrefixCache(exp.cache.prefix) if exp.cache.prefix.enabled else None
        self.dispatch = ApiDispatcher(
            apis,
            exp.routing,
            self.hit_latency_s,
            degraded_always=sem.enabled,
            rngs_retry=[stream(seed, replication, "retries", 0 if a.index == 0 else name_key(a.name)) for a in apis],
            chain=[self._code(t, names) for t in exp.routing.fallback_chain()],
        )
        self.dispatch.to_pool = self._fallback_to_pool
        self.escalation = (
            Escalation(exp, lambda t: self._code(t, names), self.second_call, seed, replication)
            if exp.routing.escalate
            else None
        )
        self._on_finished: Callable[[RequestBlock], None] = lambda _b: None
        self.dispatch.on_block_done = lambda b: self._on_finished(b)
        # per pool: its spill decision (none where the spill target is the pool itself)
        self.spillers: list[Spiller | None] = [None] * len(pools)
        for j, pool in enumerate(pools):
            if pool is None:
                continue
            if self.spill_code is not None and self.spill_code != pool_code(j):
                self.spillers[j] = self.policy.spiller(exp, pool)
            if self.fallback != "none":
                pool.on_failed = self._failed_hook(j)
            if self.escalation is not None:
                pool.on_served = self.escalation.on_served

    @staticmethod
    def pools_used(exp: Experiment) -> set[str]:
        """The names of the GPU pools some route can send a request to, and the decode pools those hand their
        requests to (only these are provisioned)."""
        used = Router.targeted_pools(exp)
        pools = exp.backends.pools()
        for name in list(used):
            d = pools[name].disaggregation if name in pools else None
            if d is not None and d.decode_pool in pools:
                used.add(d.decode_pool)
        return used

    @staticmethod
    def targeted_pools(exp: Experiment) -> set[str]:
        """The names of the GPU pools some route sends requests to."""
        policy = policy_of(exp.routing.policy)
        targets = policy.class_targets(exp.routing, [c.name for c in exp.workload.classes])
        spill = policy.spill_target(exp.routing)
        if spill is not None:
            targets.append(spill)
        if exp.routing.fallback == "api":
            targets.extend(exp.routing.fallback_chain())
        targets.extend(e.to for e in exp.routing.escalate.values())
        targets.extend(rule.to for rule in exp.routing.by_size)
        first = next(iter(exp.backends.pools()))
        used = set()
        for t in targets:
            route = parse_route(t)
            if route.kind == "gpu":
                used.add(route.provider or first)
        return used

    @staticmethod
    def uses_gpu(exp: Experiment) -> bool:
        return bool(Router.pools_used(exp))

    def _code(self, target: str, names: dict[str, int]) -> int:
        route = parse_route(target)
        if route.kind == "gpu":
            return TARGET_GPU if route.provider is None else pool_code(self.pool_index[route.provider])
        if route.kind == "none":
            return TARGET_NONE
        provider = 0 if route.provider is None else names[route.provider]
        return TARGET_BATCH_OFFSET + provider if route.batch else provider

    def _provider(self, code: int) -> tuple[int, bool]:
        batch = code >= TARGET_BATCH_OFFSET
        return (code - TARGET_BATCH_OFFSET if batch else code), batch

    # -- a block -----------------------------------------------------------------------------------
    def route_block(
        self, block: RequestBlock, hits: np.ndarray | None, on_finished: Callable[[RequestBlock], None]
    ) -> None:
        self._on_finished = on_finished
        self.dispatch.advance(self.env.now)  # calls before this block's start are settled first
        n = len(block)
        todo = np.ones(n, dtype=bool)
        if hits is not None and hits.any():
            idx = np.flatnonzero(hits)
            t = block.arrival_at[idx]
            block.answered(idx, PATH_CACHE, t, t + self.hit_latency_s, t + self.hit_latency_s)
            todo &= ~hits
        rc = self.response_cache
        if rc is not None and hits is not None and len(rc.stale) == n:
            block.flags[rc.stale] |= FLAG_STALE
        ready = block.arrival_at
        if self.semantic is not None:
            sem_hit, sem_false = self.semantic.lookup_block(n)
            lat = self.semantic.latency_s
            idx = np.flatnonzero(todo & sem_hit)
            t = block.arrival_at[idx] + lat
            block.answered(idx, PATH_SEMANTIC, t, t, t)
            block.flags[idx[sem_false[idx]]] |= FLAG_SEMANTIC_FALSE
            todo &= ~sem_hit
            ready = block.arrival_at + lat  # a miss paid for the lookup too
        if self.prefix is not None:
            self.prefix.apply(block, np.flatnonzero(todo))
        self.dispatch.draw(block)
        target = self.class_target[block.class_idx]  # a copy: by_size may change it
        policy_routed = todo
        if self.size_rules:
            policy_routed = todo & ~self._by_size(block, target, todo)
        esc = self.escalation.draw(block, policy_routed) if self.escalation is not None else None
        codes = np.unique(target[todo]).tolist()
        for code in codes:
            if is_pool(code):
                continue
            idx = np.flatnonzero(todo & (target == code))
            if code == TARGET_NONE:
                self._no_llm(block, idx, ready[idx])
                continue
            p, batch = self._provider(code)
            self.dispatch.submit_many(block, idx, p, batch, ready[idx])
        for code in reversed(codes):  # pools in their order: -1, -2, ...
            if not is_pool(code):
                continue
            j = -1 - code
            gpu_idx = np.flatnonzero(todo & (target == code))
            if j:
                block.pool[gpu_idx] = j
            _Pump(self, j, block, gpu_idx, ready[gpu_idx], spill=True).start()
        if esc is not None:
            assert self.escalation is not None
            self.escalation.after_routing(block, esc)
        if block.pending == 0:
            on_finished(block)

    def _by_size(self, block: RequestBlock, target: np.ndarray, todo: np.ndarray) -> np.ndarray:
        """routing.by_size: each request of `todo` whose prompt passes a rule gets that rule's target (the first
        rule that applies) in `target`; returns which requests a rule took."""
        taken = np.zeros(len(block), dtype=bool)
        for tokens_gt, applies, code in self.size_rules:
            sel = todo & ~taken & (block.input_tokens > tokens_gt) & applies[block.class_idx]
            target[sel] = code
            taken |= sel
        return taken

    def close(self, horizon_s: float) -> None:
        """At the horizon: settle every call that started before it (later ones stay in flight)."""
        self.dispatch.advance(horizon_s)

    def _no_llm(self, block: RequestBlock, idx: np.ndarray, t: np.ndarray) -> None:
        """Target `none`: a deterministic workflow, answered at a fixed latency, no tokens paid."""
        lat = self.none_latency_s
        block.path[idx] = PATH_NO_LLM
        block.start_at[idx] = t
        block.first_token_at[idx] = t + lat
        block.done_at[idx] = t + lat
        block.finish_many(idx, SERVED)

    # -- events: one per GPU-bound arrival -----------------------------------------------------
    def _call_at(self, block: RequestBlock, i: int, code: int, now: float) -> None:
        """A call decided at event time (an overflow spill): to an API, or into another GPU pool."""
        if is_pool(code):
            self._submit_one(-1 - code, block, i, now)
            return
        self.dispatch.advance(now)
        p, batch = self._provider(code)
        self.dispatch.submit_one(block, i, p, batch, now)
        if block.pending == 0:
            self._on_finished(block)

    def _submit_one(self, j: int, block: RequestBlock, i: int, now: float) -> None:
        pool = self.pools[j]
        assert pool is not None  # a spill target's pool is provisioned (pools_used)
        block.pool[i] = j
        if self.fallback != "none" and len(pool.servers) > 0 and pool.num_ready == 0:
            self._gpu_failed(block, i, now, pool_code(j))
            return
        c = int(block.class_idx[i])
        tokens = (int(block.input_tokens[i]), int(block.output_tokens[i]), int(block.prefill_tokens[i]))
        pool.submit(block, i, self.priorities[c], self.timeouts[c], tokens)

    def _fallback_to_pool(self, block: RequestBlock, idx: np.ndarray, t: np.ndarray, code: int, hop: int) -> None:
        """Requests that failed elsewhere enter GPU pool `code` at times `t` (a hop of the fallback chain)."""
        j = -1 - code
        order = np.argsort(t, kind="stable")
        idx, t = idx[order], t[order]
        block.pool[idx] = j
        block.hop[idx] = hop
        _Pump(self, j, block, idx, t, spill=False).start()

    def second_call(self, block: RequestBlock, idx: np.ndarray, t: np.ndarray, code: int, at_event: bool) -> None:
        """An escalation's second calls (backends/routing/escalation.py), starting at times t: into a GPU pool
        (one event per distinct time, no spill) or to an API (the first call's cost kept, the second's added)."""
        if is_pool(code):
            j = -1 - code
            order = np.argsort(t, kind="stable")
            block.pool[idx] = j
            _Pump(self, j, block, idx[order], t[order], spill=False).start()
            return
        if at_event:
            self.dispatch.advance(float(t[0]))
        p, batch = self._provider(code)
        first_usd = block.cost_usd[idx].copy()
        self.dispatch.submit_many(block, idx, p, batch, t)
        block.cost_usd[idx] += first_usd
        if at_event and block.pending == 0:
            self._on_finished(block)

    def _failed_hook(self, j: int) -> Callable[[RequestBlock, int, float], bool]:
        code = pool_code(j)
        return lambda block, i, at: self._gpu_failed(block, i, at, code)

    def _gpu_failed(self, block: RequestBlock, i: int, at: float, source: int = SOURCE_GPU) -> bool:
        """A GPU pool is down, or failed this request: hand it to routing.fallback."""
        if self.fallback == "none":
            return False
        self.dispatch.advance(at)
        self.dispatch.fail_one(block, i, at, source, int(block.hop[i]))
        if block.pending == 0:
            self._on_finished(block)
        return True

    def up_intervals(self, horizon_s: float) -> list[tuple[float, float]]:
        """Intervals during which at least one path that routing uses could serve. A disaggregated path
        serves only while its prefill pool and its decode pool both have a healthy server; a decode pool is
        no path of its own (validate: only its prefill pool reaches it)."""
        out: list[tuple[float, float]] = []
        for pool in self.pools:
            if pool is None or pool.role == DECODE:
                continue
            d = pool.spec.disaggregation
            if d is None:
                out.extend(pool.ledger.healthy_intervals)
                continue
            decode = self.pools[self.pool_index[d.decode_pool]]
            assert decode is not None
            out.extend(intersection(pool.ledger.healthy_intervals, decode.ledger.healthy_intervals))
        used = set(self.class_target.tolist())
        if self.spill_code is not None:
            used.add(self.spill_code)
        if self.fallback == "api":
            used.update(self.dispatch.chain)
        if self.escalation is not None:
            used.update(self.escalation.to_code)
        used.update(code for _, _, code in self.size_rules)
        for code in used:
            if code < 0:
                continue
            out.extend(self.apis[self._provider(code)[0]].up_intervals(horizon_s))
        return out


class _Pump:
    """Feeds a block's GPU-bound requests to the pool at their arrival times, one event per distinct time.

    A class rather than a closure that re-schedules itself: a self-referencing closure is a reference cycle
    that keeps its whole block alive until the cyclic garbage collector runs (gigabytes under overload).
    """

    __slots__ = (
        "router",
        "pool",
        "block",
        "idx",
        "times",
        "cls",
        "tokens",
        "j",
        "spiller",
        "spill_code",
        "check_down",
        "source",
    )

    def __init__(
        self, router: Router, pool_j: int, block: RequestBlock, gpu_idx: np.ndarray, ready: np.ndarray, spill: bool
    ):
        self.router = router
        pool = router.pools[pool_j]
        assert pool is not None  # a class's target pool is provisioned (pools_used)
        self.pool = pool
        self.block = block
        self.idx = gpu_idx.tolist()
        self.times = ready.tolist()
        self.cls = block.class_idx[gpu_idx].tolist()
        # (input, output, prefill) as ints for the whole block: one numpy call instead of three per request
        inp, out, pre = (block.input_tokens[gpu_idx], block.output_tokens[gpu_idx], block.prefill_tokens[gpu_idx])
        self.tokens = list(zip(inp.tolist(), out.tolist(), pre.tolist(), strict=True))
        self.j = 0
        self.spiller = router.spillers[pool_j] if spill else None  # a fallback hop does not spill again
        self.spill_code = TARGET_GPU if router.spill_code is None else router.spill_code
        self.check_down = router.fallback != "none" and len(pool.servers) > 0
        self.source = pool_code(pool_j)

    def start(self) -> None:
        env = self.router.env
        call_later(env, max(self.times[0] - env.now, 0.0), self.fire)
        self.router.num_events += 1

    def fire(self, _tick: Tick) -> None:
        router = self.router
        env, pool = router.env, self.pool
        prio, tmo = router.priorities, router.timeouts
        idx, times, cls, block, tokens = self.idx, self.times, self.cls, self.block, self.tokens
        spiller, check_down = self.spiller, self.check_down
        count = len(idx)
        j = self.j
        now = env.now
        while True:
            i, c = idx[j], cls[j]
            if spiller is not None and spiller.spill(now, c):
                router._call_at(block, i, self.spill_code, now)
            elif check_down and pool.num_ready == 0:
                router._gpu_failed(block, i, now, self.source)
            else:
                if spiller is not None:
                    spiller.admitted(c, now)
                pool.submit(block, i, prio[c], tmo[c], tokens[j])
            j += 1
            if j >= count or times[j] > now:
                break
        self.j = j
        if j < count:
            call_later(env, times[j] - now, self.fire)
            router.num_events += 1
