"""Routing: which backend serves each request that no cache answered, and where failures go.

Per block, in order: exact response-cache hits (looked up by the replication), semantic-cache hits (a
lookup that costs `latency_s` to every request that reaches it), prefix-cache reuse (from hash_ids), then
the routing policy (backends/routing/policies/, one file each): its class targets are decided for a whole
block at once; a policy that spills (`overflow`) decides again when each GPU-bound request arrives, so
GPU-bound requests become events.
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
from backends.gpu.pool import GpuPool
from backends.routing.policy import Spiller
from backends.routing.registry import policy_of
from sim.config import Experiment
from sim.config.routing import parse_route
from sim.core.request_block import FLAG_SEMANTIC_FALSE, FLAG_STALE, PATH_CACHE, PATH_SEMANTIC, RequestBlock
from sim.core.rng import name_key, stream
from sim.core.ticks import Tick, call_later

TARGET_GPU = -1
TARGET_BATCH_OFFSET = 1000  # target code 1000 + k: provider k through its batch API


class Router:
    def __init__(
        self,
        exp: Experiment,
        env: simpy.Environment,
        pool: GpuPool | None,
        apis: list[ApiBackend],
        replication: int = 0,
        response_cache: ResponseCache | None = None,
    ):
        self.exp = exp
        self.env = env
        self.pool = pool
        self.apis = apis
        self.policy = policy_of(exp.routing.policy)
        self.hit_latency_s = exp.cache.response.hit_latency_s
        self.priorities = [c.priority for c in exp.workload.classes]
        self.timeouts = [c.timeout_s for c in exp.workload.classes]
        names = {a.name: a.index for a in apis}
        targets = self.policy.class_targets(exp.routing, [c.name for c in exp.workload.classes])
        self.class_target = np.array([self._code(t, names) for t in targets], dtype=np.int64)
        spill_target = self.policy.spill_target(exp.routing)
        self.spill_code = None if spill_target is None else self._code(spill_target, names)
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
        )
        self._on_finished: Callable[[RequestBlock], None] = lambda _b: None
        self.dispatch.on_block_done = lambda b: self._on_finished(b)
        self.spiller: Spiller | None = None
        if pool is not None:
            if self.spill_code is not None:
                self.spiller = self.policy.spiller(exp, pool)
            if self.fallback != "none":
                pool.on_failed = self._gpu_failed

    @staticmethod
    def uses_gpu(exp: Experiment) -> bool:
        policy = policy_of(exp.routing.policy)
        targets = policy.class_targets(exp.routing, [c.name for c in exp.workload.classes])
        return any(parse_route(t).kind == "gpu" for t in targets)

    @staticmethod
    def _code(target: str, names: dict[str, int]) -> int:
        route = parse_route(target)
        if route.kind == "gpu":
            return TARGET_GPU
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
        target = self.class_target[block.class_idx]
        for code in np.unique(target[todo]).tolist():
            if code == TARGET_GPU:
                continue
            idx = np.flatnonzero(todo & (target == code))
            p, batch = self._provider(code)
            self.dispatch.submit_many(block, idx, p, batch, ready[idx])
        gpu_idx = np.flatnonzero(todo & (target == TARGET_GPU))
        if len(gpu_idx):
            self._pump(block, gpu_idx, ready[gpu_idx])
        if block.pending == 0:
            on_finished(block)

    def close(self, horizon_s: float) -> None:
        """At the horizon: settle every call that started before it (later ones stay in flight)."""
        self.dispatch.advance(horizon_s)

    # -- events: one per GPU-bound arrival -----------------------------------------------------
    def _pump(self, block: RequestBlock, gpu_idx: np.ndarray, ready: np.ndarray) -> None:
        _Pump(self, block, gpu_idx, ready).start()

    def _call_at(self, block: RequestBlock, i: int, code: int, now: float) -> None:
        """An API call decided at event time (an overflow spill)."""
        self.dispatch.advance(now)
        p, batch = self._provider(code)
        self.dispatch.submit_one(block, i, p, batch, now)
        if block.pending == 0:
            self._on_finished(block)

    def _gpu_failed(self, block: RequestBlock, i: int, at: float) -> bool:
        """The GPU pool is down, or failed this request: hand it to routing.fallback."""
        if self.fallback == "none":
            return False
        self.dispatch.advance(at)
        self.dispatch.fail_one(block, i, at, SOURCE_GPU, 0)
        if block.pending == 0:
            self._on_finished(block)
        return True

    def up_intervals(self, horizon_s: float) -> list[tuple[float, float]]:
        """Intervals during which at least one path that routing uses could serve."""
        out: list[tuple[float, float]] = []
        if self.pool is not None:
            out.extend(self.pool.ledger.healthy_intervals)
        used = set(self.class_target.tolist())
        if self.spill_code is not None:
            used.add(self.spill_code)
        if self.fallback == "api":
            used.add(self.dispatch.fallback_provider)
        for code in used:
            if code == TARGET_GPU:
                continue
            out.extend(self.apis[self._provider(code)[0]].up_intervals(horizon_s))
        return out


class _Pump:
    """Feeds a block's GPU-bound requests to the pool at their arrival times, one event per distinct time.

    A class rather than a closure that re-schedules itself: a self-referencing closure is a reference cycle
    that keeps its whole block alive until the cyclic garbage collector runs (gigabytes under overload).
    """

    __slots__ = ("router", "block", "idx", "times", "cls", "tokens", "j", "spiller", "spill_code", "check_down")

    def __init__(self, router: Router, block: RequestBlock, gpu_idx: np.ndarray, ready: np.ndarray):
        self.router = router
        self.block = block
        self.idx = gpu_idx.tolist()
        self.times = ready.tolist()
        self.cls = block.class_idx[gpu_idx].tolist()
        # (input, output, prefill) as ints for the whole block: one numpy call instead of three per request
        inp, out, pre = (block.input_tokens[gpu_idx], block.output_tokens[gpu_idx], block.prefill_tokens[gpu_idx])
        self.tokens = list(zip(inp.tolist(), out.tolist(), pre.tolist(), strict=True))
        self.j = 0
        pool = router.pool
        self.spiller = router.spiller
        self.spill_code = TARGET_GPU if router.spill_code is None else router.spill_code
        self.check_down = router.fallback != "none" and pool is not None and len(pool.servers) > 0

    def start(self) -> None:
        env = self.router.env
        call_later(env, max(self.times[0] - env.now, 0.0), self.fire)
        self.router.num_events += 1

    def fire(self, _tick: Tick) -> None:
        router = self.router
        env, pool = router.env, router.pool
        assert pool is not None  # a block's GPU-bound requests get a pump only when the pool exists
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
                router._gpu_failed(block, i, now)
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
