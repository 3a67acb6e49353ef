"""Local-time windows: door schedules, the night window and working-day deadlines.

All functions take the time as an argument (local wall-clock time); nothing here reads a clock.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_WINDOW = re.compile(
    r"^\s*(?P<days>[a-z]{3}(?:\s*-\s*[a-z]{3})?(?:\s*,\s*[a-z]{3}(?:\s*-\s*[a-z]{3})?)*)\s+"
    r"(?P<start>\d{1,2}:\d{2})\s*-\s*(?P<end>\d{1,2}:\d{2})\s*$"
)


@dataclass(frozen=True, slots=True)
class TimeWindow:
    """A weekly window: on each of `days`, from `start` to `end` local time.

    When `end` is not after `start` the window crosses midnight: it opens on the listed day and
    closes on the next day, so ``fri 22:00-06:00`` covers Friday night into Saturday morning.
    ``00:00-00:00`` means the whole day.

    Attributes:
        days: weekdays the window opens on, Monday = 0.
        start: opening time.
        end: closing time (exclusive).
    """

    days: frozenset[int]
    start: time
    end: time

    @property
    def crosses_midnight(self) -> bool:
        """True when the window closes on the day after it opens."""
        return self.end <= self.start

    def contains(self, at: datetime) -> bool:
        """Whether the local time `at` falls inside the window."""
        clock, weekday = at.time(), at.weekday()
        if not self.crosses_midnight:
            return weekday in self.days and self.start <= clock < self.end
        if weekday in self.days and clock >= self.start:
            return True
        # The early-morning tail belongs to the window opened the previous evening.
        return (weekday - 1) % 7 in self.days and clock < self.end

    def __str__(self) -> str:
        """The window in the text form `parse_window` reads."""
        days = ",".join(DAY_NAMES[d] for d in sorted(self.days))
        return f"{days} {self.start:%H:%M}-{self.end:%H:%M}"


def parse_window(text: str) -> TimeWindow:
    """Parse ``"mon-fri 07:00-22:00"``, ``"sat,sun 22:00-02:00"`` or ``"mon-sun 00:00-00:00"``.

    Raises:
        ValueError: the text is not a day list followed by a start-end time range.
    """
    match = _WINDOW.match(text.lower())
    if match is None:
        raise ValueError(f"schedule window {text!r} is not like 'mon-fri 07:00-22:00'")
    days: set[int] = set()
    for part in match["days"].split(","):
        first, _, last = (p.strip() for p in part.partition("-"))
        days.update(_day_range(first, last or first, text))
    return TimeWindow(frozenset(days), parse_clock(match["start"]), parse_clock(match["end"]))


def _day_range(first: str, last: str, text: str) -> range:
    for name in (first, last):
        if name not in DAY_NAMES:
            raise ValueError(f"schedule window {text!r}: unknown day {name!r}")
    lo, hi = DAY_NAMES.index(first), DAY_NAMES.index(last)
    if hi < lo:
        raise ValueError(f"schedule window {text!r}: day range {first}-{last} runs backwards")
    return range(lo, hi + 1)


def parse_clock(text: str) -> time:
    """Parse ``"HH:MM"`` (24 h) into a time.

    Raises:
        ValueError: not a valid 24-hour time.
    """
    hours, sep, minutes = text.strip().partition(":")
    if not sep or not hours.isdigit() or not minutes.isdigit() or len(minutes) != 2:
        raise ValueError(f"time {text!r} is not HH:MM")
    return time(int(hours), int(minutes))


@dataclass(frozen=True, slots=True)
class Schedule:
    """A door's opening hours: the union of weekly windows; no windows means always open.

    Attributes:
        windows: the weekly windows.
    """

    windows: tuple[TimeWindow, ...] = ()

    def contains(self, at: datetime) -> bool:
        """Whether the door's schedule admits the local time `at`."""
        return not self.windows or any(w.contains(at) for w in self.windows)

    @classmethod
    def parse(cls, texts: Iterable[str]) -> Schedule:
        """Build a schedule from window texts (see `parse_window`)."""
        return cls(tuple(parse_window(t) for t in texts))


@dataclass(frozen=True, slots=True)
class NightWindow:
    """The daily window in which overcrowding counts (default 23:00-05:00).

    Attributes:
        start: local time the night starts.
        end: local time the night ends; before `start` when it crosses midnight.
    """

    start: time = time(23, 0)
    end: time = time(5, 0)

    def contains(self, at: datetime) -> bool:
        """Whether `at` is in the night window."""
        clock = at.time()
        if self.end <= self.start:
            return clock >= self.start or clock < self.end
        return self.start <= clock < self.end

    def end_after(self, at: datetime) -> datetime:
        """The first end of the night window strictly after `at`.

        A companion attributed "for the night" stays attributed until this instant.
        """
        candidate = datetime.combine(at.date(), self.end, tzinfo=at.tzinfo)
        return candidate if candidate > at else candidate + timedelta(days=1)


def is_working_day(day: date, holidays: frozenset[date] = frozenset()) -> bool:
    """Monday to Friday and not in `holidays`."""
    return day.weekday() < 5 and day not in holidays


def add_working_days(
    start: datetime, days: int, holidays: frozenset[date] = frozenset()
) -> datetime:
    """The instant `days` working days after `start`, keeping the time of day.

    A start on a weekend or holiday is moved to midnight of the next working day first, so work
    submitted on Saturday is due `days` full working days after Monday 00:00.
    """
    current = start
    if not is_working_day(current.date(), holidays):
        current = datetime.combine(current.date(), time(0), tzinfo=current.tzinfo)
        while not is_working_day(current.date(), holidays):
            current += timedelta(days=1)
    for _ in range(days):
        current += timedelta(days=1)
        while not is_working_day(current.date(), holidays):
            current += timedelta(days=1)
    return current
