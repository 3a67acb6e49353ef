"""The engine as a whole: alert episodes alternate, replays are deterministic, state persists."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import date, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rules.access import EGRESS_WAIVED, DoorMode, DoorPolicy
from rules.alerts import (
    AlertKind,
    AlertState,
    CapacityPolicy,
    Episodes,
    check_enrolment_capacity,
    device_offline,
)
from rules.engine import RulesConfig, RulesState, Site, step
from rules.events import DeviceHealth, DeviceKind, DoorAction, DoorEvent, Event, FaceSighting, Tick
from rules.model import (
    GRANT_REASONS,
    AccessRequest,
    Credential,
    CredentialKind,
    CredentialStatus,
    Decision,
    Direction,
    Occupant,
    OccupantStatus,
    Reason,
    Unit,
    Verdict,
    VisitorPass,
)
from rules.occupancy import Side
from rules.outcome import Outcome

T0 = datetime(2026, 3, 2, 21, 0)
UNITS = {u: Unit(u, "A", 1, u, 1) for u in ("101", "102")}
OCCUPANTS = {
    f"o{i}": Occupant(
        f"o{i}",
        "101" if i < 3 else "102",
        f"o{i}",
        "x",
        [OccupantStatus.APPROVED, OccupantStatus.APPROVED, OccupantStatus.PENDING][i % 3],
        date(2026, 1, 1),
        date(2026, 3, 6) if i == 1 else None,
        submitted_at=T0 if i % 3 == 2 else None,
        welfare_days=1 if i == 4 else None,
    )
    for i in range(5)
}
PASS = VisitorPass("p1", "102", "vh", T0, T0 + timedelta(days=1), 3)
SITE = Site(UNITS, OCCUPANTS, {"vh": PASS})
CONFIG = RulesConfig(
    doors={
        "main": DoorPolicy(),
        "side": DoorPolicy(DoorMode.CARD_AND_FACE, anti_passback="lobby"),
        "gate": DoorPolicy(DoorMode.IDCARD_AND_FACE, anti_passback="lobby"),
    },
    building_limit=3,
    denial_threshold=2,
    stranger_days=2,
)

doors = st.sampled_from(["main", "side", "gate"])
directions = st.sampled_from(list(Direction))
gaps = st.sampled_from([0, 1, 2, 4, 7, 12, 30, 90, 3600, 6 * 3600, 86400])


@st.composite
def access(draw: st.DrawFn, at: datetime, index: int) -> Event:
    kind = draw(st.sampled_from(list(CredentialKind)))
    who = draw(st.sampled_from([None, "visitor", *OCCUPANTS]))
    common = {
        "door": draw(doors),
        "direction": draw(directions),
        "kind": kind,
        "at": at,
        "event_id": f"e{index}",
    }
    if who is None:
        return AccessRequest(**common, presented=draw(st.sampled_from(["c1", "c2"])))
    if who == "visitor":
        return AccessRequest(**common, id_hash="vh")
    status = draw(st.sampled_from(list(CredentialStatus)))
    return AccessRequest(
        **common, credential=Credential(1, who, kind, status), occupant=OCCUPANTS[who]
    )


@st.composite
def event(draw: st.DrawFn, at: datetime, index: int) -> Event:
    choice = draw(st.integers(0, 5))
    eid = f"e{index}"
    if choice <= 1:
        return draw(access(at, index))
    if choice == 2:
        who = draw(st.sampled_from([None, "s1", "s2", *OCCUPANTS]))
        occupant = who if who in OCCUPANTS else None
        cluster = who if who is not None and who not in OCCUPANTS else None
        return FaceSighting(eid, at, draw(doors), draw(st.none() | directions), occupant, cluster)
    if choice == 3:
        return DoorEvent(eid, at, draw(doors), draw(st.sampled_from(list(DoorAction))))
    if choice == 4:
        kind = draw(st.sampled_from(list(DeviceKind)))
        return DeviceHealth(eid, at, f"{kind}-1", kind, draw(st.booleans()))
    return Tick(at)


@st.composite
def histories(draw: st.DrawFn) -> list[Event]:
    at, events = T0, []
    for index in range(draw(st.integers(0, 40))):
        at += timedelta(seconds=draw(gaps))
        events.append(draw(event(at, index)))
    return events


def run(
    events: Sequence[Event], state: RulesState | None = None
) -> tuple[RulesState, list[Outcome]]:
    state = state or RulesState()
    outcomes = []
    for item in events:
        state, outcome = step(state, item, item.at, CONFIG, SITE)
        outcomes.append(outcome)
    return state, outcomes


FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FAST
@given(histories())
def test_alerts_alternate_per_kind_and_key(events: list[Event]) -> None:
    state, outcomes = run(events)
    last: dict[tuple[AlertKind, str], AlertState] = {}
    for outcome in outcomes:
        for alert in outcome.alerts:
            previous = last.get((alert.kind, alert.key), AlertState.CLEARED)
            assert alert.state is not previous, f"{alert.kind} {alert.key} {alert.state} twice"
            last[(alert.kind, alert.key)] = alert.state
    raised = {pair for pair, s in last.items() if s is AlertState.RAISED}
    assert raised == set(state.episodes.active)


@FAST
@given(histories())
def test_occupancy_and_decisions_stay_sane(events: list[Event]) -> None:
    state = RulesState()
    for item in events:
        state, outcome = step(state, item, item.at, CONFIG, SITE)
        assert state.occupancy.headcount >= 0
        assert state.occupancy.anonymous_inside >= 0
        for decision in outcome.decisions:
            refusals = [r for r in decision.reasons if r not in GRANT_REASONS]
            if decision.reasons[:1] == (Reason.GRANTED_EXIT,):
                # Free egress: the waived reasons explain the exit, they do not refuse it.
                assert set(refusals) <= EGRESS_WAIVED
                refusals = []
            assert decision.allowed is (not refusals and decision.verdict is Verdict.ALLOW)
            if refusals and decision.verdict is not Verdict.AWAITING:
                assert decision.verdict is Verdict.DENY


@FAST
@given(
    histories(),
    st.sampled_from([*OCCUPANTS, "visitor"]),
    st.sampled_from(list(CredentialKind)),
    st.sampled_from(list(CredentialStatus)),
    st.sampled_from([1, 60, 86400, 30 * 86400]),
)
def test_a_known_persons_exit_is_never_denied_and_takes_them_off_the_headcount(
    events: list[Event], who: str, kind: CredentialKind, status: CredentialStatus, gap: int
) -> None:
    # Whatever happened before (pending, expired tenancy, revoked card, used-up or expired pass,
    # entries at anti-passback doors), a known person tapping out at a single-factor door is let
    # out, and from then on the rules do not count them inside.
    state, _ = run(events)
    at = (events[-1].at if events else T0) + timedelta(seconds=gap)
    if who == "visitor":
        request = AccessRequest("main", Direction.OUT, kind, at, event_id="exit", id_hash="vh")
        key = f"visitor:{PASS.id}"
    else:
        credential = Credential(1, who, kind, status)
        request = AccessRequest(
            "main", Direction.OUT, kind, at, credential, OCCUPANTS[who], event_id="exit"
        )
        key = f"occupant:{who}"
    before = state.occupancy
    state, outcome = step(state, request, at, CONFIG, SITE)
    decision = outcome.decision
    assert decision is not None and decision.event_id == "exit"
    assert decision.allowed, decision.reasons
    assert decision.reasons[0] in GRANT_REASONS
    assert set(decision.reasons[1:]) <= EGRESS_WAIVED
    assert state.occupancy.side(key) is Side.OUTSIDE
    assert all(
        key not in [k for k, _ in people] for people in state.occupancy.inside_by_unit(at).values()
    )
    was_inside = before.side(key) is Side.INSIDE
    assert state.occupancy.known_inside == before.known_inside - was_inside


@FAST
@given(histories())
def test_replay_is_deterministic(events: list[Event]) -> None:
    assert run(events) == run(events)


@FAST
@given(histories(), st.integers(0, 40))
def test_persisting_and_resuming_changes_nothing(events: list[Event], cut: int) -> None:
    cut = min(cut, len(events))
    whole_state, whole = run(events)
    half_state, first = run(events[:cut])
    restored = RulesState.from_dict(json.loads(json.dumps(half_state.to_dict())))
    assert restored == half_state
    end_state, second = run(events[cut:], restored)
    assert first + second == whole
    assert end_state == whole_state


def test_access_event_answer_is_the_last_decision() -> None:
    who = OCCUPANTS["o0"]
    request = AccessRequest(
        "main",
        Direction.IN,
        CredentialKind.IC,
        T0,
        Credential(1, "o0", CredentialKind.IC, CredentialStatus.ACTIVE),
        who,
        event_id="x",
    )
    _, outcome = step(RulesState(), request, T0, RulesConfig(), SITE)
    assert isinstance(outcome.decision, Decision)
    assert outcome.decision.allowed
    assert outcome.decision.event_id == "x"


def test_from_dict_rejects_other_versions() -> None:
    with pytest.raises(ValueError, match="version"):
        RulesState.from_dict({"version": 99})


def test_episodes_raise_once() -> None:
    episodes, first = Episodes().update(AlertKind.VACANCY, "o1", True, at=T0)
    episodes, again = episodes.update(AlertKind.VACANCY, "o1", True, at=T0)
    episodes, cleared = episodes.update(AlertKind.VACANCY, "o1", False, at=T0)
    assert (first and first.state, again, cleared and cleared.state) == (
        AlertState.RAISED,
        None,
        AlertState.CLEARED,
    )
    assert not episodes.active


@pytest.mark.parametrize(
    ("approved", "policy", "accepted", "flagged"),
    [
        (2, CapacityPolicy.REFUSE, True, False),
        (3, CapacityPolicy.REFUSE, False, False),
        (2, CapacityPolicy.FLAG, True, False),
        (3, CapacityPolicy.FLAG, True, True),
    ],
)
def test_check_enrolment_capacity(
    approved: int, policy: CapacityPolicy, accepted: bool, flagged: bool
) -> None:
    unit = Unit("101", "A", 1, "101", capacity=2)
    check = check_enrolment_capacity(unit, approved, policy)
    assert check.accepted is accepted
    assert check.over_capacity is (approved > 2)


def test_roster_over_capacity_is_its_own_episode() -> None:
    unit = Unit("9", "A", 1, "9", capacity=1)
    people = {
        i: Occupant(i, "9", i, "x", OccupantStatus.APPROVED, date(2026, 1, 1)) for i in ("a", "b")
    }
    site = Site({"9": unit}, people)
    state, outcome = step(RulesState(), Tick(T0), T0, RulesConfig(vacancy_days=999), site)
    assert [(a.kind, a.key, a.state, dict(a.counts)) for a in outcome.alerts] == [
        (AlertKind.OVERCROWDING, "9:approved", AlertState.RAISED, {"approved": 2, "capacity": 1})
    ]
    later = T0 + timedelta(minutes=1)
    site = Site({"9": unit}, {"a": people["a"]})
    _, outcome = step(state, Tick(later), later, RulesConfig(vacancy_days=999), site)
    assert [(a.key, a.state) for a in outcome.alerts] == [("9:approved", AlertState.CLEARED)]


@pytest.mark.parametrize(("silent", "offline"), [(None, False), (60, False), (61, True)])
def test_device_offline(silent: int | None, offline: bool) -> None:
    last = None if silent is None else T0 - timedelta(seconds=silent)
    assert device_offline(last, T0, timedelta(seconds=60)) is offline
