"""round_robin: servers in turn (the next one after the last chosen, by index, that has room)."""

from __future__ import annotations

from collections.abc import Sequence

from backends.gpu.server import Server
from sim.config.server_routing import ServerRoutingSpec


class Rotation:
    def __init__(self) -> None:
        self.next_idx = 0

    def pick(self, candidates: Sequence[Server], loads: Sequence[int], matches: Sequence[int], blocks: int) -> Server:
        chosen = next((s for s in candidates if s.idx >= self.next_idx), candidates[0])
        self.next_idx = chosen.idx + 1
        return chosen


class RoundRobin:
    name = "round_robin"
    pins = True
    needs_prefix_cache = False

    def chooser(self, spec: ServerRoutingSpec) -> Rotation:
        return Rotation()


POLICY = RoundRobin()
