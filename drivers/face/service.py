"""The face engine in its own process, fed by its own camera thread.

dlib holds the GIL for a whole encoding (≈ 100 ms measured): run in a thread of the gateway it
would stall card decisions. So the child process owns the camera (`FrameGrabber`) and the
engine; only small `FaceSighting` records (and camera health) come back over a pipe, read by a
thread that hands them to the event loop. A card decision never waits for a frame.

Usage from the gateway::

    async with FaceService(source, templates=(matrix, ids, negative)) as faces:
        async for sighting in faces.sightings():
            ...
        faces.health()                       # CameraHealth, for camera_offline
        await faces.set_templates(matrix, ids, negative)   # after enrolment / mark_wrong
        capture = await faces.capture()      # "look at the camera": FaceCapture of the latest frame

`analyse_photo_bytes` judges an uploaded photo the same way, in a short-lived process of its own
(dlib would hold the gateway's GIL for the whole encoding).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import multiprocessing as mp
import sys
import threading
import time
import types
from collections.abc import AsyncIterator, Iterator, Sequence
from multiprocessing.connection import Connection
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import cv2
import numpy as np
import numpy.typing as npt

from drivers.camera import CameraHealth, FrameGrabber
from drivers.face.analysis import Image, PhotoFace, analyse_photo, decode_image, shrink
from drivers.face.engine import EngineConfig, FaceEngine
from drivers.face.errors import FaceError, PhotoRejected, RejectReason
from drivers.face.matching import TemplateIndex
from drivers.face.types import (
    CAPTURE_NO_FRAME,
    CAPTURE_TIMEOUT,
    BBox,
    FaceCapture,
    FaceSighting,
)

logger = logging.getLogger(__name__)

Templates = tuple[npt.NDArray[np.float32], Sequence[str], Sequence[bool]]
_HEALTH_EVERY_S = 1.0
_CROP_MARGIN = 0.3  # of the face box, on every side of the shown crop


def _index(templates: Templates | None, threshold: float) -> TemplateIndex | None:
    if templates is None:
        return None
    matrix, ids, negative = templates
    return TemplateIndex(matrix, ids, negative, threshold=threshold)


def _child(conn: Connection, source: str, grabber_opts: dict[str, Any],
           config: EngineConfig) -> None:
    """Entry point of the vision process.

    The templates arrive as the first message rather than as an argument: the `Process` object
    keeps its arguments for the life of the process, which would hold a second copy of every
    template (25 MB at 50,000) beside the index built from them.
    """
    engine = FaceEngine(config, None)
    try:
        kind, payload = conn.recv()  # blocking: no frame may be judged without the templates
    except EOFError:
        return
    if kind == "stop":
        return
    engine.set_index(_index(payload, config.threshold))
    del payload
    options = dict(grabber_opts)
    offline_after = float(options.pop("offline_after"))
    grabber = FrameGrabber(source, **options)
    grabber.start()
    seq, next_health = 0, 0.0
    try:
        while not _commands(conn, engine, grabber):
            frame = grabber.wait_newer(seq, 0.2)
            if frame is not None:
                seq = frame.seq
                for sighting in engine.process(frame.image, frame.monotonic):
                    conn.send(("sighting", sighting))
            if time.monotonic() >= next_health:
                conn.send(("health", grabber.health(offline_after)))
                next_health = time.monotonic() + _HEALTH_EVERY_S
    except (EOFError, BrokenPipeError):
        pass  # the gateway went away: just stop
    finally:
        grabber.stop()


_start_lock = threading.Lock()


@contextlib.contextmanager
def _bare_main() -> Iterator[None]:
    """Start a spawned child without re-running the parent's ``__main__`` in it.

    "spawn" re-imports the parent's main script in the child so that functions defined there
    can be unpickled. For the ``doorgate`` console script that means importing `gateway.cli`
    and everything it pulls in (typer, rich, MQTT, the station): ≈ 35 MB of the vision process,
    measured, for nothing: its entry point lives in this module. A placeholder main module
    without a file or spec is skipped by `multiprocessing.spawn.get_preparation_data`.
    """
    with _start_lock:
        real = sys.modules["__main__"]
        sys.modules["__main__"] = types.ModuleType("__main__")
        try:
            yield
        finally:
            sys.modules["__main__"] = real


def _commands(conn: Connection, engine: FaceEngine, grabber: FrameGrabber) -> bool:
    """Apply pending commands; True when asked to stop."""
    while conn.poll():
        kind, payload = conn.recv()
        if kind == "stop":
            return True
        if kind == "templates":
            engine.set_index(_index(payload, engine.config.threshold))
        elif kind == "capture":
            # One photo-style analysis (≈ 0.2-0.4 s at 720p), then back to the frames.
            frame = grabber.latest() or grabber.wait_newer(0, 1.0)
            result = FaceCapture(False, CAPTURE_NO_FRAME) if frame is None else judge_frame(
                frame.image
            )
            conn.send(("capture", (payload, result)))
    return False


def judge_frame(bgr: Image) -> FaceCapture:
    """Judge one camera frame like an enrolment photo: exactly one large, sharp, frontal face.

    The same rules as `drivers.face.analysis.analyse_photo` (detection without upsampling: a
    face fit for enrolment is far above the detector's 80-px window).
    """
    bgr = shrink(bgr)  # the crop is cut from the image the face was found in
    try:
        face = analyse_photo(bgr, upsample=0)
    except PhotoRejected as err:
        return FaceCapture(False, err.reason.value)
    return FaceCapture(True, None, crop_jpeg(bgr, face.bbox), face.encoding, face.quality.score)


def crop_jpeg(bgr: Image, box: BBox, margin: float = _CROP_MARGIN) -> bytes:
    """The face in `box` with a margin, as JPEG bytes (in memory; never written anywhere)."""
    dx, dy = int(box.w * margin), int(box.h * margin)
    x0, y0 = max(0, box.x - dx), max(0, box.y - dy)
    x1, y1 = min(bgr.shape[1], box.x + box.w + dx), min(bgr.shape[0], box.y + box.h + dy)
    ok, data = cv2.imencode(".jpg", bgr[y0:y1, x0:x1], [cv2.IMWRITE_JPEG_QUALITY, 90])
    if not ok:
        raise FaceError("cannot encode the face crop as JPEG")
    return bytes(data.tobytes())


def _photo_child(conn: Connection, data: bytes) -> None:
    """Entry point of a one-shot photo analysis process."""
    try:
        result: tuple[str, Any] = ("ok", analyse_photo(decode_image(data)))
    except PhotoRejected as err:
        result = ("rejected", (err.reason.value, err.detail))
    except Exception as err:  # noqa: BLE001 - reported to the parent, which raises it
        result = ("error", f"{type(err).__name__}: {err}")
    conn.send(result)
    conn.close()


async def analyse_photo_bytes(data: bytes, timeout: float = 60.0) -> PhotoFace:
    """`analyse_photo` on image bytes, in a short-lived process (the event loop keeps running).

    The bytes go through a pipe and stay in memory; nothing is written to disk.

    Raises:
        PhotoRejected: no single usable face (or not an image).
        FaceError: the analysis failed or took longer than `timeout` seconds.
    """
    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_photo_child, args=(child, data), name="face-photo", daemon=True)
    with _bare_main():
        proc.start()
    child.close()
    try:
        if not await asyncio.to_thread(parent.poll, timeout):
            raise FaceError(f"photo analysis took longer than {timeout:.0f} s")
        kind, payload = await asyncio.to_thread(parent.recv)
    except EOFError as err:
        raise FaceError("photo analysis process died") from err
    finally:
        parent.close()
        if proc.is_alive():
            proc.terminate()
        await asyncio.to_thread(proc.join, 5.0)
    if kind == "rejected":
        raise PhotoRejected(RejectReason(payload[0]), payload[1])
    if kind == "error":
        raise FaceError(f"photo analysis failed: {payload}")
    if not isinstance(payload, PhotoFace):
        raise FaceError("photo analysis returned nothing usable")
    return payload


class FaceService:
    """Camera + face engine in a child process, as an ``async with`` object.

    Reusable, not reentrant.

    Args:
        source: camera source (see `drivers.camera.parse_source`).
        templates: ``(matrix N×128 float32, occupant ids, negative flags)`` or None.
        config: engine tuning.
        name: camera name in health reports.
        offline_after: seconds without frames before health says offline.
        fps / loop: file-source pacing and looping (demo, tests).
        start_timeout: seconds to wait for the process to report in (model loading).
    """

    def __init__(
        self,
        source: str | int | Path,
        *,
        templates: Templates | None = None,
        config: EngineConfig | None = None,
        name: str = "door",
        offline_after: float = 30.0,
        fps: float | None = None,
        loop: bool = False,
        start_timeout: float = 30.0,
    ) -> None:
        self.source, self.templates = str(source), templates
        self.config = config or EngineConfig()
        self.name, self.offline_after, self.start_timeout = name, offline_after, start_timeout
        self._grabber_opts: dict[str, Any] = {"name": name, "fps": fps, "loop": loop}
        self._proc: Any = None
        self._conn: Connection | None = None
        self._queue: asyncio.Queue[FaceSighting | None] | None = None
        self._health = CameraHealth(name, False, time.monotonic(), False, 0)
        self._reader: threading.Thread | None = None
        self._send_lock = threading.Lock()  # a Connection is not safe for concurrent senders
        self._capture_ids = itertools.count(1)
        self._captures: dict[int, asyncio.Future[FaceCapture]] = {}

    async def __aenter__(self) -> Self:
        if self._proc is not None:
            raise FaceError("face service already running")
        # spawn, not fork: the parent has threads (asyncio executors) that fork would copy badly.
        ctx = mp.get_context("spawn")
        parent, child = ctx.Pipe()
        proc = ctx.Process(
            target=_child, name=f"face-{self.name}", daemon=True,
            args=(child, self.source, {**self._grabber_opts, "offline_after": self.offline_after},
                  self.config),
        )
        # Started on the loop thread on purpose: the arguments are small now (the templates go
        # through the pipe below), and no other code of ours runs while __main__ is swapped.
        with _bare_main():
            proc.start()
        child.close()
        # Up to 25 MB for 50,000 templates: the pipe blocks until the child reads it.
        await asyncio.to_thread(self._send, parent, ("templates", self.templates))
        self._proc, self._conn, self._queue = proc, parent, asyncio.Queue()
        loop = asyncio.get_running_loop()
        self._reader = threading.Thread(
            target=self._pump, args=(parent, loop, self._queue), daemon=True, name="face-pipe"
        )
        self._reader.start()
        return self

    def _send(self, conn: Connection, message: tuple[str, Any]) -> None:
        with self._send_lock:
            conn.send(message)

    def _pump(self, conn: Connection, loop: asyncio.AbstractEventLoop,
              queue: asyncio.Queue[FaceSighting | None]) -> None:
        try:
            while True:
                kind, payload = conn.recv()
                if kind == "health":
                    self._health = payload
                elif kind == "capture":
                    request_id, result = payload
                    loop.call_soon_threadsafe(self._capture_done, request_id, result)
                else:
                    loop.call_soon_threadsafe(queue.put_nowait, payload)
        except (EOFError, OSError):
            with contextlib.suppress(RuntimeError):  # loop already closed at shutdown
                loop.call_soon_threadsafe(queue.put_nowait, None)
                for request_id in list(self._captures):
                    loop.call_soon_threadsafe(
                        self._capture_done, request_id, FaceCapture(False, CAPTURE_NO_FRAME)
                    )

    def _capture_done(self, request_id: int, result: FaceCapture) -> None:
        future = self._captures.pop(request_id, None)
        if future is not None and not future.done():
            future.set_result(result)

    async def capture(self, timeout: float = 5.0) -> FaceCapture:
        """Judge the camera's latest frame for enrolment ("look at the camera").

        The vision process analyses its newest frame like an enrolment photo and answers
        through the same pipe as the sightings; recognition pauses only for that analysis.

        Returns:
            The capture: ok with the crop, encoding and quality, or ok=False with a reason
            (``timeout`` when the process did not answer within `timeout` seconds).

        Raises:
            FaceError: the service is not running.
        """
        conn = self._conn
        if conn is None:
            raise FaceError("face service is not running (use `async with`)")
        request_id = next(self._capture_ids)
        future: asyncio.Future[FaceCapture] = asyncio.get_running_loop().create_future()
        self._captures[request_id] = future
        try:
            await asyncio.to_thread(self._send, conn, ("capture", request_id))
            async with asyncio.timeout(timeout):
                return await future
        except TimeoutError:
            return FaceCapture(False, CAPTURE_TIMEOUT)
        except OSError as err:
            raise FaceError(f"face process unreachable: {err}") from err
        finally:
            self._captures.pop(request_id, None)

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        proc, conn, reader = self._proc, self._conn, self._reader
        self._proc = self._conn = self._queue = self._reader = None
        if proc is None or conn is None:
            return
        with contextlib.suppress(OSError):
            self._send(conn, ("stop", None))
        await asyncio.to_thread(proc.join, 5.0)
        if proc.is_alive():
            logger.warning("face process did not stop; terminating it")
            proc.terminate()
            await asyncio.to_thread(proc.join, 2.0)
        conn.close()
        if reader is not None:
            await asyncio.to_thread(reader.join, 2.0)

    @property
    def pid(self) -> int | None:
        """The vision process's id while it runs (for memory measurements)."""
        return None if self._proc is None else int(self._proc.pid)

    def health(self) -> CameraHealth:
        """The camera health last reported by the vision process (offline if it died)."""
        if self._proc is not None and not self._proc.is_alive():
            h = self._health
            return CameraHealth(h.name, False, h.since, True, h.frames, h.ended,
                                "face process exited")
        return self._health

    async def set_templates(self, matrix: npt.NDArray[np.float32], occupant_ids: Sequence[str],
                            negative: Sequence[bool]) -> None:
        """Replace the templates in the running engine (they stay on this machine)."""
        self.templates = (matrix, list(occupant_ids), list(negative))
        if self._conn is not None:
            await asyncio.to_thread(self._send, self._conn, ("templates", self.templates))

    async def sightings(self) -> AsyncIterator[FaceSighting]:
        """Yield sightings until the vision process ends."""
        if self._queue is None:
            raise FaceError("face service is not running (use `async with`)")
        queue = self._queue
        while (item := await queue.get()) is not None:
            yield item
