"""The demo's door camera: composed video, enrolled tenant, and what the real engine makes of it."""

from __future__ import annotations

import asyncio
import time
import tomllib
from collections import defaultdict
from datetime import date
from pathlib import Path

import cv2
import pytest

from drivers.face.service import FaceService
from drivers.face.types import FaceSighting, Liveness, SightingEvent
from gateway.config import CameraConfig
from gateway.demo_camera import DemoCamera, asset_path, prepare_demo_camera
from rules.model import Unit
from sync import faces as face_db
from sync.store import Store

SECRET = b"0123456789abcdef0123456789abcdef"


@pytest.fixture
def store(tmp_path: Path) -> Store:
    s = Store.open(tmp_path / "g.db", SECRET)
    s.add_unit(Unit("A-101", "A", 1, "101", 2))
    s.add_occupant("A-101", "张三", "11010519491231002X", date(2025, 1, 1), None, occupant_id="t1")
    yield s
    s.close()


def test_the_demo_photos_ship_inside_the_gateway_package() -> None:
    with asset_path("obama3.jpg") as path:
        assert path.parent.name == "demo_assets" and path.parent.parent.name == "gateway"
        assert (path.parent / "SOURCE.md").is_file()


@pytest.mark.slow
async def test_demo_camera_shows_the_tenant_once_a_stranger_and_a_photo_that_is_not_live(
    tmp_path: Path, store: Store
) -> None:
    cam = prepare_demo_camera(tmp_path / "demo", store, "t1")
    assert face_db.template_count(store.db, "t1") == 1
    assert len(cam.expected) == 3 and "tenant t1 walks up" in cam.expected[0]
    _assert_video(cam)
    section = tomllib.loads(cam.config_toml())["cameras"][0]
    assert CameraConfig(**section).source == str(cam.video) and section["fps"] == 10

    tracks = await _run_engine(cam, store)
    # Per identified track, in order: (occupant, ever judged live).
    seen = [
        (ss[0].occupant_id, any(s.liveness is Liveness.LIVE for s in ss))
        for ss in tracks.values()
        if ss[0].event is SightingEvent.IDENTIFIED
    ]
    assert seen[0] == ("t1", True)  # the tenant walking up: once, live
    assert seen[1][0] is None  # the stranger
    assert seen[2] == ("t1", False)  # the printed photo: recognised, never live
    assert len(seen) == 3, seen


def _assert_video(cam: DemoCamera) -> None:
    video = cv2.VideoCapture(str(cam.video))
    try:
        frames = int(video.get(cv2.CAP_PROP_FRAME_COUNT))
        size = (int(video.get(cv2.CAP_PROP_FRAME_WIDTH)), int(video.get(cv2.CAP_PROP_FRAME_HEIGHT)))
    finally:
        video.release()
    assert frames == round(cam.seconds * cam.fps) > 50
    assert size == (1280, 720)


async def _run_engine(cam: DemoCamera, store: Store) -> dict[int, list[FaceSighting]]:
    tracks: dict[int, list[FaceSighting]] = defaultdict(list)
    async with FaceService(
        cam.video, templates=face_db.load_templates(store.db), fps=cam.fps
    ) as service:
        # The file plays once in real time; the face process needs ~1 s to load its models.
        deadline = time.monotonic() + cam.seconds + 4

        async def collect() -> None:
            async for s in service.sightings():
                tracks[s.track_id].append(s)
                printed_photo_gone = s.event is SightingEvent.ENDED and s.occupant_id == "t1"
                if printed_photo_gone and s.liveness is not Liveness.LIVE:
                    return

        try:
            await asyncio.wait_for(collect(), deadline - time.monotonic())
        except TimeoutError:
            pass  # the last track may still be open when the file ends: judged as it stands
    return tracks
