"""Weekly windows, the night window and working-day deadlines."""

from __future__ import annotations

from datetime import date, datetime, time

import pytest

from rules.timewindows import NightWindow, add_working_days, parse_window


@pytest.mark.parametrize(
    ("text", "days", "start", "end"),
    [
        ("mon-fri 07:00-22:00", {0, 1, 2, 3, 4}, time(7), time(22)),
        ("sat,sun 22:00-02:00", {5, 6}, time(22), time(2)),
        ("Mon-Wed, fri 6:30-9:15", {0, 1, 2, 4}, time(6, 30), time(9, 15)),
        ("sun 00:00-00:00", {6}, time(0), time(0)),
    ],
)
def test_parse_window(text: str, days: set[int], start: time, end: time) -> None:
    window = parse_window(text)
    assert (window.days, window.start, window.end) == (days, start, end)
    assert parse_window(str(window)) == window


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("weekdays 07:00-22:00", "not like"),
        ("fri-mon 07:00-22:00", "runs backwards"),
        ("mon-fri 25:00-22:00", "hour must be"),
        ("mon-fri 7-22", "not like"),
    ],
)
def test_parse_window_errors(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_window(text)


def test_whole_day_window() -> None:
    window = parse_window("sun 00:00-00:00")
    assert window.contains(datetime(2026, 3, 8, 0, 0))
    assert window.contains(datetime(2026, 3, 8, 23, 59))
    assert not window.contains(datetime(2026, 3, 9, 0, 0))


@pytest.mark.parametrize(
    ("at", "inside"),
    [
        (time(22, 59), False),
        (time(23), True),
        (time(2), True),
        (time(4, 59), True),
        (time(5), False),
    ],
)
def test_night_window(at: time, inside: bool) -> None:
    assert NightWindow().contains(datetime.combine(date(2026, 3, 2), at)) is inside


def test_night_end_after() -> None:
    night = NightWindow()
    assert night.end_after(datetime(2026, 3, 2, 23, 30)) == datetime(2026, 3, 3, 5)
    assert night.end_after(datetime(2026, 3, 3, 1, 0)) == datetime(2026, 3, 3, 5)
    assert night.end_after(datetime(2026, 3, 3, 5, 0)) == datetime(2026, 3, 4, 5)


@pytest.mark.parametrize(
    ("start", "holidays", "due"),
    [
        (datetime(2026, 3, 2, 10), frozenset(), datetime(2026, 3, 4, 10)),  # Mon -> Wed
        (datetime(2026, 3, 5, 10), frozenset(), datetime(2026, 3, 9, 10)),  # Thu -> Mon
        (datetime(2026, 3, 6, 10), frozenset(), datetime(2026, 3, 10, 10)),  # Fri -> Tue
        (datetime(2026, 3, 7, 10), frozenset(), datetime(2026, 3, 11, 0)),  # Sat -> Mon 00:00 + 2
        (datetime(2026, 3, 6, 10), frozenset({date(2026, 3, 9)}), datetime(2026, 3, 11, 10)),
        (datetime(2026, 3, 9, 10), frozenset({date(2026, 3, 9)}), datetime(2026, 3, 12, 0)),
    ],
)
def test_add_working_days(start: datetime, holidays: frozenset[date], due: datetime) -> None:
    assert add_working_days(start, 2, holidays) == due
