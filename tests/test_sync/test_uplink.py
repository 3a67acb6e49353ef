"""The uplink against a real broker: at-least-once delivery, deletion only after PUBACK."""

from __future__ import annotations

import asyncio
import json
import os
import signal
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import aiomqtt
import pytest

from sync.contract import AccessRecord, Topics, access_payload, dumps, new_event_id
from sync.mqtt import BrokerSettings
from sync.store import AsyncStore, Store
from sync.uplink import Uplink

pytestmark = pytest.mark.broker
SECRET = b"0123456789abcdef0123456789abcdef"


def record(i: int) -> AccessRecord:
    return AccessRecord(
        new_event_id(),
        datetime.now(UTC),
        "main",
        "in",
        "ic",
        f"o{i}",
        "A-101",
        "******51C6",
        "allow",
        ("granted",),
    )


def fill(store: Store, topics: Topics, count: int) -> list[str]:
    ids = []
    for i in range(count):
        rec = record(i)
        store.record_access(rec, "event/access", dumps(access_payload(rec, topics)))
        ids.append(rec.id)
    return ids


@pytest.fixture
async def astore(tmp_path: Path) -> AsyncIterator[AsyncStore]:
    s = AsyncStore(Store.open(tmp_path / "g.db", SECRET))
    yield s
    await s.aclose()


async def collect(
    url: str,
    topic: str,
    want: int,
    received: list[dict[str, object]],
    ready: asyncio.Event,
    *,
    persistent: bool = False,
) -> None:
    settings = BrokerSettings.from_url(url, "test-subscriber")
    async with aiomqtt.Client(
        settings.host, settings.port, identifier="test-sub", clean_session=not persistent
    ) as client:
        await client.subscribe(topic, qos=1)
        ready.set()
        async for message in client.messages:
            received.append(json.loads(message.payload))  # type: ignore[arg-type]
            if len(received) >= want:
                return


async def test_backlog_is_delivered_in_order_and_deleted(broker, astore: AsyncStore) -> None:
    topics = Topics("t-order", "gw1")
    ids = fill(astore.store, topics, 250)
    received: list[dict[str, object]] = []
    ready = asyncio.Event()
    sub = asyncio.create_task(collect(broker.url, topics.topic("event/#"), 250, received, ready))
    await ready.wait()
    uplink = Uplink(astore, topics, BrokerSettings.from_url(broker.url, "gw1"), window=50)
    task = asyncio.create_task(uplink.run())
    async with asyncio.timeout(30):
        await sub
    assert [r["id"] for r in received] == ids
    async with asyncio.timeout(10):
        while await astore.run(astore.store.outbox_depth):
            await asyncio.sleep(0.05)
    task.cancel()
    assert uplink.acked == 250


async def test_broker_down_at_start_then_up_loses_nothing(broker, astore: AsyncStore) -> None:
    topics = Topics("t-down", "gw1")
    received: list[dict[str, object]] = []
    # A persistent subscriber session, made before the outage (as the station's is).
    ready = asyncio.Event()
    first = asyncio.create_task(
        collect(broker.url, topics.topic("event/#"), 1, received, ready, persistent=True)
    )
    await ready.wait()
    first.cancel()
    await asyncio.gather(first, return_exceptions=True)
    broker.stop()
    uplink = Uplink(astore, topics, BrokerSettings.from_url(broker.url, "gw1"), max_backoff=0.5)
    task = asyncio.create_task(uplink.run())
    ids = fill(astore.store, topics, 20)
    await asyncio.sleep(1.0)
    assert not task.done()
    assert not uplink.connected.is_set()
    assert await astore.run(astore.store.outbox_depth) == 20
    broker.start()
    async with asyncio.timeout(20):
        while await astore.run(astore.store.outbox_depth):
            await asyncio.sleep(0.05)
    task.cancel()
    assert uplink.acked == 20
    if broker.kind == "mosquitto":  # amqtt forgets sessions when it restarts
        ready = asyncio.Event()
        async with asyncio.timeout(10):
            await collect(broker.url, topics.topic("event/#"), 20, received, ready, persistent=True)
        assert [r["id"] for r in received] == ids


async def test_rows_stay_until_the_broker_acknowledges(broker, astore: AsyncStore) -> None:
    topics = Topics("t-ack", "gw1")
    uplink = Uplink(astore, topics, BrokerSettings.from_url(broker.url, "gw1"), max_backoff=0.5)
    task = asyncio.create_task(uplink.run())
    async with asyncio.timeout(10):
        await uplink.connected.wait()
    assert broker.proc is not None
    os.kill(broker.proc.pid, signal.SIGSTOP)  # the broker hangs: no PUBACK can come
    try:
        fill(astore.store, topics, 10)
        uplink.notify()
        await asyncio.sleep(1.0)
        assert await astore.run(astore.store.outbox_depth) == 10
    finally:
        os.kill(broker.proc.pid, signal.SIGCONT)
    async with asyncio.timeout(30):
        while await astore.run(astore.store.outbox_depth):
            await asyncio.sleep(0.05)
    task.cancel()


async def test_status_is_retained_online_then_offline(broker, astore: AsyncStore) -> None:
    topics = Topics("t-status", "gw1")
    uplink = Uplink(
        astore,
        topics,
        BrokerSettings.from_url(broker.url, "gw1"),
        health=lambda: {"entrance": {"connected": True}},
    )
    task = asyncio.create_task(uplink.run())
    async with asyncio.timeout(10):
        await uplink.connected.wait()
    await asyncio.sleep(0.2)
    assert (await retained(broker.url, topics.status))["state"] == "online"
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    status = await retained(broker.url, topics.status)
    assert status["state"] == "offline"


async def retained(url: str, topic: str) -> dict[str, object]:
    settings = BrokerSettings.from_url(url, "probe")
    async with aiomqtt.Client(settings.host, settings.port, identifier="probe") as client:
        await client.subscribe(topic, qos=1)
        async with asyncio.timeout(5):
            async for message in client.messages:
                data: dict[str, object] = json.loads(message.payload)  # type: ignore[arg-type]
                return data
    raise AssertionError("no retained status")


async def test_a_backlog_drains_with_progress_in_log_and_status(
    broker, astore: AsyncStore, caplog: pytest.LogCaptureFixture
) -> None:
    from gateway.bench_uplink import fill_outbox

    caplog.set_level("INFO", logger="sync.uplink")
    topics = Topics("t-backlog", "gw1")
    fill_outbox(astore.store, 20_000)
    statuses: list[dict[str, object]] = []
    ready = asyncio.Event()
    sub = asyncio.create_task(collect(broker.url, topics.status, 10_000, statuses, ready))
    await ready.wait()
    uplink = Uplink(astore, topics, BrokerSettings.from_url(broker.url, "gw1"), progress_every=0.3)
    task = asyncio.create_task(uplink.run())
    async with asyncio.timeout(60):
        while await astore.run(astore.store.outbox_depth):
            await asyncio.sleep(0.1)
    task.cancel()
    sub.cancel()
    backlog = [s["backlog"] for s in statuses if "backlog" in s]
    assert backlog, statuses
    lefts = [b["left"] for b in backlog]  # type: ignore[index]
    assert lefts == sorted(lefts, reverse=True)
    assert "draining backlog" in caplog.text
