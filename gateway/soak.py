"""Kill the gateway with SIGKILL at random moments while events flow, and count what survives.

Used by the fault tests (20 trials) and by ``doorgate bench faults --trials 100``. The gateway runs
as a child process (``python -m gateway run``) reading a simulated RDM6300; the station consumer
runs here. An event counts as accepted once it is in the gateway's access log; at the end every
accepted event must be at the station exactly once.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from drivers.simulators.rdm6300 import Rdm6300Simulator
from rules.model import CredentialKind, Unit
from station.consumer import StationConsumer
from station.store import StationStore
from sync.mqtt import BrokerSettings
from sync.store import Store

KEY = "soak-test-hash-key-0123456789abcdef"


@dataclass
class SoakResult:
    """What the trials produced."""

    trials: int
    accepted: int
    received: int
    lost: int
    duplicates: int
    seconds: float

    def as_dict(self) -> dict[str, Any]:
        """Plain data for JSON output."""
        return asdict(self)


def write_soak_config(folder: Path, port: str, broker_url: str) -> Path:
    """Config for the gateway under test (fast heartbeat, short debounce)."""
    (folder / "hash_key").write_text(KEY)
    path = folder / "doorgate.toml"
    path.write_text(
        f"""[site]
site = "soak"
gateway = "gw-{os.getpid()}"

[store]
path = "gateway.db"

[broker]
url = "{broker_url}"

[uplink]
window = 50
heartbeat_s = 5

[station]
approval = "local"

[[readers]]
name = "entrance"
kind = "rdm6300"
port = "{port}"
debounce_s = 0.05
""",
        encoding="utf-8",
    )
    store = Store.open(folder / "gateway.db", KEY.encode())
    store.add_unit(Unit("A-101", "A", 1, "101", 4))
    occupant = store.add_occupant(
        "A-101", "测试", "11010519491231002X", date.today() - timedelta(days=1), None
    )
    store.approve(occupant.id, by="soak")
    store.add_card(occupant.id, CredentialKind.IC, "67003B51C6")
    store.close()
    return path


class SoakRun:
    """One gateway child process after another, each killed while taps arrive."""

    def __init__(self, folder: Path, broker_url: str, *, rng: random.Random) -> None:
        self.folder = folder
        self.broker_url = broker_url
        self.rng = rng
        self.simulator = Rdm6300Simulator(folder / "rdm6300")
        self.serial = 0

    def start_gateway(self, config: Path) -> subprocess.Popen[bytes]:
        """Launch ``python -m gateway run`` with its output in a log file."""
        log = (self.folder / "gateway.log").open("ab")
        return subprocess.Popen(
            [sys.executable, "-m", "gateway", "run", "--config", str(config)],
            stdout=log,
            stderr=log,
            env={**os.environ, "DOORGATE_LANG": "en"},
        )

    async def tap_burst(self, count: int) -> None:
        """Distinct cards in quick succession (each one is a decision)."""
        for _ in range(count):
            self.serial += 1
            await self.simulator.tap(0x10000000 + self.serial, version=0x42, repeats=1)
            await asyncio.sleep(self.rng.uniform(0.005, 0.03))

    def accepted(self) -> set[str]:
        """Event ids in the gateway's access log (read-only, beside the running daemon)."""
        store = Store.open(self.folder / "gateway.db", KEY.encode())
        try:
            return store.access_ids()
        finally:
            store.close()

    def outbox_depth(self) -> int:
        """Rows still waiting for the broker."""
        store = Store.open(self.folder / "gateway.db", KEY.encode())
        try:
            return store.outbox_depth()
        finally:
            store.close()


async def _wait_until_reading(run: SoakRun, timeout: float) -> None:
    # A starting reader discards what queued up on the line, so keep tapping until one counts.
    before = len(run.accepted())
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        await run.tap_burst(1)
        for _ in range(5):
            await asyncio.sleep(0.1)
            if len(run.accepted()) > before:
                return
    raise TimeoutError(f"the gateway did not decide on a card within {timeout} s")


async def run_kill_trials(
    folder: Path, broker_url: str, *, trials: int = 20, seed: int | None = None
) -> SoakResult:
    """Run `trials` kill -9 trials, then drain, and compare gateway and station."""
    started = time.monotonic()
    run = SoakRun(folder, broker_url, rng=random.Random(seed))
    run.simulator.plug()
    config = write_soak_config(folder, run.simulator.port, broker_url)
    station = StationStore(folder / "station.db")
    consumer = StationConsumer(
        station, BrokerSettings.from_url(broker_url, f"soak-station-{os.getpid()}")
    )
    consumer_task = asyncio.create_task(consumer.run(), name="soak-station")
    try:
        async with asyncio.timeout(15):
            await consumer.connected.wait()
        for _ in range(trials):
            await _one_trial(run, config)
        await _drain(run, config, station)
        accepted = run.accepted()
        received = station.event_ids() & accepted
        return SoakResult(
            trials,
            len(accepted),
            len(received),
            len(accepted - received),
            station.duplicates,
            round(time.monotonic() - started, 1),
        )
    finally:
        consumer_task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await consumer_task
        station.close()
        run.simulator.unplug()


async def _one_trial(run: SoakRun, config: Path) -> None:
    proc = run.start_gateway(config)
    try:
        await _wait_until_reading(run, timeout=30)
        burst = asyncio.create_task(run.tap_burst(run.rng.randint(5, 15)))
        await asyncio.sleep(run.rng.uniform(0.0, 0.25))
        proc.send_signal(signal.SIGKILL)
        await burst
    finally:
        proc.kill()
        proc.wait()


async def _drain(run: SoakRun, config: Path, station: StationStore) -> None:
    proc = run.start_gateway(config)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            accepted = run.accepted()
            if run.outbox_depth() == 0 and accepted <= station.event_ids():
                return
            await asyncio.sleep(0.1)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
