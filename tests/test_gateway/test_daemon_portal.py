"""The portal inside the daemon: real HTTP, the simulated reader's card taken for enrolment.

The card tapped while "tap the card now" waits is bound to the tenant and is not decided as an
entry (no access-log row, the door stays shut). A busy portal port turns the portal off and
keeps the door working.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest

from drivers.door import SimulatedDoor
from drivers.simulators.rdm6300 import Rdm6300Simulator
from gateway.app import Gateway, Outcome
from gateway.broker import free_port
from gateway.config import broker_settings, load_config, read_secret
from rules.model import CredentialKind, Unit
from sync.portal_store import PortalStore
from sync.store import Store

pytestmark = pytest.mark.broker
NEW_CARD = 0x003BCAFE  # RDM6300 version 0x67 → UID 67003BCAFE


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', html)
    assert match, "no CSRF token on the page"
    return match.group(1)


async def wait_until(predicate: Any, timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.05)


def prepare(tmp_path: Path, sim: Rdm6300Simulator, url: str, gw: SimpleNamespace,
            port: int) -> Gateway:
    path = gw.write_config(tmp_path, sim.port, url)
    text = path.read_text(encoding="utf-8")
    path.write_text(text + f'\n[portal]\nlisten = "127.0.0.1:{port}"\ntap_timeout_s = 10\n',
                    encoding="utf-8")
    config = load_config(path)
    key = read_secret(config.secrets.hash_key_file, path)
    store = Store.open(config.store.path, key)
    gw.seed(store)
    store.add_unit(Unit("A-102", "A", 1, "102", 1, landlord="li"))
    PortalStore(store.db).add_user("li", "landlord", "landlord pass")
    store.close()
    return Gateway(config, hash_key=key, broker=broker_settings(config, path))


@contextlib.asynccontextmanager
async def running(gateway: Gateway) -> AsyncIterator[tuple[list[Outcome], asyncio.Task[None]]]:
    """The daemon running with its reader connected; yields its decisions and its task."""
    outcomes: list[Outcome] = []
    async with gateway:
        gateway.callbacks.append(outcomes.append)
        run = asyncio.create_task(gateway.run())
        try:
            await wait_until(lambda: gateway.health.get("entrance", {}).get("connected"))
            yield outcomes, run
        finally:
            run.cancel()
            await asyncio.gather(run, return_exceptions=True)


async def test_tap_the_card_now_through_the_daemon(
    tmp_path: Path, simulator: Rdm6300Simulator, broker: Any, gw: SimpleNamespace
) -> None:
    port = free_port()
    gateway = prepare(tmp_path, simulator, broker.url, gw, port)
    async with running(gateway) as (outcomes, _):
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as web:
            for _ in range(100):
                try:
                    login = await web.get("/login?lang=en")
                    break
                except httpx.ConnectError:
                    await asyncio.sleep(0.05)
            signed = await web.post("/login", data={
                "user": "li", "password": "landlord pass", "csrf": csrf_of(login.text)})
            assert signed.status_code == 303
            page = await web.get("/units/A-102")
            enrol = await web.post("/units/A-102/enrol", data={
                "name": "李娜", "id_number": "320102199003071239", "valid_from": "2026-01-01",
                "valid_to": "", "csrf": csrf_of(page.text)}, timeout=10)
            assert enrol.status_code == 200, enrol.text
            store = gateway.store.store
            occupant = next(o for o in store.list_occupants("A-102"))
            tap = asyncio.create_task(web.post(
                f"/occupants/{occupant.id}/card",
                data={"reader": "entrance", "csrf": csrf_of(enrol.text)}, timeout=15))
            await asyncio.sleep(0.5)  # the request is waiting at the reader
            await simulator.tap(NEW_CARD, version=0x67, repeats=1)
            bound = await tap
        assert bound.status_code == 200 and "******CAFE" in bound.text
        assert "67003BCAFE" not in bound.text
        cards = await gateway.store.run(store.list_cards, occupant.id)
        assert [c["masked"] for c in cards] == ["******CAFE"]
        assert outcomes == []  # an enrolment tap is not an entry
        door = gateway.doors["main"]
        assert isinstance(door, SimulatedDoor) and door.locked and not door.commands[1:]
        # The same card afterwards is decided as usual (pending: denied).
        await asyncio.sleep(0.5)
        await simulator.tap(NEW_CARD, version=0x67, repeats=1)
        await wait_until(lambda: outcomes)
        assert outcomes[0].occupant is not None and outcomes[0].occupant.id == occupant.id
        assert not outcomes[0].decision.allowed
        assert store.resolve_card(CredentialKind.IC, "67003BCAFE")[1] is not None


async def test_a_busy_portal_port_keeps_the_door_working(
    tmp_path: Path, simulator: Rdm6300Simulator, broker: Any, gw: SimpleNamespace,
    caplog: pytest.LogCaptureFixture,
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        gateway = prepare(tmp_path, simulator, broker.url, gw, taken.getsockname()[1])
        async with running(gateway) as (outcomes, run):
            await wait_until(lambda: "the portal is off" in caplog.text)
            await simulator.tap(0x003B51C6, version=0x67, repeats=1)
            await wait_until(lambda: outcomes)
            assert outcomes[0].decision.allowed
            assert not run.done()
