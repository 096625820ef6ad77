"""`overflow`: every request to the GPU pool, unless, when it arrives, the pool looks too busy; then to
`routing.overflow.target`. Trigger `queue`: more than `max_queue` waiting requests per ready server (or no
server ready); trigger `slo`: a predicted queue wait (backends/routing/wait_predictor.py) above
`slo_fraction` x the class's slo_ttft_s."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from sim.config import Experiment
from sim.config.routing import RoutingSpec

if TYPE_CHECKING:  # the pool's modules load with the simulator, not at `capsim validate` (which reads this policy)
    from backends.gpu.pool import GpuPool
    from backends.routing.wait_predictor import WaitPredictor


class QueueSpill:
    __slots__ = ("pool", "max_queue")

    def __init__(self, pool: GpuPool, max_queue: float):
        self.pool = pool
        self.max_queue = max_queue

    def spill(self, now: float, c: int) -> bool:
        pool = self.pool
        ready = pool.num_ready
        return ready == 0 or pool.queue_len > self.max_queue * ready

    def admitted(self, c: int, now: float) -> None:
        pass


class SloSpill:
    __slots__ = ("predictor", "priorities", "limits")

    def __init__(self, predictor: WaitPredictor, priorities: list[int], limits: list[float]):
        self.predictor = predictor
        self.priorities = priorities
        self.limits = limits  # slo_fraction x slo_ttft_s per class

    def spill(self, now: float, c: int) -> bool:
        return self.predictor.predict(self.priorities[c], now) > self.limits[c]

    def admitted(self, c: int, now: float) -> None:
        self.predictor.note_arrival(self.priorities[c], now)


class Overflow:
    name = "overflow"
    mixes = True

    def class_targets(self, routing: RoutingSpec, classes: Sequence[str]) -> list[str]:
        return ["gpu"] * len(classes)

    def spill_target(self, routing: RoutingSpec) -> str | None:
        return routing.overflow.target

    def spiller(self, exp: Experiment, pool: GpuPool) -> QueueSpill | SloSpill:
        ov = exp.routing.overflow
        if ov.trigger == "queue":
            return QueueSpill(pool, ov.max_queue)
        from backends.routing.wait_predictor import WaitPredictor
        from workloads.token_counts import make_token_distribution

        classes = exp.workload.classes
        mean_out = sum(c.share * make_token_distribution(c.output_tokens).mean for c in classes)
        return SloSpill(
            WaitPredictor(pool, float(mean_out)),
            [c.priority for c in classes],
            [ov.slo_fraction * c.slo_ttft_s for c in classes],
        )

    def problems(self, exp: Experiment) -> list[tuple[str, str]]:
        return []


POLICY = Overflow()
