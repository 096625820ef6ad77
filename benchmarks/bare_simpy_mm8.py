"""Baseline: a bare SimPy M/M/8 at rho = 0.8, a process per customer + simpy.Resource (the usual SimPy way)."""

from __future__ import annotations

import sys

import numpy as np
import simpy


def main(n: int = 200_000, servers: int = 8, rho: float = 0.8, seed: int = 1) -> None:
    rng = np.random.default_rng(seed)
    mean_service = 1.0
    lam = rho * servers / mean_service
    inter = rng.exponential(1 / lam, n)
    service = rng.exponential(mean_service, n)
    env = simpy.Environment()
    res = simpy.Resource(env, capacity=servers)
    waits = np.zeros(n)

    def customer(i: int):
        t = env.now
        with res.request() as req:
            yield req
            waits[i] = env.now - t
            yield env.timeout(service[i])

    def source():
        for i in range(n):
            yield env.timeout(inter[i])
            env.process(customer(i))

    env.process(source())
    env.run()
    print(f"customers={n} mean_wait={waits.mean():.4f}", file=sys.stderr)


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 200_000)
