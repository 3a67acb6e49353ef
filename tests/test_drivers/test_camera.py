"""Camera capture on real files written with OpenCV: newest frame only, end, health, sources."""

from __future__ import annotations

import asyncio
import itertools
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from drivers.camera import Camera, CameraError, FrameGrabber, parse_source
from drivers.face.synth import write_video


def _numbered(n: int, size: tuple[int, int] = (160, 120)) -> list[np.ndarray]:
    # Frame i has a grey level of 4*i: survives MJPG compression well enough to read back.
    return [np.full((size[1], size[0], 3), 4 * i, np.uint8) for i in range(n)]


def _level(frame: np.ndarray) -> int:
    return round(float(frame.mean()) / 4)


def test_parse_source_classifies_devices_urls_files_and_patterns(tmp_path: Path) -> None:
    video = tmp_path / "v.avi"
    video.write_bytes(b"x")
    assert parse_source(0).api == cv2.CAP_V4L2
    assert parse_source("/dev/video2").live
    assert parse_source("rtsp://cam/stream").api == cv2.CAP_FFMPEG
    assert parse_source(str(tmp_path / "f_%03d.jpg")).api == cv2.CAP_IMAGES
    assert not parse_source(video).live
    with pytest.raises(CameraError, match="neither"):
        parse_source(tmp_path / "missing.avi")


async def test_video_file_frames_arrive_in_order_then_end(tmp_path: Path) -> None:
    path = write_video(tmp_path / "n.avi", _numbered(20), fps=10)
    levels = []
    async with Camera(path, fps=200) as cam:
        async for frame in cam.frames():
            levels.append(_level(frame.image))
        assert cam.health().ended
        assert not cam.health().offline
    assert levels == sorted(levels)
    assert levels[-1] == 19


async def test_slow_consumer_gets_the_newest_frame_not_a_backlog(tmp_path: Path) -> None:
    path = write_video(tmp_path / "n.avi", _numbered(60), fps=10)
    got = []
    async with Camera(path, fps=100) as cam:  # 0.6 s of video
        async for frame in cam.frames():
            got.append(frame.seq)
            await asyncio.sleep(0.1)  # a consumer 10× slower than the camera
    assert len(got) < 15
    assert max(b - a for a, b in itertools.pairwise(got)) >= 5  # skipped, not queued


async def test_image_sequence_is_a_source(tmp_path: Path) -> None:
    for i, frame in enumerate(_numbered(5)):
        cv2.imwrite(str(tmp_path / f"f_{i:03d}.png"), frame)
    async with Camera(str(tmp_path / "f_%03d.png"), fps=100) as cam:
        levels = [_level(f.image) async for f in cam.frames()]
    assert levels == [0, 1, 2, 3, 4]


async def test_unreachable_stream_reports_offline_after_the_configured_time() -> None:
    grabber = FrameGrabber("rtsp://127.0.0.1:9/none", name="gate", backoff=lambda _n: 0.05)
    grabber.start()
    try:
        await asyncio.sleep(0.1)
        assert not grabber.health(offline_after=5).offline  # lost, but not long enough
        deadline = time.monotonic() + 10
        while not grabber.health(offline_after=0.3).offline and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        health = grabber.health(offline_after=0.3)
        assert health.offline and not health.connected
        assert health.last_error == "cannot open source"
    finally:
        await asyncio.to_thread(grabber.stop)


async def test_camera_is_not_reentrant_and_reusable(tmp_path: Path) -> None:
    path = write_video(tmp_path / "n.avi", _numbered(3), fps=10)
    cam = Camera(path, fps=100)
    async with cam:
        with pytest.raises(CameraError, match="already open"):
            await cam.__aenter__()
    with pytest.raises(CameraError, match="not open"):
        cam.health()
    async with cam:
        assert await cam.next_frame(timeout=5) is not None
