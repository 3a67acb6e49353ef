"""The station: parse, de-duplicate and store what gateways publish."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import aiomqtt
import pytest
from hypothesis import given
from hypothesis import strategies as st

from station.consumer import MalformedMessage, StationConsumer, parse_message
from station.store import StationStore
from sync.mqtt import BrokerSettings

TOPIC = "doorgate/v1/s1/g1/event/access"


def payload(event_id: str = "e1", site: str = "s1") -> bytes:
    return json.dumps(
        {
            "schema": "doorgate.event.access/1",
            "id": event_id,
            "ts": "2026-01-01T00:00:00.000Z",
            "site": site,
            "gateway": "g1",
            "decision": "allow",
        }
    ).encode()


@pytest.mark.parametrize(
    ("topic", "raw", "message"),
    [
        ("other/v1/s1/g1/event/access", payload(), "not a doorgate"),
        (TOPIC, b"{not json", "not JSON"),
        (TOPIC, b"\xff\xfe", "not JSON"),
        (TOPIC, b"[1, 2]", "lacks"),
        (TOPIC, json.dumps({"id": "x"}).encode(), "lacks"),
        (TOPIC, payload(site="s2"), "claims s2/g1"),
    ],
)
def test_malformed_messages_are_named(topic: str, raw: bytes, message: str) -> None:
    with pytest.raises(MalformedMessage, match=message):
        parse_message(topic, raw)


@given(st.binary(max_size=200))
def test_parser_never_raises_anything_else(raw: bytes) -> None:
    try:
        parse_message(TOPIC, raw)
    except MalformedMessage:
        pass


def test_duplicates_are_stored_once(tmp_path: Path) -> None:
    store = StationStore(tmp_path / "s.db")
    consumer = StationConsumer(store, BrokerSettings())
    consumer.handle(TOPIC, payload("e1"))
    consumer.handle(TOPIC, payload("e1"))
    consumer.handle(TOPIC, b"garbage")
    consumer.handle(TOPIC, payload("e2"))
    assert store.event_ids() == {"e1", "e2"}
    assert store.duplicates == 1
    assert consumer.rejected == 1
    store.close()


@pytest.mark.broker
async def test_consumer_receives_over_a_real_broker(broker, tmp_path: Path) -> None:
    store = StationStore(tmp_path / "s.db")
    seen: list[str] = []
    consumer = StationConsumer(
        store,
        BrokerSettings.from_url(broker.url, "station-t"),
        on_event=lambda kind, p, new: seen.append(f"{kind}:{p['id']}:{new}"),
    )
    task = asyncio.create_task(consumer.run())
    async with asyncio.timeout(10):
        await consumer.connected.wait()
    async with aiomqtt.Client("127.0.0.1", broker.port) as client:
        for event_id in ("a", "b", "a"):
            await client.publish(TOPIC, payload(event_id), qos=1)
        await client.publish("doorgate/v1/s1/g1/event/access", b"{broken", qos=1)
    async with asyncio.timeout(10):
        while len(seen) < 3:
            await asyncio.sleep(0.02)
    task.cancel()
    assert seen == ["event/access:a:True", "event/access:b:True", "event/access:a:False"]
    assert store.event_ids() == {"a", "b"}
    store.close()


@pytest.mark.broker
async def test_consumer_into_postgresql(broker, postgres_url: str) -> None:
    store = StationStore(postgres_url)
    consumer = StationConsumer(store, BrokerSettings.from_url(broker.url, "station-pg"))
    task = asyncio.create_task(consumer.run())
    async with asyncio.timeout(10):
        await consumer.connected.wait()
    async with aiomqtt.Client("127.0.0.1", broker.port) as client:
        for event_id in ("p1", "p2", "p1"):
            await client.publish(TOPIC, payload(event_id), qos=1)
    async with asyncio.timeout(10):
        while store.duplicates < 1:
            await asyncio.sleep(0.02)
    task.cancel()
    assert store.event_ids() == {"p1", "p2"}
    store.close()


@pytest.mark.broker
async def test_shared_subscription_splits_the_load(broker, tmp_path: Path) -> None:
    if broker.kind != "mosquitto":
        pytest.skip("shared subscriptions need Mosquitto (amqtt lacks $share)")
    stores = [StationStore(tmp_path / "station.db") for _ in range(2)]
    seen: list[list[str]] = [[], []]
    consumers = [
        StationConsumer(stores[i], BrokerSettings.from_url(broker.url, f"station-{i}"), share_group="g",
                        on_event=lambda kind, p, new, i=i: seen[i].append(p["id"]))
        for i in range(2)
    ]
    tasks = [asyncio.create_task(c.run()) for c in consumers]
    async with asyncio.timeout(10):
        for c in consumers:
            await c.connected.wait()
    async with aiomqtt.Client("127.0.0.1", broker.port) as client:
        for i in range(40):
            await client.publish(TOPIC, payload(f"e{i}"), qos=1)
    async with asyncio.timeout(10):
        while len(seen[0]) + len(seen[1]) < 40:
            await asyncio.sleep(0.02)
    for task in tasks:
        task.cancel()
    assert seen[0] and seen[1]  # both did some of the work
    assert not set(seen[0]) & set(seen[1])  # and no message went to both
    assert stores[0].event_ids() == {f"e{i}" for i in range(40)}
    for store in stores:
        store.close()


@pytest.mark.broker
async def test_consumer_tells_systemd_it_is_ready_and_pings_the_watchdog(
    broker, tmp_path: Path, monkeypatch
) -> None:
    import socket

    path = tmp_path / "notify.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(path))
        sock.setblocking(False)
        monkeypatch.setenv("NOTIFY_SOCKET", str(path))
        monkeypatch.setenv("WATCHDOG_USEC", "200000")
        monkeypatch.delenv("WATCHDOG_PID", raising=False)
        store = StationStore(tmp_path / "s.db")
        consumer = StationConsumer(store, BrokerSettings.from_url(broker.url, "station-notify"))
        task = asyncio.create_task(consumer.run())
        loop = asyncio.get_running_loop()
        messages: list[str] = []
        async with asyncio.timeout(10):
            while not any(m.startswith("READY=1") for m in messages) or messages.count("WATCHDOG=1") < 2:
                messages.append((await loop.sock_recv(sock, 1024)).decode())
        task.cancel()
        store.close()
    ready = next(m for m in messages if m.startswith("READY=1"))
    assert "STATUS=subscribed to doorgate/v1/+/+/#" in ready
