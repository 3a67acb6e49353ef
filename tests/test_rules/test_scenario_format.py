"""The scenario format: malformed documents fail with the place and the problem; JSON works too."""

from __future__ import annotations

import json
from datetime import datetime

import pytest

from rules.alerts import Alert
from rules.model import Decision
from rules.scenario import ScenarioError, check, parse_scenario, replay

BASE = """
title = "t"
day = 2026-03-02
[[units]]
id = "101"
capacity = 1
[[occupants]]
id = "a"
unit = "101"
"""


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (
            "[[events]]\nat = 10:00:00\ntype = 'acces'",
            r"scenario\.events\[0\]\.type: expected one of access, face",
        ),
        (
            "[[events]]\nat = 10:00:00\ntype = 'access'\nkind = 'card'",
            r"events\[0\]\.kind: expected one of idcard, ic, face; got str 'card'",
        ),
        (
            "[[events]]\nat = 10:00:00\ntype = 'access'\noccupant = 'zed'",
            r"events\[0\]\.occupant: no occupant 'zed'",
        ),
        (
            "[[events]]\nat = 10:00:00\ntype = 'tick'\n[[events]]\nat = 2026-03-01T09:00:00\ntype = 'tick'",
            r"events\[1\]\.at: .* earlier than the previous event",
        ),
        ("[[events]]\nat = 'soon'\ntype = 'tick'", r"events\[0\]\.at: expected a datetime, a time"),
        (
            "[[events]]\nat = '+5s'\ntype = 'tick'",
            r"events\[0\]\.at: a relative time needs an earlier event",
        ),
        ("[[events]]\ntype = 'tick'", r"events\[0\]: missing required key 'at'"),
        (
            "[[events]]\nat = 10:00:00\ntype = 'tick'\ndoor = 'main'",
            r"events\[0\]: unknown key\(s\) 'door'",
        ),
        (
            "[[events]]\nid = 'x'\nat = 10:00:00\ntype = 'tick'\n[[events]]\nid = 'x'\nat = 10:00:00\ntype = 'tick'",
            r"events\[1\]\.id: duplicate event id 'x'",
        ),
        (
            "[config]\nvacancy_days = 'seven'",
            r"config\.vacancy_days: expected an integer, got str 'seven'",
        ),
        ("[config]\nnight = '23-05'", r"config\.night: expected 'HH:MM-HH:MM'"),
        ("[config]\nvacancy_dayz = 3", r"config: unknown key\(s\) 'vacancy_dayz'"),
        (
            "[doors.main]\nschedule = ['weekdays 8-9']",
            r"doors\.main\.schedule: schedule window 'weekdays 8-9'",
        ),
        (
            "[doors.main]\nmode = 'pin'",
            r"doors\.main\.mode: expected one of card, face, card_or_face",
        ),
        (
            "[[expect.alerts]]\nkind = 'overcrowded'\nstate = 'raised'",
            r"expect\.alerts\[0\]\.kind: expected one of overcrowding",
        ),
        (
            "[[expect.alerts]]\nkind = 'vacancy'",
            r"expect\.alerts\[0\]: an expected alert needs 'kind' and 'state'",
        ),
        (
            "[[expect.decisions]]\nverdict = 'allow'",
            r"expect\.decisions\[0\]: missing required key 'event'",
        ),
    ],
)
def test_malformed_scenarios_name_place_and_problem(extra: str, message: str) -> None:
    with pytest.raises(ScenarioError, match=r"^bad\.toml: .*" + message):
        parse_scenario(BASE + extra, source="bad.toml")


def test_bad_occupant_unit_is_located() -> None:
    text = 'title = "t"\n[[occupants]]\nid = "a"\nunit = "nope"\n'
    with pytest.raises(ScenarioError, match=r"scenario\.occupants\[0\]\.unit: no unit 'nope'"):
        parse_scenario(text, source="x.toml")


def test_toml_syntax_error_has_line() -> None:
    with pytest.raises(ScenarioError, match=r"^x\.toml: not valid TOML/JSON: .*line 1"):
        parse_scenario("title = = 1", source="x.toml")


def test_events_must_be_tables() -> None:
    with pytest.raises(ScenarioError, match=r"scenario\.events: expected a list of tables"):
        parse_scenario('title = "t"\nevents = 3\n', source="x.toml")


def test_missing_title() -> None:
    with pytest.raises(ScenarioError, match=r"scenario: missing required key 'title'"):
        parse_scenario("day = 2026-03-02", source="x.toml")


def test_json_scenario_and_check_reports_misses() -> None:
    doc = {
        "title": "json",
        "units": [{"id": "101", "capacity": 1}],
        "occupants": [{"id": "a", "unit": "101", "status": "pending"}],
        "events": [{"at": "2026-03-02T10:00:00", "type": "access", "occupant": "a"}],
        "expect": {"decisions": [{"event": "e1", "verdict": "allow"}, {"event": "e1"}]},
    }
    scenario = parse_scenario(json.dumps(doc), source="s.json")
    outputs = replay(scenario)
    assert [type(o) for _, o in outputs] == [Decision]
    assert check(scenario, outputs) == [
        "expect.decisions[0].verdict: expected 'allow', got 'deny'",
        "expect.decisions[1]: no decision #2 for event 'e1'",
    ]


def test_bare_times_roll_over_midnight() -> None:
    text = (
        BASE + "[[events]]\nat = 23:59:00\ntype = 'tick'\n[[events]]\nat = '00:01'\ntype = 'tick'\n"
    )
    scenario = parse_scenario(text)
    assert [e.at for e in scenario.events] == [
        datetime(2026, 3, 2, 23, 59),
        datetime(2026, 3, 3, 0, 1),
    ]


def test_alert_subsequence_mode() -> None:
    text = BASE + (
        "[[events]]\nat = 10:00:00\ntype = 'door'\naction = 'opened'\n"
        "[[events]]\nat = '+61s'\ntype = 'tick'\n"
        "[[events]]\nat = '+2m'\ntype = 'door'\naction = 'closed'\n"
        "[expect]\nalerts_exact = false\n"
        "[[expect.alerts]]\nkind = 'door_held'\nstate = 'cleared'\n"
    )
    scenario = parse_scenario(text)
    outputs = replay(scenario)
    assert len([o for _, o in outputs if isinstance(o, Alert)]) == 4
    assert check(scenario, outputs) == []
