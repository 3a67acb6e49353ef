"""Properties of `rules.replay` over random histories written in the JSON Lines format.

Histories mix units, doors of every mode, occupants of every status with tenancies around the
replay days, re-declarations mid-history (move-outs, shortened tenancies, approvals), cards known
and unknown, faces of occupants and strangers, door contacts, exit requests and ticks.
"""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import date, datetime, timedelta, timezone
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rules.identity import check_character
from rules.occupancy import recount
from rules.replay import Replayer, ReplayError, parse_line, replay

TZ = timezone(timedelta(hours=8))
START = datetime(2026, 3, 2, 21, 0, tzinfo=TZ)  # a Monday evening: nights and tenancy ends near
MODES = ["card", "face", "card_or_face", "card_or_face", "card_and_face", "idcard_and_face"]
SCHEDULES: list[list[str]] = [[], [], ["mon-sun 06:00-23:30"], ["mon-fri 22:00-01:00"]]
STATUSES = ["approved", "approved", "approved", "pending", "suspended", "moved_out"]
STEPS = [0, 1, 3, 8, 20, 70, 600, 3 * 3600, 86400, 3 * 86400]
STRANGERS = ["stranger-1", "stranger-2"]
UNKNOWN_CARDS = ["ic:FFFF0001", "idcard:44030519920101002" + check_character("44030519920101002")]

PROFILE = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def id_number(i: int) -> str:
    first17 = f"11010519900301{i:03d}"
    return first17 + check_character(first17)


@st.composite
def occupant(draw: st.DrawFn, i: int, units: int) -> dict[str, Any]:
    valid_from = START.date() + timedelta(days=draw(st.integers(-40, 3)))
    valid_to = draw(
        st.one_of(st.none(), st.integers(0, 6).map(lambda d: START.date() + timedelta(d)))
    )
    if valid_to is not None and valid_to < valid_from:
        valid_to = valid_from
    record: dict[str, Any] = {
        "id": f"o{i}",
        "unit": f"U{draw(st.integers(0, units - 1))}",
        "status": draw(st.sampled_from(STATUSES)),
        "valid_from": valid_from.isoformat(),
        "valid_to": valid_to.isoformat() if valid_to else None,
        "cards": draw(st.sampled_from([[f"ic:{i + 1:08X}"], [f"idcard:{id_number(i)}"],
                                       [f"ic:{i + 1:08X}", f"idcard:{id_number(i)}"], []])),
    }  # fmt: skip
    if draw(st.booleans()):
        record["face"] = f"face-{i}"
    if record["status"] == "pending":
        record["submitted_at"] = (START - timedelta(days=draw(st.integers(0, 5)))).isoformat()
    return record


@st.composite
def histories(draw: st.DrawFn) -> list[dict[str, Any]]:
    """A random history as the list of its JSON objects, in file order."""
    units = draw(st.integers(1, 3))
    lines: list[dict[str, Any]] = [
        {"unit": {"code": f"U{u}", "capacity": draw(st.integers(0, 3))}} for u in range(units)
    ]
    doors = ["main", "side"][: draw(st.integers(1, 2))]
    for name in doors:
        door: dict[str, Any] = {"id": name, "mode": draw(st.sampled_from(MODES))}
        door["schedule"] = draw(st.sampled_from(SCHEDULES))
        if draw(st.booleans()):
            door["anti_passback"] = "lobby"
        lines.append({"door": door})
    if draw(st.booleans()):
        lines.append({"config": {"building_limit": draw(st.integers(1, 4)),
                                 "denial_threshold": draw(st.integers(2, 5))}})  # fmt: skip
    people = [draw(occupant(i, units)) for i in range(draw(st.integers(1, 5)))]
    lines += [{"occupant": p} for p in people]
    cards = [c for p in people for c in p["cards"]] + UNKNOWN_CARDS
    labels = [f"face-{i}" for i in range(len(people))] + STRANGERS
    at = START
    for _ in range(draw(st.integers(0, 45))):
        at += timedelta(seconds=draw(st.sampled_from(STEPS)))
        stamp = at.isoformat()
        kind = draw(st.sampled_from(["card", "card", "face", "face", "contact", "exit", "unlock",
                                     "tick", "tick", "redeclare"]))  # fmt: skip
        door = draw(st.sampled_from(doors))
        direction = draw(st.sampled_from(["in", "in", "out"]))
        if kind == "card":
            card_kind, _, value = draw(st.sampled_from(cards)).partition(":")
            body = {"door": door, "direction": direction, "kind": card_kind, "value": value}
            lines.append({"at": stamp, "card": body})
        elif kind == "face":
            label = draw(st.sampled_from(labels))
            face = {"door": door, "direction": draw(st.sampled_from(["in", "out", None])),
                    "label": label, "live": draw(st.booleans())}  # fmt: skip
            lines.append({"at": stamp, "face": face})
        elif kind == "contact":
            state = draw(st.sampled_from(["open", "closed"]))
            lines.append({"at": stamp, "contact": {"door": door, "state": state}})
        elif kind == "exit":
            lines.append({"at": stamp, "exit_request": {"door": door}})
        elif kind == "unlock":
            lines.append({"at": stamp, "remote_unlock": {"door": door}})
        elif kind == "tick":
            lines.append({"at": stamp, "tick": {}})
        else:
            index = draw(st.integers(0, len(people) - 1))
            changed = dict(people[index], status=draw(st.sampled_from(STATUSES)))
            if draw(st.booleans()):
                end = at.date() + timedelta(days=draw(st.integers(-1, 1)))
                changed["valid_to"] = max(
                    end, date.fromisoformat(changed["valid_from"])
                ).isoformat()
            people[index] = changed
            lines.append({"occupant": changed})
    return lines


def texts(history: list[dict[str, Any]]) -> list[str]:
    return [json.dumps(line, ensure_ascii=False) for line in history]


def head(output: dict[str, Any]) -> str:
    return next(k for k in output if k != "at")


@PROFILE
@given(histories())
def test_headcount_is_never_negative(history: list[dict[str, Any]]) -> None:
    replayer = Replayer()
    for number, text in enumerate(texts(history), start=1):
        replayer.feed(text, number)
        people = replayer.state.occupancy
        assert people.headcount >= 0
        assert people.anonymous_inside >= 0
        assert people.known_inside == recount(people) >= 0


@PROFILE
@given(histories())
def test_moved_out_or_expired_occupants_are_never_let_in(history: list[dict[str, Any]]) -> None:
    replayer = Replayer()
    current: dict[str, dict[str, Any]] = {}  # each occupant as last declared, read from the lines
    allowed = 0
    for number, (line, text) in enumerate(zip(history, texts(history), strict=True), start=1):
        if "occupant" in line:
            current[line["occupant"]["id"]] = line["occupant"]
        for output in replayer.feed(text, number):
            if head(output) != "decision" or not output["decision"]["allow"]:
                continue
            if output["decision"]["reason"] == "granted_exit":
                # Free egress: only ever on the way out (the decision answers this very line).
                presented = line.get("card") or line.get("face") or {}
                assert presented.get("direction") == "out"
                continue
            allowed += 1
            person = current[output["decision"]["occupant"]]
            day = datetime.fromisoformat(output["at"]).date()
            assert person["status"] == "approved"  # so never moved_out (nor pending, suspended)
            assert date.fromisoformat(person["valid_from"]) <= day
            assert person["valid_to"] is None or day <= date.fromisoformat(person["valid_to"])


@PROFILE
@given(histories())
def test_each_alert_is_cleared_at_most_once_and_only_after_it_was_raised(
    history: list[dict[str, Any]],
) -> None:
    edges: dict[tuple[str, str], list[str]] = defaultdict(list)
    for output in replay(texts(history)):
        kind = head(output)
        if kind in ("alert", "clear"):
            edges[(output[kind]["kind"], output[kind]["key"])].append(kind)
    for key, sequence in edges.items():
        # raise, clear, raise, clear…: every clear follows its own raise, each raise clears once.
        expected = ["alert", "clear"] * len(sequence)
        assert sequence == expected[: len(sequence)], key


@PROFILE
@given(histories())
def test_replaying_twice_gives_the_same_output(history: list[dict[str, Any]]) -> None:
    lines = texts(history)
    first, second = Replayer(), Replayer()
    out_first = [o for n, t in enumerate(lines, 1) for o in first.feed(t, n)]
    out_second = [o for n, t in enumerate(lines, 1) for o in second.feed(t, n)]
    assert out_first == out_second
    assert json.dumps(out_first) == json.dumps(replay(lines))
    assert first.state.to_dict() == second.state.to_dict()


# --- the parser against garbage ------------------------------------------------------------------

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=12,
)
KEYS = ["unit", "occupant", "door", "config", "card", "face", "contact", "exit_request",
        "remote_unlock", "health", "tick", "at", "id", "#"]  # fmt: skip
FIELDS = ["code", "capacity", "building", "label", "floor", "id", "unit", "status", "valid_from",
          "valid_to", "cards", "face", "door", "mode", "schedule", "anti_passback", "direction",
          "kind", "value", "label", "live", "state", "device", "ok", "night", "holidays",
          "building_limit", "door_held_s", "denial_threshold", "submitted_at", "welfare_days"]  # fmt: skip
NEAR = st.sampled_from(["2026-03-02T10:00:00+08:00", "2026-03-02", "0001-01-01T00:00:00+00:00",
                        "9999-12-31T23:59:59+14:00", "ic:04A1B2C3", "idcard:110105199003071239",
                        "in", "out", "open", "main", "U0", "o0", "approved", "mon-fri 22:00-01:00",
                        "25:00-99:00", "face-0", "1e309", ""])  # fmt: skip
VALUES = JSON | NEAR | st.lists(NEAR, max_size=3)
NEAR_MISS = st.dictionaries(
    st.sampled_from(KEYS),
    VALUES | st.dictionaries(st.sampled_from(FIELDS), VALUES, max_size=6),
    min_size=1,
    max_size=3,
)
GARBAGE = (
    st.text(max_size=200)
    | st.binary(max_size=200)
    | JSON.map(json.dumps)
    | NEAR_MISS.map(json.dumps)
    | st.sampled_from(["[" * 3000, '{"a":' * 3000, "NaN", '{"unit": 1e999}', "\ufeff{}"])
)


def prepared() -> Replayer:
    replayer = Replayer()
    setup = [
        {"unit": {"code": "U0", "capacity": 1}},
        {"door": {"id": "main"}},
        {"occupant": {"id": "o0", "unit": "U0", "valid_from": "2026-01-01",
                      "cards": ["ic:04A1B2C3"], "face": "face-0"}},
    ]  # fmt: skip
    for number, line in enumerate(setup, start=1):
        replayer.feed(json.dumps(line), number)
    return replayer


@settings(max_examples=600, deadline=None)
@given(st.lists(GARBAGE, min_size=1, max_size=6))
def test_garbage_raises_only_replay_errors(lines: list[str | bytes]) -> None:
    replayer = prepared()
    for number, text in enumerate(lines, start=10):
        try:
            parse_line(text, number, "g.jsonl")
        except ReplayError as err:
            assert str(err).startswith(f"g.jsonl:{number}: ")
        before = (replayer.state, replayer.world)
        try:
            outputs = replayer.feed(text, number)
        except ReplayError as err:
            assert err.line == number
            assert (replayer.state, replayer.world) == before  # a bad line changes nothing
        else:
            assert isinstance(outputs, list)
            json.dumps(outputs)
