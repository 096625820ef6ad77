"""`capsim breakeven`: parse the options, run the comparison, print, write breakeven.json and its chart."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from sim.config import Experiment
from sim.config.errors import ConfigError
from sim.engine.dask_cluster import executor_address
from sim.engine.variants import derive
from sim.studies.breakeven import SERVERS_KEY, Breakeven, _fmt, _human, _tco_bars, parse_volumes, rate_for_volume
from sim.studies.plan import resolve_targets


def print_breakeven(doc: dict[str, Any], stream: Any = None) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(file=stream, width=140)
    t = Table(title=f"monthly cost: API-only vs self-hosted vs hybrid ({doc['hybrid_policy']})")
    for col in ("tokens/month", "req/s", "API-only", "self-hosted", "servers (naive)", "hybrid", "hybrid servers"):
        t.add_column(col, justify="right")
    for i, v in enumerate(doc["volumes"]):
        t.add_row(
            _human(v),
            f"{doc['mean_rps'][i]:.3g}",
            f"${_fmt(doc['api_monthly_usd'][i])}",
            f"${_fmt(doc['self_hosted_monthly_usd'][i])}",
            f"{doc['self_hosted_servers'][i]} ({doc['naive_servers'][i]})",
            f"${_fmt(doc['hybrid_monthly_usd'][i])}",
            str(doc["hybrid_servers"][i]),
        )
    console.print(t)
    be = doc["breakeven_tokens_per_month"]
    lo, hi = doc["breakeven_interval"]
    if be is None:
        console.print("break-even: self-hosted is not cheaper than API-only after any volume given (or from the first)")
    else:
        band = f" (band {_human(lo) if lo else '?'} .. {_human(hi) if hi else '?'})"
        console.print(f"break-even: self-hosted is cheaper than API-only above ~{_human(be)} tokens/month{band}")


def write_chart(doc: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from sim.core.atomic import write_atomic

    vols = doc["volumes"]
    fig, (ax, tco_ax) = plt.subplots(2, 1, figsize=(8, 8), dpi=110, height_ratios=[5, 3])
    series = [
        ("API-only", doc["api_monthly_usd"], doc["api_monthly_ci95"], "tab:blue", "-"),
        (
            "self-hosted (servers annotated)",
            doc["self_hosted_monthly_usd"],
            doc["self_hosted_monthly_band"],
            "tab:red",
            "-",
        ),
        ("hybrid", doc["hybrid_monthly_usd"], doc["hybrid_monthly_ci95"], "tab:green", "--"),
    ]
    for label, mean, band, color, style in series:
        pts = [(v, m, b) for v, m, b in zip(vols, mean, band, strict=True) if m is not None]
        if not pts:
            continue
        xs = [p[0] for p in pts]
        ax.plot(xs, [p[1] for p in pts], marker="o", markersize=4, color=color, linestyle=style, label=label)
        lows = [p[2][0] if p[2][0] is not None else p[1] for p in pts]
        highs = [p[2][1] if p[2][1] is not None else p[1] for p in pts]
        ax.fill_between(xs, lows, highs, color=color, alpha=0.18, linewidth=0)
    for v, m, n in zip(vols, doc["self_hosted_monthly_usd"], doc["self_hosted_servers"], strict=True):
        if m is not None and n is not None:
            ax.annotate(f"{n}", (v, m), textcoords="offset points", xytext=(0, 7), ha="center", fontsize=8)
    be = doc["breakeven_tokens_per_month"]
    if be is not None:
        ax.axvline(be, color="grey", linestyle="--", linewidth=1)
        ax.annotate(f"break-even ~{_human(be)}", (be, ax.get_ylim()[1]), xytext=(4, -14), textcoords="offset points")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("tokens per month (input + output)")
    ax.set_ylabel("total monthly cost, USD")
    ax.set_title("API-only vs self-hosted vs hybrid (bands: 95% CI; self-hosted: + sizing uncertainty)")
    ax.title.set_fontsize(9)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    _tco_bars(tco_ax, doc)
    fig.tight_layout()
    write_atomic(path, lambda fh: fig.savefig(fh, format="png"))
    plt.close(fig)


def run_breakeven_command(
    exp: Experiment,
    volumes_text: str,
    reps: int,
    max_reps: int,
    max_servers: int,
    workers: int | None,
    executor: str,
    address: str | None,
    as_json: bool,
    quiet: bool,
    out: Path | None,
    base_dir: Path | None,
) -> int:
    from sim.core.atomic import write_text_atomic

    def err(msg: str) -> None:
        sys.stderr.write(msg.rstrip("\n") + "\n")

    try:
        volumes = parse_volumes(volumes_text)
        targets, p = resolve_targets(exp, None, None)
        if exp.workload.arrivals.kind == "trace":
            raise ValueError("breakeven scales workload.arrivals.mean_rps; trace arrivals cannot be scaled")
        if max_reps < reps:
            raise ValueError(f"--max-reps ({max_reps}) must be >= --reps ({reps})")
        derive(exp, [("routing.policy", "gpu_only")], base_dir)
        for v in volumes:  # every variant the search may run, at its largest, checked before any replication
            largest = [("workload.arrivals.mean_rps", rate_for_volume(exp, v)), ("replications", max_reps)]
            derive(exp, [*largest, ("routing.policy", "gpu_only"), (SERVERS_KEY, max_servers)], base_dir)
            derive(exp, [*largest, ("routing.policy", "api_only"), ("costs.fixed_monthly_usd", 0.0)], base_dir)
    except ValueError as exc:
        err(str(exc))
        return 2
    except ConfigError as exc:
        for prob in exc.problems:
            err(f"{prob.path}: {prob.message}")
        return 2
    log = (lambda msg: None) if (quiet or as_json) else err
    with executor_address(executor, address, workers) as addr:
        be = Breakeven(exp, volumes, targets, p, reps, max_reps, max_servers, workers, executor, addr, base_dir, log)
        doc = be.run()
    if out is not None:
        out = Path(out)
        from sim.engine.loading import resolved_yaml

        write_text_atomic(out / "breakeven.json", json.dumps(doc, indent=2, allow_nan=False) + "\n")
        write_text_atomic(out / "config.yaml", resolved_yaml(exp))  # the report's Experiment section
        write_chart(doc, out / "breakeven.png")
    if as_json:
        sys.stdout.write(json.dumps(doc, allow_nan=False) + "\n")
    else:
        print_breakeven(doc)
        if out is not None:
            print(f"written: {out / 'breakeven.json'}, {out / 'breakeven.png'}")
    return 0
