"""Business-hours arithmetic (pure): is a moment inside working hours, and
what moment is N working minutes after another. Local times in the calendar's
time zone, so daylight-saving changes move the UTC instants, not the hours."""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

WEEKDAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
MAX_DAYS_AHEAD = 800  # a calendar with no working time at all must not loop forever


class CalendarError(ValueError):
    pass


def _parse_hhmm(value: str) -> dt.time:
    try:
        hours, minutes = str(value).split(":")
        h, m = int(hours), int(minutes)
    except (ValueError, AttributeError):
        raise CalendarError(f"{value!r} is not a time like 09:00") from None
    if h == 24 and m == 0:
        return dt.time.max
    if not (0 <= h < 24 and 0 <= m < 60):
        raise CalendarError(f"{value!r} is not a time like 09:00")
    return dt.time(h, m)


def schedule_parse(schedule: dict) -> dict[int, list[tuple[dt.time, dt.time]]]:
    """Validates {"mon": [["09:00", "17:00"]], ...}; raises CalendarError."""
    if not isinstance(schedule, dict):
        raise CalendarError("The schedule must be an object keyed by weekday (mon..sun).")
    unknown = set(schedule) - set(WEEKDAYS)
    if unknown:
        raise CalendarError(f"Unknown weekday(s): {', '.join(sorted(unknown))}; use mon..sun.")
    parsed: dict[int, list[tuple[dt.time, dt.time]]] = {}
    for index, day in enumerate(WEEKDAYS):
        intervals = []
        for pair in schedule.get(day) or []:
            if not isinstance(pair, (list, tuple)) or len(pair) != 2:
                raise CalendarError(f"{day}: each interval is [start, end], e.g. [\"09:00\", \"17:00\"].")
            start, end = _parse_hhmm(pair[0]), _parse_hhmm(pair[1])
            if end <= start:
                raise CalendarError(f"{day}: {pair[0]}-{pair[1]} ends before it starts.")
            intervals.append((start, end))
        intervals.sort()
        for (_s1, e1), (s2, _e2) in zip(intervals, intervals[1:]):
            if s2 < e1:
                raise CalendarError(f"{day}: intervals overlap.")
        parsed[index] = intervals
    return parsed


def time_zone_check(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except Exception:  # noqa: BLE001 - ZoneInfo raises several kinds for bad names
        raise CalendarError(f"Unknown time zone {name!r}.") from None


@dataclass(frozen=True)
class Calendar:
    time_zone: str = "UTC"
    schedule: dict = field(default_factory=dict)
    holidays: frozenset[dt.date] = frozenset()

    @property
    def tz(self) -> ZoneInfo:
        return time_zone_check(self.time_zone)

    def _intervals(self, day: dt.date) -> list[tuple[dt.datetime, dt.datetime]]:
        """Working intervals of a local date, as aware datetimes."""
        if day in self.holidays:
            return []
        tz = self.tz
        out = []
        for start, end in schedule_parse(self.schedule).get(day.weekday(), []):
            s = dt.datetime.combine(day, start, tzinfo=tz)
            e = (dt.datetime.combine(day + dt.timedelta(days=1), dt.time(0), tzinfo=tz) if end == dt.time.max
                 else dt.datetime.combine(day, end, tzinfo=tz))
            # compare and subtract in UTC: same-zone arithmetic is wall-clock in Python
            out.append((s.astimezone(dt.timezone.utc), e.astimezone(dt.timezone.utc)))
        return out

    def is_open(self, at: dt.datetime) -> bool:
        return any(s <= at < e for s, e in self._intervals(at.astimezone(self.tz).date()))

    def working_seconds(self, start: dt.datetime, end: dt.datetime) -> float:
        """Seconds of [start, end) inside working intervals (reports' business-hours durations)."""
        if end <= start:
            return 0.0
        start, end = start.astimezone(dt.timezone.utc), end.astimezone(dt.timezone.utc)
        total = 0.0
        # one day early: an interval ending at 24:00 local belongs to the day before
        day = start.astimezone(self.tz).date() - dt.timedelta(days=1)
        last = end.astimezone(self.tz).date()
        while day <= last:
            for s, e in self._intervals(day):
                a, b = max(s, start), min(e, end)
                if b > a:
                    total += (b - a).total_seconds()
            day += dt.timedelta(days=1)
        return total

    def add_minutes(self, start: dt.datetime, minutes: float) -> dt.datetime:
        """The moment `minutes` working minutes after `start`."""
        remaining = dt.timedelta(minutes=minutes)
        now = start.astimezone(dt.timezone.utc)
        day = start.astimezone(self.tz).date()
        for _ in range(MAX_DAYS_AHEAD):
            for s, e in self._intervals(day):
                if e <= now:
                    continue
                begin = max(s, now)
                if remaining <= e - begin:
                    return begin + remaining
                remaining -= e - begin
            day += dt.timedelta(days=1)
        raise CalendarError("The calendar has no working time in the next two years.")


ALWAYS_OPEN = Calendar(time_zone="UTC", schedule={day: [["00:00", "24:00"]] for day in WEEKDAYS})


def add_minutes(start: dt.datetime, minutes: float, calendar: Calendar | None) -> dt.datetime:
    """Wall-clock minutes when there is no calendar."""
    if calendar is None:
        return start + dt.timedelta(minutes=minutes)
    return calendar.add_minutes(start, minutes)
