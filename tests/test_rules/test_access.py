"""Access decisions: parametrised tables, door modes, two factors, anti-passback, visitor passes."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rules.access import AccessState, DoorMode, DoorPolicy, decide, evaluate, expire_pending
from rules.model import (
    GRANT_REASONS,
    AccessRequest,
    Credential,
    CredentialKind,
    CredentialStatus,
    Direction,
    Occupant,
    OccupantStatus,
    Reason,
    Verdict,
    VisitorPass,
)
from rules.timewindows import Schedule

NOON = datetime(2026, 3, 2, 12, 0)  # a Monday
IC, FACE, IDCARD = CredentialKind.IC, CredentialKind.FACE, CredentialKind.IDCARD


def occupant(
    status: OccupantStatus = OccupantStatus.APPROVED,
    valid_from: date = date(2026, 1, 1),
    valid_to: date | None = None,
    occupant_id: str = "o1",
) -> Occupant:
    return Occupant(
        occupant_id, "101", occupant_id, "110105********1234", status, valid_from, valid_to
    )


def request(
    who: Occupant | None = None,
    kind: CredentialKind = IC,
    at: datetime = NOON,
    status: CredentialStatus = CredentialStatus.ACTIVE,
    direction: Direction = Direction.IN,
    door: str = "main",
    event_id: str = "e",
) -> AccessRequest:
    credential = Credential(1, who.id, kind, status) if who is not None else None
    return AccessRequest(door, direction, kind, at, credential, who, event_id=event_id)


# The gateway's call, unchanged: decide(AccessRequest(...)) with no door policy.
@pytest.mark.parametrize(
    ("who", "status", "verdict", "reasons"),
    [
        (occupant(), CredentialStatus.ACTIVE, Verdict.ALLOW, (Reason.GRANTED,)),
        (None, CredentialStatus.ACTIVE, Verdict.DENY, (Reason.UNKNOWN_CREDENTIAL,)),
        (occupant(), CredentialStatus.REVOKED, Verdict.DENY, (Reason.CREDENTIAL_REVOKED,)),
        (
            occupant(OccupantStatus.PENDING),
            CredentialStatus.ACTIVE,
            Verdict.DENY,
            (Reason.PENDING,),
        ),
        (
            occupant(OccupantStatus.SUSPENDED),
            CredentialStatus.ACTIVE,
            Verdict.DENY,
            (Reason.SUSPENDED,),
        ),
        (
            occupant(OccupantStatus.MOVED_OUT, valid_to=date(2026, 2, 1)),
            CredentialStatus.ACTIVE,
            Verdict.DENY,
            (Reason.MOVED_OUT, Reason.TENANCY_EXPIRED),
        ),
        (
            occupant(valid_to=date(2026, 3, 1)),
            CredentialStatus.ACTIVE,
            Verdict.DENY,
            (Reason.TENANCY_EXPIRED,),
        ),
        (
            occupant(valid_to=date(2026, 3, 2)),
            CredentialStatus.ACTIVE,
            Verdict.ALLOW,
            (Reason.GRANTED,),
        ),
        (
            occupant(valid_from=date(2026, 3, 3)),
            CredentialStatus.ACTIVE,
            Verdict.DENY,
            (Reason.TENANCY_NOT_STARTED,),
        ),
        (
            occupant(OccupantStatus.SUSPENDED),
            CredentialStatus.REVOKED,
            Verdict.DENY,
            (Reason.CREDENTIAL_REVOKED, Reason.SUSPENDED),
        ),
    ],
)
def test_decision_table(
    who: Occupant | None, status: CredentialStatus, verdict: Verdict, reasons: tuple[Reason, ...]
) -> None:
    decision = decide(request(who, status=status))
    assert (decision.verdict, decision.reasons) == (verdict, reasons)
    assert decision.allowed is (verdict is Verdict.ALLOW)


@pytest.mark.parametrize(
    ("mode", "kind", "accepted"),
    [
        (DoorMode.CARD, IC, True),
        (DoorMode.CARD, IDCARD, True),
        (DoorMode.CARD, FACE, False),
        (DoorMode.FACE, FACE, True),
        (DoorMode.FACE, IC, False),
        (DoorMode.CARD_OR_FACE, IC, True),
        (DoorMode.CARD_OR_FACE, FACE, True),
        (DoorMode.IDCARD_AND_FACE, IC, False),
    ],
)
def test_door_modes_accept_kinds(mode: DoorMode, kind: CredentialKind, accepted: bool) -> None:
    decision = decide(request(occupant(), kind=kind), DoorPolicy(mode))
    assert decision.allowed is accepted
    assert (Reason.FACTOR_NOT_ACCEPTED in decision.reasons) is not accepted


@pytest.mark.parametrize(
    ("at", "open_"),
    [
        (datetime(2026, 3, 6, 23, 59), True),  # Friday evening
        (datetime(2026, 3, 7, 0, 59), True),  # Saturday: tail of Friday's window
        (datetime(2026, 3, 7, 1, 0), False),  # the end is exclusive
        (datetime(2026, 3, 7, 12, 0), False),  # Saturday daytime is not scheduled
        (datetime(2026, 3, 2, 0, 30), False),  # Monday early: Sunday has no window
        (datetime(2026, 3, 2, 22, 0), True),
    ],
)
def test_schedule_crossing_midnight(at: datetime, open_: bool) -> None:
    door = DoorPolicy(schedule=Schedule.parse(["mon-fri 22:00-01:00"]))
    decision = decide(request(occupant(), at=at), door)
    assert decision.allowed is open_
    assert (Reason.OUTSIDE_SCHEDULE in decision.reasons) is not open_


def visitor_request(
    at: datetime, uses_limit: int | None = 2, direction: Direction = Direction.IN
) -> AccessRequest:
    visitor = VisitorPass("p1", "101", "h", NOON, NOON + timedelta(hours=4), uses_limit)
    return AccessRequest("main", direction, IDCARD, at, id_hash="h", visitor_pass=visitor)


@pytest.mark.parametrize(
    ("at", "uses", "reasons"),
    [
        (NOON, 0, (Reason.VISITOR_PASS,)),
        (NOON - timedelta(seconds=1), 0, (Reason.VISITOR_PASS_NOT_STARTED,)),
        (NOON + timedelta(hours=5), 0, (Reason.VISITOR_PASS_EXPIRED,)),
        (NOON, 2, (Reason.VISITOR_PASS_USED_UP,)),
    ],
)
def test_visitor_pass_table(at: datetime, uses: int, reasons: tuple[Reason, ...]) -> None:
    decision = decide(visitor_request(at), pass_uses=uses)
    assert decision.reasons == reasons
    assert decision.unit_id == "101"
    assert decision.visitor_pass_id == "p1"


def test_visitor_pass_uses_counted_on_entries_only() -> None:
    door, state = DoorPolicy(), AccessState()
    verdicts = []
    for direction in (Direction.IN, Direction.OUT, Direction.IN, Direction.OUT, Direction.IN):
        state, decisions = evaluate(state, visitor_request(NOON, direction=direction), door)
        verdicts.append(decisions[-1].verdict)
    assert verdicts == [Verdict.ALLOW] * 4 + [Verdict.DENY]
    assert state.pass_uses == {"p1": 2}


TWO = DoorPolicy(DoorMode.CARD_AND_FACE)


def test_card_and_face_in_either_order() -> None:
    for first, second in ((IC, FACE), (FACE, IC)):
        state, one = evaluate(AccessState(), request(occupant(), kind=first), TWO)
        state, two = evaluate(
            state, request(occupant(), kind=second, at=NOON + timedelta(seconds=3)), TWO
        )
        assert [d.verdict for d in one + two] == [Verdict.AWAITING, Verdict.ALLOW]
        assert not state.pending


def test_second_factor_after_window_times_out_first() -> None:
    state, _ = evaluate(AccessState(), request(occupant(), kind=IC, event_id="card"), TWO)
    late = request(occupant(), kind=FACE, at=NOON + timedelta(seconds=6), event_id="face")
    state, decisions = evaluate(state, late, TWO)
    assert [(d.event_id, d.verdict, d.reasons) for d in decisions] == [
        ("card", Verdict.DENY, (Reason.FACTOR_TIMEOUT,)),
        ("face", Verdict.AWAITING, (Reason.AWAITING_SECOND_FACTOR,)),
    ]


def test_same_factor_twice_supersedes() -> None:
    state, _ = evaluate(AccessState(), request(occupant(), event_id="a"), TWO)
    state, decisions = evaluate(state, request(occupant("o2"), event_id="b"), TWO)
    assert [(d.event_id, d.verdict) for d in decisions] == [
        ("a", Verdict.DENY),
        ("b", Verdict.AWAITING),
    ]
    assert decisions[0].reasons == (Reason.FACTOR_SUPERSEDED,)


def test_first_factor_already_refused_does_not_wait() -> None:
    state, decisions = evaluate(AccessState(), request(occupant(OccupantStatus.PENDING)), TWO)
    assert decisions[-1].reasons == (Reason.PENDING,)
    assert not state.pending


def test_expire_pending_is_noop_without_stale_factors() -> None:
    state = AccessState()
    assert expire_pending(state, NOON, timedelta(seconds=5)) == (state, [])


def test_anti_passback_never_blocks_exit() -> None:
    door, state = DoorPolicy(anti_passback="lobby"), AccessState()
    outs = [request(occupant(), direction=Direction.OUT) for _ in range(2)]
    for out in outs:
        state, decisions = evaluate(state, out, door)
        assert decisions[-1].allowed


# --- deny wins over allow -------------------------------------------------------------------------

statuses = st.sampled_from(list(OccupantStatus))
days = st.dates(min_value=date(2025, 1, 1), max_value=date(2027, 1, 1))


@given(
    status=statuses,
    valid_from=days,
    valid_to=st.none() | days,
    credential=st.sampled_from(list(CredentialStatus)),
    kind=st.sampled_from(list(CredentialKind)),
    mode=st.sampled_from([DoorMode.CARD, DoorMode.FACE, DoorMode.CARD_OR_FACE]),
    scheduled=st.booleans(),
    known=st.booleans(),
)
def test_any_refusal_means_deny(
    status: OccupantStatus,
    valid_from: date,
    valid_to: date | None,
    credential: CredentialStatus,
    kind: CredentialKind,
    mode: DoorMode,
    scheduled: bool,
    known: bool,
) -> None:
    who = occupant(status, valid_from, valid_to) if known else None
    schedule = Schedule() if scheduled else Schedule.parse(["sat 00:00-01:00"])
    decision = decide(request(who, kind=kind, status=credential), DoorPolicy(mode, schedule))
    should_allow = (
        known
        and status is OccupantStatus.APPROVED
        and valid_from <= NOON.date()
        and (valid_to is None or NOON.date() <= valid_to)
        and credential is CredentialStatus.ACTIVE
        and scheduled
        and DoorPolicy(mode).accepts(kind)
    )
    assert decision.allowed is should_allow
    refusals = [r for r in decision.reasons if r not in GRANT_REASONS]
    assert bool(refusals) is (decision.verdict is Verdict.DENY)
    assert decision.reasons  # a decision always says why
