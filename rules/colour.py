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
    today = now.date()
    registered = sum(_registered(o, today) for o in mine)
    pending = sum(o.status is OccupantStatus.PENDING for o in mine)
    inside = occupancy.inside_by_unit(now).get(unit.id, [])
    red = _red_reasons(unit, inside, episodes, doors)
    yellow = _yellow_reasons(mine, pending, episodes, doors)
    if red:
        colour = Colour.RED
    elif yellow:
        colour = Colour.YELLOW
    else:
        colour = Colour.GREEN if registered else Colour.GREY
    return UnitStatus(
        unit.id, colour, (*red, *yellow), registered, pending, unit.capacity, len(inside)
    )


def site_status(
    units: Mapping[str, Unit],
    occupants: Iterable[Occupant],
    occupancy: OccupancyState,
    episodes: Episodes,
    now: datetime,
    *,
    doors: Iterable[str] = (),
) -> list[UnitStatus]:
    """`unit_status` for every unit, sorted by unit id."""
    by_unit: dict[str, list[Occupant]] = {}
    for occupant in occupants:
        by_unit.setdefault(occupant.unit_id, []).append(occupant)
    door_list = tuple(doors)
    return [
        unit_status(units[u], by_unit.get(u, ()), occupancy, episodes, now, doors=door_list)
        for u in sorted(units)
    ]


def worst(colours: Iterable[Colour]) -> Colour:
    """The worst of several colours (grey when there are none)."""
    return max(colours, key=_RANK.__getitem__, default=Colour.GREY)


def _registered(occupant: Occupant, today: date) -> bool:
    if occupant.status is not OccupantStatus.APPROVED or today < occupant.valid_from:
        return False
    return occupant.valid_to is None or today <= occupant.valid_to


def _red_reasons(
    unit: Unit, inside: list[tuple[str, Presence]], episodes: Episodes, doors: Iterable[str]
) -> list[str]:
    reasons = []
    if episodes.is_raised(AlertKind.OVERCROWDING, unit.id):
        reasons.append("overcrowding")
    if episodes.is_raised(AlertKind.OVERCROWDING, f"{unit.id}:approved"):
        reasons.append("over_capacity")
    recurring = set(episodes.keys(AlertKind.STRANGER_RECURRING))
    suspects = [k for k, _ in inside if is_stranger(k) and k.split(":", 1)[1] in recurring]
    if suspects:
        reasons.append(f"unregistered_resident:{len(suspects)}")
    reasons += [f"door_forced:{d}" for d in doors if episodes.is_raised(AlertKind.DOOR_FORCED, d)]
    return reasons


def _yellow_reasons(
    occupants: list[Occupant], pending: int, episodes: Episodes, doors: Iterable[str]
) -> list[str]:
    reasons = [f"pending:{pending}"] if pending else []
    for kind in _OCCUPANT_MINOR:
        count = sum(episodes.is_raised(kind, o.id) for o in occupants)
        if count:
            reasons.append(f"{kind.value}:{count}")
    for kind in _DOOR_MINOR:
        reasons += [f"{kind.value}:{d}" for d in doors if episodes.is_raised(kind, d)]
    return reasons
