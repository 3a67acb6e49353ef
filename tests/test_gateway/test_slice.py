"""The walking skeleton end to end: simulated reader bytes → decision → outbox → broker."""

from __future__ import annotations

import asyncio
import json
from datetime import date
from pathlib import Path

import aiomqtt
import jsonschema
import pytest

from drivers.door import SimulatedDoor
from drivers.idcard import IdCardRead, IdCardType
from drivers.simulators.rdm6300 import Rdm6300Simulator
from gateway.app import Gateway, Outcome
from gateway.config import CameraConfig, ReaderConfig, broker_settings, load_config, read_secret
from rules.identity import check_character, keyed_hash
from rules.model import Reason
from sync.contract import load_schema
from sync.errors import StoreFull
from sync.store import Store

pytestmark = pytest.mark.broker
RAW_SECRETS = [
    "67003B51C6",
    "67003b51c6",
    "67003BA86C",
    "11010519491231002X",
    "440524188001010014",
    "张伟",
]


async def start(
    gw, tmp_path: Path, sim: Rdm6300Simulator, url: str
) -> tuple[Gateway, dict[str, str]]:
    path = gw.write_config(tmp_path, sim.port, url)
    config = load_config(path)
    key = read_secret(config.secrets.hash_key_file, path)
    store = Store.open(config.store.path, key)
    ids = gw.seed(store)
    store.close()
    gateway = Gateway(config, hash_key=key, broker=broker_settings(config, path))
    return gateway, ids


async def subscribe_all(
    port: int, out: list[tuple[str, dict[str, object]]], ready: asyncio.Event
) -> None:
    async with aiomqtt.Client("127.0.0.1", port, identifier="outsider") as client:
        await client.subscribe("doorgate/v1/#", qos=1)
        ready.set()
        async for message in client.messages:
            out.append((str(message.topic), json.loads(message.payload)))  # type: ignore[arg-type]


async def wait_until(predicate, timeout: float = 10.0) -> None:  # type: ignore[no-untyped-def]
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.02)


async def test_tap_to_broker_with_garbage_split_frames_and_replug(
    tmp_path: Path, simulator: Rdm6300Simulator, broker, gw
) -> None:
    gateway, ids = await start(gw, tmp_path, simulator, broker.url)
    messages: list[tuple[str, dict[str, object]]] = []
    ready = asyncio.Event()
    outcomes: list[Outcome] = []
    async with gateway:
        gateway.callbacks.append(outcomes.append)
        sub = asyncio.create_task(subscribe_all(broker.port, messages, ready))
        await ready.wait()
        run = asyncio.create_task(gateway.run())
        await wait_until(lambda: gateway.health.get("entrance", {}).get("connected"))

        await simulator.send(b"\x02ZZ noise \x03\xff\x00")  # garbage first
        await simulator.tap(0x003B51C6, version=0x67, repeats=3)  # approved, repeated frames
        await asyncio.sleep(0.3)
        frame = bytes.fromhex("02") + b"67003BA86C" + b"98" + bytes.fromhex("03")
        await simulator.send(frame, chunk=3, gap=0.01)  # pending card, split frame
        await wait_until(lambda: len(outcomes) == 2)

        simulator.unplug()  # USB cable pulled
        await wait_until(lambda: not gateway.health["entrance"]["connected"])
        simulator.plug()
        await wait_until(lambda: gateway.health["entrance"]["connected"], timeout=20)
        await simulator.tap(0xDEADBEEF, version=0x01, repeats=1)  # unknown card
        await wait_until(lambda: len([m for m in messages if "event/access" in m[0]]) == 3)
        run.cancel()
        sub.cancel()
        door = gateway.doors["main"]
        assert isinstance(door, SimulatedDoor)
        unlocks = [c for c in door.commands if not c.locked]

    assert [o.decision.reasons for o in outcomes] == [
        (Reason.GRANTED,),
        (Reason.PENDING,),
        (Reason.UNKNOWN_CREDENTIAL,),
    ]
    assert [o.occupant.id if o.occupant else None for o in outcomes] == [
        ids["approved"],
        ids["pending"],
        None,
    ]
    assert len(unlocks) == 1
    assert max(o.latency_ms for o in outcomes) < 500

    schema = jsonschema.Draft202012Validator(load_schema("event_access"))
    events = [p for t, p in messages if t.endswith("/event/access")]
    for event in events:
        schema.validate(event)
    assert [e["id"] for e in events] == [o.record.id for o in outcomes]
    assert [e["decision"] for e in events] == ["allow", "deny", "deny"]
    statuses = [p for t, p in messages if t.endswith("/status")]
    assert statuses and statuses[0]["state"] == "online"
    dump = json.dumps([p for _, p in messages], ensure_ascii=False)
    for secret in RAW_SECRETS:
        assert secret not in dump


async def test_daemon_decides_while_broker_is_down_and_delivers_later(
    tmp_path: Path, simulator: Rdm6300Simulator, broker, gw
) -> None:
    broker.stop()
    gateway, _ = await start(gw, tmp_path, simulator, broker.url)
    outcomes: list[Outcome] = []
    async with gateway:
        gateway.callbacks.append(outcomes.append)
        run = asyncio.create_task(gateway.run())
        await wait_until(lambda: gateway.health.get("entrance", {}).get("connected"))
        await simulator.tap(0x003B51C6, version=0x67, repeats=1)
        await wait_until(lambda: len(outcomes) == 1)
        store = gateway.store
        assert await store.run(store.store.outbox_depth) == 1
        assert outcomes[0].decision.allowed  # the door opens with the network down
        broker.start()
        await wait_until(lambda: gateway.uplink.acked == 1, timeout=40)
        assert await store.run(store.store.outbox_depth) == 0
        run.cancel()


async def test_alerts_from_the_rules_reach_the_broker(
    tmp_path: Path, simulator: Rdm6300Simulator, broker, gw
) -> None:
    gateway, _ = await start(gw, tmp_path, simulator, broker.url)
    messages: list[tuple[str, dict[str, object]]] = []
    ready = asyncio.Event()
    async with gateway:
        sub = asyncio.create_task(subscribe_all(broker.port, messages, ready))
        await ready.wait()
        run = asyncio.create_task(gateway.run())
        await wait_until(lambda: gateway.health.get("entrance", {}).get("connected"))
        door = gateway.doors["main"]
        assert isinstance(door, SimulatedDoor)
        door.open_contact()  # nobody was granted: forced
        await asyncio.sleep(0.2)
        door.close_contact()
        for _ in range(5):  # the same unknown card, five times
            await simulator.tap(0xBADCAFE, version=0x01, repeats=1)
            await asyncio.sleep(0.35)
        await wait_until(lambda: any(t.endswith("alert/repeated_denial") for t, _ in messages))
        await wait_until(lambda: any(t.endswith("alert/door_forced") for t, _ in messages))
        run.cancel()
        sub.cancel()
    schema = jsonschema.Draft202012Validator(load_schema("alert"))
    alerts = [p for t, p in messages if "/alert/" in t]
    for alert in alerts:
        schema.validate(alert)
    forced = next(p for t, p in messages if t.endswith("alert/door_forced"))
    assert forced["state"] == "raised"
    assert forced["key"] == "main"
    denial = next(p for t, p in messages if t.endswith("alert/repeated_denial"))
    assert len(denial["evidence"]) == 5  # type: ignore[arg-type]
    doors = [p["action"] for t, p in messages if t.endswith("event/door")]
    assert doors[:2] == ["forced", "closed"]
    dump = json.dumps(alerts)
    assert "0BADCAFE" not in dump.upper()


async def test_a_full_disk_keeps_the_door_working_and_says_so(
    tmp_path: Path, simulator: Rdm6300Simulator, broker, gw
) -> None:
    gateway, _ = await start(gw, tmp_path, simulator, broker.url)
    path = tmp_path / "doorgate.toml"
    text = path.read_text().replace(
        'path = "gateway.db"', 'path = "gateway.db"\nmin_free_mb = 1e12'
    )
    path.write_text(text + "\n[rules]\ntick_s = 0.2\n")
    gateway.config = load_config(path)
    messages: list[tuple[str, dict[str, object]]] = []
    ready = asyncio.Event()
    outcomes: list[Outcome] = []
    async with gateway:
        gateway.callbacks.append(outcomes.append)
        sub = asyncio.create_task(subscribe_all(broker.port, messages, ready))
        await ready.wait()
        run = asyncio.create_task(gateway.run())
        await wait_until(lambda: any(t.endswith("alert/storage_low") for t, _ in messages))
        low = next(p for t, p in messages if t.endswith("alert/storage_low"))
        assert low["counts"]["free_mb"] > 0  # type: ignore[index]
        assert "MB left" in str(low["message"])

        db = gateway.store.store.db
        pages = db.execute("PRAGMA page_count").fetchone()[0]
        await gateway.store.run(db.execute, f"PRAGMA max_page_count = {pages + 2}")

        def fill() -> None:
            for size in (3000, 300, 30, 1):  # down to the last free byte of the last page
                for i in range(10_000):
                    try:
                        gateway.store.store.set_state(f"pad{size}-{i}", "x" * size)
                    except StoreFull:
                        break

        await gateway.store.run(fill)
        for serial in range(60):  # each decision needs room; the last free bytes go quickly
            await simulator.tap(0x100 + serial, version=0x67, repeats=1)
            await wait_until(lambda n=serial: len(outcomes) == n + 1)
            if gateway.storage["full"]:
                break
        assert gateway.storage["full"]
        door = gateway.doors["main"]
        assert isinstance(door, SimulatedDoor)
        await simulator.tap(0x003B51C6, version=0x67, repeats=1)  # the approved card, disk full
        await wait_until(lambda: not door.locked)  # the door still opens
        await wait_until(
            lambda: any(
                t.endswith("/status") and p.get("storage", {}).get("full")  # type: ignore[union-attr]
                for t, p in messages
            ),
            timeout=5,
        )
        run.cancel()
        sub.cancel()


async def test_home_assistant_discovery_is_announced_when_enabled(
    tmp_path: Path, simulator: Rdm6300Simulator, broker, gw
) -> None:
    gateway, _ = await start(gw, tmp_path, simulator, broker.url)
    path = tmp_path / "doorgate.toml"
    path.write_text(path.read_text() + "\n[homeassistant]\nenabled = true\n")
    gateway.config = load_config(path)
    found: list[tuple[str, dict[str, object]]] = []
    async with gateway:
        run = asyncio.create_task(gateway.run())
        await wait_until(gateway.uplink.connected.is_set)
        async with aiomqtt.Client("127.0.0.1", broker.port, identifier="ha") as client:
            await client.subscribe("homeassistant/#", qos=1)
            await client.subscribe(gateway.topics.status, qos=1)
            async with asyncio.timeout(10):
                async for message in client.messages:
                    found.append((str(message.topic), json.loads(message.payload)))  # type: ignore[arg-type]
                    if len(found) == 2:
                        break
        run.cancel()
    topics = {t for t, _ in found}
    assert f"homeassistant/device/{gateway.topics.site}/gw-test/config" in topics
    status = next(p for t, p in found if t.endswith("/status"))
    assert status["headcount"] == 0
    jsonschema.validate(status, load_schema("status"))


def id_number(serial: int) -> str:
    first17 = f"11010519900307{serial:03d}"
    return first17 + check_character(first17)


def id_read(number: str) -> IdCardRead:
    return IdCardRead(
        IdCardType.RESIDENT, "测试", "1", "01", date(1990, 3, 7), "北京", number, "北京公安局",
        date(2020, 1, 1), None, b"", "idcard", 0.0,
    )  # fmt: skip


async def test_repeated_denial_counts_each_id_card_and_face_apart(
    tmp_path: Path, simulator: Rdm6300Simulator, broker, gw
) -> None:
    # The daemon resolves ID cards and faces to credentials with the id 0; five denials spread
    # over five people must not add up to one person's repeated_denial.
    gateway, _ = await start(gw, tmp_path, simulator, broker.url)
    key = read_secret(gateway.config.secrets.hash_key_file, tmp_path / "doorgate.toml")
    store = Store.open(gateway.config.store.path, key)
    numbers = [id_number(i) for i in range(5)]
    pending = [
        store.add_occupant("A-101", f"P{i}", n, date.today(), None).id  # pending approval
        for i, n in enumerate(numbers)
    ]
    store.close()
    reader = ReaderConfig(name="idcard", kind="idcard", port="socket://127.0.0.1:1")
    camera = CameraConfig(name="cam", source="0", door="main")
    async with gateway:
        for number in numbers:
            await gateway.handle_card(id_read(number), reader)
        for occupant in pending:
            await gateway.handle_face(occupant, camera, 0.0)
        rows = await gateway.store.run(gateway.store.store.outbox_batch, 1000)
        assert not [r for r in rows if r.topic.endswith("alert/repeated_denial")]
        for _ in range(5):
            await gateway.handle_card(id_read(numbers[2]), reader)
            await gateway.handle_face(pending[4], camera, 0.0)
        rows = await gateway.store.run(gateway.store.store.outbox_batch, 1000)
    alerts = [json.loads(r.payload) for r in rows if r.topic.endswith("alert/repeated_denial")]
    digest = keyed_hash(key, "idcard", numbers[2])
    assert sorted(a["key"] for a in alerts) == sorted(
        [f"idcard:{digest[:16]}", f"face:{pending[4]}"]
    )
    assert all(len(a["evidence"]) == 5 for a in alerts)
    dump = json.dumps(alerts)
    assert digest not in dump
    assert not any(n in dump for n in numbers)
