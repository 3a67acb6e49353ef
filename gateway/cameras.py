"""Door cameras in the daemon: face sightings become access decisions and occupancy events.

Vision runs in its own process (`drivers.face.service.FaceService`), so a card decision never
waits for a frame. A recognised, live occupant at a door that accepts faces is decided exactly
like a card; unknown faces feed the anonymous stranger clusters and the occupancy counts.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import TYPE_CHECKING

from drivers.face.engine import EngineConfig
from drivers.face.service import FaceService
from drivers.face.types import FaceSighting, Liveness, SightingEvent
from gateway.config import CameraConfig
from gateway.faces import load_strangers, save_strangers
from rules.events import FaceSighting as RulesFaceSighting
from rules.model import Credential, CredentialKind, CredentialStatus, Direction
from sync.contract import new_event_id
from sync.faces import load_templates, templates_version

if TYPE_CHECKING:
    from gateway.app import Gateway

logger = logging.getLogger(__name__)

HEALTH_POLL_S = 2.0
# Enrolments and wrong-match marks come from other processes (CLI, portal): poll the store.
TEMPLATE_POLL_S = 5.0


class CameraRuntime:
    """One camera's face service, wired to the gateway's rules, store and doors.

    Args:
        gateway: the running gateway.
        camera: the camera's configuration.
    """

    def __init__(self, gateway: Gateway, camera: CameraConfig) -> None:
        self.gateway = gateway
        self.camera = camera
        self.decided: set[int] = set()
        self._offline = False

    async def run(self) -> None:
        """Run the face service until cancelled; its own process reconnects the camera."""
        store = self.gateway.store
        version = await store.run(lambda: templates_version(store.store.db))
        templates = await store.run(lambda: load_templates(store.store.db))
        clusters = await store.run(load_strangers, store.store)
        config = EngineConfig(threshold=self.camera.threshold)
        async with FaceService(
            self.camera.source,
            templates=templates,
            config=config,
            name=self.camera.name,
            offline_after=self.camera.offline_after_s,
            fps=self.camera.fps,
        ) as faces, asyncio.TaskGroup() as tasks:
            del templates  # the face process has its copy; the service keeps one for restarts
            self.gateway.face_capture[self.camera.name] = faces.capture
            tasks.create_task(
                self._watch_health(faces), name=f"camera-health-{self.camera.name}"
            )
            tasks.create_task(
                self._watch_templates(faces, version), name=f"camera-templates-{self.camera.name}"
            )
            try:
                async for sighting in faces.sightings():
                    await self.on_sighting(sighting, clusters)
            finally:
                self.gateway.face_capture.pop(self.camera.name, None)

    async def _watch_health(self, faces: FaceService) -> None:
        while True:
            health = faces.health()
            self.gateway.health[self.camera.name] = {
                "connected": health.connected,
                "kind": "camera",
            }
            if health.offline != self._offline:
                self._offline = health.offline
                state = "raised" if health.offline else "cleared"
                await self.gateway.queue_alert("camera_offline", self.camera.name, state)
            await asyncio.sleep(HEALTH_POLL_S)

    async def _watch_templates(self, faces: FaceService, version: tuple[int, int]) -> None:
        store = self.gateway.store
        while True:
            await asyncio.sleep(TEMPLATE_POLL_S)
            current = await store.run(lambda: templates_version(store.store.db))
            if current == version:
                continue
            version = current
            matrix, ids, negative = await store.run(lambda: load_templates(store.store.db))
            await faces.set_templates(matrix, ids, negative)
            logger.info("camera %s: %d face templates reloaded", self.camera.name, len(ids))

    async def on_sighting(self, sighting: FaceSighting, clusters: object) -> None:
        """Decide on an identified live occupant; count every face for occupancy."""
        if sighting.event is SightingEvent.ENDED:
            self.decided.discard(sighting.track_id)
            return
        if sighting.occupant_id is not None:
            await self._occupant(sighting)
        else:
            await self._stranger(sighting, clusters)

    async def _occupant(self, sighting: FaceSighting) -> None:
        live = sighting.liveness is Liveness.LIVE or not self.camera.require_live
        if not live or sighting.track_id in self.decided or sighting.occupant_id is None:
            return
        self.decided.add(sighting.track_id)
        await self.gateway.handle_face(sighting.occupant_id, self.camera, sighting.monotonic)

    async def _stranger(self, sighting: FaceSighting, clusters: object) -> None:
        if sighting.encoding is None or sighting.event is not SightingEvent.IDENTIFIED:
            return
        store = self.gateway.store
        now = datetime.now(self.gateway.tz)
        add: Callable[..., object] = clusters.add  # type: ignore[attr-defined]

        def assign() -> int | None:
            cluster = add(sighting.encoding, now)
            save_strangers(store.store, clusters)  # type: ignore[arg-type]
            return getattr(cluster, "id", None)

        cluster_id = await store.run(assign)
        direction = Direction(sighting.direction.value) if sighting.direction else None
        event = RulesFaceSighting(
            new_event_id(),
            now,
            self.camera.door,
            direction,
            None,
            str(cluster_id) if cluster_id is not None else None,
        )
        await self.gateway.apply_rules(event, now)


def face_credential(occupant_id: str) -> Credential:
    """A face match is a credential of kind `face`, active while templates exist.

    Its id 0 names no credential row: the rules count a face's denials per occupant
    (`rules.engine.credential_key`), never under this id.
    """
    return Credential(0, occupant_id, CredentialKind.FACE, CredentialStatus.ACTIVE)


Apply = Callable[[object, datetime], Awaitable[None]]
