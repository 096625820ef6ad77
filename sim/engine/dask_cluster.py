"""Replications on a Dask cluster: an existing one (`--address`) or a local one started for the run.

Tasks carry a bundle of replication indices (a few per task keeps Dask's ~5 ms per-task cost small) and
return plain ReplicationResult data; replication r is a pure function of (config, r), so results are
bit-identical to the local process pool whatever the cluster. Results stream back bundle by bundle as they
finish (`as_completed`). The workers must be able to import capsim (`pip install capsim[dask]` there).
"""

from __future__ import annotations

import logging
import math
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sim.config import Experiment
from sim.engine.replication import ReplicationResult

TASKS_PER_WORKER = 4  # bundles per worker: enough to balance uneven replications, few enough to amortise
DEFAULT_SCHEDULER_PORT = 8786
CONNECT_TIMEOUT_S = 5.0


def parse_address(address: str) -> tuple[str, str, int]:
    """(scheme, host, port) of a scheduler address `[tcp://|tls://]HOST[:PORT]` (ValueError when malformed)."""
    text = address.strip()
    scheme, sep, loc = text.partition("://")
    if not sep:
        scheme, loc = "tcp", text
    if scheme not in ("tcp", "tls"):
        raise ValueError(f"unsupported protocol {scheme!r} (use tcp://HOST:PORT or tls://HOST:PORT)")
    if loc.startswith("["):  # [ipv6]:port
        host, _, rest = loc[1:].partition("]")
        port_text = rest[1:] if rest.startswith(":") else rest
    else:
        host, _, port_text = loc.partition(":")
    if not host or any(c in host for c in "/ ?#@"):
        raise ValueError("expected tcp://HOST:PORT")
    try:
        port = int(port_text) if port_text else DEFAULT_SCHEDULER_PORT
    except ValueError:
        raise ValueError(f"port {port_text!r} is not a number") from None
    if not 0 < port < 65536:
        raise ValueError(f"port {port} is out of range")
    return scheme, host, port


def check_address(address: str, timeout_s: float = CONNECT_TIMEOUT_S) -> None:
    """ValueError unless a scheduler address is well formed and something listens there (within timeout_s),
    so that a typo is answered at once instead of by a Dask client timing out with a traceback."""
    _, host, port = parse_address(address)
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            pass
    except OSError as exc:
        raise ValueError(f"cannot reach a Dask scheduler at {host}:{port} ({exc.strerror or exc})") from None


def make_bundles(reps: list[int], workers: int, per_worker: int = TASKS_PER_WORKER) -> list[list[int]]:
    """Split replication indices into contiguous bundles, about `per_worker` per worker."""
    if not reps:
        return []
    size = max(1, math.ceil(len(reps) / (max(1, workers) * per_worker)))
    return [reps[i : i + size] for i in range(0, len(reps), size)]


def _import_distributed() -> Any:
    try:
        import distributed
    except ImportError:  # pragma: no cover - depends on the install
        raise RuntimeError(
            "--executor dask needs the dask extra: pip install 'capsim[dask]' (dask[distributed])"
        ) from None
    return distributed


@contextmanager
def local_cluster(workers: int) -> Iterator[str]:
    """A LocalCluster of `workers` single-threaded processes for the duration of the block; yields its address."""
    distributed = _import_distributed()
    cluster = distributed.LocalCluster(
        n_workers=max(1, workers),
        threads_per_worker=1,
        processes=True,
        dashboard_address=None,
        silence_logs=logging.ERROR,
    )
    try:
        yield cluster.scheduler_address
    finally:
        cluster.close()


@contextmanager
def _client(address: str | None, workers: int) -> Iterator[Any]:
    distributed = _import_distributed()
    if address:
        client = distributed.Client(address, set_as_default=False)
        try:
            yield client
        finally:
            client.close()
        return
    with local_cluster(workers) as addr:
        client = distributed.Client(addr, set_as_default=False)
        try:
            yield client
        finally:
            client.close()


def run_on_dask(
    exp: Experiment, reps: list[int], workers: int, address: str | None = None
) -> Iterator[ReplicationResult]:
    """Yield the replications' results as their bundles finish (completion order)."""
    distributed = _import_distributed()
    from sim.engine.bundle import run_bundle

    reps = list(reps)
    if not reps:
        return
    with _client(address, workers) as client:
        n_workers = len(client.scheduler_info().get("workers", {})) or workers
        bundles = make_bundles(reps, n_workers)
        [exp_future] = client.scatter([exp], broadcast=True)
        futures = [client.submit(run_bundle, exp_future, b, pure=False) for b in bundles]
        try:
            for fut in distributed.as_completed(futures, loop=client.loop):
                yield from fut.result()
        finally:
            client.cancel(futures)
