"""The station's floor plan: the gateway's retained ``units`` topic, stored and merged.

A real gateway (simulated reader and door) publishes every unit's capacity, counts and colour;
a real station consumer stores it; the dashboard's view merges it with the station's own
alerts. A forced door turns the unit red, and it stays red after the door closes until the
station acknowledges the alert.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import jsonschema
import pytest

from drivers.door import SimulatedDoor
from drivers.simulators.rdm6300 import Rdm6300Simulator
from gateway.app import Gateway
from gateway.config import broker_settings, load_config, read_secret
from rules.model import Unit
from station.consumer import StationConsumer
from station.store import StationStore
from station.web.store import WebStore
from sync.contract import load_schema
from sync.mqtt import BrokerSettings
from sync.store import Store

pytestmark = pytest.mark.broker


async def wait_until(predicate: Any, timeout: float = 10.0) -> Any:
    async with asyncio.timeout(timeout):
        while not (value := predicate()):
            await asyncio.sleep(0.05)
    return value


def cell(web: WebStore, site: str, gateway: str, unit: str) -> dict[str, Any] | None:
    return next((u for u in web.units(site, gateway) if u["unit"] == unit), None)


async def test_units_reach_the_station_with_capacity_and_colour(
    tmp_path: Path, simulator: Rdm6300Simulator, broker: Any, gw: SimpleNamespace
) -> None:
    path = gw.write_config(tmp_path, simulator.port, broker.url)
    path.write_text(path.read_text() + "\n[rules]\ntick_s = 0.2\n", encoding="utf-8")
    config = load_config(path)
    key = read_secret(config.secrets.hash_key_file, path)
    store = Store.open(config.store.path, key)
    gw.seed(store)
    store.add_unit(Unit("A-102", "A", 1, "102", 1))
    store.close()
    site, name = config.site.site, config.site.gateway

    station = StationStore(tmp_path / "station.db")
    web = WebStore(station)
    consumer = StationConsumer(station, BrokerSettings.from_url(broker.url, "station-plan"))
    gateway = Gateway(config, hash_key=key, broker=broker_settings(config, path))
    async with gateway:
        tasks = [asyncio.create_task(consumer.run()), asyncio.create_task(gateway.run())]
        try:
            await check_plan(gateway, station, web, site, name)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    rows = station.db.query("SELECT payload FROM floor_plans")
    validator = jsonschema.Draft202012Validator(load_schema("units"))
    validator.validate(json.loads(rows[0]["payload"]))
    assert "张" not in rows[0]["payload"] and "1101" not in rows[0]["payload"]
    station.close()


async def check_plan(
    gateway: Gateway, station: StationStore, web: WebStore, site: str, name: str
) -> None:
    await wait_until(lambda: station.floor_plan(site, name))
    plan = {u["unit"]: u for u in station.floor_plan(site, name) or []}
    assert plan["A-101"] | {"reasons": None} == {
        "unit": "A-101", "building": "A", "floor": 1, "room": "101", "capacity": 2,
        "registered": 1, "pending": 1, "inside": 0, "colour": "yellow", "reasons": None,
    }
    assert plan["A-101"]["reasons"] == ["pending:1"]
    assert plan["A-102"]["colour"] == "grey"
    a101 = cell(web, site, name, "A-101")
    assert a101 is not None and a101["capacity"] == 2

    # A forced door: red at the gateway, and at the station until acknowledged.
    door = gateway.doors["main"]
    assert isinstance(door, SimulatedDoor)
    door.open_contact()
    await wait_until(lambda: (cell(web, site, name, "A-102") or {}).get("colour") == "red")
    assert "door_forced:main" in (cell(web, site, name, "A-102") or {})["reasons"]
    door.close_contact()
    await wait_until(lambda: all(
        u["colour"] != "red" for u in station.floor_plan(site, name) or []
    ))
    assert (cell(web, site, name, "A-101") or {})["colour"] == "red"  # not acknowledged
    buildings = web.buildings()
    assert buildings[0]["colour"] == "red"
    forced = next(a for a in station.open_alerts() if a["kind"] == "door_forced")
    assert station.ack_alert(forced["id"], "officer")
    assert (cell(web, site, name, "A-101") or {})["colour"] == "yellow"
    assert (cell(web, site, name, "A-102") or {})["colour"] == "grey"
