"""The composition root: store, uplink/downlink, readers and doors under one TaskGroup.

A card read becomes a decision, the decision and its outbox row are committed together, and only
then is the door driven. The uplink publishes from the outbox on its own schedule; signed commands
from the station arrive on the same MQTT session.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import Any
from zoneinfo import ZoneInfo

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from drivers.door import Door, DoorEvent
from drivers.face.types import FaceCapture
from drivers.idcard import CardRejected, IdCardRead
from drivers.supervise import ReaderHealth, ReaderState, supervise_reader
from drivers.types import CardRead, KeyPress
from gateway.cameras import CameraRuntime, face_credential
from gateway.commands import command_handlers
from gateway.config import CameraConfig, GatewayConfig, ReaderConfig
from gateway.devices import Read, credential_of, make_door, make_reader
from gateway.floorplan import FloorPlan
from gateway.metrics import Metrics, serve_metrics
from gateway.portal.taps import TapHub
from gateway.rules_runtime import RulesRuntime
from rules.colour import UnitStatus
from rules.events import DoorAction, Tick
from rules.events import DoorEvent as RulesDoorEvent
from rules.events import Event as RulesEvent
from rules.identity import mask_uid
from rules.model import (
    AccessRequest,
    CredentialKind,
    Decision,
    Direction,
    Occupant,
    Reason,
    Verdict,
)
from rules.outcome import Outcome as RulesOutcome
from sync.contract import (
    AccessRecord,
    Topics,
    access_payload,
    alert_payload,
    door_payload,
    dumps,
    new_event_id,
)
from sync.downlink import Downlink
from sync.errors import StoreFull
from sync.faces import purge_clusters
from sync.ha_discovery import HaDevice, discovery_messages
from sync.mqtt import BrokerSettings
from sync.sdnotify import notify, watchdog_interval
from sync.store import AsyncStore, Store
from sync.uplink import Uplink

logger = logging.getLogger(__name__)

VERSION = "0.1.0"


@dataclass(frozen=True, slots=True)
class Outcome:
    """What happened to one credential presentation (for the demo, tests and logs).

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
    """One building controller, used as ``async with Gateway(...) as gw: await gw.run()``.

    Args:
        config: the validated configuration.
        hash_key: the HMAC secret for identifiers.
        broker: broker connection settings.
        config_path: where the config came from (resolves relative secret files).
        station_key: the station's public key; None disables the downlink.
    """

    def __init__(
        self,
        config: GatewayConfig,
        *,
        hash_key: bytes,
        broker: BrokerSettings,
        config_path: Path | None = None,
        station_key: Ed25519PublicKey | None = None,
    ) -> None:
        self.config = config
        self.config_path = config_path
        self.topics = Topics(config.site.site, config.site.gateway)
        self.tz = ZoneInfo(config.site.timezone)
        self.doors: dict[str, Door] = {}
        self.health: dict[str, dict[str, Any]] = {}
        self.storage: dict[str, Any] = {"free_mb": None, "low": False, "full": False}
        self.metrics = Metrics()
        self._outbox_depth = 0
        self._purged = datetime.min.replace(tzinfo=self.tz)
        self.callbacks: list[OutcomeCallback] = []
        self._hash_key = hash_key
        self._broker = broker
        self._station_key = station_key
        self._devices: dict[str, object] = {}
        self._stack: AsyncExitStack | None = None
        self._store: AsyncStore | None = None
        self._uplink: Uplink | None = None
        self.floorplan = FloorPlan(self.topics, [d.name for d in config.doors])
        self._data_version = -1
        # The portal's "tap the card now" and "look at the camera" reach the devices here.
        self.taps = TapHub()
        self.face_capture: dict[str, Callable[[], Awaitable[FaceCapture]]] = {}

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
        try:
            store = await asyncio.to_thread(
                Store.open, self.config.store.path, self._hash_key, self.topics
            )
            self._store = AsyncStore(store)
            stack.push_async_callback(self._store.aclose)
            self.rules = RulesRuntime(self.config, self._store)
            await self.rules.load()
            stack.push_async_callback(self.rules.save)
            for door in self.config.doors:
                self.doors[door.name] = await stack.enter_async_context(make_door(door))
            self._uplink = self._make_uplink(self._store)
            await self.check_storage()
        except BaseException:
            await stack.aclose()
            self._store = self._uplink = None
            raise
        self._stack = stack
        return self

    def _make_uplink(self, store: AsyncStore) -> Uplink:
        uplink = Uplink(
            store,
            self.topics,
            self._broker,
            version=VERSION,
            health=lambda: self.health,
            window=self.config.uplink.window,
            heartbeat=self.config.uplink.heartbeat_s,
        )
        uplink.extra = lambda: {
            "storage": dict(self.storage),
            "headcount": self.rules.state.occupancy.headcount,
        }
        if self.config.homeassistant.enabled:
            device = HaDevice(
                self.topics,
                doors=[d.name for d in self.config.doors],
                readers=[r.name for r in self.config.readers],
                sw_version=VERSION,
                discovery_prefix=self.config.homeassistant.discovery_prefix,
            )
            uplink.announcements = lambda: discovery_messages(device)
        if self._station_key is not None:
            handlers = command_handlers(store, self.topics, self.remote_unlock, self._changed)
            uplink.downlink = Downlink(
                store, self.topics, self._station_key, handlers, uplink.notify
            )
        return uplink

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
        self.doors.clear()

    async def run(self) -> None:
        """Run every subsystem until cancelled; one failing task cancels the rest."""
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(self.uplink.run(), name="uplink")
            for reader in self.config.readers:
                tasks.create_task(self._supervise(reader), name=f"reader-{reader.name}")
            for name, door in self.doors.items():
                tasks.create_task(self._door_events(name, door), name=f"door-{name}")
            tasks.create_task(self._ticks(), name="rules-tick")
            tasks.create_task(self._systemd(), name="systemd-notify")
            if self.config.metrics.listen:
                host, _, port = self.config.metrics.listen.rpartition(":")
                tasks.create_task(serve_metrics(self._gauged(), host, int(port)), name="metrics")
            for camera in self.config.cameras:
                runtime = CameraRuntime(self, camera)
                tasks.create_task(runtime.run(), name=f"camera-{camera.name}")
            if self.config.portal.listen:
                tasks.create_task(self._portal(), name="portal")

    async def _portal(self) -> None:
        """Serve the landlord portal on its own store connection (the loop's thread)."""
        from gateway.portal.app import create_app, portal_secret
        from gateway.web_server import serve_asgi

        host, _, port = self.config.portal.listen.rpartition(":")
        store = Store.open(self.config.store.path, self._hash_key, self.topics)
        app = create_app(
            self.config, store, secret=portal_secret(self._hash_key), taps=self.taps,
            tap_timeout=self.config.portal.tap_timeout_s, cameras=self.face_capture,
            on_change=self.reload_site, unit_statuses=self.unit_statuses,
        )
        try:
            await serve_asgi(app, host.strip("[]"), int(port))
        finally:
            store.close()

    def unit_statuses(self) -> dict[str, UnitStatus]:
        """Every unit's colour and reasons from the live rules state (the portal shows them)."""
        now = datetime.now(self.tz)
        return {s.unit: s for s in self.floorplan.statuses(self.rules.state, self.rules.site, now)}

    async def reload_site(self) -> None:
        """Let the rules see enrolment changes made outside the daemon at once."""
        self._data_version = await self.store.run(self.store.store.data_version)
        await self.rules.reload_site()
        await self._publish_plan()

    async def _reload_if_changed(self) -> None:
        # Another connection (the CLI, a portal outside the daemon) committed: re-read the site.
        version = await self.store.run(self.store.store.data_version)
        if version != self._data_version:
            self._data_version = version
            await self.rules.reload_site()

    async def _publish_plan(self) -> None:
        """Republish the floor plan if it changed."""
        if self._uplink is not None:
            now = datetime.now(self.tz)
            await self.floorplan.update(self.rules.state, self.rules.site, now, self._uplink)

    async def remote_unlock(self, door: str) -> bool:
        """Release a door on the station's order; False if there is no such door."""
        actuator = self.doors.get(door)
        if actuator is None:
            return False
        now = datetime.now(self.tz)
        await self._apply(
            await self.rules.advance(
                RulesDoorEvent(new_event_id(), now, door, DoorAction.GRANT), now
            )
        )
        await actuator.unlock()
        return True

    def _gauged(self) -> Metrics:
        metrics = self.metrics
        metrics.gauges = {
            "doorgate_outbox_depth": lambda: {"": self._outbox_depth},
            "doorgate_headcount": lambda: {"": self.rules.state.occupancy.headcount},
            "doorgate_uplink_connected": lambda: {"": float(self.uplink.connected.is_set())},
            "doorgate_uplink_acked": lambda: {"": self.uplink.acked},
            "doorgate_device_up": lambda: {
                f'{{device="{name}"}}': float(bool(h.get("connected")))
                for name, h in self.health.items()
            },
            "doorgate_storage_free_megabytes": lambda: {"": self.storage["free_mb"] or 0.0},
        }
        return metrics

    async def _systemd(self) -> None:
        # READY once the readers and the broker link are up (or after 20 s, saying what is not),
        # then watchdog pings from this loop: a hung event loop stops them and systemd restarts us.
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not self._all_up():  # noqa: ASYNC110 - several conditions
            await asyncio.sleep(0.1)
        waiting = [n for n, h in self.health.items() if not h.get("connected")]
        if not self.uplink.connected.is_set():
            waiting.append("broker")
        status = "running" if not waiting else "running; waiting for " + ", ".join(waiting)
        notify(f"READY=1\nSTATUS={status}")
        interval = watchdog_interval()
        while interval is not None:
            notify("WATCHDOG=1")
            await asyncio.sleep(interval)

    def _all_up(self) -> bool:
        readers_up = all(
            self.health.get(r.name, {}).get("connected") for r in self.config.readers
        )
        return readers_up and self.uplink.connected.is_set()

    async def _changed(self) -> None:
        # Occupants or thresholds changed by a station command: the rules see them at once.
        await self.rules.load()
        await self._publish_plan()

    async def _ticks(self) -> None:
        last_save = time.monotonic()
        self._data_version = await self.store.run(self.store.store.data_version)
        while True:
            await asyncio.sleep(self.config.rules.tick_s)
            # Commits by other connections show in the data version; the daemon's own
            # changes (station commands) reload in `_changed`: no periodic full re-read.
            await self._reload_if_changed()
            if time.monotonic() - last_save > self.rules.config.roster_check_s:
                await self.rules.save()
                last_save = time.monotonic()
            now = datetime.now(self.tz)
            await self._apply(await self.rules.advance(Tick(now), now))
            await self._publish_plan()
            await self.check_storage()
            if now - self._purged > timedelta(hours=1):
                await self.purge(now)

    async def _apply(self, outcome: RulesOutcome) -> None:
        """Queue every alert edge the rules produced (and refresh the floor plan if any)."""
        if outcome.alerts:
            await self._reload_if_changed()  # the plan must not show a stale roster
            await self._publish_plan()
        for alert in outcome.alerts:
            unit = alert.key.split(":")[0] if alert.kind.value == "overcrowding" else None
            await self.queue_alert(
                alert.kind.value,
                alert.key,
                alert.state.value,
                unit=unit,
                counts=dict(alert.counts),
                evidence=tuple(alert.evidence),
            )

    # --- readers ---------------------------------------------------------------------------

    async def _supervise(self, reader: ReaderConfig) -> None:
        def build() -> Any:
            device = make_reader(reader, self.config_path)
            self._devices[reader.name] = device
            return device

        async def on_read(read: Read) -> None:
            await self.handle_read(read, reader)

        await supervise_reader(
            build,
            on_read,
            lambda h: self._on_health(reader, h),
            offline_after=reader.offline_after_s,
        )

    async def handle_read(self, read: Read, reader: ReaderConfig) -> Outcome | None:
        """Decide on one read from a reader (keypad input is ignored for now)."""
        if isinstance(read, KeyPress):
            logger.info("reader %s: %d keys typed (no PIN mode)", reader.name, len(read.keys))
            return None
        if isinstance(read, CardRejected):
            logger.warning("reader %s: card refused: %s", reader.name, read.reason)
            return None
        kind, value = credential_of(read)
        name = read.name if isinstance(read, IdCardRead) else None
        if self.taps.offer(reader.name, kind, value, name=name):
            logger.info("reader %s: card taken by the portal for enrolment", reader.name)
            return None
        return await self.handle_card(read, reader)

    async def handle_card(self, read: CardRead | IdCardRead, reader: ReaderConfig) -> Outcome:
        """Decide on one card, commit it with its outbox row, then drive the door."""
        kind, value = credential_of(read)
        store = self.store.store
        if kind is CredentialKind.IDCARD:
            credential, occupant = await self.store.run(store.resolve_id_number, value)
        else:
            credential, occupant = await self.store.run(store.resolve_card, kind, value)
        now = datetime.now(self.tz)
        ic = kind is CredentialKind.IC
        request = AccessRequest(
            reader.door,
            Direction(reader.direction),
            kind,
            now,
            credential,
            occupant,
            event_id=new_event_id(),
            presented=store.hash_uid(kind, value) if ic else store.hash_id_number(value),
            id_hash=None if ic else store.hash_id_number(value),
        )
        # Masked to the last four characters, whether a card UID or an ID number.
        return await self._decide(request, mask_uid(value), reader.name, read.monotonic)

    async def handle_face(self, occupant_id: str, camera: CameraConfig, seen: float) -> Outcome:
        """Decide on a recognised, live face as on a card of kind `face`."""
        occupant = await self.store.run(self.store.store.get_occupant, occupant_id)
        now = datetime.now(self.tz)
        request = AccessRequest(
            camera.door,
            Direction(camera.direction),
            CredentialKind.FACE,
            now,
            face_credential(occupant_id),
            occupant,
            event_id=new_event_id(),
            presented=f"face:{occupant_id}",
        )
        return await self._decide(request, None, None, seen)

    async def apply_rules(self, event: RulesEvent, now: datetime) -> None:
        """Feed a non-access event (a stranger's face) to the rules and queue its alerts."""
        await self._apply(await self.rules.advance(event, now))

    async def _decide(
        self, request: AccessRequest, masked: str | None, reader: str | None, seen: float
    ) -> Outcome:
        now, kind, occupant = request.at, request.kind, request.occupant
        event_id = request.event_id or new_event_id()
        rules_outcome = await self.rules.advance(request, now)
        decision = rules_outcome.decision or Decision(Verdict.DENY, (Reason.UNKNOWN_CREDENTIAL,))
        record = AccessRecord(
            id=event_id,
            ts=now,
            door=request.door,
            direction=request.direction.value,
            kind=kind.value,
            occupant_id=occupant.id if occupant else None,
            unit_id=decision.unit_id or (occupant.unit_id if occupant else None),
            credential_masked=masked,
            decision=decision.verdict.value,
            reasons=tuple(r.value for r in decision.reasons),
        )
        await self._commit(record)
        if decision.allowed:
            await self.doors[request.door].unlock()
        if reader is not None:
            await self._feedback(reader, decision.allowed)
        await self._apply(rules_outcome)
        outcome = Outcome(record, occupant, decision, (time.monotonic() - seen) * 1000)
        self.metrics.decision(record.kind, record.decision, outcome.latency_ms / 1000)
        self._report(outcome)
        return outcome

    async def _commit(self, record: AccessRecord) -> None:
        payload = dumps(access_payload(record, self.topics))
        try:
            await self.store.run(self.store.store.record_access, record, "event/access", payload)
        except StoreFull as err:
            # The door must still work; the status topic (not the outbox) tells the station.
            self.storage["full"] = True
            logger.critical("storage full, decision %s not recorded: %s", record.id, err)
            return
        self.storage["full"] = False
        self.uplink.notify()

    async def purge(self, now: datetime) -> None:
        """Apply the retention limits: old access-log rows and stale stranger clusters."""
        self._purged = now
        store = self.store.store
        limits = self.config.store
        log_rows = await self.store.run(
            store.purge_access_log, now - timedelta(days=limits.retention_days)
        )
        clusters = await self.store.run(
            purge_clusters, store.db, now - timedelta(days=limits.stranger_retention_days)
        )
        if log_rows or clusters:
            logger.info("retention: purged %d access-log rows, %d stranger clusters",
                        log_rows, clusters)

    async def check_storage(self) -> None:
        """Raise `storage_low` (with the room left and the queue) below `store.min_free_mb`."""
        free_mb = round(await self.store.run(self.store.store.free_bytes) / 2**20, 1)
        self._outbox_depth = await self.store.run(self.store.store.outbox_depth)
        limit = self.config.store.min_free_mb
        self.storage["free_mb"] = free_mb
        low = free_mb < limit or (self.storage["low"] and free_mb < 2 * limit)
        if low != self.storage["low"]:
            self.storage["low"] = low
            depth = await self.store.run(self.store.store.outbox_depth)
            message = f"{free_mb} MB left, {depth} events queued"
            counts = {"free_mb": free_mb, "outbox_depth": depth}
            await self.queue_alert(
                "storage_low",
                "store",
                "raised" if low else "cleared",
                counts=counts,
                message=message,
            )

    async def _feedback(self, reader: str, allowed: bool) -> None:
        # OSDP readers show the verdict on their LED and buzzer; other readers have no feedback.
        feedback = getattr(self._devices.get(reader), "feedback", None)
        if feedback is not None:
            try:
                await feedback(allowed)
            except Exception as err:  # noqa: BLE001 - feedback must never undo a decision
                logger.warning("reader %s: feedback failed: %s", reader, err)

    def _report(self, outcome: Outcome) -> None:
        record = outcome.record
        logger.info(
            "%s %s at %s: %s %s (%.1f ms)",
            record.credential_masked,
            record.occupant_id or "-",
            record.door,
            record.decision,
            ",".join(record.reasons),
            outcome.latency_ms,
        )
        for callback in self.callbacks:
            callback(outcome)

    async def _on_health(self, reader: ReaderConfig, health: ReaderHealth) -> None:
        previous = self.health.get(reader.name, {}).get("state")
        self.health[reader.name] = {
            "connected": health.state is ReaderState.ONLINE,
            "state": health.state.value,
            "error": health.last_error,
        }
        if health.state is ReaderState.OFFLINE:
            await self.queue_alert(
                "reader_offline", reader.name, "raised", message=health.last_error or ""
            )
        elif health.state is ReaderState.ONLINE and previous == ReaderState.OFFLINE.value:
            await self.queue_alert("reader_offline", reader.name, "cleared")

    async def queue_alert(self, kind: str, key: str, state: str, **details: Any) -> None:
        """Put an ``alert/<kind>`` message in the outbox."""
        payload = alert_payload(kind, key, state, self.topics, **details)
        try:
            await self.store.run(
                self.store.store.enqueue, payload["id"], f"alert/{kind}", dumps(payload)
            )
        except StoreFull as err:
            self.storage["full"] = True
            logger.critical("storage full, alert %s %s %s not queued: %s", kind, key, state, err)
            return
        self.uplink.notify()
        self.metrics.alert(kind, state)
        logger.warning("alert %s %s: %s", kind, state, key)

    # --- doors -----------------------------------------------------------------------------

    async def _door_events(self, name: str, door: Door) -> None:
        async for event in door.events():
            await self._on_door_event(name, door, event)

    async def _on_door_event(self, name: str, door: Door, event: DoorEvent) -> None:
        now = datetime.now(self.tz)
        payload = door_payload(name, event.kind.value, self.topics)
        rules_event = RulesDoorEvent(payload["id"], now, name, DoorAction(event.kind.value))
        outcome = await self.rules.advance(rules_event, now)
        if any(a.kind.value == "door_forced" and a.state.value == "raised" for a in outcome.alerts):
            payload["action"] = "forced"
        await self.store.run(self.store.store.enqueue, payload["id"], "event/door", dumps(payload))
        self.uplink.notify()
        if event.kind.value == "exit_request":
            await door.unlock()
        await self._apply(outcome)


async def run_gateway(
    config: GatewayConfig,
    config_path: Path,
    *,
    hash_key: bytes,
    broker: BrokerSettings,
    station_key: Ed25519PublicKey | None = None,
) -> None:
    """Run the daemon until SIGTERM or SIGINT (the `doorgate run` command).

    Either signal cancels the supervisor, so the rules state is saved, the offline status is
    published and the store is closed cleanly, as systemd's stop expects.
    """
    loop = asyncio.get_running_loop()
    main = asyncio.current_task()
    assert main is not None
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, main.cancel)
    async with Gateway(
        config, hash_key=hash_key, broker=broker, config_path=config_path, station_key=station_key
    ) as gateway:
        with contextlib.suppress(asyncio.CancelledError):
            await gateway.run()
