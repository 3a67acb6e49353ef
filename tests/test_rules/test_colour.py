"""Unit colours for the station's floor plan: each condition and its colour, worst wins."""

from __future__ import annotations

from datetime import date, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from rules.alerts import AlertKind, Episodes
from rules.colour import Colour, site_status, unit_status, worst
from rules.model import Direction, Occupant, OccupantStatus, Unit
from rules.occupancy import OccupancyState, Passage, pass_door

NOW = datetime(2026, 3, 2, 23, 30)
UNIT = Unit("A-101", "A", 1, "101", 2)


def occupant(oid: str, status: OccupantStatus = OccupantStatus.APPROVED, **kw: date) -> Occupant:
    return Occupant(
        oid,
        "A-101",
        "某",
        "110105********1234",
        status,
        kw.get("valid_from", date(2026, 1, 1)),
        kw.get("valid_to"),
    )


def raised(*pairs: tuple[AlertKind, str]) -> Episodes:
    return Episodes(frozenset(pairs))


def enter(state: OccupancyState, key: str, unit: str | None, seconds: int = 0) -> OccupancyState:
    at = NOW - timedelta(minutes=5) + timedelta(seconds=seconds)
    return pass_door(state, Passage("main", Direction.IN, at, key, unit, f"ev-{key}"))


def test_registered_and_quiet_is_green_and_empty_is_grey() -> None:
    green = unit_status(UNIT, [occupant("a")], OccupancyState(), Episodes(), NOW)
    assert (green.colour, green.reasons, green.registered) == (Colour.GREEN, (), 1)
    grey = unit_status(UNIT, [], OccupancyState(), Episodes(), NOW)
    assert grey.colour is Colour.GREY


def test_expired_or_moved_out_occupants_are_not_registered() -> None:
    people = [occupant("a", valid_to=date(2026, 3, 1)), occupant("b", OccupantStatus.MOVED_OUT)]
    status = unit_status(UNIT, people, OccupancyState(), Episodes(), NOW)
    assert (status.registered, status.colour) == (0, Colour.GREY)


def test_pending_enrolment_and_minor_alerts_are_yellow_with_reasons() -> None:
    people = [occupant("a"), occupant("b", OccupantStatus.PENDING)]
    episodes = raised((AlertKind.VACANCY, "a"), (AlertKind.DOOR_HELD, "main"))
    status = unit_status(UNIT, people, OccupancyState(), episodes, NOW, doors=["main"])
    assert status.colour is Colour.YELLOW
    assert status.reasons == ("pending:1", "vacancy:1", "door_held:main")


def test_overcrowding_forced_door_and_unregistered_resident_are_red() -> None:
    for episodes, reason in (
        (raised((AlertKind.OVERCROWDING, "A-101")), "overcrowding"),
        (raised((AlertKind.OVERCROWDING, "A-101:approved")), "over_capacity"),
        (raised((AlertKind.DOOR_FORCED, "main")), "door_forced:main"),
    ):
        status = unit_status(
            UNIT,
            [occupant("a", OccupantStatus.PENDING)],
            OccupancyState(),
            episodes,
            NOW,
            doors=["main"],
        )
        assert status.colour is Colour.RED
        assert status.reasons[0] == reason and "pending:1" in status.reasons
    # A recurring stranger who came in with the tenant counts for the unit tonight.
    state = enter(enter(OccupancyState(), "occupant:a", "A-101"), "stranger:c7", None, 3)
    status = unit_status(
        UNIT, [occupant("a")], state, raised((AlertKind.STRANGER_RECURRING, "c7")), NOW
    )
    assert (status.colour, status.reasons, status.inside) == (
        Colour.RED,
        ("unregistered_resident:1",),
        2,
    )


def test_a_forced_door_elsewhere_does_not_colour_the_unit() -> None:
    episodes = raised((AlertKind.DOOR_FORCED, "garage"))
    status = unit_status(UNIT, [occupant("a")], OccupancyState(), episodes, NOW, doors=["main"])
    assert status.colour is Colour.GREEN


def test_site_status_covers_every_unit_in_order() -> None:
    units = {u.id: u for u in (UNIT, Unit("A-102", "A", 1, "102", 1), Unit("B-1", "B", 1, "1", 3))}
    rows = site_status(units, [occupant("a")], OccupancyState(), Episodes(), NOW)
    assert [(r.unit, r.colour) for r in rows] == [
        ("A-101", Colour.GREEN),
        ("A-102", Colour.GREY),
        ("B-1", Colour.GREY),
    ]


KINDS = st.sampled_from(
    [
        AlertKind.OVERCROWDING,
        AlertKind.DOOR_FORCED,
        AlertKind.VACANCY,
        AlertKind.TENANCY_EXPIRING,
        AlertKind.DOOR_HELD,
        AlertKind.TAILGATING,
    ]
)


@given(
    st.sets(st.tuples(KINDS, st.sampled_from(["A-101", "main", "a", "x"]))),
    st.lists(st.sampled_from(list(OccupantStatus)), max_size=4),
)
def test_colour_is_the_worst_reason_and_red_only_with_a_red_reason(
    pairs: set[tuple[AlertKind, str]], statuses: list[OccupantStatus]
) -> None:
    people = [occupant(f"o{i}", s) for i, s in enumerate(statuses)]
    status = unit_status(
        UNIT, people, OccupancyState(), Episodes(frozenset(pairs)), NOW, doors=["main"]
    )
    red = {"overcrowding", "over_capacity", "door_forced", "unregistered_resident"}
    has_red = any(r.split(":")[0] in red for r in status.reasons)
    assert (status.colour is Colour.RED) == has_red
    if not status.reasons:
        assert status.colour in {Colour.GREEN, Colour.GREY}
    assert worst([status.colour, Colour.GREEN]) == status.colour or status.colour is Colour.GREY
