"""Routing: which backend serves each request that the response cache did not answer.

Static policies (`gpu_only`, `api_only`, `by_class`) are decided for a whole block at once; `overflow`
looks at the GPU queue when each request arrives, so those requests become events.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import simpy

from backends.api import ApiBackend
from backends.gpu_pool import GpuPool
from sim.config import Experiment
from sim.request_block import PATH_CACHE, SERVED, RequestBlock

TARGET_GPU = -1
TARGET_BATCH_OFFSET = 1000  # target code 1000 + k: provider k through its batch API


class Router:
    def __init__(self, exp: Experiment, env: simpy.Environment, pool: GpuPool | None, apis: list[ApiBackend]):
        self.exp = exp
        self.env = env
        self.pool = pool
        self.apis = apis
        self.policy = exp.routing.policy
        self.hit_latency_s = exp.cache.response.hit_latency_s
        self.priorities = [c.priority for c in exp.workload.classes]
        self.timeouts = [c.timeout_s for c in exp.workload.classes]
        names = {a.name: a.index for a in apis}
        self.class_target = np.array(
            [self._code(self._class_target(c.name), names) for c in exp.workload.classes], dtype=np.int64
        )
        self.overflow_code = self._code(exp.routing.overflow.target, names)
        self.max_queue = exp.routing.overflow.max_queue
        self.num_events = 0

    @staticmethod
    def uses_gpu(exp: Experiment) -> bool:
        p = exp.routing.policy
        if p in ("gpu_only", "overflow"):
            return True
        if p == "by_class":
            return "gpu" in exp.routing.by_class.values()
        return False

    def _class_target(self, name: str) -> str:
        if self.policy == "api_only":
            return "api"
        if self.policy == "by_class":
            return self.exp.routing.by_class[name]
        return "gpu"

    @staticmethod
    def _code(target: str, names: dict[str, int]) -> int:
        if target == "gpu":
            return TARGET_GPU
        if target == "api":
            return 0
        if target == "api_batch":
            return TARGET_BATCH_OFFSET
        return names[target[4:]]

    def route_block(
        self, block: RequestBlock, hits: np.ndarray | None, on_finished: Callable[[RequestBlock], None]
    ) -> None:
        n = len(block)
        todo = np.ones(n, dtype=bool)
        if hits is not None and hits.any():
            idx = np.flatnonzero(hits)
            t = block.arrival_at[idx]
            block.path[idx] = PATH_CACHE
            block.start_at[idx] = t
            block.first_token_at[idx] = t + self.hit_latency_s
            block.done_at[idx] = t + self.hit_latency_s
            block.finish_many(idx, SERVED)
            todo &= ~hits
        target = self.class_target[block.class_idx]
        ttft_draws, delay_draws = [], []
        for api in self.apis:
            ttft, delay = api.draw_block(n)
            ttft_draws.append(ttft)
            delay_draws.append(delay)
        self._draws = (ttft_draws, delay_draws)
        for code in np.unique(target[todo]).tolist():
            if code == TARGET_GPU:
                continue
            idx = np.flatnonzero(todo & (target == code))
            batch = code >= TARGET_BATCH_OFFSET
            api = self.apis[code - TARGET_BATCH_OFFSET if batch else code]
            api.serve(block, idx, block.arrival_at[idx], ttft_draws[api.index][idx], delay_draws[api.index][idx], batch)
        gpu_idx = np.flatnonzero(todo & (target == TARGET_GPU))
        if len(gpu_idx):
            self._pump(block, gpu_idx, (ttft_draws, delay_draws))
        if block.pending == 0:
            on_finished(block)

    # -- events: one per GPU-bound arrival -----------------------------------------------------
    def _pump(self, block: RequestBlock, gpu_idx: np.ndarray, draws: tuple[list[np.ndarray], list[np.ndarray]]) -> None:
        _Pump(self, block, gpu_idx, draws).start()

    def _spill(self, now: float) -> bool:
        pool = self.pool
        if pool is None:
            return True
        ready = pool.num_ready
        return ready == 0 or pool.queue_len > self.max_queue * ready

    def _serve_api(
        self, block: RequestBlock, i: int, code: int, now: float, draws: tuple[list[np.ndarray], list[np.ndarray]]
    ) -> None:
        batch = code >= TARGET_BATCH_OFFSET
        api = self.apis[code - TARGET_BATCH_OFFSET if batch else code]
        one = np.array([i])
        api.serve(block, one, np.array([now]), draws[0][api.index][one], draws[1][api.index][one], batch)
        if block.pending == 0 and self.pool is not None:
            self.pool.on_done(block)

    def up_intervals(self, horizon_s: float) -> list[tuple[float, float]]:
        """Intervals during which at least one path that routing uses could serve."""
        out: list[tuple[float, float]] = []
        if self.pool is not None:
            out.extend(self.pool.healthy_intervals)
        used = set(self.class_target.tolist())
        if self.policy == "overflow":
            used.add(self.overflow_code)
        for code in used:
            if code == TARGET_GPU:
                continue
            api = self.apis[code - TARGET_BATCH_OFFSET if code >= TARGET_BATCH_OFFSET else code]
            out.extend(api.up_intervals(horizon_s))
        return out


class _Pump:
    """Feeds a block's GPU-bound requests to the pool at their arrival times, one event per distinct time.

    A class rather than a closure that re-schedules itself: a self-referencing closure is a reference cycle
    that keeps its whole block alive until the cyclic garbage collector runs (gigabytes under overload).
    """

    __slots__ = ("router", "block", "idx", "times", "cls", "draws", "j")

    def __init__(
        self, router: Router, block: RequestBlock, gpu_idx: np.ndarray, draws: tuple[list[np.ndarray], list[np.ndarray]]
    ):
        self.router = router
        self.block = block
        self.idx = gpu_idx.tolist()
        self.times = block.arrival_at[gpu_idx].tolist()
        self.cls = block.class_idx[gpu_idx].tolist()
        self.draws = draws
        self.j = 0

    def start(self) -> None:
        env = self.router.env
        ev = simpy.Timeout(env, max(self.times[0] - env.now, 0.0))
        ev.callbacks.append(self.fire)
        self.router.num_events += 1

    def fire(self, _e: simpy.Event) -> None:
        router = self.router
        env, pool = router.env, router.pool
        prio, tmo = router.priorities, router.timeouts
        overflow = router.policy == "overflow"
        idx, times, cls, block = self.idx, self.times, self.cls, self.block
        count = len(idx)
        j = self.j
        now = env.now
        while True:
            i, c = idx[j], cls[j]
            if overflow and router._spill(now):
                router._serve_api(block, i, router.overflow_code, now, self.draws)
            elif pool is not None:
                pool.submit(block, i, prio[c], tmo[c])
            j += 1
            if j >= count or times[j] > now:
                break
        self.j = j
        if j < count:
            ev = simpy.Timeout(env, times[j] - now)
            ev.callbacks.append(self.fire)
            router.num_events += 1
