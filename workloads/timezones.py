"""Populations of users in several time zones, each following the day curve in its own local time.

The simulation clock shows local time at `utc_offset_h` (00:00 of `start_weekday` is t = 0). A population
at offset o sees local time t + (o - utc_offset_h) h, so its 9 a.m. peak falls at clock hour
9 - (o - utc_offset_h). The mixture's rate is

    lambda(t) = sum_i share_i * lambda_1(t + (o_i - utc_offset_h) * 3600)

where lambda_1 is the one-zone curve (day shape and weekday factors taken in the population's local time).
Shares sum to 1, so the mixture keeps the day's mean: zones a few hours apart flatten the peak; zones
about half a day apart give two peaks. A week profile (UTC data) is one population at offset 0.
"""

from __future__ import annotations

from sim.config.workload import ArrivalsSpec
from sim.core.calendar import HOUR_S


def populations(spec: ArrivalsSpec) -> list[tuple[float, float]]:
    """(share, shift in seconds from clock time to the population's local time) for every population."""
    if spec.uses_week_profile and spec.profile is not None:
        return [(1.0, -float(spec.utc_offset_h) * HOUR_S)]  # the profile's hours are UTC
    if spec.timezones is None:
        return [(1.0, 0.0)]
    total = sum(z.share for z in spec.timezones)
    return [(z.share / total, (float(z.utc_offset_h) - float(spec.utc_offset_h)) * HOUR_S) for z in spec.timezones]
