"""The `ServerPolicy` protocol and its registry: which server of a pool takes an arriving request.

`backends.gpu_pool.server_routing.policy` names a module of `backends/gpu/server_policies/` defining
`POLICY` (adding a policy is adding one file there). A policy that `pins` chooses, when the pool's shared
queue is empty, one of the READY servers with room for the request (batch slot and KV memory); the request
is pinned to it and admitted at its next iteration boundary (backends/gpu/server_routing.py). A policy that
does not pin leaves the pool as it always was: one shared queue, the lowest idle server, else the
least-loaded busy one with room takes the next request.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

from backends.gpu import server_policies
from sim.core.registry import discover

if TYPE_CHECKING:
    from backends.gpu.server import Server
    from sim.config.server_routing import ServerRoutingSpec


class ServerChooser(Protocol):
    def pick(self, candidates: Sequence[Server], loads: Sequence[int], matches: Sequence[int], blocks: int) -> Server:
        """One of `candidates` (READY servers with room, by index), given each one's load (requests running,
        claimed or pinned) and the leading blocks of this request's prompt (of `blocks`) its prefix cache
        holds (all 0 without one)."""
        ...


class ServerPolicy(Protocol):
    name: str  # its value of server_routing.policy
    pins: bool  # False: the shared queue decides (least_loaded), no chooser is asked
    needs_prefix_cache: bool  # refused without prefix_cache.enabled

    def chooser(self, spec: ServerRoutingSpec) -> ServerChooser:
        """The decision of one pool in one replication (it may keep state, e.g. a rotation)."""
        ...


SERVER_POLICIES: dict[str, ServerPolicy] = discover(server_policies, "server routing policies")


def server_policy_of(name: str) -> ServerPolicy:
    """The policy named `name` (a validated config names a known one: sim.engine.checks)."""
    return SERVER_POLICIES[name]


def unknown_server_policy_message(name: object) -> str | None:
    """The problem with server_routing.policy, or None when it names a policy."""
    if isinstance(name, str) and name in SERVER_POLICIES:
        return None
    choices = [repr(n) for n in SERVER_POLICIES]
    return f"Input should be {', '.join(choices[:-1])} or {choices[-1]}, got {name!r}"
