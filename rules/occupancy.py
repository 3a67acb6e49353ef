"""Who is inside: building headcount, each person's last known side, night attribution to units.

A person is a key: ``occupant:<id>``, ``visitor:<pass id>`` or ``stranger:<cluster id>``; a body
the camera saw without a usable face is anonymous and only counted. Passages are idempotent per
key (a card grant and the camera seeing the same occupant walk in count once), and the headcount
never goes below zero.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from rules.model import Direction
from rules.timewindows import NightWindow


class Side(enum.StrEnum):
    """Where a person was last seen relative to the building."""

    INSIDE = "inside"
    OUTSIDE = "outside"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class Presence:
    """One person's last known side and the unit they count against.

    Attributes:
        side: inside or outside.
        at: when they last passed.
        event_id: the event of that passage (the evidence for overcrowding).
        unit_id: the unit the person counts against, if any.
        unit_until: end of a temporary attribution (a companion "for the night"); None means
            the attribution is permanent (an occupant's own unit).
    """

    side: Side
    at: datetime
    event_id: str | None = None
    unit_id: str | None = None
    unit_until: datetime | None = None

    def unit_at(self, now: datetime) -> str | None:
        """The unit this person counts against at `now`."""
        if self.unit_until is not None and now >= self.unit_until:
            return None
        return self.unit_id


@dataclass(frozen=True, slots=True)
class Entry:
    """A recent entry, kept for `companion_window` to pair strangers with occupants.

    Attributes:
        door: the door passed.
        at: when.
        key: the person key.
        unit_id: the unit of the person (None for a stranger).
    """

    door: str
    at: datetime
    key: str
    unit_id: str | None


@dataclass(frozen=True, slots=True)
class Passage:
    """One person passing a door, from a reader grant or from the camera's direction.

    Attributes:
        door: the door.
        direction: in or out.
        at: local time.
        key: the person key, or None for an anonymous body.
        unit_id: the unit the person belongs to (occupant's unit, visitor's host unit).
        event_id: the event that saw it.
    """

    door: str
    direction: Direction
    at: datetime
    key: str | None = None
    unit_id: str | None = None
    event_id: str | None = None


@dataclass(frozen=True, slots=True)
class OccupancyState:
    """The building's occupancy.

    Attributes:
        persons: last known presence by person key (strangers are forgotten once outside).
        known_inside: how many keyed persons are inside (kept in step with `persons`).
        anonymous_inside: bodies inside that the camera could not identify.
        recent: entries of the last companion window, for pairing strangers with occupants.
        aliases: stranger keys known to be a visitor's face (the camera cannot match a visitor,
            who has no enrolled template), so the visitor is not counted twice.
    """

    persons: Mapping[str, Presence] = field(default_factory=dict)
    known_inside: int = 0
    anonymous_inside: int = 0
    recent: tuple[Entry, ...] = ()
    aliases: Mapping[str, str] = field(default_factory=dict)

    @property
    def headcount(self) -> int:
        """Persons inside the building, known and unknown."""
        return self.known_inside + self.anonymous_inside

    def side(self, key: str) -> Side:
        """The last known side of a person."""
        presence = self.persons.get(key)
        return presence.side if presence is not None else Side.UNKNOWN

    def inside_by_unit(self, now: datetime) -> dict[str, list[tuple[str, Presence]]]:
        """Persons inside grouped by the unit they count against at `now`."""
        units: dict[str, list[tuple[str, Presence]]] = {}
        for key, presence in self._inside():
            unit = presence.unit_at(now)
            if unit is not None:
                units.setdefault(unit, []).append((key, presence))
        return units

    def inside_counts(self, now: datetime) -> dict[str, int]:
        """How many persons inside count against each unit at `now` (`inside_by_unit`, sized)."""
        counts: dict[str, int] = {}
        inside = Side.INSIDE
        for presence in self.persons.values():
            if presence.side is inside:
                unit = presence.unit_id
                if unit is not None and (presence.unit_until is None or now < presence.unit_until):
                    counts[unit] = counts.get(unit, 0) + 1
        return counts

    def _inside(self) -> Iterator[tuple[str, Presence]]:
        return ((k, p) for k, p in self.persons.items() if p.side is Side.INSIDE)


def is_stranger(key: str) -> bool:
    """Whether a person key names an anonymous face cluster."""
    return key.startswith("stranger:")


def resolve(
    state: OccupancyState, passage: Passage, window: timedelta = timedelta(seconds=10)
) -> tuple[OccupancyState, Passage]:
    """Map a stranger's face to the visitor who just entered with a pass at the same door.

    A visitor's card grant and their unmatched face are one person: the first stranger entering
    within `window` of a visitor's grant becomes that visitor's alias until the visitor leaves.
    """
    key = passage.key
    if key is None or not is_stranger(key):
        return state, passage
    alias = state.aliases.get(key)
    if alias is None and passage.direction is Direction.IN:
        alias = _unclaimed_visitor(state, passage, window)
        if alias is not None:
            state = replace(state, aliases={**state.aliases, key: alias})
    return state, (replace(passage, key=alias) if alias is not None else passage)


def _unclaimed_visitor(state: OccupancyState, passage: Passage, window: timedelta) -> str | None:
    claimed = set(state.aliases.values())
    for entry in reversed(state.recent):
        fresh = timedelta(0) <= passage.at - entry.at <= window and entry.door == passage.door
        if fresh and entry.key.startswith("visitor:") and entry.key not in claimed:
            return entry.key
    return None


def pass_door(
    state: OccupancyState,
    passage: Passage,
    companion_window: timedelta = timedelta(seconds=10),
    night: NightWindow = NightWindow(),  # noqa: B008 - immutable default
) -> OccupancyState:
    """Apply one passage; pair a stranger entering with an occupant for the night."""
    if passage.key is None:
        return _anonymous(state, passage.direction)
    if passage.direction is Direction.OUT:
        return _exit(state, passage, passage.key)
    return _enter(state, passage, passage.key, companion_window, night)


def _anonymous(state: OccupancyState, direction: Direction) -> OccupancyState:
    delta = 1 if direction is Direction.IN else -1
    return replace(state, anonymous_inside=max(0, state.anonymous_inside + delta))


def _exit(state: OccupancyState, passage: Passage, key: str) -> OccupancyState:
    current = state.persons.get(key)
    if current is not None and current.side is Side.OUTSIDE:
        return state  # a repeated sighting of someone already out
    persons = dict(state.persons)
    if is_stranger(key):
        persons.pop(key, None)  # nothing to remember about a stranger who left
    else:
        persons[key] = Presence(Side.OUTSIDE, passage.at, passage.event_id, passage.unit_id)
    if key.startswith("visitor:"):
        # The visitor left: their face is a stranger again (next visit binds afresh).
        aliases = {face: who for face, who in state.aliases.items() if who != key}
        state = replace(state, aliases=aliases)
    if current is not None:
        return replace(state, persons=persons, known_inside=state.known_inside - 1)
    # Side unknown: they most likely came in unseen (tailgating, or inside since start-up), so
    # they were part of the anonymous count if anyone was.
    return replace(state, persons=persons, anonymous_inside=max(0, state.anonymous_inside - 1))


def _enter(
    state: OccupancyState, passage: Passage, key: str, window: timedelta, night: NightWindow
) -> OccupancyState:
    recent = tuple(e for e in state.recent if passage.at - e.at <= window)
    if all(e.key != key for e in recent):
        recent = (*recent, Entry(passage.door, passage.at, key, passage.unit_id))
    persons = dict(state.persons)
    if not is_stranger(key):
        persons.update(_adopt_strangers(state, passage, window, night))
    current = state.persons.get(key)
    if current is not None and current.side is Side.INSIDE:
        # Already counted: the reader and the camera saw the same entry, or an exit was missed.
        return replace(state, persons=persons, recent=recent)
    unit, until = passage.unit_id, None
    if is_stranger(key):
        unit = _companion_unit(recent, passage.door)
        until = night.end_after(passage.at) if unit is not None else None
    persons[key] = Presence(Side.INSIDE, passage.at, passage.event_id, unit, until)
    return replace(state, persons=persons, known_inside=state.known_inside + 1, recent=recent)


def _companion_unit(recent: tuple[Entry, ...], door: str) -> str | None:
    # The latest non-stranger who came through the same door within the window.
    for entry in reversed(recent):
        if entry.door == door and entry.unit_id is not None and not is_stranger(entry.key):
            return entry.unit_id
    return None


def _adopt_strangers(
    state: OccupancyState, passage: Passage, window: timedelta, night: NightWindow
) -> dict[str, Presence]:
    """Strangers who entered just before this occupant at the same door join their unit."""
    if passage.unit_id is None:
        return {}
    adopted: dict[str, Presence] = {}
    for entry in state.recent:
        if not is_stranger(entry.key) or entry.door != passage.door:
            continue
        presence = state.persons.get(entry.key)
        if presence is None or passage.at - entry.at > window:
            continue
        if presence.side is Side.INSIDE and presence.unit_at(passage.at) is None:
            until = night.end_after(entry.at)
            adopted[entry.key] = replace(presence, unit_id=passage.unit_id, unit_until=until)
    return adopted


def recount(state: OccupancyState) -> int:
    """Count keyed persons inside from scratch (a check on `known_inside`)."""
    return sum(1 for p in state.persons.values() if p.side is Side.INSIDE)
