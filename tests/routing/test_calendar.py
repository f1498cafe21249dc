"""Business hours: working minutes skip nights, weekends and holidays, in the team's time zone."""
import datetime as dt

import pytest

from apps.routing.calendar import Calendar, CalendarError, add_minutes, schedule_parse

UTC = dt.timezone.utc
WEEK = {"mon": [["09:00", "17:00"]], "tue": [["09:00", "17:00"]], "wed": [["09:00", "17:00"]],
        "thu": [["09:00", "17:00"]], "fri": [["09:00", "12:00"], ["13:00", "17:00"]], "sat": [], "sun": []}


def test_inside_and_outside_in_local_time():
    berlin = Calendar(time_zone="Europe/Berlin", schedule=WEEK)
    # Monday 2026-11-23 08:30 UTC = 09:30 in Berlin (CET, UTC+1)
    assert berlin.is_open(dt.datetime(2026, 11, 23, 8, 30, tzinfo=UTC))
    assert not berlin.is_open(dt.datetime(2026, 11, 23, 7, 30, tzinfo=UTC))
    assert not berlin.is_open(dt.datetime(2026, 11, 28, 10, 0, tzinfo=UTC))  # Saturday
    assert not berlin.is_open(dt.datetime(2026, 11, 27, 11, 30, tzinfo=UTC))  # Friday 12:30 lunch


def test_minutes_after_close_roll_to_next_working_morning():
    ny = Calendar(time_zone="America/New_York", schedule=WEEK)
    # Thursday 16:30 New York (21:30 UTC) + 60 working minutes = Friday 09:30 New York
    due = ny.add_minutes(dt.datetime(2026, 11, 19, 21, 30, tzinfo=UTC), 60)
    assert due == dt.datetime(2026, 11, 20, 14, 30, tzinfo=UTC)


def test_weekend_and_holiday_are_skipped():
    cal = Calendar(time_zone="UTC", schedule=WEEK, holidays=frozenset({dt.date(2026, 11, 30)}))
    # Friday 16:00 + 120 min: 60 on Friday, Monday is a holiday, 60 on Tuesday
    due = cal.add_minutes(dt.datetime(2026, 11, 27, 16, 0, tzinfo=UTC), 120)
    assert due == dt.datetime(2026, 12, 1, 10, 0, tzinfo=UTC)


def test_daylight_saving_keeps_local_hours():
    cal = Calendar(time_zone="Europe/London", schedule=WEEK)
    # Friday 2026-03-27 16:30 GMT; clocks go forward on Sunday 29th; Monday opens 09:00 BST = 08:00 UTC
    due = cal.add_minutes(dt.datetime(2026, 3, 27, 16, 30, tzinfo=UTC), 60)
    assert due == dt.datetime(2026, 3, 30, 8, 30, tzinfo=UTC)


def test_no_calendar_means_wall_clock():
    start = dt.datetime(2026, 11, 28, 23, 0, tzinfo=UTC)
    assert add_minutes(start, 90, None) == start + dt.timedelta(minutes=90)


@pytest.mark.parametrize("schedule, message", [
    ({"monday": []}, "Unknown weekday"),
    ({"mon": [["17:00", "09:00"]]}, "ends before it starts"),
    ({"mon": [["9am", "5pm"]]}, "not a time"),
    ({"mon": [["09:00", "12:00"], ["11:00", "13:00"]]}, "overlap"),
])
def test_bad_schedules_are_refused_with_a_reason(schedule, message):
    with pytest.raises(CalendarError, match=message):
        schedule_parse(schedule)


def test_empty_calendar_does_not_loop_forever():
    with pytest.raises(CalendarError):
        Calendar(time_zone="UTC", schedule={}).add_minutes(dt.datetime(2026, 1, 1, tzinfo=UTC), 5)
