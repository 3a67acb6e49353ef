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
from collections.abc import Callable, Coroutine, Mapping
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
        window: publishes awaiting PUBACK at once (200 was fastest here: `doorgate bench uplink`).
        heartbeat: seconds between status refreshes.
        max_backoff: cap of the reconnect delay in seconds.
        progress_every: seconds between backlog progress reports (log and status topic).
    """

    def __init__(
        self,
        store: AsyncStore,
        topics: Topics,
        broker: BrokerSettings,
        *,
        version: str = "0",
        health: HealthProvider | None = None,
        window: int = 200,
        heartbeat: float = 30.0,
        max_backoff: float = 30.0,
        progress_every: float = 5.0,
    ) -> None:
        self.store = store
        self.topics = topics
        self.broker = broker
        self.version = version
        self.health = health or (lambda: {})
        self.extra: Callable[[], dict[str, Any]] = dict
        self.window = window
        self.heartbeat = heartbeat
        self.max_backoff = max_backoff
        self.progress_every = progress_every
        self.connected = asyncio.Event()
        self.acked = 0
        self._wake = asyncio.Event()
        self._started = time.monotonic()
        self._on_acked: list[Callable[[list[OutboxRow]], None]] = []
        self.downlink: Downlink | None = None
        # Retained messages (topic, payload) published after every connect, e.g. HA discovery.
        self.announcements: Callable[[], list[tuple[str, str]]] = list
        # Retained snapshots (the floor plan): the latest payload per topic, republished on
        # every connect and whenever it changes. Derived state, rebuilt at start-up, so it
        # does not go through the outbox.
        self._snapshots: dict[str, str] = {}
        self._snapshots_sent: dict[str, str] = {}
        self._snapshot_wake = asyncio.Event()

    def notify(self) -> None:
        """Tell the uplink that new rows wait in the outbox (saves a poll interval)."""
        self._wake.set()

    def set_retained(self, topic: str, payload: str) -> None:
        """Publish `payload` retained on `topic` now (or on the next connect)."""
        self._snapshots[topic] = payload
        self._snapshot_wake.set()

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
            payload.update(self.extra())
        return dumps(payload)

    async def _session(self) -> None:
        will = aiomqtt.Will(self.topics.status, self._status("offline"), qos=1, retain=True)
        async with make_client(self.broker, will=will, inflight=self.window) as client:
            logger.info("uplink: connected to %s", self.broker.url)
            self.connected.set()
            await self._publish_status(client)
            for topic, payload in self.announcements():
                await client.publish(topic, payload, qos=1, retain=True)
            self._snapshots_sent.clear()
            try:
                async with asyncio.TaskGroup() as tasks:
                    tasks.create_task(self._drain(client), name="uplink-drain")
                    tasks.create_task(self._publish_snapshots(client), name="uplink-snapshots")
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

    async def _publish_snapshots(self, client: aiomqtt.Client) -> None:
        while True:
            for topic, payload in list(self._snapshots.items()):
                if self._snapshots_sent.get(topic) != payload:
                    await client.publish(topic, payload, qos=1, retain=True)
                    self._snapshots_sent[topic] = payload
            self._snapshot_wake.clear()
            if all(self._snapshots_sent.get(t) == p for t, p in self._snapshots.items()):
                await self._snapshot_wake.wait()

    async def _heartbeat(self, client: aiomqtt.Client) -> None:
        while True:
            await asyncio.sleep(self.heartbeat)
            await self._publish_status(client)

    async def _drain(self, client: aiomqtt.Client) -> None:
        # A sliding window, not stop-and-wait per batch: waiting for a batch's last PUBACK
        # stalls on Nagle/delayed-ACK timing and cost 5x in throughput (bench uplink).
        window = _Window(self.window)
        last_seq = 0
        depth = await self.store.run(self.store.store.outbox_depth)
        progress = _Progress(depth, self.progress_every)
        try:
            while True:
                window.check()
                if window.should_flush():
                    await self._flush(window.take_acked())
                    if progress.due(self.acked):
                        await self._report_backlog(client, progress)
                rows = await self.store.run(self.store.store.outbox_batch, self.window, last_seq)
                if not rows:
                    await self._idle(window)
                    continue
                for row in rows:
                    await window.send(
                        client.publish(self.topics.topic(row.topic), row.payload, qos=1), row
                    )
                    last_seq = row.seq
        finally:
            window.cancel()
            await self._flush(window.take_acked())

    async def _report_backlog(self, client: aiomqtt.Client, progress: _Progress) -> None:
        left = await self.store.run(self.store.store.outbox_depth)
        logger.info("uplink: draining backlog, %d sent, %d left (%.0f/s)",
                    progress.sent(self.acked), left, progress.rate(self.acked))
        status = json.loads(self._status("online"))
        status["outbox_depth"] = left
        status["backlog"] = {"sent": progress.sent(self.acked), "left": left,
                             "rate_per_s": round(progress.rate(self.acked))}
        await client.publish(self.topics.status, dumps(status), qos=1, retain=True)

    async def _idle(self, window: _Window) -> None:
        if window.busy:
            await window.wait_any()
            return
        await self._flush(window.take_acked())
        self._wake.clear()
        try:
            async with asyncio.timeout(1.0):
                await self._wake.wait()
        except TimeoutError:
            pass

    async def _flush(self, acked: list[OutboxRow]) -> None:
        if not acked:
            return
        await self.store.run(self.store.store.outbox_delete, [r.seq for r in acked])
        self.acked += len(acked)
        for callback in self._on_acked:
            callback(acked)


class _Window:
    """Publishes in flight, at most `size`; remembers which rows the broker acknowledged."""

    def __init__(self, size: int) -> None:
        self._slots = asyncio.Semaphore(size)
        self._pending: set[asyncio.Task[None]] = set()
        self._acked: list[OutboxRow] = []
        self._failure: BaseException | None = None
        self._size = size

    @property
    def busy(self) -> bool:
        """Whether publishes are still awaiting their PUBACK."""
        return bool(self._pending)

    async def send(self, publish: Coroutine[Any, Any, None], row: OutboxRow) -> None:
        """Start a publish once a slot is free."""
        await self._slots.acquire()
        self.check()
        task = asyncio.get_running_loop().create_task(self._track(publish, row))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _track(self, publish: Coroutine[Any, Any, None], row: OutboxRow) -> None:
        try:
            await publish
        except aiomqtt.MqttError as err:
            self._failure = self._failure or err
        else:
            self._acked.append(row)
        finally:
            self._slots.release()

    def check(self) -> None:
        """Raise `LinkError` once any publish failed (the session is then restarted)."""
        if self._failure is not None:
            raise LinkError(f"publish failed: {self._failure}") from self._failure

    def should_flush(self) -> bool:
        """Delete in batches: a window's worth, or whatever is acked once nothing is in flight."""
        return len(self._acked) >= self._size or (bool(self._acked) and not self._pending)

    def take_acked(self) -> list[OutboxRow]:
        """The acknowledged rows since the last call, in acknowledgement order."""
        acked, self._acked = self._acked, []
        return acked

    async def wait_any(self) -> None:
        """Until at least one publish in flight completes."""
        await asyncio.wait(self._pending, return_when=asyncio.FIRST_COMPLETED)

    def cancel(self) -> None:
        """Abandon publishes still in flight (their rows stay in the outbox)."""
        for task in self._pending:
            task.cancel()


class _Progress:
    """Paces backlog reports: one every `every` seconds while a large backlog drains."""

    def __init__(self, backlog: int, every: float = 5.0) -> None:
        self.backlog = backlog
        self.every = every
        self._start = time.monotonic()
        self._last = self._start
        self._base: int | None = None

    def due(self, acked: int) -> bool:
        """Whether to report now (only for a backlog worth reporting)."""
        if self._base is None:
            self._base = acked
        now = time.monotonic()
        if self.backlog < 1000 or now - self._last < self.every:
            return False
        self._last = now
        return True

    def sent(self, acked: int) -> int:
        """Rows acknowledged since the session started."""
        return acked - (self._base or 0)

    def rate(self, acked: int) -> float:
        """Rows per second since the session started."""
        return self.sent(acked) / max(1e-3, time.monotonic() - self._start)
