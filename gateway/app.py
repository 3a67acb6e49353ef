"""The composition root: store, uplink, readers and doors under one TaskGroup.

A card read becomes a decision, the decision and its outbox row are committed together, and only
then is the door driven. The uplink publishes from the outbox on its own schedule.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Mapping
from contextlib import AsyncExitStack
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Any
from zoneinfo import ZoneInfo

from drivers.backoff import backoff_delay
from drivers.errors import DriverError
from drivers.rdm6300 import BAUDRATE as RDM6300_BAUD
from drivers.rdm6300 import Rdm6300Reader
from drivers.serial_transport import SerialTransport
from drivers.types import CardRead
from gateway.config import GatewayConfig, ReaderConfig
from gateway.doors import DoorActuator, RecordingDoor
from rules.access import decide
from rules.identity import mask_uid
from rules.model import AccessRequest, CredentialKind, Decision, Direction, Occupant
from sync.contract import AccessRecord, Topics, access_payload, dumps, new_event_id
from sync.mqtt import BrokerSettings
from sync.store import AsyncStore, Store
from sync.uplink import Uplink

logger = logging.getLogger(__name__)

VERSION = "0.1.0"


@dataclass(frozen=True, slots=True)
class Outcome:
    """What happened to one card read (for the demo, tests and logs).

    Attributes:
        record: the committed access-log record.
        occupant: the resolved occupant, if any.
        decision: the rules' verdict.
        latency_ms: frame complete → door commanded, in milliseconds.
    """

    record: AccessRecord
    occupant: Occupant | None
    decision: Decision
    latency_ms: float


OutcomeCallback = Callable[[Outcome], None]


class Gateway:
    """One building controller.

    Args:
        config: the validated configuration.
        hash_key: the HMAC secret for identifiers.
        broker: broker connection settings.
        doors: door actuators by name (default: recording doors from the config).
    """

    def __init__(
        self,
        config: GatewayConfig,
        *,
        hash_key: bytes,
        broker: BrokerSettings,
        doors: Mapping[str, DoorActuator] | None = None,
    ) -> None:
        self.config = config
        self.topics = Topics(config.site.site, config.site.gateway)
        self.tz = ZoneInfo(config.site.timezone)
        self.doors: dict[str, DoorActuator] = dict(
            doors or {d.name: RecordingDoor(d.name, d.unlock_s) for d in config.doors}
        )
        self._hash_key = hash_key
        self._broker = broker
        self._stack: AsyncExitStack | None = None
        self._store: AsyncStore | None = None
        self._uplink: Uplink | None = None
        self.health: dict[str, dict[str, Any]] = {}
        self.callbacks: list[OutcomeCallback] = []

    @property
    def store(self) -> AsyncStore:
        """The open store (only inside `async with`)."""
        if self._store is None:
            raise RuntimeError("gateway is not started")
        return self._store

    @property
    def uplink(self) -> Uplink:
        """The MQTT uplink (only inside `async with`)."""
        if self._uplink is None:
            raise RuntimeError("gateway is not started")
        return self._uplink

    async def __aenter__(self) -> Gateway:
        stack = AsyncExitStack()
        store = await asyncio.to_thread(Store.open, self.config.store.path, self._hash_key)
        self._store = AsyncStore(store)
        stack.push_async_callback(self._store.aclose)
        self._uplink = Uplink(
            self._store,
            self.topics,
            self._broker,
            version=VERSION,
            health=lambda: self.health,
            window=self.config.uplink.window,
            heartbeat=self.config.uplink.heartbeat_s,
        )
        self._stack = stack
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        stack, self._stack = self._stack, None
        if stack is not None:
            await stack.aclose()
        self._store = self._uplink = None

    async def run(self) -> None:
        """Run every subsystem until cancelled; one failing task cancels the rest."""
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(self.uplink.run(), name="uplink")
            for reader in self.config.readers:
                tasks.create_task(self._reader_loop(reader), name=f"reader-{reader.name}")

    async def handle_card(self, read: CardRead, reader: ReaderConfig) -> Outcome:
        """Decide on one card read, commit it with its outbox row, then drive the door."""
        kind = CredentialKind.IC
        store = self.store.store
        credential, occupant = await self.store.run(store.resolve_card, kind, read.uid_hex)
        now = datetime.now(self.tz)
        request = AccessRequest(
            reader.door, Direction(reader.direction), kind, now, credential, occupant
        )
        decision = decide(request)
        record = AccessRecord(
            id=new_event_id(),
            ts=now,
            door=reader.door,
            direction=reader.direction,
            kind=kind.value,
            occupant_id=occupant.id if occupant else None,
            unit_id=occupant.unit_id if occupant else None,
            credential_masked=mask_uid(read.uid_hex),
            decision=decision.verdict.value,
            reasons=tuple(r.value for r in decision.reasons),
        )
        payload = dumps(access_payload(record, self.topics))
        await self.store.run(store.record_access, record, "event/access", payload)
        self.uplink.notify()
        if decision.allowed:
            await self.doors[reader.door].grant()
        outcome = Outcome(record, occupant, decision, (time.monotonic() - read.monotonic) * 1000)
        logger.info(
            "%s %s at %s: %s %s (%.1f ms)",
            record.credential_masked,
            occupant.id if occupant else "-",
            reader.door,
            record.decision,
            ",".join(record.reasons),
            outcome.latency_ms,
        )
        for callback in self.callbacks:
            callback(outcome)
        return outcome

    def _set_health(self, reader: ReaderConfig, connected: bool, error: str | None = None) -> None:
        previous = self.health.get(reader.name, {})
        if previous.get("connected") != connected:
            self.health[reader.name] = {"connected": connected, "since": time.monotonic()}
        if error:
            self.health[reader.name]["error"] = error

    async def _reader_loop(self, reader: ReaderConfig) -> None:
        attempt = 0
        while True:
            transport = SerialTransport(reader.port, reader.baud or RDM6300_BAUD, name=reader.name)
            try:
                async with transport:
                    self._set_health(reader, True)
                    attempt = 0
                    async for read in Rdm6300Reader(transport, debounce=reader.debounce_s).reads():
                        await self.handle_card(read, reader)
            except DriverError as err:
                self._set_health(reader, False, str(err))
                delay = backoff_delay(attempt, cap=10.0)
                logger.warning("reader %s: %s; retry in %.1f s", reader.name, err, delay)
                attempt += 1
                await asyncio.sleep(delay)


async def run_gateway(
    config: GatewayConfig, config_path: Path, *, hash_key: bytes, broker: BrokerSettings
) -> None:
    """Run the daemon until cancelled (the `doorgate run` command)."""
    async with Gateway(config, hash_key=hash_key, broker=broker) as gateway:
        with contextlib.suppress(asyncio.CancelledError):
            await gateway.run()
