"""Who may pass a door: the pure access policy.

`decide` is stateless: identity, life-cycle status, tenancy, door schedule and door mode. `evaluate`
adds what needs memory — two-factor doors, anti-passback and visitor-pass uses — as an immutable
`AccessState` that goes in and comes out, so the gateway can persist it and replays are exact.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta

from rules.model import (
    GRANT_REASONS,
    AccessRequest,
    CredentialKind,
    CredentialStatus,
    Decision,
    Direction,
    Occupant,
    OccupantStatus,
    Reason,
    Verdict,
    VisitorPass,
)
from rules.timewindows import Schedule

_STATUS_REASONS = {
    OccupantStatus.PENDING: Reason.PENDING,
    OccupantStatus.SUSPENDED: Reason.SUSPENDED,
    OccupantStatus.MOVED_OUT: Reason.MOVED_OUT,
}


class DoorMode(enum.StrEnum):
    """Which credentials a door requires."""

    CARD = "card"
    FACE = "face"
    CARD_OR_FACE = "card_or_face"
    CARD_AND_FACE = "card_and_face"
    # 人证合一: the resident ID card first, then a live face matched 1:1 to the same person.
    IDCARD_AND_FACE = "idcard_and_face"

    @property
    def two_factor(self) -> bool:
        """True when a card and a face must both be presented."""
        return self in (DoorMode.CARD_AND_FACE, DoorMode.IDCARD_AND_FACE)


_CARDS = frozenset({CredentialKind.IDCARD, CredentialKind.IC})
_ACCEPTS: Mapping[DoorMode, frozenset[CredentialKind]] = {
    DoorMode.CARD: _CARDS,
    DoorMode.FACE: frozenset({CredentialKind.FACE}),
    DoorMode.CARD_OR_FACE: frozenset(CredentialKind),
    DoorMode.CARD_AND_FACE: frozenset(CredentialKind),
    DoorMode.IDCARD_AND_FACE: frozenset({CredentialKind.IDCARD, CredentialKind.FACE}),
}


@dataclass(frozen=True, slots=True)
class DoorPolicy:
    """How one door admits people.

    Attributes:
        mode: the credentials the door requires.
        schedule: weekly opening hours (local time); empty means always.
        anti_passback: name of the anti-passback area this door's readers guard, or None.
    """

    mode: DoorMode = DoorMode.CARD_OR_FACE
    schedule: Schedule = field(default_factory=Schedule)
    anti_passback: str | None = None

    def accepts(self, kind: CredentialKind) -> bool:
        """Whether the door's mode takes `kind` at all (alone or as one of two factors)."""
        return kind in _ACCEPTS[self.mode]


def tenancy_reasons(occupant: Occupant, today: date) -> list[Reason]:
    """Reasons the tenancy window excludes `today` (empty when inside it)."""
    if today < occupant.valid_from:
        return [Reason.TENANCY_NOT_STARTED]
    if occupant.valid_to is not None and today > occupant.valid_to:
        return [Reason.TENANCY_EXPIRED]
    return []


def pass_reasons(visitor_pass: VisitorPass, at: datetime, uses: int) -> list[Reason]:
    """Reasons a visitor pass does not open the door at `at` after `uses` entries."""
    reasons: list[Reason] = []
    if visitor_pass.revoked:
        reasons.append(Reason.VISITOR_PASS_REVOKED)
    if at < visitor_pass.valid_from:
        reasons.append(Reason.VISITOR_PASS_NOT_STARTED)
    if at > visitor_pass.valid_to:
        reasons.append(Reason.VISITOR_PASS_EXPIRED)
    if visitor_pass.max_uses is not None and uses >= visitor_pass.max_uses:
        reasons.append(Reason.VISITOR_PASS_USED_UP)
    return reasons


def door_reasons(door: DoorPolicy, request: AccessRequest) -> list[Reason]:
    """Reasons the door itself refuses the request: wrong credential kind or outside hours."""
    reasons: list[Reason] = []
    if not door.accepts(request.kind):
        reasons.append(Reason.FACTOR_NOT_ACCEPTED)
    if not door.schedule.contains(request.at):
        reasons.append(Reason.OUTSIDE_SCHEDULE)
    return reasons


def identity_reasons(request: AccessRequest, pass_uses: int = 0) -> list[Reason]:
    """Reasons the person (occupant or visitor) may not pass, whatever the door."""
    credential, occupant = request.credential, request.occupant
    if credential is not None and occupant is not None:
        reasons: list[Reason] = []
        if credential.status is not CredentialStatus.ACTIVE:
            reasons.append(Reason.CREDENTIAL_REVOKED)
        if occupant.status in _STATUS_REASONS:
            reasons.append(_STATUS_REASONS[occupant.status])
        return reasons + tenancy_reasons(occupant, request.at.date())
    if request.visitor_pass is not None:
        uses = pass_uses if request.direction is Direction.IN else 0
        return pass_reasons(request.visitor_pass, request.at, uses)
    return [Reason.UNKNOWN_CREDENTIAL]


def make_decision(request: AccessRequest, reasons: Iterable[Reason]) -> Decision:
    """Turn reasons into a decision: any refusing reason means deny (deny always wins).

    Attribution (occupant, unit, visitor pass) is filled from the request so that occupancy can
    follow a person and credit a visitor to the host unit.
    """
    given = tuple(dict.fromkeys(reasons))  # keep order, drop repeats
    refusals = tuple(r for r in given if r not in GRANT_REASONS)
    visitor = request.visitor_pass if request.occupant is None else None
    if refusals:
        verdict, final = Verdict.DENY, refusals
    else:
        verdict = Verdict.ALLOW
        final = given or ((Reason.VISITOR_PASS,) if visitor else (Reason.GRANTED,))
    return Decision(
        verdict,
        final,
        event_id=request.event_id,
        door=request.door,
        at=request.at,
        occupant_id=request.occupant.id if request.occupant else None,
        unit_id=request.occupant.unit_id if request.occupant else _host(visitor),
        visitor_pass_id=visitor.id if visitor else None,
    )


def _host(visitor: VisitorPass | None) -> str | None:
    return visitor.host_unit_id if visitor is not None else None


#: Reasons that refuse an entry but never an exit of a known person (free egress): who they are
#: is known, only their right to be *inside* has ended (or the door is outside opening hours).
EGRESS_WAIVED = frozenset(
    {
        Reason.CREDENTIAL_REVOKED,
        Reason.PENDING,
        Reason.SUSPENDED,
        Reason.MOVED_OUT,
        Reason.TENANCY_EXPIRED,
        Reason.TENANCY_NOT_STARTED,
        Reason.OUTSIDE_SCHEDULE,
        Reason.VISITOR_PASS_NOT_STARTED,
        Reason.VISITOR_PASS_EXPIRED,
        Reason.VISITOR_PASS_USED_UP,
        Reason.VISITOR_PASS_REVOKED,
    }
)


def decide(
    request: AccessRequest, door: DoorPolicy | None = None, *, pass_uses: int = 0
) -> Decision:
    """Decide one presentation without memory of earlier ones.

    Allows only an approved occupant inside the tenancy with an active credential (or a valid
    visitor pass), inside the door's schedule and with a credential kind the door takes. Every
    failing condition is reported, so a landlord sees both "moved out" and "expired" when both
    hold; any reason at all means deny. Two-factor and anti-passback need `evaluate`.

    Exits are the exception (free egress, fire safety): a *known* person — an occupant whose
    credential was found, or a visitor whose pass was found — going out is let out even when
    their status, tenancy, credential or pass would refuse an entry, and outside the door's
    schedule. The decision is an allow with reasons ``("granted_exit", <the waived reasons>)``,
    e.g. ``("granted_exit", "tenancy_expired")``, so the log still says why, and the passage is
    recorded so the person stops counting as inside. A credential kind the door does not take
    (`factor_not_accepted`) still refuses, and two-factor exits still need both factors.

    An *unknown* credential on an exit is still denied (`unknown_credential`): the rules cannot
    tell who it is, so a grant could not take anybody off the headcount (an unidentified person
    is never counted by key), and the reader must not open for any card at all; free egress for
    them is the exit button (``exit_request``) and the door's mechanical release.

    Args:
        request: the resolved presentation.
        door: the door's policy; None skips schedule and mode checks.
        pass_uses: entries already made with the request's visitor pass.
    """
    reasons = door_reasons(door, request) if door is not None else []
    reasons += identity_reasons(request, pass_uses)
    if request.direction is Direction.OUT and identity_key(request) is not None:
        return _egress(request, reasons)
    return make_decision(request, reasons)


def _egress(request: AccessRequest, reasons: list[Reason]) -> Decision:
    """A known person's exit: reasons in `EGRESS_WAIVED` explain the grant instead of refusing."""
    waived = [r for r in reasons if r in EGRESS_WAIVED]
    if not waived or any(r not in EGRESS_WAIVED for r in reasons):
        return make_decision(request, reasons)
    granted = make_decision(request, [])
    return replace(granted, reasons=(Reason.GRANTED_EXIT, *dict.fromkeys(waived)))


def identity_key(request: AccessRequest) -> str | None:
    """The person behind a request, for matching factors and anti-passback."""
    if request.occupant is not None and request.credential is not None:
        return f"occupant:{request.occupant.id}"
    if request.visitor_pass is not None:
        return f"visitor:{request.visitor_pass.id}"
    return None


@dataclass(frozen=True, slots=True)
class PendingFactor:
    """A first factor accepted at a two-factor door, waiting for the second.

    Attributes:
        identity: the person the first factor identified.
        kind: the first factor's credential kind.
        at: when it was presented.
        request: the first factor's request, replayed into the timeout decision.
    """

    identity: str
    kind: CredentialKind
    at: datetime
    request: AccessRequest


@dataclass(frozen=True, slots=True)
class AccessState:
    """What access decisions remember between presentations.

    Attributes:
        pending: per door, a first factor awaiting its second.
        inside: per anti-passback area, the identities that entered and have not exited.
        pass_uses: per visitor pass id, entries made.
    """

    pending: Mapping[str, PendingFactor] = field(default_factory=dict)
    inside: Mapping[str, frozenset[str]] = field(default_factory=dict)
    pass_uses: Mapping[str, int] = field(default_factory=dict)


def expire_pending(
    state: AccessState, now: datetime, window: timedelta
) -> tuple[AccessState, list[Decision]]:
    """Deny (reason `factor_timeout`) every first factor older than `window` at `now`."""
    expired = {door: p for door, p in state.pending.items() if now - p.at > window}
    if not expired:
        return state, []
    kept = {door: p for door, p in state.pending.items() if door not in expired}
    decisions = [_timeout(p, now) for p in expired.values()]
    return replace(state, pending=kept), decisions


def _timeout(pending: PendingFactor, now: datetime) -> Decision:
    decision = make_decision(pending.request, [Reason.FACTOR_TIMEOUT])
    return replace(decision, at=now)


def evaluate(
    state: AccessState,
    request: AccessRequest,
    door: DoorPolicy,
    factor_window: timedelta = timedelta(seconds=5),
) -> tuple[AccessState, list[Decision]]:
    """Decide a presentation with memory: two factors, anti-passback, visitor-pass uses.

    Returns the new state and the decisions made, in order: first any timeouts of stale first
    factors, then the decision on `request` (last in the list). A first factor that superseded an
    earlier one at the same door denies the earlier one with `factor_superseded`.
    """
    state, decisions = expire_pending(state, request.at, factor_window)
    if door.mode.two_factor and door.accepts(request.kind):
        state, decided = _two_factor(state, request, door)
    else:
        state, decided = _single(state, request, door)
    return state, decisions + decided


def _single(
    state: AccessState, request: AccessRequest, door: DoorPolicy
) -> tuple[AccessState, list[Decision]]:
    decision = decide(request, door, pass_uses=_uses(state, request))
    return _finish(state, request, door, decision)


def _uses(state: AccessState, request: AccessRequest) -> int:
    visitor = request.visitor_pass
    return state.pass_uses.get(visitor.id, 0) if visitor is not None else 0


def _is_first_factor(door: DoorPolicy, kind: CredentialKind) -> bool:
    if door.mode is DoorMode.IDCARD_AND_FACE:
        return kind is CredentialKind.IDCARD
    return True


def _same_factor(a: CredentialKind, b: CredentialKind) -> bool:
    # An IC card and an ID card are both "card": two cards never make two factors.
    return (a is CredentialKind.FACE) == (b is CredentialKind.FACE)


def _two_factor(
    state: AccessState, request: AccessRequest, door: DoorPolicy
) -> tuple[AccessState, list[Decision]]:
    pending = state.pending.get(request.door)
    if pending is not None and not _same_factor(pending.kind, request.kind):
        return _second_factor(state, request, door, pending)
    superseded = [make_decision(pending.request, [Reason.FACTOR_SUPERSEDED])] if pending else []
    state = replace(state, pending=_without(state.pending, request.door))
    if not _is_first_factor(door, request.kind):
        decision = make_decision(request, [Reason.FIRST_FACTOR_MISSING])
        return state, [*superseded, decision]
    state, decided = _first_factor(state, request, door)
    return state, superseded + decided


def _first_factor(
    state: AccessState, request: AccessRequest, door: DoorPolicy
) -> tuple[AccessState, list[Decision]]:
    decision = decide(request, door, pass_uses=_uses(state, request))
    decision = _with_anti_passback(state, request, door, decision)
    identity = identity_key(request)
    if not decision.allowed or identity is None:
        return state, [decision]
    waiting = PendingFactor(identity, request.kind, request.at, request)
    pending = {**state.pending, request.door: waiting}
    awaiting = replace(decision, verdict=Verdict.AWAITING, reasons=(Reason.AWAITING_SECOND_FACTOR,))
    return replace(state, pending=pending), [awaiting]


def _second_factor(
    state: AccessState, request: AccessRequest, door: DoorPolicy, pending: PendingFactor
) -> tuple[AccessState, list[Decision]]:
    state = replace(state, pending=_without(state.pending, request.door))
    decision = decide(request, door, pass_uses=_uses(state, request))
    if identity_key(request) != pending.identity:
        # Not the person who presented the first factor: refuse both halves.
        reasons = [*decision.reasons, Reason.FACTOR_MISMATCH]
        return state, [make_decision(request, [r for r in reasons if r not in GRANT_REASONS])]
    return _finish(state, request, door, decision)


def _finish(
    state: AccessState, request: AccessRequest, door: DoorPolicy, decision: Decision
) -> tuple[AccessState, list[Decision]]:
    decision = _with_anti_passback(state, request, door, decision)
    if decision.allowed:
        state = _record_passage(state, request, door)
    return state, [decision]


def _with_anti_passback(
    state: AccessState, request: AccessRequest, door: DoorPolicy, decision: Decision
) -> Decision:
    area, identity = door.anti_passback, identity_key(request)
    if area is None or identity is None or request.direction is not Direction.IN:
        # Exits are never refused for anti-passback: nobody may be trapped inside.
        return decision
    if identity not in state.inside.get(area, frozenset()):
        return decision
    return make_decision(request, [*decision.reasons, Reason.ANTI_PASSBACK])


def _record_passage(state: AccessState, request: AccessRequest, door: DoorPolicy) -> AccessState:
    identity = identity_key(request)
    if identity is None:
        return state
    if door.anti_passback is not None:
        members = state.inside.get(door.anti_passback, frozenset())
        members = (
            members | {identity} if request.direction is Direction.IN else members - {identity}
        )
        state = replace(state, inside={**state.inside, door.anti_passback: members})
    visitor = request.visitor_pass
    if visitor is not None and request.occupant is None and request.direction is Direction.IN:
        uses = {**state.pass_uses, visitor.id: state.pass_uses.get(visitor.id, 0) + 1}
        state = replace(state, pass_uses=uses)
    return state


def _without(mapping: Mapping[str, PendingFactor], key: str) -> dict[str, PendingFactor]:
    return {k: v for k, v in mapping.items() if k != key}
