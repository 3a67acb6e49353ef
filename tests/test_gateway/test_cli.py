"""The landlord's command-line tools, through the same store code the daemon uses."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
import typer
from typer.main import get_command
from typer.testing import CliRunner

from drivers.rdm6300 import encode_frame
from drivers.simulators.rdm6300 import Rdm6300Simulator
from gateway.cli import app

runner = CliRunner()


@pytest.fixture
def config(tmp_path: Path, simulator: Rdm6300Simulator, gw) -> Path:
    return gw.write_config(tmp_path, simulator.port)


def dg(config: Path, *args: str, lang: str = "en") -> tuple[int, str]:
    result = runner.invoke(app, ["--lang", lang, *args, "--config", str(config)])
    return result.exit_code, result.output


def enrol(config: Path) -> str:
    assert (
        dg(
            config,
            "unit",
            "add",
            "A-101",
            "--building",
            "A",
            "--floor",
            "1",
            "--room",
            "101",
            "--capacity",
            "1",
        )[0]
        == 0
    )
    code, out = dg(
        config,
        "occupant",
        "add",
        "--unit",
        "A-101",
        "--name",
        "张伟",
        "--id-number",
        "11010519491231002X",
        "--from",
        "2026-01-01",
        "--to",
        "2027-01-01",
    )
    assert code == 0, out
    return out.split("(id ")[1].split(")")[0]


def test_landlord_flow(config: Path) -> None:
    occupant = enrol(config)
    code, out = dg(config, "occupant", "list")
    assert code == 0
    assert "110105********002X" in out
    assert "11010519491231002X" not in out
    assert dg(config, "occupant", "approve", occupant)[0] == 0
    code, out = dg(config, "card", "add", "--occupant", occupant, "--uid", "67003b51c6")
    assert code == 0, out
    assert "******51C6" in out
    code, out = dg(config, "unit", "list")
    assert "A-101" in out
    code, out = dg(config, "occupant", "move-out", occupant)
    assert code == 0
    assert "moved out" in out
    code, out = dg(config, "card", "list")
    assert "revoked" in out


def test_messages_are_chinese_by_default(config: Path) -> None:
    code, out = dg(
        config,
        "unit",
        "add",
        "B-1",
        "--building",
        "B",
        "--floor",
        "1",
        "--room",
        "1",
        "--capacity",
        "2",
        lang="zh",
    )
    assert code == 0
    assert "已添加房间 B-1" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            [
                "occupant",
                "add",
                "--unit",
                "A-101",
                "--name",
                "李四",
                "--id-number",
                "110105194912310021",
                "--from",
                "2026-01-01",
            ],
            "check character is 1 but should be X",
        ),
        (
            [
                "occupant",
                "add",
                "--unit",
                "A-101",
                "--name",
                "李四",
                "--id-number",
                "440524188001010014",
                "--from",
                "2026-13-01",
            ],
            "--from must be a date",
        ),
        (
            [
                "occupant",
                "add",
                "--unit",
                "Z-9",
                "--name",
                "李四",
                "--id-number",
                "440524188001010014",
                "--from",
                "2026-01-01",
            ],
            "no unit 'Z-9'",
        ),
        (["card", "add", "--occupant", "nobody", "--uid", "67003B51C6"], "no occupant 'nobody'"),
        (["card", "add", "--occupant", "x"], "exactly one of --uid"),
        (
            [
                "unit",
                "add",
                "A-102",
                "--building",
                "A",
                "--floor",
                "1",
                "--room",
                "102",
                "--capacity",
                "0",
            ],
            "capacity must be at least 1",
        ),
    ],
)
def test_bad_input_is_explained(config: Path, args: list[str], message: str) -> None:
    enrol(config)
    code, out = dg(config, *args)
    assert code != 0
    assert message in " ".join(out.split())


def test_capacity_is_enforced_at_approval(config: Path) -> None:
    first = enrol(config)
    assert dg(config, "occupant", "approve", first)[0] == 0
    code, out = dg(
        config,
        "occupant",
        "add",
        "--unit",
        "A-101",
        "--name",
        "李四",
        "--id-number",
        "440524188001010014",
        "--from",
        "2026-01-01",
    )
    second = out.split("(id ")[1].split(")")[0]
    code, out = dg(config, "occupant", "approve", second)
    assert code == 1
    assert "at most 1 persons" in " ".join(out.split())


def test_card_add_by_tapping(config: Path, simulator: Rdm6300Simulator) -> None:
    occupant = enrol(config)
    timer = threading.Timer(0.8, simulator.write_now, [encode_frame(0x67, 0x003BA86C)])
    timer.start()
    code, out = dg(
        config, "card", "add", "--occupant", occupant, "--tap", "entrance", "--timeout", "10"
    )
    timer.join()
    assert code == 0, out
    assert "******A86C" in out


def test_card_add_tap_times_out_and_unknown_reader(config: Path) -> None:
    occupant = enrol(config)
    code, out = dg(
        config, "card", "add", "--occupant", occupant, "--tap", "entrance", "--timeout", "0.3"
    )
    assert code == 1
    assert "no card within 0.3 s" in out
    code, out = dg(config, "card", "add", "--occupant", occupant, "--tap", "lobby")
    assert "no reader named 'lobby'" in out


def test_every_command_has_help() -> None:
    def walk(command: typer.core.TyperGroup | object, path: str) -> list[str]:
        missing = [] if getattr(command, "help", None) else [path]
        for name, sub in getattr(command, "commands", {}).items():
            missing += walk(sub, f"{path} {name}")
        return missing

    assert walk(get_command(app), "doorgate") == []


def test_local_approval_is_refused_where_the_station_approves(config: Path) -> None:
    occupant = enrol(config)
    config.write_text(config.read_text().replace('approval = "local"', 'approval = "station"'))
    code, out = dg(config, "occupant", "approve", occupant)
    assert code == 1
    assert "approved by the station" in " ".join(out.split())
