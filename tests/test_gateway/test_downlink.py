"""Station → gateway over a real broker: approval round-trip, remote unlock, refused commands."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import aiomqtt
import pytest

from drivers.door import SimulatedDoor
from drivers.simulators.rdm6300 import Rdm6300Simulator
from gateway.app import Gateway, Outcome
from gateway.config import broker_settings, load_config, read_secret, station_public_key
from rules.model import Reason
from station.commands import Commander
from station.store import StationStore
from sync.commands import build_command
from sync.mqtt import BrokerSettings
from sync.signing import generate_keypair, load_private_key
from sync.store import Store

pytestmark = pytest.mark.broker


async def wait_until(predicate, timeout: float = 10.0) -> None:  # type: ignore[no-untyped-def]
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.02)


async def test_station_approves_and_unlocks(
    tmp_path: Path, simulator: Rdm6300Simulator, broker, gw
) -> None:
    path = gw.write_config(tmp_path, simulator.port, broker.url)
    generate_keypair(tmp_path, "station")
    text = path.read_text().replace(
        'approval = "local"', 'approval = "station"\npublic_key_file = "station.pub"'
    )
    path.write_text(text, encoding="utf-8")
    config = load_config(path)
    key = read_secret(config.secrets.hash_key_file, path)
    store = Store.open(config.store.path, key)
    ids = gw.seed(store)
    store.close()
    station_store = StationStore(tmp_path / "station.db")
    commander = Commander(
        BrokerSettings.from_url(broker.url, "station-cmd"),
        load_private_key((tmp_path / "station.key").read_bytes()),
        station_store,
    )
    gateway = Gateway(
        config,
        hash_key=key,
        broker=broker_settings(config, path),
        config_path=path,
        station_key=station_public_key(config, path),
    )
    outcomes: list[Outcome] = []
    async with gateway:
        gateway.callbacks.append(outcomes.append)
        run = asyncio.create_task(gateway.run())
        await wait_until(
            lambda: (
                gateway.uplink.connected.is_set()
                and gateway.health.get("entrance", {}).get("connected")
            )
        )
        await asyncio.sleep(0.3)  # the downlink subscription follows the connection
        site, name = config.site.site, config.site.gateway

        await simulator.tap(0x003BA86C, version=0x67, repeats=1)  # pending: denied
        await wait_until(lambda: len(outcomes) == 1)
        reply = await commander.approve(site, name, ids["pending"], by="officer-7")
        assert reply is not None and reply["code"] == "applied", reply
        await asyncio.sleep(0.3)
        await simulator.tap(0x003BA86C, version=0x67, repeats=1)  # approved now
        await wait_until(lambda: len(outcomes) == 2)

        door = gateway.doors["main"]
        assert isinstance(door, SimulatedDoor)
        await wait_until(lambda: door.locked)  # the tenant's pulse has ended
        before = len([c for c in door.commands if not c.locked])
        _, reply = await commander.send(site, name, "unlock", {"door": "main"})
        assert reply is not None and reply["code"] == "applied"
        assert len([c for c in door.commands if not c.locked]) == before + 1
        _, reply = await commander.send(site, name, "unlock", {"door": "garage"})
        assert reply is not None and not reply["ok"]

        # A forged command: well-formed, signed by someone else's key.
        forged = build_command(
            gateway.topics,
            "unlock",
            {"door": "main"},
            load_private_key(generate_keypair(tmp_path / "x", "evil")[0].read_bytes()),
        )
        replies: list[dict[str, object]] = []
        async with aiomqtt.Client("127.0.0.1", broker.port, identifier="attacker") as client:
            await client.subscribe(gateway.topics.topic(f"reply/{forged['id']}"), qos=1)
            await client.publish(gateway.topics.topic("cmd/unlock"), json.dumps(forged), qos=1)
            async with asyncio.timeout(10):
                async for message in client.messages:
                    replies.append(json.loads(message.payload))  # type: ignore[arg-type]
                    break
        assert replies[0]["code"] == "bad_signature"
        assert len([c for c in door.commands if not c.locked]) == before + 1
        run.cancel()

    assert [o.decision.reasons for o in outcomes] == [(Reason.PENDING,), (Reason.GRANTED,)]
    assert station_store.reply(reply["command_id"]) is not None  # type: ignore[index]
    station_store.close()
