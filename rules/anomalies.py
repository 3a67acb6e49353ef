"""Pure bookkeeping behind the event-driven alerts: door cycles, denial bursts, stranger days.

Each function returns new values and never mutates; `rules.engine` turns the conditions they
expose into alert episodes.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta


@dataclass(frozen=True, slots=True)
class DoorCycle:
    """One door from its last closing (or idle reset) until the next.

    Attributes:
        open_since: when the door opened, None while it is closed.
        opened_event: the event that reported the opening.
        last_permit: the latest grant or exit request (a door opened soon after is not forced).
        last_activity: the latest grant, exit request or passage (for idle reset).
        grants: event ids of entry grants in this cycle.
        persons: person keys that entered in this cycle (anonymous bodies as ``anon:<event>``).
        passages: event ids of the entries in this cycle.
    """

    open_since: datetime | None = None
    opened_event: str | None = None
    last_permit: datetime | None = None
    last_activity: datetime | None = None
    grants: tuple[str, ...] = ()
    persons: tuple[str, ...] = ()
    passages: tuple[str, ...] = ()

    @property
    def tailgating(self) -> bool:
        """More persons came in than entry grants were given."""
        return len(self.persons) > len(self.grants)

    @property
    def evidence(self) -> tuple[str, ...]:
        """Grant and passage event ids of the cycle, without repeats."""
        return tuple(dict.fromkeys((*self.grants, *self.passages)))


def permit(cycle: DoorCycle, at: datetime, event_id: str | None, entry: bool) -> DoorCycle:
    """Record a grant (an entry grant counts for tailgating) or an exit request."""
    grants = (*cycle.grants, event_id or f"grant@{at.isoformat()}") if entry else cycle.grants
    return replace(cycle, last_permit=at, last_activity=at, grants=grants)


def enter(cycle: DoorCycle, at: datetime, key: str | None, event_id: str | None) -> DoorCycle:
    """Record a person entering through the door (once per person key per cycle)."""
    person = key if key is not None else f"anon:{event_id or at.isoformat()}"
    if person in cycle.persons:
        return replace(cycle, last_activity=at)
    passages = (*cycle.passages, event_id) if event_id is not None else cycle.passages
    return replace(cycle, last_activity=at, persons=(*cycle.persons, person), passages=passages)


def opened(
    cycle: DoorCycle, at: datetime, event_id: str | None, grant_window: timedelta
) -> tuple[DoorCycle, bool]:
    """Record the door opening; also say whether it was forced (no recent grant or request)."""
    recent = (
        cycle.last_permit is not None and timedelta(0) <= at - cycle.last_permit <= grant_window
    )
    return replace(cycle, open_since=at, opened_event=event_id, last_activity=at), not recent


def held_open(cycle: DoorCycle, now: datetime, held_after: timedelta) -> bool:
    """Whether the door has stayed open longer than `held_after`."""
    return cycle.open_since is not None and now - cycle.open_since > held_after


def idle(cycle: DoorCycle, now: datetime, cycle_window: timedelta) -> bool:
    """Whether a closed door's cycle saw nothing for `cycle_window` (doors without contacts)."""
    last = cycle.last_activity
    return cycle.open_since is None and last is not None and now - last > cycle_window


def denials_in_window(
    denials: tuple[tuple[datetime, str], ...], now: datetime, window: timedelta
) -> tuple[tuple[datetime, str], ...]:
    """The (time, event id) denials no older than `window` at `now`."""
    return tuple(d for d in denials if now - d[0] <= window)


def stranger_days_in_window(
    days: tuple[tuple[date, str], ...], today: date, window_days: int
) -> tuple[tuple[date, str], ...]:
    """The (day, first event id) sightings within the last `window_days` days including today."""
    return tuple(d for d in days if 0 <= (today - d[0]).days < window_days)


def add_stranger_day(
    days: tuple[tuple[date, str], ...], day: date, event_id: str
) -> tuple[tuple[date, str], ...]:
    """Add a day to a cluster's sightings, keeping only the first sighting of each day."""
    if any(d == day for d, _ in days):
        return days
    return tuple(sorted((*days, (day, event_id))))
