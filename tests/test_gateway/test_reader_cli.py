"""`doorgate reader simulate` and `doorgate reader watch` as an installer runs them: child processes.

Every serial reader kind is simulated by one `reader simulate` process (all started at once, as
CLI start-up costs ~2 s each) and read back by `reader watch --count 1 --json`; the ID card one is
driven interactively through its stdin. Stopping each simulator with SIGINT (Ctrl-C) must exit 0
and remove its port.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner

from gateway.cli import app
from gateway.cli_reader import SIMULATE_HELP

DOORGATE = [sys.executable, "-c", "from gateway.cli import main; main()"]
ENV = {**os.environ, "DOORGATE_LANG": "en", "COLUMNS": "200"}
SCBK = "000102030405060708090A0B0C0D0E0F"
ID_NUMBER = "11010519491231002X"


@dataclass
class Simulator:
    proc: subprocess.Popen[str]
    port: str


SIMULATORS: dict[str, list[str]] = {
    "rdm6300": ["--kind", "rdm6300", "--every", "0.4", "--tap", "67003B51C6"],
    "pn532": ["--kind", "pn532", "--every", "0.4", "--tap", "04A1B2C3D4E5F6"],
    "osdp": ["--kind", "osdp", "--every", "0.4", "--tap", "5A0144", "--scbk-file", "{scbk}"],
    # Interactive: the card is typed on stdin by the test, and held on the antenna 8 s.
    "idcard": ["--kind", "idcard", "--hold", "8"],
}


@pytest.fixture(scope="module")
def simulators(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Simulator]]:
    folder = tmp_path_factory.mktemp("readers")
    (folder / "scbk").write_text(SCBK + "\n")
    procs = {}
    for kind, args in SIMULATORS.items():
        argv = [a.replace("{scbk}", str(folder / "scbk")) for a in args]
        procs[kind] = subprocess.Popen(
            [*DOORGATE, "reader", "simulate", *argv, "--link", str(folder / kind)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=ENV,
        )
    running = {
        kind: Simulator(proc, proc.stdout.readline().strip()) for kind, proc in procs.items()
    }  # type: ignore[union-attr]
    try:
        yield running
    finally:
        for sim in running.values():
            sim.proc.send_signal(signal.SIGINT)
        for kind, sim in running.items():
            _, err = sim.proc.communicate(timeout=15)
            assert sim.proc.returncode == 0, f"{kind}: {err}"
            assert "Traceback" not in err
            assert not Path(sim.port).exists(), f"{kind}: port left behind"


def watch(*args: str) -> list[dict[str, object]]:
    result = subprocess.run(
        [*DOORGATE, "reader", "watch", "--count", "1", "--json", *args],
        capture_output=True,
        text=True,
        timeout=30,
        env=ENV,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()]


def test_simulated_rdm6300_is_watched_masked(simulators: dict[str, Simulator]) -> None:
    sim = simulators["rdm6300"]
    assert sim.port.endswith("rdm6300")
    assert Path(sim.port).is_symlink()
    (read,) = watch("--kind", "rdm6300", "--port", sim.port)
    assert read == {"kind": "card", "reader": "watch", "tech": "em4100", "uid": "******51C6"}


def test_simulated_pn532_seven_byte_uid(simulators: dict[str, Simulator]) -> None:
    (read,) = watch("--kind", "pn532", "--port", simulators["pn532"].port, "--reveal")
    assert read["tech"] == "iso14443a"
    assert read["uid"] == "04A1B2C3D4E5F6"
    assert (read["atqa"], read["sak"]) == (4, 8)


def test_simulated_osdp_with_secure_channel(
    simulators: dict[str, Simulator], tmp_path: Path
) -> None:
    key = tmp_path / "scbk"
    key.write_text(SCBK)
    port = simulators["osdp"].port
    (read,) = watch("--kind", "osdp", "--port", port, "--scbk-file", str(key), "--reveal")
    assert read["tech"] == "osdp"
    assert (read["uid"], read["bits"], read["facility"], read["number"]) == ("5A0144", 26, 90, 324)


def test_idcard_typed_on_stdin_and_revealed(simulators: dict[str, Simulator]) -> None:
    sim = simulators["idcard"]
    assert sim.proc.stdin is not None
    sim.proc.stdin.write(f"{ID_NUMBER},李四\n")
    sim.proc.stdin.flush()
    (read,) = watch("--kind", "idcard", "--port", sim.port, "--reveal")
    assert read == {
        "kind": "idcard",
        "reader": "watch",
        "card_type": "resident",
        "name": "李四",
        "sex": "1",
        "ethnicity": "01",
        "birth": "1949-12-31",
        "address": "北京市东城区景山前街4号",
        "id_number": ID_NUMBER,
        "authority": "北京市公安局东城分局",
        "valid_from": "2015-01-01",
        "valid_to": None,
    }


def test_wiegand_cannot_be_simulated_and_says_why() -> None:
    result = CliRunner().invoke(app, ["reader", "simulate", "--kind", "wiegand"])
    assert result.exit_code == 2
    assert "GPIO" in result.output
    assert "no serial port" in SIMULATE_HELP


def test_malformed_card_is_refused_before_starting(tmp_path: Path) -> None:
    link = tmp_path / "pn"
    result = CliRunner().invoke(
        app, ["reader", "simulate", "--kind", "pn532", "--link", str(link), "--tap", "ABC"]
    )
    assert result.exit_code == 2
    assert "4/7/10 bytes" in result.output
    assert not link.exists()


def test_a_real_file_is_never_replaced_by_the_port(tmp_path: Path) -> None:
    device = tmp_path / "ttyUSB0"
    device.write_text("not a symlink")
    result = CliRunner().invoke(
        app, ["reader", "simulate", "--kind", "rdm6300", "--link", str(device)]
    )
    assert result.exit_code == 2
    assert device.read_text() == "not a symlink"
