"""Experiment-section lines on where the traffic and the API prices come from (users, presets)."""

from __future__ import annotations

from typing import Any

from sim.report.data import ReportData


def _fmt_usd(v: Any) -> str:
    return f"${float(v):,.4g}" if isinstance(v, (int, float)) else "?"


def _api_line(name: str, node: dict[str, Any]) -> tuple[str, str]:
    prices = (
        f"{_fmt_usd(node.get('price_input_per_mtok_usd'))} input / "
        f"{_fmt_usd(node.get('price_cached_input_per_mtok_usd'))} cached input / "
        f"{_fmt_usd(node.get('price_output_per_mtok_usd'))} output per 1M tokens, "
        f"batch x{node.get('batch_discount', '?')}"
    )
    preset = node.get("preset")
    if not preset:
        return f"{name} prices", prices
    from sim.config.api_presets import PRESETS

    p = PRESETS.get(str(preset))
    where = f"; list prices from {p.source}, as of {p.as_of}" if p is not None else ""
    return f"{name} prices", f"preset {preset}: {prices}{where} (prices given in the config override the preset's)"


def traffic_price_items(data: ReportData) -> list[tuple[str, str | None]]:
    """('users', ...) when traffic comes from a user base; one prices line per API the config defines."""
    items: list[tuple[str, str | None]] = []
    users = data.get("workload.users")
    if isinstance(users, dict):
        try:
            mau = float(users["monthly_active"])
            share = float(users["daily_active_share"])
            per_day = float(users["interactions_per_active_day"])
        except (KeyError, TypeError, ValueError):
            pass
        else:
            rate = data.get("workload.arrivals.mean_rps")
            rate_text = f" -> mean_rps {float(rate):.6g}" if isinstance(rate, (int, float)) else ""
            items.append(
                (
                    "traffic from users",
                    f"{mau:,.0f} monthly active x {share:.0%} daily x {per_day:g} interactions per active day = "
                    f"{mau * share * per_day:,.0f} requests on the average day{rate_text}",
                )
            )
    api = data.get("backends.api")
    if isinstance(api, dict) and (api.get("preset") or data.get("routing.policy") != "gpu_only"):
        items.append(_api_line("API", api))
    apis = data.get("backends.apis")
    if isinstance(apis, dict):
        for name, node in sorted(apis.items()):
            if isinstance(node, dict):
                items.append(_api_line(f"API {name}", node))
    return items
