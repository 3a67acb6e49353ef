"""The uplink: publishes the outbox at QoS 1 and deletes a row only after the broker's PUBACK.

Rows go out in sequence order with a window of publishes in flight (order on the wire is the
order of `publish` calls, so per-topic order holds). After a disconnect the uplink starts again
from the oldest row still in the outbox: delivery is at least once, the station de-duplicates.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import aiomqtt

from sync.contract import SCHEMA_STATUS, Topics, dumps, envelope, new_event_id
from sync.downlink import Downlink
from sync.errors import LinkError
from sync.mqtt import BrokerSettings, make_client
from sync.store import AsyncStore, OutboxRow

logger = logging.getLogger(__name__)

HealthProvider = Callable[[], Mapping[str, Mapping[str, Any]]]


def _backoff(attempt: int, cap: float) -> float:
    # Full jitter, so gateways of a district do not reconnect in lockstep after a broker restart.
    ceiling = min(cap, 0.5 * 2 ** min(attempt, 12))
    return random.uniform(ceiling / 2, ceiling)


class Uplink:
    """Drains the outbox to the broker and keeps the retained status topic current.

    Args:
        store: the gateway store (outbox rows are read and deleted through it).
        topics: this gateway's topic names.
        broker: how to reach the broker.
        version: software version reported in the status.
        health: returns reader/camera health for the status payload.
        window: publishes awaiting PUBACK at once (≈100 is fastest with paho, see DESIGN).
        heartbeat: seconds between status refreshes.
        max_backoff: cap of the reconnect delay in seconds.
    """

    def __init__(
        self,
        store: AsyncStore,
        topics: Topics,
        broker: BrokerSettings,
        *,
        version: str = "0",
        health: HealthProvider | None = None,
        window: int = 100,
        heartbeat: float = 30.0,
        max_backoff: float = 30.0,
    ) -> None:
        self.store = store
        self.topics = topics
        self.broker = broker
        self.version = version
        self.health = health or (lambda: {})
        self.window = window
        self.heartbeat = heartbeat
        self.max_backoff = max_backoff
        self.connected = asyncio.Event()
        self.acked = 0
        self._wake = asyncio.Event()
        self._started = time.monotonic()
        self._on_acked: list[Callable[[list[OutboxRow]], None]] = []
        self.downlink: Downlink | None = None

    def notify(self) -> None:
        """Tell the uplink that new rows wait in the outbox (saves a poll interval)."""
        self._wake.set()

    def on_acked(self, callback: Callable[[list[OutboxRow]], None]) -> None:
        """Register `callback(rows)` called after rows were acknowledged and deleted."""
        self._on_acked.append(callback)

    async def run(self) -> None:
        """Connect, publish, and reconnect forever with jittered backoff."""
        attempt = 0
        while True:
            failure: BaseException | None = None
            try:
                await self._session()
            # The session's TaskGroup wraps a dropped link in an ExceptionGroup.
            except* (aiomqtt.MqttError, LinkError, OSError) as group:
                failure = group.exceptions[0]
            if failure is None:
                attempt = 0
                continue
            self.connected.clear()
            delay = _backoff(attempt, self.max_backoff)
            depth = await self.store.run(self.store.store.outbox_depth)
            logger.warning(
                "uplink: broker %s unreachable (%s); %d queued; retry in %.1f s",
                self.broker.url,
                failure,
                depth,
                delay,
            )
            attempt += 1
            await asyncio.sleep(delay)

    def _status(self, state: str) -> str:
        payload = envelope(SCHEMA_STATUS, new_event_id(), datetime.now(UTC), self.topics)
        payload["state"] = state
        if state == "online":
            payload["version"] = self.version
            payload["uptime_s"] = round(time.monotonic() - self._started, 1)
            payload["readers"] = {k: dict(v) for k, v in self.health().items()}
        return dumps(payload)

    async def _session(self) -> None:
        will = aiomqtt.Will(self.topics.status, self._status("offline"), qos=1, retain=True)
        async with make_client(self.broker, will=will) as client:
            logger.info("uplink: connected to %s", self.broker.url)
            self.connected.set()
            await self._publish_status(client)
            try:
                async with asyncio.TaskGroup() as tasks:
                    tasks.create_task(self._drain(client), name="uplink-drain")
                    tasks.create_task(self._heartbeat(client), name="uplink-heartbeat")
                    if self.downlink is not None:
                        tasks.create_task(self._commands(client, self.downlink), name="downlink")
            except asyncio.CancelledError:
                await self._say_offline(client)
                raise

    async def _say_offline(self, client: aiomqtt.Client) -> None:
        # A clean shutdown sends DISCONNECT, which suppresses the last will: say it ourselves.
        try:
            await client.publish(
                self.topics.status, self._status("offline"), qos=1, retain=True, timeout=2
            )
        except (aiomqtt.MqttError, TimeoutError) as err:
            logger.warning("uplink: could not publish offline status: %s", err)

    async def _commands(self, client: aiomqtt.Client, downlink: Downlink) -> None:
        # Same connection and persistent session: commands sent while we were away are queued.
        await client.subscribe(downlink.subscription, qos=1)
        async for message in client.messages:
            raw = message.payload
            data = bytes(raw) if isinstance(raw, bytes | bytearray) else str(raw).encode()
            await downlink.handle(str(message.topic), data)

    async def _publish_status(self, client: aiomqtt.Client) -> None:
        status = json.loads(self._status("online"))
        status["outbox_depth"] = await self.store.run(self.store.store.outbox_depth)
        await client.publish(self.topics.status, dumps(status), qos=1, retain=True)

    async def _heartbeat(self, client: aiomqtt.Client) -> None:
        while True:
            await asyncio.sleep(self.heartbeat)
            await self._publish_status(client)

    async def _drain(self, client: aiomqtt.Client) -> None:
        while True:
            rows = await self.store.run(self.store.store.outbox_batch, self.window)
            if not rows:
                self._wake.clear()
                try:
                    async with asyncio.timeout(1.0):
                        await self._wake.wait()
                except TimeoutError:
                    pass
                continue
            await self._publish_batch(client, rows)

    async def _publish_batch(self, client: aiomqtt.Client, rows: list[OutboxRow]) -> None:
        results = await asyncio.gather(
            *(client.publish(self.topics.topic(r.topic), r.payload, qos=1) for r in rows),
            return_exceptions=True,
        )
        acked = [r for r, res in zip(rows, results, strict=True) if res is None]
        if acked:
            await self.store.run(self.store.store.outbox_delete, [r.seq for r in acked])
            self.acked += len(acked)
            for callback in self._on_acked:
                callback(acked)
        failure = next((res for res in results if isinstance(res, BaseException)), None)
        if failure is not None:
            raise LinkError(f"publish failed after {len(acked)} acks: {failure}") from failure
