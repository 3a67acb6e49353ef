"""The station's consumer: subscribes to every gateway, stores each event once.

With `share_group` set, it subscribes through ``$share/<group>/…`` so several station processes
split the load on a clustered broker.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
from collections.abc import Callable
from typing import Any

import aiomqtt

from station.store import StationStore
from sync.contract import PREFIX
from sync.mqtt import BrokerSettings, make_client
from sync.sdnotify import notify, watchdog_interval

logger = logging.getLogger(__name__)

EventCallback = Callable[[str, dict[str, Any], bool], None]
_REQUIRED = ("schema", "id", "ts", "site", "gateway")


class MalformedMessage(ValueError):
    """A message on a doorgate topic that is not a valid doorgate payload."""


def parse_message(topic: str, payload: bytes) -> tuple[str, dict[str, Any]]:
    """Return (kind, payload) where kind is the topic below the gateway (``event/access``).

    Raises:
        MalformedMessage: not JSON, missing envelope fields, or topic and payload disagree.
    """
    parts = topic.split("/")
    if len(parts) < 5 or "/".join(parts[:2]) != PREFIX:
        raise MalformedMessage(f"{topic}: not a {PREFIX}/<site>/<gateway>/… topic")
    try:
        data = json.loads(payload)
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise MalformedMessage(f"{topic}: payload is not JSON: {err}") from err
    if not isinstance(data, dict) or (missing := [k for k in _REQUIRED if k not in data]):
        raise MalformedMessage(
            f"{topic}: payload lacks {missing if isinstance(data, dict) else 'an object'}"
        )
    if (data["site"], data["gateway"]) != (parts[2], parts[3]):
        raise MalformedMessage(f"{topic}: payload claims {data['site']}/{data['gateway']}")
    return "/".join(parts[4:]), data


class StationConsumer:
    """Receives from all gateways of the broker and records into `store`.

    Args:
        store: where events and statuses go.
        broker: how to reach the broker (client_id must be stable for the persistent session).
        share_group: optional shared-subscription group name.
        on_event: called as `on_event(kind, payload, is_new)` for each message.
    """

    def __init__(
        self,
        store: StationStore,
        broker: BrokerSettings,
        *,
        share_group: str | None = None,
        on_event: EventCallback | None = None,
    ) -> None:
        self.store = store
        self.broker = broker
        self.share_group = share_group
        self.on_event = on_event
        self.connected = asyncio.Event()
        self.rejected = 0

    @property
    def subscription(self) -> str:
        """The topic filter, shared when a group is configured."""
        base = f"{PREFIX}/+/+/#"
        return f"$share/{self.share_group}/{base}" if self.share_group else base

    async def run(self) -> None:
        """Consume forever, reconnecting with jittered backoff.

        Under systemd (``Type=notify``) it says READY=1 once subscribed and pings the watchdog
        from this event loop, so a consumer stuck in its store is restarted.
        """
        watchdog = asyncio.create_task(self._watchdog(), name="station-watchdog")
        try:
            await self._consume()
        finally:
            watchdog.cancel()

    async def _watchdog(self) -> None:
        interval = watchdog_interval()
        while interval is not None:
            notify("WATCHDOG=1")
            await asyncio.sleep(interval)

    async def _consume(self) -> None:
        attempt = 0
        while True:
            try:
                await self._session()
            except aiomqtt.MqttError as err:
                self.connected.clear()
                delay = random.uniform(0.25, 0.5) * 2 ** min(attempt, 6)
                logger.warning(
                    "station: broker %s lost (%s); retry in %.1f s", self.broker.url, err, delay
                )
                attempt += 1
                await asyncio.sleep(delay)

    async def _session(self) -> None:
        async with make_client(self.broker, clean_session=False) as client:
            await client.subscribe(self.subscription, qos=1)
            self.connected.set()
            notify(f"READY=1\nSTATUS=subscribed to {self.subscription}")
            logger.info("station: subscribed to %s on %s", self.subscription, self.broker.url)
            async for message in client.messages:
                self.handle(str(message.topic), _as_bytes(message.payload))

    def _file(self, kind: str, payload: dict[str, Any]) -> None:
        # Alerts, enrolments and replies also land in their own tables for the station's work.
        try:
            if kind.startswith("alert/"):
                self.store.add_alert(payload)
            elif kind == "enrolment/request":
                self.store.add_enrolment(payload)
            elif kind == "occupant/status":
                self.store.occupant_status(payload)
            elif kind.startswith("reply/"):
                self.store.add_reply(payload)
        except KeyError as err:
            self.rejected += 1
            logger.warning("station: %s payload lacks %s", kind, err)

    def handle(self, topic: str, raw: bytes) -> None:
        """Store one message; malformed ones are logged and counted, never fatal."""
        try:
            kind, payload = parse_message(topic, raw)
        except MalformedMessage as err:
            self.rejected += 1
            logger.warning("station: rejected message: %s", err)
            return
        if kind in {"status", "units"}:  # retained state, kept as the latest, not as events
            keep = self.store.set_status if kind == "status" else self.store.set_floor_plan
            try:
                keep(payload)
            except KeyError as err:
                self.rejected += 1
                logger.warning("station: %s payload lacks %s", kind, err)
                return
            is_new = True
        else:
            is_new = self.store.add_event(topic, kind, payload)
            if is_new:
                self._file(kind, payload)
        if self.on_event is not None:
            self.on_event(kind, payload, is_new)


def _as_bytes(payload: bytes | bytearray | str | float | None) -> bytes:
    if isinstance(payload, bytes | bytearray):
        return bytes(payload)
    return b"" if payload is None else str(payload).encode()
