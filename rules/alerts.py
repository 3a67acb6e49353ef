"""Alerts: what they carry, and episodes that raise each alert once and clear it once.

Every alert is a condition on a key (a unit, a door, a credential, a stranger cluster…). The
`Episodes` set remembers which conditions are currently raised, and `Episodes.update` is the only
way to emit an alert, so raise and clear strictly alternate per (kind, key) by construction.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from rules.model import Unit


class AlertKind(enum.StrEnum):
    """Every alert the rules raise; the value is the MQTT `alert/<kind>` topic suffix."""

    OVERCROWDING = "overcrowding"
    BUILDING_OVER_CAPACITY = "building_over_capacity"
    STRANGER_RECURRING = "stranger_recurring"
    VACANCY = "vacancy"
    TAILGATING = "tailgating"
    DOOR_FORCED = "door_forced"
    DOOR_HELD = "door_held"
    REPEATED_DENIAL = "repeated_denial"
    TENANCY_EXPIRING = "tenancy_expiring"
    APPROVAL_OVERDUE = "approval_overdue"
    READER_OFFLINE = "reader_offline"
    CAMERA_OFFLINE = "camera_offline"


class AlertState(enum.StrEnum):
    """Whether an alert starts or ends an episode."""

    RAISED = "raised"
    CLEARED = "cleared"


@dataclass(frozen=True, slots=True)
class Alert:
    """One edge of an alert episode.

    Attributes:
        kind: what is wrong.
        key: what it is about: a unit id, door name, credential key, cluster id, occupant id or
            device name.
        state: raised or cleared.
        counts: the numbers behind it, e.g. ``{"inside": 3, "capacity": 2}``.
        evidence: ids of the events that prove it; on a clear, the event that ended it or what
            still holds (e.g. the entries of those still inside).
        at: local time of the edge.
    """

    kind: AlertKind
    key: str
    state: AlertState
    counts: Mapping[str, int] = field(default_factory=dict)
    evidence: tuple[str, ...] = ()
    at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Episodes:
    """The (kind, key) pairs whose alert is currently raised.

    Attributes:
        active: raised pairs.
    """

    active: frozenset[tuple[AlertKind, str]] = frozenset()

    def is_raised(self, kind: AlertKind, key: str) -> bool:
        """Whether the alert (kind, key) is currently raised."""
        return (kind, key) in self.active

    def keys(self, kind: AlertKind) -> list[str]:
        """Keys with a raised alert of `kind`, sorted for determinism."""
        return sorted(k for c, k in self.active if c is kind)

    def update(
        self,
        kind: AlertKind,
        key: str,
        condition: bool,
        *,
        at: datetime,
        counts: Mapping[str, int] | None = None,
        evidence: tuple[str, ...] = (),
    ) -> tuple[Episodes, Alert | None]:
        """Feed the current truth of a condition; get an alert only on a change.

        Returns:
            The new episodes and a raised alert (condition became true), a cleared alert
            (condition became false) or None (no change).
        """
        raised = (kind, key) in self.active
        if condition == raised:
            return self, None
        state = AlertState.RAISED if condition else AlertState.CLEARED
        active = self.active | {(kind, key)} if condition else self.active - {(kind, key)}
        return Episodes(active), Alert(kind, key, state, dict(counts or {}), evidence, at)


class CapacityPolicy(enum.StrEnum):
    """What to do when an enrolment or approval would put a unit over capacity."""

    REFUSE = "refuse"
    FLAG = "flag"


@dataclass(frozen=True, slots=True)
class CapacityCheck:
    """The outcome of `check_enrolment_capacity`.

    Attributes:
        accepted: whether the enrolment may proceed.
        over_capacity: whether the unit would hold more approved occupants than its capacity.
        approved_count: approved occupants after the enrolment.
        capacity: the unit's capacity.
    """

    accepted: bool
    over_capacity: bool
    approved_count: int
    capacity: int


def check_enrolment_capacity(
    unit: Unit, approved_count: int, policy: CapacityPolicy
) -> CapacityCheck:
    """Check an enrolment or approval against the unit's capacity.

    Args:
        unit: the unit enrolled into.
        approved_count: approved occupants the unit would have if this one is accepted.
        policy: `refuse` rejects the enrolment; `flag` accepts it, and the engine's roster check
            then raises `overcrowding` with key ``<unit>:approved`` until the roster shrinks.
    """
    over = approved_count > unit.capacity
    accepted = not (over and policy is CapacityPolicy.REFUSE)
    return CapacityCheck(accepted, over, approved_count, unit.capacity)


def device_offline(last_ok: datetime | None, now: datetime, offline_after: timedelta) -> bool:
    """Whether a reader or camera last reported healthy more than `offline_after` ago.

    A device never heard from is not reported offline: the gateway knows its devices only once
    their driver reports, and configuration errors are the supervisor's business.
    """
    return last_ok is not None and now - last_ok > offline_after
