"""Occupancy: idempotent passages, companions for the night, and a headcount that never goes negative."""

from __future__ import annotations

from datetime import datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from rules.model import Direction
from rules.occupancy import OccupancyState, Passage, Side, pass_door, recount

T0 = datetime(2026, 3, 2, 23, 0)


def passage(key: str | None, direction: Direction, seconds: float = 0, **kw: str) -> Passage:
    return Passage(
        kw.get("door", "main"),
        direction,
        T0 + timedelta(seconds=seconds),
        key,
        kw.get("unit"),
        kw.get("event"),
    )


def test_reader_and_camera_count_an_entry_once() -> None:
    state = OccupancyState()
    for _ in range(2):
        state = pass_door(state, passage("occupant:a", Direction.IN, unit="101"))
    assert state.headcount == 1
    assert state.side("occupant:a") is Side.INSIDE
    assert state.side("occupant:b") is Side.UNKNOWN


def test_stranger_before_or_after_occupant_joins_their_unit_until_morning() -> None:
    for order in (("stranger:s", "occupant:a"), ("occupant:a", "stranger:s")):
        state = OccupancyState()
        for i, key in enumerate(order):
            unit = "101" if key.startswith("occupant") else None
            state = pass_door(state, passage(key, Direction.IN, seconds=i * 4, unit=unit))
        assert sorted(k for k, _ in state.inside_by_unit(T0)["101"]) == ["occupant:a", "stranger:s"]
        morning = datetime(2026, 3, 3, 5, 0)
        assert [k for k, _ in state.inside_by_unit(morning)["101"]] == ["occupant:a"]


def test_stranger_outside_the_window_or_at_another_door_is_not_attributed() -> None:
    state = pass_door(OccupancyState(), passage("occupant:a", Direction.IN, unit="101"))
    state = pass_door(state, passage("stranger:late", Direction.IN, seconds=11))
    state = pass_door(state, passage("stranger:side", Direction.IN, seconds=1, door="side"))
    assert [k for k, _ in state.inside_by_unit(T0)["101"]] == ["occupant:a"]


def test_exit_of_someone_never_seen_entering_reduces_the_anonymous_count() -> None:
    state = pass_door(OccupancyState(), passage(None, Direction.IN))
    state = pass_door(state, passage("occupant:a", Direction.OUT))
    assert state.headcount == 0
    assert state.side("occupant:a") is Side.OUTSIDE


keys = st.sampled_from([None, "occupant:a", "occupant:b", "visitor:p", "stranger:s", "stranger:t"])
moves = st.lists(
    st.tuples(
        keys,
        st.sampled_from(list(Direction)),
        st.sampled_from(["main", "side"]),
        st.integers(0, 30),
    ),
    max_size=60,
)


@given(moves)
def test_headcount_never_negative_and_consistent(
    steps: list[tuple[str | None, Direction, str, int]],
) -> None:
    state, seconds = OccupancyState(), 0
    for key, direction, door, gap in steps:
        seconds += gap
        unit = "101" if key and key.startswith("occupant") else None
        state = pass_door(state, passage(key, direction, seconds, door=door, unit=unit))
        assert state.anonymous_inside >= 0
        assert state.known_inside == recount(state) >= 0
        assert state.headcount >= 0
        now = T0 + timedelta(seconds=seconds)
        attributed = sum(len(v) for v in state.inside_by_unit(now).values())
        assert attributed <= state.known_inside
