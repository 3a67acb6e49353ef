"""Compose camera pictures from face photos, for the demo, the tests and the benchmark.

These are synthetic scenes: a photo pasted onto a blurred-noise background, jittered like a
hand-held print, alternated between shots, or with its eyes warped shut. They exercise the real
detector, landmarks and encoder, but they are not recordings of people at a door.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

import cv2
import numpy as np

from drivers.face.analysis import Image, Landmarks


def background(size: tuple[int, int], seed: int = 0) -> Image:
    """A deterministic textured background of (width, height), like a dim hallway."""
    w, h = size
    rng = np.random.default_rng(seed)
    noise = rng.integers(0, 255, (h, w, 3), dtype=np.uint8)
    blurred = cv2.GaussianBlur(noise, (0, 0), max(2.0, w / 160))
    lo, hi = float(blurred.min()), float(blurred.max())
    stretched = 40 + (blurred.astype(np.float32) - lo) * (160 / max(hi - lo, 1.0))
    return stretched.astype(np.uint8)


def place(scene: Image, photo: Image, centre: tuple[float, float], height: int) -> Image:
    """A copy of `scene` with `photo` scaled to `height` px pasted at `centre` (clipped)."""
    out = scene.copy()
    scale = height / photo.shape[0]
    img = cv2.resize(photo, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    x0, y0 = int(centre[0] - img.shape[1] / 2), int(centre[1] - img.shape[0] / 2)
    sx0, sy0 = max(0, -x0), max(0, -y0)
    dx0, dy0 = max(0, x0), max(0, y0)
    dx1 = min(out.shape[1], x0 + img.shape[1])
    dy1 = min(out.shape[0], y0 + img.shape[0])
    if dx1 > dx0 and dy1 > dy0:
        out[dy0:dy1, dx0:dx1] = img[sy0 : sy0 + dy1 - dy0, sx0 : sx0 + dx1 - dx0]
    return out


def handheld(frame: Image, rng: np.random.Generator, *, shift: float = 0.01,
             angle: float = 2.0, zoom: float = 0.03, tilt: float = 0.01) -> Image:
    """`frame` moved like a print held in a hand: small shift, rotation, scale and tilt."""
    h, w = frame.shape[:2]
    src = np.array([[0, 0], [w, 0], [w, h], [0, h]], dtype=np.float32)
    rot = cv2.getRotationMatrix2D((w / 2, h / 2), rng.uniform(-angle, angle),
                                  1 + rng.uniform(-zoom, zoom))
    moved = np.asarray(cv2.transform(src.reshape(-1, 1, 2), rot), dtype=np.float64).reshape(-1, 2)
    moved += rng.uniform(-shift, shift, 2) * (w, h)
    moved += rng.uniform(-tilt, tilt, (4, 2)) * (w, h)  # perspective: not square-on
    matrix = cv2.getPerspectiveTransform(src, moved.astype(np.float32))
    return np.asarray(cv2.warpPerspective(frame, matrix, (w, h), borderMode=cv2.BORDER_REFLECT),
                      dtype=np.uint8)


def close_eyes(frame: Image, points: Landmarks, amount: float = 1.0) -> Image:
    """Warp both eye regions so the lids meet (a synthetic blink); `amount` 0…1."""
    out = frame.copy()
    for eye in (points[36:42], points[42:48]):
        x0, x1 = int(eye[:, 0].min()) - 4, int(eye[:, 0].max()) + 4
        cy = float(eye[:, 1].mean())
        half_eye = max(2.0, float(eye[:, 1].max() - eye[:, 1].min()) / 2 + 1)
        big = 3 * half_eye  # rows from the eyelids are stretched over the eye opening
        y0, y1 = int(cy - big), int(cy + big) + 1
        ys, xs = np.mgrid[y0:y1, x0:x1].astype(np.float32)
        d = ys - cy
        lid = half_eye * amount
        src_y = cy + np.sign(d) * (lid + np.abs(d) / big * (big - lid))
        out[y0:y1, x0:x1] = cv2.remap(frame, xs, src_y, cv2.INTER_LINEAR)
    return out


def write_video(path: Path, frames: Iterable[Image], fps: float = 10.0) -> Path:
    """Write frames as an MJPG AVI (works in headless OpenCV without extra codecs)."""
    writer: cv2.VideoWriter | None = None
    try:
        for frame in frames:
            if writer is None:
                size = (frame.shape[1], frame.shape[0])
                writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"MJPG"), fps, size)
            writer.write(frame)
    finally:
        if writer is not None:
            writer.release()
    return path


def entering(photo: Image, size: tuple[int, int], *, face_height: int, empty: int,
             steps: int, visible: int, seed: int = 0,
             y: float | None = None) -> tuple[list[Image], int]:
    """A person stepping into view: `empty` frames, `steps` frames sliding in, then `visible`.

    While sliding in, the photo's centre stays left of the frame edge's inside, so the face is
    cut by the edge; the face is whole only from the returned index on. `y` is the photo
    centre's row (default: the middle).
    """
    w, h = size
    scene = background(size, seed)
    final = (w / 2, h / 2 if y is None else y)
    ph_w = photo.shape[1] * face_height / photo.shape[0]
    start_x = -ph_w / 2  # fully outside
    frames = [scene.copy() for _ in range(empty)]
    for i in range(1, steps + 1):
        x = start_x + (0 - start_x) * i / steps  # up to centred on the left edge
        frames.append(place(scene, photo, (x, final[1]), face_height))
    first = len(frames)
    frames += [place(scene, photo, final, face_height) for _ in range(visible)]
    return frames, first


def sequence(photos: Sequence[Image], n: int) -> list[Image]:
    """`n` frames cycling through `photos` (different shots of one person: a 'moving' head)."""
    return [photos[i % len(photos)] for i in range(n)]
