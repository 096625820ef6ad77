"""The simulated clock's units: seconds in a minute, an hour, a day, a week, and the days of the week.

The clock starts at 00:00 of the experiment's `start_weekday`; a day index d is (start + t // DAY_S) % 7
in WEEKDAYS order (Monday first).
"""

MINUTE_S = 60.0
HOUR_S = 3600.0
DAY_S = 86400.0
WEEK_S = 7 * DAY_S
WEEKDAYS: tuple[str, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
