"""capsim beside a peer simulator, vllm-sr-sim (PyPI; package `fleet_sim`), on the same workload.

Workload: one H100 serving Llama-3-8B (the peer's closest profile: its first-principles ComputedProfile for
H100-SXM + Llama-3.1-8B, TP1, fp16, max 256 sequences like vLLM's max_num_seqs), Poisson arrivals at 2, 8
and 32 req/s, a ShareGPT-like mix (lognormal, sigma 0.8, means 200 input / 180 output tokens); then 16
instances at 32 req/s each (~200k requests) for speed. capsim runs benchmarks/scenarios/peer_h100_sharegpt.yaml
with the catalog's derived iteration model (nothing hard-coded here: its figures follow the catalog).

Prints (a) speed: whole-process wall and CPU time (medians of --runs), requests simulated per wall second; (b) fidelity
against vLLM v0.6.0's published H100 + Llama-3-8B figures (calibration_facts.csv): mean TPOT, mean batch
occupancy (requests in the running batch per instance, time-averaged) and saturation throughput.

Occupancy: capsim: per-minute means of (in_flight - queue_len) from timeseries.parquet over the minutes whose
arrivals were all served (minute 0 left out), per server. vllm-sr-sim: Little's law on its own records,
sum(min(end, T) - start) / T over the arrival window T, where end is when it frees the
batch slot (start + service time / slots: what sets its iteration time) and, beside it, physical_end (when
the last token is out). vLLM: implied by Little's law, rate x TPOT x (179 - 1) (TTFT < 0.1 s ignored).

The peer runs in its own interpreter (it needs only numpy + scipy): --peer-python, else $CAPSIM_PEER_PYTHON,
else this interpreter if it imports fleet_sim, else /tmp/srvenv/bin/python. Without one it says so, exits 0.

Usage: PYTHONPATH=. python benchmarks/peer_vllm_sr_sim.py [--runs 3] [--requests 100000] [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from statistics import median

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
CONFIG = "benchmarks/scenarios/peer_h100_sharegpt.yaml"
DEFAULT_PEER_PYTHON = "/tmp/srvenv/bin/python"

# vLLM v0.6.0, 1 x H100, Llama-3-8B, ShareGPT (202 in / 179 out), read off the blog's plots (+-1):
# vllm-project/vllm-project.github.io _posts/2024-09-05-perf-update.md (see calibration_facts.csv).
VLLM_TPOT_MS = {2.0: 8.0, 8.0: 9.0, 32.0: 13.0}
VLLM_TPOT_SAT_MS = 57.0
VLLM_SATURATION_RPS = 37.0
VLLM_MEAN_OUTPUT = 179.0

# the token mix, shared by both simulators (capsim's copy is in the scenario YAML)
SIGMA = 0.8
MEAN_IN, MEAN_OUT = 200.0, 180.0
MAX_BATCH = 256  # vLLM's default max_num_seqs
MAX_CTX = 8192  # Llama-3-8B's context window (vLLM's max_model_len); sets the peer's slot count


# ---------------------------------------------------------------------------------------------------
# the peer's side: runs in the peer's interpreter, imports only numpy and fleet_sim
def peer_child(a: argparse.Namespace) -> None:
    import numpy as np
    from fleet_sim import H100_SXM, LLAMA_3_1_8B, Fleet, FleetConfig, PoolConfig, ProfileBuilder, Request, ServingConfig

    profile = ProfileBuilder().build(H100_SXM, LLAMA_3_1_8B, ServingConfig(tp=1, max_slots=MAX_BATCH))
    rng = np.random.default_rng(a.seed)
    n = a.requests
    t = np.cumsum(rng.exponential(1.0 / a.rate, n))

    def tokens(mean: float) -> np.ndarray:  # max(1, round(X)), X lognormal with this mean (capsim's rule)
        x = mean / np.exp(0.5 * SIGMA**2) * np.exp(SIGMA * rng.standard_normal(n))
        return np.maximum(1, np.rint(x)).astype(np.int64)

    li, lo = tokens(MEAN_IN), tokens(MEAN_OUT)
    arrivals = [
        (at, Request(req_id=i, arrival_time=at, l_in=x, l_out=y))
        for i, (at, x, y) in enumerate(zip(t.tolist(), li.tolist(), lo.tolist(), strict=True))
    ]
    pool = PoolConfig("h100", profile, a.instances, MAX_CTX, lb_strategy="least_loaded")
    result = Fleet(FleetConfig(pools=[pool], router_type="LeastLoadedRouter")).run(arrivals)
    done = result.completed
    horizon = float(t[-1])  # time-average over the arrival window: intervals clipped to [0, last arrival]

    def occupancy(end: str) -> float:
        busy = sum(max(0.0, min(getattr(r, end), horizon) - r.start_time) for r in done)
        return busy / horizon / a.instances

    tpots = [r.tpot for r in done if r.tpot is not None]
    out = {
        "requests": n,
        "completed": len(done),
        "rejected": n - len(done),  # Pool.rejected misses requests an instance's full queue refuses
        "n_slots": profile.n_slots(MAX_CTX),
        "tpot_mean_s": sum(tpots) / len(tpots) if tpots else None,
        "ttft_mean_s": sum(r.ttft for r in done) / len(done) if done else None,
        "slot_occupancy": occupancy("end_time"),
        "physical_occupancy": occupancy("physical_end_time"),
        "throughput_rps": result.throughput(),
    }
    Path(a.child_out).write_text(json.dumps(out))


# ---------------------------------------------------------------------------------------------------
# the driver: runs in capsim's interpreter
PEER_PROBE = (  # every name the child uses: a release that renamed one counts as absent
    "import numpy; from fleet_sim import H100_SXM, LLAMA_3_1_8B, Fleet, FleetConfig, PoolConfig, ProfileBuilder, "
    "Request, ServingConfig"
)


def find_peer_python(explicit: str | None) -> str | None:
    candidates = [explicit] if explicit else [os.environ.get("CAPSIM_PEER_PYTHON"), sys.executable, DEFAULT_PEER_PYTHON]
    for py in candidates:
        if not py or not Path(py).exists():
            continue
        ok = subprocess.run([py, "-c", PEER_PROBE], capture_output=True).returncode == 0
        if ok:
            return py
        if explicit:
            return None
    return None


def _child_cpu_s() -> float:
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def timed(cmd: list[str], runs: int) -> tuple[float, float, str]:
    """Median whole-process wall time and CPU time (user + sys) of `runs` runs, and the last run's stdout.
    CPU time is the steadier figure on a shared machine: other processes stretch wall time, not CPU time."""
    walls, cpus, stdout = [], [], ""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    for _ in range(runs):
        c0, t0 = _child_cpu_s(), time.perf_counter()
        p = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
        walls.append(time.perf_counter() - t0)
        cpus.append(_child_cpu_s() - c0)
        if p.returncode != 0:
            raise SystemExit(f"failed ({p.returncode}): {' '.join(cmd)}\n{p.stderr[-2000:]}")
        stdout = p.stdout
    return median(walls), median(cpus), stdout


def run_capsim(rate: float, servers: int, minutes: float, runs: int, out: Path) -> dict:
    cmd = [
        sys.executable,
        "-m",
        "sim",
        "run",
        CONFIG,
        "--workers",
        "1",
        "--quiet",
        "--json",
        "--out",
        str(out),
        "--set",
        f"workload.arrivals.mean_rps={rate}",
        "--set",
        f"backends.gpu_pool.servers={servers}",
        "--set",
        f"horizon_h={minutes / 60.0!r}",
        "--set",
        "warmup_h=0",
    ]
    wall, cpu, stdout = timed(cmd, runs)
    m = {k: v["mean"] for k, v in json.loads(stdout)["metrics"].items()}
    import pandas as pd

    ts = pd.read_parquet(out / "timeseries.parquet").sort_values("minute")
    # minutes whose arrivals have all been served, skipping the start-empty minute 0: under overload the
    # later minutes hold requests never admitted, which queue_len does not count (their path is unset)
    ok = (ts["arrivals"].cumsum() <= m["served"]).to_numpy().copy()
    ok[0] = ok[0] and len(ts) == 1
    sel = ts[ok] if ok.any() else ts
    occupancy = float((sel["in_flight"] - sel["queue_len"]).mean()) / servers
    horizon_s = minutes * 60.0
    little = None
    if m.get("e2e_mean_s") is not None and m.get("queue_wait_mean_s") is not None:
        little = m["served"] / horizon_s * (m["e2e_mean_s"] - m["queue_wait_mean_s"]) / servers
    return {
        "wall_s": wall,
        "cpu_s": cpu,
        "requests": m["requests"],
        "req_per_s": m["requests"] / wall,
        "req_per_cpu_s": m["requests"] / cpu,
        "tpot_mean_s": m["tpot_mean_s"],
        "ttft_mean_s": m["ttft_mean_s"],
        "occupancy": occupancy,
        "occupancy_little": little,
        "throughput_rps": m["served"] / horizon_s,
        "in_flight_at_end": m["in_flight"],
        "cmd": " ".join(cmd),
    }


def run_peer(py: str, rate: float, instances: int, requests: int, runs: int, out: Path) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    child_out = out / f"peer-{rate:g}-{instances}.json"
    cmd = [py, str(Path(__file__).resolve()), "--peer-child", "--rate", repr(rate)]
    cmd += ["--instances", str(instances), "--requests", str(requests), "--child-out", str(child_out)]
    wall, cpu, _ = timed(cmd, runs)
    r = json.loads(child_out.read_text())
    return {
        **r,
        "wall_s": wall,
        "cpu_s": cpu,
        "req_per_s": requests / wall,
        "req_per_cpu_s": requests / cpu,
        "cmd": " ".join(cmd),
    }


def fmt(x: float | None, spec: str) -> str:
    return "n/a" if x is None else format(x, spec)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=3, help="timed runs per figure (median)")
    ap.add_argument("--requests", type=int, default=100_000, help="requests per single-instance run")
    ap.add_argument("--scale-instances", type=int, default=16)
    ap.add_argument("--scale-requests", type=int, default=200_000)
    ap.add_argument("--scale-rate", type=float, default=32.0, help="req/s per instance in the scale run")
    ap.add_argument("--rates", default="2,8,32")
    ap.add_argument("--peer-python", default=None)
    ap.add_argument("--out", default="/tmp/capsim-peer")
    # child mode (run by the driver in the peer's interpreter)
    ap.add_argument("--peer-child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--rate", type=float, help=argparse.SUPPRESS)
    ap.add_argument("--instances", type=int, default=1, help=argparse.SUPPRESS)
    ap.add_argument("--seed", type=int, default=1, help=argparse.SUPPRESS)
    ap.add_argument("--child-out", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.peer_child:
        peer_child(a)
        return

    py = find_peer_python(a.peer_python)
    if py is None:
        where = a.peer_python or f"$CAPSIM_PEER_PYTHON, {sys.executable} or {DEFAULT_PEER_PYTHON}"
        print(
            f"vllm-sr-sim (package fleet_sim, with the names this script uses) not found in {where}: "
            "skipping the peer comparison.\n"
            "Install it in a separate venv (`pip install 'capsim[peer]'` or `pip install vllm-sr-sim`) "
            "and pass --peer-python PATH/TO/python."
        )
        return
    out = Path(a.out)
    rows = []
    scenarios = [(float(r), 1, a.requests) for r in a.rates.split(",")]
    scenarios.append((a.scale_rate, a.scale_instances, a.scale_requests))
    for rate, inst, n in scenarios:
        total = rate * inst
        minutes = max(1.0, round(n / total / 60.0))  # whole minutes: the timeseries averages full minutes
        n = int(round(total * minutes * 60.0))
        label = f"{inst}xH100 @ {rate:g} req/s" + (" each" if inst > 1 else "")
        print(f"running {label}: ~{n:,} requests ...", file=sys.stderr)
        cap = run_capsim(total, inst, minutes, a.runs, out / f"capsim-{rate:g}-{inst}")
        peer = run_peer(py, total, inst, n, a.runs, out)
        rows.append({"label": label, "rate": rate, "instances": inst, "capsim": cap, "peer": peer})

    # saturation: offered load far above capacity; once each (not timed)
    print("running saturation (overload) ...", file=sys.stderr)
    sat_cap = run_capsim(4 * VLLM_SATURATION_RPS, 1, 20.0, 1, out / "capsim-sat")
    sat_peer = run_peer(py, 20_000.0, 1, 200_000, 1, out)

    print(f"\nload average during the run (1/5/15 min): {os.getloadavg()}; cores: {os.cpu_count()}")
    print(f"peer interpreter: {py}; peer batch slots per instance: {rows[0]['peer']['n_slots']} (max_ctx {MAX_CTX})")
    print(f"\n## Speed (whole process, median of {a.runs} runs)")
    print(
        "| workload | requests | capsim wall s | capsim req/s | capsim CPU s | vllm-sr-sim wall s | vllm-sr-sim req/s "
        "| vllm-sr-sim CPU s | capsim/peer (wall) | capsim/peer (CPU) |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        c, p = r["capsim"], r["peer"]
        print(
            f"| {r['label']} | {c['requests']:,.0f} | {c['wall_s']:.2f} | {c['req_per_s']:,.0f} | {c['cpu_s']:.2f} | "
            f"{p['wall_s']:.2f} | {p['req_per_s']:,.0f} | {p['cpu_s']:.2f} | "
            f"{c['req_per_s'] / p['req_per_s']:.2f} | {c['req_per_cpu_s'] / p['req_per_cpu_s']:.2f} |"
        )
    print("\n## Fidelity vs vLLM v0.6.0 (1xH100, Llama-3-8B, ShareGPT)")
    print(
        "| rate req/s | TPOT ms vLLM | capsim | vllm-sr-sim | batch vLLM (Little) | capsim | "
        "vllm-sr-sim slots | vllm-sr-sim physical |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        if r["instances"] != 1:
            continue
        c, p, rate = r["capsim"], r["peer"], r["rate"]
        v = VLLM_TPOT_MS.get(rate)
        v_occ = rate * v / 1000.0 * (VLLM_MEAN_OUTPUT - 1) if v else None
        print(
            f"| {rate:g} | {fmt(v, '.0f')} | {fmt(c['tpot_mean_s'] * 1e3, '.1f')} | "
            f"{fmt(p['tpot_mean_s'] * 1e3, '.1f')} | {fmt(v_occ, '.1f')} | {c['occupancy']:.1f} | "
            f"{p['slot_occupancy']:.2f} | {p['physical_occupancy']:.1f} |"
        )
    print(
        f"| saturation | {VLLM_TPOT_SAT_MS:.0f} | {fmt(sat_cap['tpot_mean_s'] * 1e3, '.1f')} | "
        f"{fmt(sat_peer['tpot_mean_s'] * 1e3, '.1f')} | <= {MAX_BATCH} | {sat_cap['occupancy']:.1f} | "
        f"{sat_peer['slot_occupancy']:.2f} | {sat_peer['physical_occupancy']:.1f} |"
    )
    print("\n| saturation throughput | vLLM | capsim | vllm-sr-sim |")
    print("|---|---|---|---|")
    print(
        f"| req/s | {VLLM_SATURATION_RPS:.0f} | {sat_cap['throughput_rps']:.1f} "
        f"(offered {4 * VLLM_SATURATION_RPS:g}, {sat_cap['in_flight_at_end']:,.0f} left waiting) | "
        f"{sat_peer['throughput_rps']:,.0f} (offered 20,000, {sat_peer['rejected']:,} rejected) |"
    )
    out.mkdir(parents=True, exist_ok=True)
    (out / "peer.json").write_text(
        json.dumps({"rows": rows, "saturation": {"capsim": sat_cap, "peer": sat_peer}}, indent=2)
    )
    print(f"\nraw figures: {out / 'peer.json'}")


if __name__ == "__main__":
    main()
