"""Each unit's colour for the station's floor plan: green, yellow or red, with the reasons.

- **red**: overcrowding (tonight's count or the approved roster over capacity), a suspected
  unregistered resident (a recurring stranger counted for the unit), or a forced door of the
  building the unit is in;
- **yellow**: enrolments waiting for approval, tenancies about to end, minor alerts (a tenant
  not seen for days, an enrolment overdue at the station, a door held open, tailgating);
- **green**: every occupant registered and nothing open;
- **grey**: nobody approved and nothing open (a vacant unit).

Pure: the caller passes the unit, its occupants, the rules state and the time.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime

from rules.alerts import AlertKind, Episodes
from rules.model import Occupant, OccupantStatus, Unit
from rules.occupancy import OccupancyState, Presence, is_stranger


class Colour(enum.StrEnum):
    """A unit's status colour, worst last."""

    GREY = "grey"
    GREEN = "green"
    YELLOW = "yellow"
    RED = "red"


_RANK = {Colour.GREY: 0, Colour.GREEN: 1, Colour.YELLOW: 2, Colour.RED: 3}
#: Reason codes (before any ``:detail``) that make a unit red; every other reason is yellow.
RED_REASONS = frozenset({"overcrowding", "over_capacity", "unregistered_resident", "door_forced"})
#: Occupant-keyed alerts that make the occupant's unit yellow.
_OCCUPANT_MINOR = (AlertKind.VACANCY, AlertKind.TENANCY_EXPIRING, AlertKind.APPROVAL_OVERDUE)
#: Door-keyed alerts: forced turns every unit behind the door red, the others yellow.
_DOOR_MINOR = (AlertKind.DOOR_HELD, AlertKind.TAILGATING)


@dataclass(frozen=True, slots=True)
class UnitStatus:
    """What the floor plan shows for one unit.

    Attributes:
        unit: the unit's id (house code).
        colour: the worst condition found.
        reasons: codes of every condition, e.g. ``overcrowding``, ``pending:2``,
            ``door_forced:main``; empty for green and grey.
        registered: approved occupants inside their tenancy.
        pending: enrolments waiting for approval.
        capacity: the unit's limit.
        inside: persons counted for the unit and inside now.
    """

    unit: str
    colour: Colour
    reasons: tuple[str, ...]
    registered: int
    pending: int
    capacity: int
    inside: int


@dataclass(frozen=True, slots=True)
class Roster:
    """Per-unit counts that depend only on the occupants and the day, so callers can cache them.

    Attributes:
        registered: approved occupants inside their tenancy, by unit.
        pending: enrolments waiting for approval, by unit.
        unit_of: each occupant's unit.
    """

    registered: Mapping[str, int]
    pending: Mapping[str, int]
    unit_of: Mapping[str, str]


def build_roster(occupants: Iterable[Occupant], today: date) -> Roster:
    """Count registered and pending occupants per unit (one pass)."""
    registered: dict[str, int] = {}
    pending: dict[str, int] = {}
    unit_of: dict[str, str] = {}
    for occupant in occupants:
        unit_of[occupant.id] = occupant.unit_id
        if _registered(occupant, today):
            registered[occupant.unit_id] = registered.get(occupant.unit_id, 0) + 1
        elif occupant.status is OccupantStatus.PENDING:
            pending[occupant.unit_id] = pending.get(occupant.unit_id, 0) + 1
    return Roster(registered, pending, unit_of)


def unit_status(
    unit: Unit,
    occupants: Iterable[Occupant],
    occupancy: OccupancyState,
    episodes: Episodes,
    now: datetime,
    *,
    doors: Iterable[str] = (),
) -> UnitStatus:
    """The colour of `unit` and why.

    Args:
        unit: the unit.
        occupants: the unit's occupants (any status; others are ignored).
        occupancy: who is inside, and for which unit they count.
        episodes: the alerts currently raised.
        now: local time.
        doors: the doors that lead to the unit (all doors of its building's gateway).
    """
    mine = [o for o in occupants if o.unit_id == unit.id]
    return site_status({unit.id: unit}, mine, occupancy, episodes, now, doors=doors)[0]


def site_status(
    units: Mapping[str, Unit],
    occupants: Iterable[Occupant],
    occupancy: OccupancyState,
    episodes: Episodes,
    now: datetime,
    *,
    doors: Iterable[str] = (),
    roster: Roster | None = None,
) -> list[UnitStatus]:
    """`unit_status` for every unit, sorted by unit id.

    Linear in units + occupants (or units alone with a cached `roster`) + alerts + persons
    inside: the gateway recomputes it for the station's floor plan.
    """
    counts = roster or build_roster(occupants, now.date())
    inside = occupancy.inside_by_unit(now)
    minor = _occupant_alerts(episodes, counts.unit_of)
    recurring = set(episodes.keys(AlertKind.STRANGER_RECURRING))
    door_list = tuple(doors)
    forced = [f"door_forced:{d}" for d in door_list if episodes.is_raised(AlertKind.DOOR_FORCED, d)]
    door_minor = [
        f"{kind.value}:{d}"
        for kind in _DOOR_MINOR
        for d in door_list
        if episodes.is_raised(kind, d)
    ]
    result = []
    for unit_id in sorted(units):
        here = inside.get(unit_id, [])
        red = _red_reasons(unit_id, here, episodes, recurring) + forced
        pending = counts.pending.get(unit_id, 0)
        yellow = ([f"pending:{pending}"] if pending else []) + minor.get(unit_id, []) + door_minor
        registered = counts.registered.get(unit_id, 0)
        if red:
            colour = Colour.RED
        elif yellow:
            colour = Colour.YELLOW
        else:
            colour = Colour.GREEN if registered else Colour.GREY
        result.append(UnitStatus(
            unit_id, colour, (*red, *yellow), registered, pending, units[unit_id].capacity,
            len(here),
        ))
    return result


def worst(colours: Iterable[Colour]) -> Colour:
    """The worst of several colours (grey when there are none)."""
    return max(colours, key=_RANK.__getitem__, default=Colour.GREY)


def _registered(occupant: Occupant, today: date) -> bool:
    if occupant.status is not OccupantStatus.APPROVED or today < occupant.valid_from:
        return False
    return occupant.valid_to is None or today <= occupant.valid_to


def _red_reasons(
    unit_id: str, inside: list[tuple[str, Presence]], episodes: Episodes, recurring: set[str]
) -> list[str]:
    reasons = []
    if episodes.is_raised(AlertKind.OVERCROWDING, unit_id):
        reasons.append("overcrowding")
    if episodes.is_raised(AlertKind.OVERCROWDING, f"{unit_id}:approved"):
        reasons.append("over_capacity")
    suspects = [k for k, _ in inside if is_stranger(k) and k.split(":", 1)[1] in recurring]
    if suspects:
        reasons.append(f"unregistered_resident:{len(suspects)}")
    return reasons


def _occupant_alerts(episodes: Episodes, unit_of: Mapping[str, str]) -> dict[str, list[str]]:
    # Occupant-keyed minor alerts, counted per unit in a fixed order of kinds.
    reasons: dict[str, list[str]] = {}
    for kind in _OCCUPANT_MINOR:
        per_unit: dict[str, int] = {}
        for occupant_id in episodes.keys(kind):
            unit_id = unit_of.get(occupant_id)
            if unit_id is not None:
                per_unit[unit_id] = per_unit.get(unit_id, 0) + 1
        for unit_id, count in per_unit.items():
            reasons.setdefault(unit_id, []).append(f"{kind.value}:{count}")
    return reasons
