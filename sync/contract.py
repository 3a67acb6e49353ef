"""The MQTT contract v1: topics, event ids and payload builders.

Root: ``doorgate/v1/<site>/<gateway>/``. Every payload is JSON with ``schema``, ``id``, ``ts``
(RFC 3339 UTC), ``site`` and ``gateway``; persons appear only as occupant ids and masked
identifiers. JSON Schema files for each payload live beside this module in ``schemas/``.
"""

from __future__ import annotations

import json
import os
import re
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources
from typing import Any

from rules.identity import mask_name
from rules.model import Occupant

PREFIX = "doorgate/v1"
SCHEMA_ACCESS = "doorgate.event.access/1"
SCHEMA_STATUS = "doorgate.status/1"
SCHEMA_ENROLMENT = "doorgate.enrolment.request/1"
SCHEMA_DOOR = "doorgate.event.door/1"
SCHEMA_ALERT = "doorgate.alert/1"
SCHEMA_UNITS = "doorgate.units/1"
SCHEMA_OCCUPANT_STATUS = "doorgate.occupant.status/1"
_SEGMENT = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def check_segment(value: str, what: str) -> str:
    """Validate a site or gateway name as a single safe topic segment."""
    if not _SEGMENT.match(value):
        raise ValueError(f"{what} must be 1-64 letters, digits, '-' or '_' (got {value!r})")
    return value


@dataclass(frozen=True, slots=True)
class AccessRecord:
    """One decided access attempt, as the access log keeps it."""

    id: str
    ts: datetime
    door: str
    direction: str
    kind: str
    occupant_id: str | None
    unit_id: str | None
    credential_masked: str | None
    decision: str
    reasons: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Topics:
    """Topic names of one gateway.

    Args:
        site: the site (district or estate) code.
        gateway: the gateway's name within the site.
        prefix: topic root, ``doorgate/v1`` unless a deployment needs a tenant prefix.
    """

    site: str
    gateway: str
    prefix: str = PREFIX

    @property
    def root(self) -> str:
        """``<prefix>/<site>/<gateway>``."""
        return f"{self.prefix}/{self.site}/{self.gateway}"

    def topic(self, suffix: str) -> str:
        """The full topic for a suffix such as ``event/access``."""
        return f"{self.root}/{suffix}"

    @property
    def status(self) -> str:
        """The retained status topic."""
        return self.topic("status")

    @property
    def units(self) -> str:
        """The retained floor-plan topic: every unit's counts and colour."""
        return self.topic("units")


def new_event_id(now: float | None = None) -> str:
    """A UUIDv7: time-ordered, so ids sort like the events they name."""
    ms = int((time.time() if now is None else now) * 1000)
    rand = int.from_bytes(os.urandom(10), "big")
    value = (ms & ((1 << 48) - 1)) << 80 | 0x7 << 76 | (rand >> 66 & 0xFFF) << 64
    value |= 0b10 << 62 | (rand & ((1 << 62) - 1))
    return str(uuid.UUID(int=value))


def rfc3339(moment: datetime) -> str:
    """UTC timestamp with milliseconds and a ``Z`` suffix."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def envelope(schema: str, event_id: str, ts: datetime, topics: Topics) -> dict[str, Any]:
    """The fields every payload starts with."""
    return {
        "schema": schema,
        "id": event_id,
        "ts": rfc3339(ts),
        "site": topics.site,
        "gateway": topics.gateway,
    }


def dumps(payload: dict[str, Any]) -> str:
    """Compact JSON, UTF-8 text kept readable (names are Chinese)."""
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":"), sort_keys=True)


def load_schema(name: str) -> dict[str, Any]:
    """Load a JSON Schema shipped in ``sync/schemas/`` by file stem (e.g. ``event_access``)."""
    text = resources.files("sync").joinpath("schemas", f"{name}.schema.json").read_text("utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


def access_payload(record: AccessRecord, topics: Topics) -> dict[str, Any]:
    """The ``event/access`` payload of a decided access attempt (masked identifiers only)."""
    payload = envelope(SCHEMA_ACCESS, record.id, record.ts, topics)
    payload.update(
        door=record.door,
        direction=record.direction,
        credential={"kind": record.kind, "masked": record.credential_masked or ""},
        occupant=record.occupant_id,
        unit=record.unit_id,
        decision=record.decision,
        reasons=list(record.reasons),
    )
    return payload


def enrolment_payload(
    occupant: Occupant, name: str, version: int, topics: Topics
) -> dict[str, Any]:
    """The ``enrolment/request`` payload: masked name and ID number, unit and tenancy."""
    payload = envelope(SCHEMA_ENROLMENT, new_event_id(), datetime.now(UTC), topics)
    payload.update(
        occupant=occupant.id,
        unit=occupant.unit_id,
        name_masked=mask_name(name),
        id_masked=occupant.id_masked,
        valid_from=occupant.valid_from.isoformat(),
        valid_to=occupant.valid_to.isoformat() if occupant.valid_to else None,
        version=version,
    )
    return payload


def door_payload(
    door: str, action: str, topics: Topics, *, command_id: str | None = None
) -> dict[str, Any]:
    """An ``event/door`` payload."""
    payload = envelope(SCHEMA_DOOR, new_event_id(), datetime.now(UTC), topics)
    payload.update(door=door, action=action)
    if command_id is not None:
        payload["command_id"] = command_id
    return payload


def alert_payload(
    kind: str,
    key: str,
    state: str,
    topics: Topics,
    *,
    unit: str | None = None,
    counts: dict[str, float] | None = None,
    evidence: tuple[str, ...] = (),
    message: str = "",
) -> dict[str, Any]:
    """An ``alert/<kind>`` payload (raised or cleared)."""
    payload = envelope(SCHEMA_ALERT, new_event_id(), datetime.now(UTC), topics)
    payload.update(
        kind=kind,
        key=key,
        state=state,
        unit=unit,
        counts=counts or {},
        evidence=list(evidence),
        message=message,
    )
    return payload


def units_payload(units: list[dict[str, Any]], topics: Topics) -> dict[str, Any]:
    """The retained ``units`` payload: per unit its place, capacity, counts, colour and reasons.

    Only unit-level numbers: no names, no occupant ids, nothing about a person.
    """
    payload = envelope(SCHEMA_UNITS, new_event_id(), datetime.now(UTC), topics)
    payload["units"] = units
    return payload


def occupant_status_payload(
    occupant: Occupant,
    status: str,
    topics: Topics,
    *,
    reason: str | None = None,
    by: str | None = None,
) -> dict[str, Any]:
    """The ``occupant/status`` payload: a status change made at the gateway.

    ``approved`` (approved locally), ``suspended``, ``moved_out`` (走注销: departures reach the
    station), ``withdrawn`` (a pending enrolment dropped before the station decided, with
    `reason` ``rejected_by_landlord`` or ``moved_out``). Occupant id and unit only.
    """
    payload = envelope(SCHEMA_OCCUPANT_STATUS, new_event_id(), datetime.now(UTC), topics)
    payload.update(occupant=occupant.id, unit=occupant.unit_id, status=status)
    if reason is not None:
        payload["reason"] = reason
    if by is not None:
        payload["by"] = by
    return payload
