"""`capsim breakeven`: parse the options, run the comparison, print, write breakeven.json and its chart."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sim.app.study_output import StudyOutput, checked
from sim.config import Experiment
from sim.engine.variants import derive
from sim.studies.breakeven import (
    Breakeven,
    _fmt,
    _human,
    _tco_bars,
    api_only_changes,
    parse_volumes,
    rate_for_volume,
    self_hosted_changes,
    servers_key,
)
from sim.studies.plan import PlanOptions, resolve_options
from sim.studies.screens import memory_problem
from sim.studies.search import Space


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
    io: StudyOutput,
    vary_texts: Sequence[str] = (),
    pool_name: str | None = None,
) -> int:
    pools = list(exp.backends.pools())
    # the pool breakeven sizes: None for the shorthand backends.gpu_pool, else --pool or the first named pool
    pool = (pool_name or pools[0]) if exp.backends.gpu_pools else None

    def check() -> tuple[list[float], PlanOptions, Space | None]:
        if pool_name is not None and pool_name not in pools:
            raise ValueError(f"--pool: unknown GPU pool {pool_name!r}; pools: {', '.join(pools)}")
        volumes = parse_volumes(volumes_text)
        space = Space.parse(vary_texts) if vary_texts else None
        if space is not None and space.searched is not None:
            raise ValueError("breakeven --vary: give KEY=V1,V2,...; the server count is searched by breakeven itself")
        options = resolve_options(exp, None, None, reps, max_reps)
        if exp.workload.arrivals.kind == "trace":
            raise ValueError("breakeven scales workload.arrivals.mean_rps; trace arrivals cannot be scaled")
        self_hosted, api_only, key = self_hosted_changes(exp, pool), api_only_changes(exp), servers_key(pool)
        derive(exp, self_hosted, io.base_dir)
        for v in volumes:  # every variant the search may run, at its largest, checked before any replication
            largest = [("workload.arrivals.mean_rps", rate_for_volume(exp, v)), ("replications", max_reps)]
            derive(exp, [*largest, *self_hosted, (key, max_servers)], io.base_dir)
            derive(exp, [*largest, *api_only, ("costs.fixed_monthly_usd", 0.0)], io.base_dir)
            for col in space.columns() if space is not None else []:
                point = [*largest, *self_hosted, (key, max_servers), *col]
                if memory_problem(derive(exp, point, io.base_dir, checks=False)) is None:
                    derive(exp, point, io.base_dir)
        return volumes, options, space

    parsed = checked(check)
    if parsed is None:
        return 2
    volumes, options, space = parsed
    with io.executor.session() as executor:
        doc = Breakeven(exp, volumes, options, max_servers, executor, io.base_dir, io.log, space, pool).run()
    io.write(exp, "breakeven.json", doc)
    if io.out is not None:
        write_chart(doc, Path(io.out) / "breakeven.png")
    io.show(doc, print_breakeven)
    if io.out is not None and not io.as_json:
        print(f"written: {Path(io.out) / 'breakeven.json'}, {Path(io.out) / 'breakeven.png'}")
    return 0
