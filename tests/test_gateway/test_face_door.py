"""A face at the door through the whole daemon: video file → face process → rules → door."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest

from drivers.door import SimulatedDoor
from drivers.face import analysis, synth
from drivers.simulators.rdm6300 import Rdm6300Simulator
from gateway.app import Gateway, Outcome
from gateway.config import broker_settings, load_config, read_secret
from gateway.faces import enrol_photos
from rules.model import CredentialKind, Verdict
from sync.store import Store

FACES = Path(__file__).parent.parent / "fixtures" / "faces"
SIZE = (640, 360)
pytestmark = [pytest.mark.broker, pytest.mark.slow]


def door_video(path: Path, live: bool) -> Path:
    scene = synth.background(SIZE)
    shots = [
        synth.place(scene, analysis.read_image(FACES / n), (320, 200), 300)
        for n in ("obama.jpg", "obama2.jpg")
    ]
    if live:
        frames = synth.sequence(shots, 16)  # a head that moves like a head
    else:
        rng = np.random.default_rng(5)
        frames = [synth.handheld(shots[0], rng) for _ in range(40)]  # a printed photo, shaken
    return synth.write_video(path, [scene] * 3 + frames + [scene] * 10)


async def run_camera(
    tmp_path: Path, simulator: Rdm6300Simulator, broker, gw, *, live: bool
) -> tuple[list[Outcome], SimulatedDoor]:
    path = gw.write_config(tmp_path, simulator.port, broker.url)
    video = door_video(tmp_path / "door.avi", live)
    path.write_text(
        path.read_text()
        + f'''
[[cameras]]
name = "door-cam"
source = "{video}"
door = "main"
fps = 10
''',
        encoding="utf-8",
    )
    config = load_config(path)
    key = read_secret(config.secrets.hash_key_file, path)
    store = Store.open(config.store.path, key)
    ids = gw.seed(store)
    results = enrol_photos(store, ids["approved"], [FACES / "obama3.jpg"])
    assert all(r.ok for r in results), results
    store.close()
    outcomes: list[Outcome] = []
    gateway = Gateway(config, hash_key=key, broker=broker_settings(config, path), config_path=path)
    async with gateway:
        gateway.callbacks.append(outcomes.append)
        run = asyncio.create_task(gateway.run())
        await asyncio.sleep(9 if live else 10)  # the clip lasts ~6 s; the face process starts first
        run.cancel()
        door = gateway.doors["main"]
        assert isinstance(door, SimulatedDoor)
    return outcomes, door


async def test_a_live_enrolled_face_opens_the_door(tmp_path: Path, simulator, broker, gw) -> None:
    outcomes, door = await run_camera(tmp_path, simulator, broker, gw, live=True)
    faces = [o for o in outcomes if o.record.kind == CredentialKind.FACE]
    assert len(faces) == 1, outcomes  # one decision per track, not per frame
    assert faces[0].decision.verdict is Verdict.ALLOW
    assert any(not c.locked for c in door.commands)


async def test_a_shaken_photo_does_not_open_the_door(tmp_path: Path, simulator, broker, gw) -> None:
    outcomes, door = await run_camera(tmp_path, simulator, broker, gw, live=False)
    assert [o for o in outcomes if o.record.kind == CredentialKind.FACE] == []
    assert not any(not c.locked for c in door.commands)
