"""Domain records: units, occupants, credentials and the access decision.

Plain frozen dataclasses so that the policies in `rules` stay pure: the store builds them, the
policies read them, nothing here does I/O.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import date, datetime


class OccupantStatus(enum.StrEnum):
    """Where an occupant is in the enrolment life cycle."""

    PENDING = "pending"
    APPROVED = "approved"
    SUSPENDED = "suspended"
    MOVED_OUT = "moved_out"


class CredentialKind(enum.StrEnum):
    """What a person presents at the door."""

    IDCARD = "idcard"
    IC = "ic"
    FACE = "face"


class CredentialStatus(enum.StrEnum):
    """Whether a credential may still open the door."""

    ACTIVE = "active"
    REVOKED = "revoked"


class Verdict(enum.StrEnum):
    """The outcome of an access decision."""

    ALLOW = "allow"
    DENY = "deny"
    # A two-factor door accepted the first factor and waits for the second; the door stays shut.
    AWAITING = "awaiting_second_factor"


class Reason(enum.StrEnum):
    """Why access was granted or refused; stable codes carried in events."""

    GRANTED = "granted"
    # Free egress: a known person let out although an entry would be refused; the decision
    # lists the waived reasons after it, e.g. ("granted_exit", "tenancy_expired").
    GRANTED_EXIT = "granted_exit"
    UNKNOWN_CREDENTIAL = "unknown_credential"
    CREDENTIAL_REVOKED = "credential_revoked"
    PENDING = "pending_approval"
    SUSPENDED = "suspended"
    MOVED_OUT = "moved_out"
    TENANCY_NOT_STARTED = "tenancy_not_started"
    TENANCY_EXPIRED = "tenancy_expired"
    OUTSIDE_SCHEDULE = "outside_schedule"
    FACTOR_NOT_ACCEPTED = "factor_not_accepted"
    FIRST_FACTOR_MISSING = "first_factor_missing"
    AWAITING_SECOND_FACTOR = "awaiting_second_factor"
    FACTOR_MISMATCH = "factor_mismatch"
    FACTOR_TIMEOUT = "factor_timeout"
    FACTOR_SUPERSEDED = "factor_superseded"
    ANTI_PASSBACK = "anti_passback"
    VISITOR_PASS = "visitor_pass"  # noqa: S105 - a reason code, not a secret
    VISITOR_PASS_NOT_STARTED = "visitor_pass_not_started"  # noqa: S105 - a reason code, not a secret
    VISITOR_PASS_EXPIRED = "visitor_pass_expired"  # noqa: S105 - a reason code, not a secret
    VISITOR_PASS_USED_UP = "visitor_pass_used_up"  # noqa: S105 - a reason code, not a secret
    VISITOR_PASS_REVOKED = "visitor_pass_revoked"  # noqa: S105 - a reason code, not a secret


#: Reasons that permit passage; every other reason refuses it, so deny always wins, except on an
#: exit where `rules.access.EGRESS_WAIVED` reasons only explain a `granted_exit`.
GRANT_REASONS = frozenset({Reason.GRANTED, Reason.GRANTED_EXIT, Reason.VISITOR_PASS})


class Direction(enum.StrEnum):
    """Which way a person passes the door."""

    IN = "in"
    OUT = "out"


@dataclass(frozen=True, slots=True)
class Unit:
    """One rentable unit (one house code).

    Attributes:
        id: the unit's house code, unique in the site.
        building: building name or number.
        floor: floor number (negative for basements).
        room: the room label on the door.
        capacity: most persons allowed to live there.
        area_m2: floor area, if known.
        landlord: who lets it.
    """

    id: str
    building: str
    floor: int
    room: str
    capacity: int
    area_m2: float | None = None
    landlord: str | None = None


@dataclass(frozen=True, slots=True)
class Occupant:
    """A person enrolled in a unit.

    Attributes:
        id: the occupant's id at this gateway.
        unit_id: the unit they live in.
        name: display name.
        id_masked: masked ID number for display, e.g. ``110105********1234``.
        status: life-cycle status.
        valid_from: first day of the tenancy.
        valid_to: last day of the tenancy (inclusive); None for open-ended.
        submitted_at: when the enrolment was sent to the station (for approval deadlines).
        welfare_days: a shorter (or longer) vacancy threshold for this person, e.g. an elderly
            tenant living alone; None uses the configured default.
    """

    id: str
    unit_id: str
    name: str
    id_masked: str
    status: OccupantStatus
    valid_from: date
    valid_to: date | None = None
    submitted_at: datetime | None = None
    welfare_days: int | None = None


@dataclass(frozen=True, slots=True)
class VisitorPass:
    """A landlord's time-limited pass for a visitor, bound to the visitor's ID card.

    Attributes:
        id: the pass id.
        host_unit_id: the unit the visitor is attributed to.
        id_hash: keyed hash of the visitor's ID number (never the number itself).
        valid_from: first local time the pass opens the door.
        valid_to: last local time the pass opens the door.
        max_uses: entries allowed; None for unlimited within the window.
        revoked: withdrawn by the landlord.
    """

    id: str
    host_unit_id: str
    id_hash: str
    valid_from: datetime
    valid_to: datetime
    max_uses: int | None = None
    revoked: bool = False


@dataclass(frozen=True, slots=True)
class Credential:
    """A card or face template bound to an occupant (identified only by a keyed hash)."""

    id: int
    occupant_id: str
    kind: CredentialKind
    status: CredentialStatus


@dataclass(frozen=True, slots=True)
class AccessRequest:
    """A credential presented at a door, already resolved against the store.

    Attributes:
        door: the door's configured name.
        direction: which way the person wants to pass.
        kind: kind of credential presented.
        at: local wall-clock time of the presentation (tenancy dates are local dates).
        credential: the matching credential, or None when the card is unknown.
        occupant: the credential's occupant, or None.
        event_id: the id of the access event, echoed in the decision and used as evidence.
        presented: keyed hash of what was presented (card UID), so repeated denials of an
            unknown card can be recognised without storing the UID.
        id_hash: keyed hash of the ID number read from a resident ID card, to find visitor passes.
        visitor_pass: the visitor pass bound to `id_hash`, when the gateway found one.
    """

    door: str
    direction: Direction
    kind: CredentialKind
    at: datetime
    credential: Credential | None = None
    occupant: Occupant | None = None
    event_id: str | None = None
    presented: str | None = None
    id_hash: str | None = None
    visitor_pass: VisitorPass | None = None


@dataclass(frozen=True, slots=True)
class Decision:
    """The verdict on an access request, with every reason that led to it.

    Attributes:
        verdict: allow, deny, or awaiting a second factor.
        reasons: every reason, stable codes.
        event_id: the access event decided (for a factor timeout: the first factor's event).
        door: the door the decision is about.
        at: local time of the decision.
        occupant_id: the person identified, if any.
        unit_id: the unit the person is attributed to (a visitor's host unit).
        visitor_pass_id: the visitor pass used, if any.
    """

    verdict: Verdict
    reasons: tuple[Reason, ...] = field(default_factory=tuple)
    event_id: str | None = None
    door: str | None = None
    at: datetime | None = None
    occupant_id: str | None = None
    unit_id: str | None = None
    visitor_pass_id: str | None = None

    @property
    def allowed(self) -> bool:
        """True when the door may open."""
        return self.verdict is Verdict.ALLOW

    @property
    def person_key(self) -> str | None:
        """Who passed, as an occupancy key: ``occupant:<id>``, ``visitor:<pass>`` or None."""
        if self.occupant_id is not None:
            return f"occupant:{self.occupant_id}"
        if self.visitor_pass_id is not None:
            return f"visitor:{self.visitor_pass_id}"
        return None
