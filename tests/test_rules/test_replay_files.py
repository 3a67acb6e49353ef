"""`doorgate replay`: every file under replays/ through the real command, and its error handling.

Each replay file is run with typer's CliRunner through `gateway.cli.app` (the `doorgate`
command), and its complete output is compared, in a compact form, with what the rules must say.
"""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from gateway.cli import app
from rules.occupancy import Side
from rules.replay import Replayer

REPLAYS = Path(__file__).parent / "replays"
runner = CliRunner()


def doorgate(*args: str, lang: str = "en", stdin: str | None = None) -> tuple[int, str, str]:
    result = runner.invoke(app, ["--lang", lang, "replay", *args], input=stdin)
    return result.exit_code, result.stdout, result.stderr


def outputs(path: Path, *args: str) -> list[dict[str, Any]]:
    code, out, err = doorgate(str(path), "--json", *args)
    assert code == 0, err
    return [json.loads(line) for line in out.splitlines()]


def compact(output: dict[str, Any]) -> str:
    """``03-02 23:00:00 alert overcrowding 101 3/2 [alice-in,…]`` or a decision's gist."""
    when = datetime.fromisoformat(output["at"]).strftime("%m-%d %H:%M:%S")
    head = next(k for k in output if k != "at")
    body = output[head]
    if head == "decision":
        reasons = ",".join(body["reasons"])
        return f"{when} {body['event']} {body['verdict']} {reasons} {body['occupant']}"
    numbers = f" {body.get('count')}/{body.get('limit')}" if "count" in body else ""
    return f"{when} {head} {body['kind']} {body['key']}{numbers} [{','.join(body['evidence'])}]"


EXPECTED: dict[str, list[str]] = {
    "example": [
        "03-02 22:40:00 alice-in allow granted alice",
        "03-02 22:40:05 alert tailgating main 2/1 [alice-in,guest-in]",
        "03-02 22:55:00 bob-in allow granted bob",
        "03-02 22:55:00 clear tailgating main []",
        "03-02 22:58:00 dave-tries deny credential_revoked,moved_out,tenancy_expired dave",
        "03-02 23:00:30 alert overcrowding 101 3/2 [alice-in,guest-in,bob-in]",
        "03-03 00:30:00 clear overcrowding 101 2/2 [alice-in,bob-in]",
    ],
    "overcrowding_night": [
        "03-02 22:30:00 alice-in allow granted alice",
        "03-02 22:45:00 bob-in allow granted bob",
        # Not at 22:59:59; at 23:00 sharp; still raised after midnight and at 04:59:59.
        "03-02 23:00:00 alert overcrowding 101 3/2 [alice-in,guest-in,bob-in]",
        "03-03 05:00:00 clear overcrowding 101 2/2 [alice-in,bob-in]",
    ],
    "building_over_capacity": [
        "03-02 18:00:00 alice-in allow granted alice",
        "03-02 18:10:00 bob-in allow granted bob",
        "03-02 18:20:00 carol-in allow granted carol",
        "03-02 18:20:00 alert building_over_capacity building 3/2 []",
        "03-02 19:00:00 bob-out allow granted bob",
        "03-02 19:00:00 clear building_over_capacity building 2/2 []",
    ],
    "stranger_recurring": [
        "03-06 09:00:00 alert stranger_recurring cluster-42 3/3 [mon,wed,fri]",
        "03-09 09:00:00 clear stranger_recurring cluster-42 2/3 [wed,fri]",
    ],
    "vacancy": [
        "03-02 10:00:00 alice-out allow granted alice",
        "03-04 10:02:00 alert vacancy bob 2/2 []",
        "03-09 10:01:00 alert vacancy alice 7/7 [alice-out]",
        "03-09 18:00:00 alice-back allow granted alice",
        "03-09 18:00:00 clear vacancy alice [alice-back]",
    ],
    "tailgating": [
        "03-02 18:00:00 alice-in allow granted alice",
        "03-02 18:00:04 alert tailgating main 2/1 [alice-in,follower]",
        "03-02 18:00:09 clear tailgating main [closed]",
    ],
    "door_forced": [
        "03-03 03:10:00 alert door_forced main [open-2]",
        "03-03 03:10:20 clear door_forced main [closed-2]",
    ],
    "door_held": [
        "03-02 18:00:00 alice-in allow granted alice",
        "03-02 18:01:04 alert door_held main 61/60 [open]",
        "03-02 18:06:00 clear door_held main [closed]",
    ],
    "repeated_denial": [
        *(
            f"03-02 02:00:{s} {e} deny unknown_credential None"
            for s, e in [
                ("00", "try-1"),
                ("10", "try-2"),
                ("20", "try-3"),
                ("25", "other-card"),
                ("30", "try-4"),
                ("40", "try-5"),
            ]
        ),
        "03-02 02:00:40 alert repeated_denial card:unknown-1 5/5 [try-1,try-2,try-3,try-4,try-5]",
        "03-02 02:02:00 clear repeated_denial card:unknown-1 0/5 []",
    ],
    "tenancy_expiring": [
        "03-03 09:00:00 alert tenancy_expiring alice 7/7 []",
        "03-10 23:59:00 last-day allow granted alice",
        "03-11 00:01:00 day-after deny tenancy_expired alice",
        "03-11 09:00:00 clear tenancy_expiring alice -1/7 []",
    ],
    "approval_overdue": [
        "03-10 09:00:00 carol-tries deny pending_approval carol",
        "03-10 10:00:30 alert approval_overdue carol []",
        "03-10 11:00:00 clear approval_overdue carol []",
        "03-10 18:00:00 carol-in allow granted carol",
    ],
    "tenancy_ends_mid_scenario": [
        "03-03 09:00:00 alert tenancy_expiring bob 0/7 []",
        "03-03 23:50:00 bob-in allow granted bob",
        # After midnight the tenancy is over: he is still let out (free egress, the reason says
        # why) and no longer counted inside, but neither his card nor his face lets him back in.
        "03-04 00:05:00 bob-out allow granted_exit,tenancy_expired bob",
        "03-04 00:05:30 bob-face deny tenancy_expired bob",
        # The move-out line: his ID card now answers as revoked.
        "03-04 08:00:00 bob-again deny credential_revoked,moved_out,tenancy_expired bob",
        "03-04 09:00:00 clear tenancy_expiring bob []",
    ],
    "reader_offline": [
        "03-02 08:01:01 alert reader_offline entrance 61/60 []",
        "03-02 08:03:00 clear reader_offline entrance [hb-2]",
    ],
}


def test_an_ex_tenant_let_out_no_longer_counts_inside() -> None:
    replayer = Replayer(source="tenancy_ends_mid_scenario.jsonl")
    lines = (REPLAYS / "tenancy_ends_mid_scenario.jsonl").read_text(encoding="utf-8").splitlines()
    headcounts = {}
    for number, text in enumerate(lines, start=1):
        for output in replayer.feed(text, number):
            if "decision" in output:
                headcounts[output["decision"]["event"]] = replayer.state.occupancy.headcount
    assert headcounts == {"bob-in": 1, "bob-out": 0, "bob-face": 0, "bob-again": 0}
    assert replayer.state.occupancy.side("occupant:bob") is Side.OUTSIDE


def test_every_replay_file_has_expectations() -> None:
    assert {p.stem for p in REPLAYS.glob("*.jsonl")} == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_replay_file(name: str) -> None:
    got = [compact(o) for o in outputs(REPLAYS / f"{name}.jsonl")]
    assert got == EXPECTED[name]


def test_alert_fields_name_what_they_are_about() -> None:
    night = outputs(REPLAYS / "overcrowding_night.jsonl")
    raised = next(o for o in night if "alert" in o)
    assert raised["at"] == "2026-03-02T23:00:00+08:00"
    assert raised["alert"] == {
        "kind": "overcrowding", "key": "101", "unit": "101", "scope": "night", "count": 3,
        "limit": 2, "counts": {"inside": 3, "capacity": 2},
        "evidence": ["alice-in", "guest-in", "bob-in"],
    }  # fmt: skip
    vacancy = [o["alert"] for o in outputs(REPLAYS / "vacancy.jsonl") if "alert" in o]
    assert [(a["occupant"], a["unit"]) for a in vacancy] == [("bob", "101"), ("alice", "101")]
    denial = next(o["alert"] for o in outputs(REPLAYS / "repeated_denial.jsonl") if "alert" in o)
    assert denial["credential"] == "card:unknown-1"


def test_no_card_value_or_hash_is_printed() -> None:
    for path in REPLAYS.glob("*.jsonl"):
        code, out, _ = doorgate(str(path), "--json")
        assert code == 0
        for secret in ("04A1B2C3", "DEADBEEF", "110105199003071239", "110105198511114560"):
            assert secret not in out
        assert not any(len(word) == 64 for word in out.replace('"', " ").split())


def test_repeated_denial_of_a_known_card_names_the_occupant(tmp_path: Path) -> None:
    lines = [
        {"unit": {"code": "101", "capacity": 1}},
        {"door": {"id": "main", "mode": "card"}},
        {"occupant": {"id": "eve", "unit": "101", "status": "suspended",
                      "valid_from": "2026-01-01", "cards": ["ic:0E0E0E0E"]}},
        *({"at": f"2026-03-02T10:00:0{i}+08:00",
           "card": {"door": "main", "kind": "ic", "value": "0E0E0E0E"}} for i in range(5)),
    ]  # fmt: skip
    path = tmp_path / "eve.jsonl"
    path.write_text("\n".join(json.dumps(x) for x in lines), encoding="utf-8")
    alert = next(o["alert"] for o in outputs(path) if "alert" in o)
    assert alert["kind"] == "repeated_denial"
    assert alert["occupant"] == "eve"
    assert alert["credential"] == alert["key"] == "credential:1"
    assert alert["evidence"] == ["L4", "L5", "L6", "L7", "L8"]


# --- config ----------------------------------------------------------------------------------


def test_rules_only_config_supplies_thresholds(tmp_path: Path) -> None:
    config = tmp_path / "rules.toml"
    config.write_text('[rules]\nnight_start = "22:00"\nnight_end = "06:00"\n', encoding="utf-8")
    default = outputs(REPLAYS / "overcrowding_night.jsonl")
    shifted = outputs(REPLAYS / "overcrowding_night.jsonl", "--config", str(config))
    assert next(compact(o) for o in default if "alert" in o).startswith("03-02 23:00:00")
    # With a 22:00-06:00 night the alert rises as soon as the third person is in (bob at
    # 22:45), and the last tick (05:00) is still inside the night: no clear.
    alerts = [compact(o) for o in shifted if "alert" in o or "clear" in o]
    assert alerts == ["03-02 22:45:00 alert overcrowding 101 3/2 [alice-in,guest-in,bob-in]"]


def test_gateway_config_supplies_thresholds_and_doors(tmp_path: Path) -> None:
    config = tmp_path / "doorgate.toml"
    config.write_text(
        '[site]\nsite = "sz-nanshan"\ngateway = "bldg-7"\n\n[rules]\nbuilding_limit = 1\n\n'
        '[[doors]]\nname = "main"\nmode = "card"\n',
        encoding="utf-8",
    )
    history = tmp_path / "h.jsonl"
    history.write_text(
        "\n".join(
            json.dumps(x)
            for x in [
                {"unit": {"code": "1", "capacity": 2}},
                {"occupant": {"id": "a", "unit": "1", "valid_from": "2026-01-01", "face": "fa"}},
                {
                    "occupant": {
                        "id": "b",
                        "unit": "1",
                        "valid_from": "2026-01-01",
                        "cards": ["ic:0A0A0A0A"],
                    }
                },
                {
                    "at": "2026-03-02T10:00:00+08:00",
                    "card": {"door": "main", "kind": "ic", "value": "0A0A0A0A"},
                },
                {"at": "2026-03-02T10:00:30+08:00", "face": {"door": "main", "label": "fa"}},
                {"at": "2026-03-02T10:01:00+08:00", "face": {"door": "main", "label": "stranger"}},
            ]
        ),
        encoding="utf-8",
    )
    got = [compact(o) for o in outputs(history, "--config", str(config))]
    assert got == [
        "03-02 10:00:00 L4 allow granted b",
        "03-02 10:00:30 L5 deny factor_not_accepted a",  # the configured door takes cards only
        "03-02 10:01:00 alert tailgating main 1/0 [L6]",  # a new door cycle: no grant in it
        "03-02 10:01:00 alert building_over_capacity building 2/1 []",
    ]


def test_bad_config_exits_2_naming_the_line(tmp_path: Path) -> None:
    config = tmp_path / "rules.toml"
    config.write_text("[rules]\nvacancy_days = 0\n", encoding="utf-8")
    code, _, err = doorgate(str(REPLAYS / "example.jsonl"), "--config", str(config))
    assert code == 2
    assert "rules.toml:2" in err
    assert "vacancy_days" in err
    assert "Traceback" not in err
    config.write_text("[rules]\n[broker]\nurl = 'mqtt://x'\n", encoding="utf-8")
    code, _, err = doorgate(str(REPLAYS / "example.jsonl"), "--config", str(config))
    assert code == 2
    assert "broker" in err


# --- bad input -------------------------------------------------------------------------------


BAD = [
    '{"unit": {"code": "101", "capacity": 2}}',
    '{"door": {"id": "main"}}',
    '{"at": "2026-03-02T10:00:00+08:00", "card": {"door": "main", "kind": "ic", "value": "0A0A0A0A"}}',
    '{"at": "2026-03-02T10:00:01+08:00", "card": {"door": "main", "kind": "nfc", "value": "0A0A"}}',
    '{"at": "2026-03-02T10:00:02+08:00", "tick": {}}',
    "not json at all",
    '{"at": "2026-03-02T09:00:00+08:00", "tick": {}}',
]


def test_bad_line_stops_the_replay_with_its_line_and_field(tmp_path: Path) -> None:
    path = tmp_path / "replay.jsonl"
    path.write_text("\n".join(BAD) + "\n", encoding="utf-8")
    code, out, err = doorgate(str(path), "--json")
    assert code == 2
    assert err.strip().splitlines() == [
        "error: replay.jsonl:4: card.kind: expected one of ic, idcard; got 'nfc'"
    ]
    assert [compact(json.loads(line)) for line in out.splitlines()] == [
        "03-02 10:00:00 L3 deny unknown_credential None"
    ]


def test_keep_going_reports_every_bad_line_and_skips_it(tmp_path: Path) -> None:
    path = tmp_path / "replay.jsonl"
    path.write_text("\n".join(BAD) + "\n", encoding="utf-8")
    code, out, err = doorgate(str(path), "--json", "--keep-going")
    assert code == 2
    lines = err.strip().splitlines()
    assert lines[0] == "error: replay.jsonl:4: card.kind: expected one of ic, idcard; got 'nfc'"
    assert lines[1].startswith("error: replay.jsonl:6: not valid JSON")
    assert lines[2].startswith("error: replay.jsonl:7: at: 2026-03-02T09:00:00+08:00 is earlier")
    assert lines[3] == "3 bad line(s)"
    assert len(out.splitlines()) == 1  # the tick at line 5 produced nothing; line 7 was skipped


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('{"door": {"id": "main", "mode": "revolving"}}',
         "x.jsonl:1: door.mode: expected one of card, face, card_or_face, card_and_face, "
         "idcard_and_face; got 'revolving'"),
        ('{"occupant": {"id": "a", "unit": "9", "valid_from": "2026-01-01"}}',
         "x.jsonl:1: occupant.unit: no unit '9' declared"),
        ('{"occupant": {"id": "a", "unit": "9", "valid_from": "2026-1-1"}}',
         "x.jsonl:1: occupant.valid_from: expected a date YYYY-MM-DD, got '2026-1-1'"),
        ('{"occupant": {"id": "a", "unit": "9", "valid_from": "2026-01-01", "cards": ["ic:12"]}}',
         "x.jsonl:1: occupant.cards[0]: expected a card UID of 8-20 hex digits (4-10 bytes)"),
        ('{"unit": {"code": "1", "capacity": 2, "colour": "red"}}',
         "x.jsonl:1: unit: unknown key(s) 'colour'"),
        ('{"unit": {"code": "1", "capacity": -1}}',
         "x.jsonl:1: unit.capacity: expected an integer from 0 to 10000, got -1"),
        ('{"at": "2026-03-02T10:00:00+08:00", "card": {"door": "x", "kind": "ic", "value": "0A0A0A0A"}}',
         "x.jsonl:1: card.door: no door 'x' declared (declared: none)"),
        ('{"at": "yesterday", "tick": {}}',
         "x.jsonl:1: at: expected an RFC 3339 date and time with a UTC offset, "
         "e.g. 2026-03-02T23:30:00+08:00; got 'yesterday'"),
        ('{"tick": {}}', "x.jsonl:1: missing required key 'at'"),
        ('{"at": "2026-03-02T10:00:00Z", "tick": {}, "contact": {}}',
         "x.jsonl:1: expected one of contact, tick per line, not several"),
        ("[1, 2]", "x.jsonl:1: expected an object, got a list"),
        ('{"config": {"door_held_s": 0}}',
         "x.jsonl:1: config.door_held_s: expected a number above 0 and at most 3.16224e+08, got 0"),
    ],
)  # fmt: skip
def test_error_messages(tmp_path: Path, line: str, message: str) -> None:
    path = tmp_path / "x.jsonl"
    path.write_text(line + "\n", encoding="utf-8")
    code, _, err = doorgate(str(path))
    assert code == 2
    assert err.strip() == f"error: {message}"


def test_the_real_command_never_shows_a_traceback(tmp_path: Path) -> None:
    path = tmp_path / "garbage.jsonl"
    path.write_bytes(b'{"unit": {"code": "1", "capacity": 1}}\n\xff\xfe\x00garbage\n' + b"[" * 5000)
    result = subprocess.run(
        [sys.executable, "-m", "gateway", "--lang", "en", "replay", str(path), "--keep-going"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert "garbage.jsonl:2: not valid UTF-8" in result.stderr
    assert "garbage.jsonl:3: not valid JSON" in result.stderr


def test_missing_file_exits_2() -> None:
    code, _, err = doorgate("/nonexistent/history.jsonl")
    assert code == 2
    assert "cannot read" in err


# --- table and stdin -------------------------------------------------------------------------


def test_table_in_chinese_by_default_and_in_english() -> None:
    code, out, _ = doorgate(str(REPLAYS / "example.jsonl"), lang="zh")
    assert code == 0
    for word in ("回放", "放行", "拒绝", "告警", "解除", "超员居住", "尾随进入", "已搬离"):
        assert word in out
    assert "13 行，3 个判定，2 个告警，2 个解除" in out
    code, out, _ = doorgate(str(REPLAYS / "example.jsonl"), lang="en")
    assert code == 0
    for word in ("allowed", "denied", "overcrowding", "tailgating", "moved out"):
        assert word in out
    assert "13 lines, 3 decisions, 2 alerts, 2 cleared" in out


def test_stdin() -> None:
    text = (REPLAYS / "door_forced.jsonl").read_text(encoding="utf-8")
    code, out, _ = doorgate("-", "--json", stdin=text)
    assert code == 0
    assert [json.loads(line)["alert" if "alert" in line else "clear"]["kind"]
            for line in out.splitlines()] == ["door_forced", "door_forced"]  # fmt: skip
