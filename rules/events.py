"""What the gateway feeds the rules engine: one immutable record per thing that happened.

An access event is the `AccessRequest` itself (resolved against the store, carrying its event
id). Times are local wall-clock datetimes, like the request's `at`.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime

from rules.model import AccessRequest, Direction


class DoorAction(enum.StrEnum):
    """What a door contact, exit button or remote command reported."""

    OPENED = "opened"
    CLOSED = "closed"
    EXIT_REQUEST = "exit_request"
    # An unlock not decided by the rules, e.g. a station's remote unlock command.
    GRANT = "grant"


class DeviceKind(enum.StrEnum):
    """Devices whose health the rules watch."""

    READER = "reader"
    CAMERA = "camera"


@dataclass(frozen=True, slots=True)
class FaceSighting:
    """A face the camera saw at a door.

    Attributes:
        id: event id.
        at: local time.
        door: the door the camera watches.
        direction: which way the person crossed, or None if they did not cross.
        occupant_id: the enrolled person matched, if any.
        cluster_id: the anonymous stranger cluster matched, for an unknown face.
    """

    id: str
    at: datetime
    door: str
    direction: Direction | None = None
    occupant_id: str | None = None
    cluster_id: str | None = None


@dataclass(frozen=True, slots=True)
class DoorEvent:
    """A door contact change, exit button press or external grant.

    Attributes:
        id: event id.
        at: local time.
        door: the door.
        action: what happened.
    """

    id: str
    at: datetime
    door: str
    action: DoorAction


@dataclass(frozen=True, slots=True)
class DeviceHealth:
    """A reader's or camera's health report (a heartbeat when `ok`).

    Attributes:
        id: event id.
        at: local time.
        device: the device's configured name.
        kind: reader or camera.
        ok: whether the device works.
    """

    id: str
    at: datetime
    device: str
    kind: DeviceKind
    ok: bool = True


@dataclass(frozen=True, slots=True)
class Tick:
    """The passing of time: runs the time-based checks (vacancy, deadlines, offline devices).

    Attributes:
        at: local time.
    """

    at: datetime


Event = AccessRequest | FaceSighting | DoorEvent | DeviceHealth | Tick
