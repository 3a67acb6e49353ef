"""The demo's door camera: a composed door video and the demo tenant's enrolled face.

`doorgate demo` has no real camera, so this module composes one from the photos in
`gateway.demo_assets` (a tenant walking up, a stranger, a printed photo of the tenant held up
to the lens) and enrols the tenant from another photo of theirs. The video is a synthetic scene
(`drivers.face.synth`): it exercises the real detector, landmarks, encoder and liveness check,
but it is not a recording of people at a door.

Usage from the demo (the camera section is what `gateway.config.CameraConfig` reads)::

    cam = prepare_demo_camera(folder, store, occupant_id)
    config_text += cam.config_toml(door="main")
    for line in cam.expected:
        console.print(line)
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np

from drivers.face import synth
from drivers.face.analysis import Image, read_image
from gateway.faces import EnrolResult, enrol_photos
from gateway.i18n_face import tf
from sync.store import Store

ASSETS = "gateway.demo_assets"
SIZE = (1280, 720)  # what a door camera's main stream gives
FPS = 10.0  # the camera config paces the file at this rate
ENROL_PHOTO = "obama3.jpg"  # a different shot from the ones in the video
_WALK = ("obama.jpg", "obama2.jpg")  # two shots alternated: a head that moves like a head
_STRANGER = "biden.jpg"
_PRINT = "obama.jpg"
# A photo of ~1,150 px placed at these heights gives a face of ≈ 190-230 px at 720p: above the
# 160 px (80 px at the 640-px detection width) the HOG detector needs.
_NEAR, _FAR = 900, 820
_EMPTY = 6  # ≥ 4 processed frames without the face end its track (the tracker's max_missed + 1)


@dataclass(frozen=True, slots=True)
class DemoCamera:
    """A composed door video and what a viewer should see happen.

    Attributes:
        video: the MJPG AVI file (1280×720, `fps` frames per second of scene time).
        expected: one line per scene, with its start time in the video, in the current language.
        fps: the rate the camera config must pace the file at for the scene times to hold.
        seconds: the video's length.
    """

    video: Path
    expected: list[str]
    fps: float = FPS
    seconds: float = 0.0

    def config_toml(self, door: str = "main", name: str = "door-cam") -> str:
        """The ``[[cameras]]`` section to append to the demo's doorgate.toml."""
        source = str(self.video).replace("\\", "\\\\").replace('"', '\\"')
        return (
            f'\n[[cameras]]\nname = "{name}"\nsource = "{source}"\ndoor = "{door}"\n'
            f"fps = {self.fps:g}\n"
        )


@contextlib.contextmanager
def asset_path(name: str) -> Iterator[Path]:
    """A real file path for one demo photo (extracted to a temporary file if zipped)."""
    with resources.as_file(resources.files(ASSETS) / name) as path:
        yield path


def asset_image(name: str) -> Image:
    """One demo photo, decoded (BGR)."""
    with asset_path(name) as path:
        return read_image(path)


def enrol_demo_tenant(store: Store, occupant_id: str) -> list[EnrolResult]:
    """Enrol the demo tenant's face from the demo's enrolment photo.

    Only the 128-d template goes into the store, as for any enrolment.

    Raises:
        NotFound: no such occupant.
    """
    with asset_path(ENROL_PHOTO) as path:
        return enrol_photos(store, occupant_id, [path])


def prepare_demo_camera(folder: Path, store: Store, occupant_id: str) -> DemoCamera:
    """Enrol `occupant_id`'s demo face and compose the door video into `folder`.

    Args:
        folder: where ``door-cam.avi`` is written (the demo's temporary folder).
        store: the demo gateway's store, before the gateway starts (the camera loads the
            templates when it starts; later enrolments are picked up within seconds).
        occupant_id: the demo tenant the face is enrolled for.

    Raises:
        NotFound: no such occupant.
        RuntimeError: the enrolment photo was refused (a broken install).
    """
    folder.mkdir(parents=True, exist_ok=True)
    results = enrol_demo_tenant(store, occupant_id)
    if not all(r.ok for r in results):
        raise RuntimeError("; ".join(r.message for r in results))
    return compose_door_video(folder / "door-cam.avi", occupant_id)


def compose_door_video(path: Path, occupant_id: str, seed: int = 7) -> DemoCamera:
    """Write the door video to `path` and describe its scenes (no store involved)."""
    scene = synth.background(SIZE, seed)
    walk = [asset_image(n) for n in _WALK]
    stranger, printed = asset_image(_STRANGER), asset_image(_PRINT)
    cx, cy = SIZE[0] / 2, SIZE[1] / 2 + 40
    rng = np.random.default_rng(seed)

    def tenant(i: int) -> Image:
        if i < 3:  # stepping in from the left edge: the face is cut, so never encoded
            return synth.place(scene, walk[0], (-240.0 + 120 * i, cy), _FAR)
        step = i - 3  # then walking up to the door, growing, head moving
        return synth.place(scene, walk[step % 2], (cx, cy), _FAR + (_NEAR - _FAR) * step // 13)

    def held_photo(_: int) -> Image:
        # Held up and shaken: any flat picture moves by a homography (see liveness).
        return synth.handheld(synth.place(scene, printed, (cx, cy), _NEAR), rng)

    def empty(_: int) -> Image:
        return scene

    # (what the viewer is told, frames, frame i) — frames are made while writing: 50 distinct
    # 720p frames held at once would be ≈ 140 MB.
    parts: list[tuple[str, int, Callable[[int], Image]]] = [
        ("", 3, empty),
        (tf("demo.cam.tenant", occupant=occupant_id), 17, tenant),
        ("", _EMPTY, empty),
        (
            tf("demo.cam.stranger"),
            10,
            lambda i: synth.place(scene, stranger, (cx + 8 * (i % 3), cy), _NEAR),
        ),
        ("", _EMPTY, empty),
        (tf("demo.cam.photo", occupant=occupant_id), 25, held_photo),
        ("", _EMPTY, empty),
    ]
    expected, start = [], 0
    for text, count, _ in parts:
        if text:
            expected.append(tf("demo.cam.at", seconds=f"{start / FPS:.1f}", what=text))
        start += count
    synth.write_video(path, (make(i) for _, count, make in parts for i in range(count)), FPS)
    return DemoCamera(path, expected, FPS, start / FPS)


__all__ = [
    "DemoCamera",
    "asset_image",
    "asset_path",
    "compose_door_video",
    "enrol_demo_tenant",
    "prepare_demo_camera",
]
