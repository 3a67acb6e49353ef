"""Camera capture with OpenCV: always the newest frame, reconnects, health for the gateway.

Sources: an RTSP/HTTP URL, a V4L2 device (``/dev/video0`` or ``"0"``), a video file, or an image
sequence (``frames/%04d.jpg``, OpenCV's pattern syntax). A reader thread calls the blocking
``VideoCapture.read()`` as fast as frames come and keeps only the latest one: whoever consumes
frames (the face engine, slower than the camera) always gets the freshest picture, never a
backlog. Files are paced at their frame rate so they behave like a camera.

`FrameGrabber` is the synchronous core (used inside the vision process); `Camera` wraps it as a
reusable ``async with`` object for the event loop.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import cv2
import numpy as np
import numpy.typing as npt

from drivers.backoff import backoff_delay
from drivers.errors import DriverError

logger = logging.getLogger(__name__)

# RTSP over TCP: UDP drops packets on busy Wi-Fi and OpenCV then shows smeared frames.
os.environ.setdefault("OPENCV_FFMPEG_CAPTURE_OPTIONS", "rtsp_transport;tcp")


class CameraError(DriverError):
    """The camera could not be used (bad source, or used twice at once)."""


@dataclass(frozen=True, slots=True)
class Frame:
    """One captured picture.

    Attributes:
        image: BGR pixels (never logged, never written anywhere).
        seq: increasing frame number since the grabber started.
        monotonic: `time.monotonic()` when the frame was read.
    """

    image: npt.NDArray[np.uint8]
    seq: int
    monotonic: float


@dataclass(frozen=True, slots=True)
class CameraHealth:
    """Health of a camera, polled by the gateway to raise ``camera_offline``.

    Attributes:
        name: the configured camera name.
        connected: frames are arriving.
        since: monotonic time of the last change of `connected`.
        offline: disconnected for at least `offline_after` seconds: raise the alert.
        frames: frames read so far.
        ended: a file source reached its end (not an error for a demo or a test).
        last_error: short text of the last failure.
    """

    name: str
    connected: bool
    since: float
    offline: bool
    frames: int
    ended: bool = False
    last_error: str | None = None


@dataclass(frozen=True, slots=True)
class _Source:
    target: str | int
    api: int
    live: bool


def parse_source(source: str | int | Path) -> _Source:
    """Classify a camera source string (exposed for tests)."""
    text = str(source)
    if isinstance(source, int) or text.isdigit():
        return _Source(int(text), cv2.CAP_V4L2, live=True)
    if text.startswith("/dev/video"):
        return _Source(text, cv2.CAP_V4L2, live=True)
    if "://" in text:
        return _Source(text, cv2.CAP_FFMPEG, live=True)
    if "%" in text:
        return _Source(text, cv2.CAP_IMAGES, live=False)
    if not Path(text).exists():
        raise CameraError(f"camera source {text!r} is neither a device, a URL nor a file")
    return _Source(text, cv2.CAP_ANY, live=False)


class FrameGrabber:
    """A thread that reads a source and keeps only its newest frame.

    Args:
        source: URL, device, video file or image-sequence pattern.
        name: the camera's name in health reports.
        fps: pacing of file sources (default: the file's own rate, else 25).
        loop: restart a file source at its end (demo); otherwise it reports `ended`.
        on_frame: called from the reader thread after each new frame (keep it tiny).
        backoff: seconds to wait before reconnect attempt n.
    """

    def __init__(
        self,
        source: str | int | Path,
        *,
        name: str = "door",
        fps: float | None = None,
        loop: bool = False,
        on_frame: Callable[[], None] | None = None,
        backoff: Callable[[int], float] = backoff_delay,
    ) -> None:
        self.source = parse_source(source)
        self.name, self.fps, self.loop = name, fps, loop
        self.on_frame, self.backoff = on_frame, backoff
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._frame: Frame | None = None
        self._thread: threading.Thread | None = None
        self._connected, self._since = False, time.monotonic()
        self._ended, self._count = False, 0
        self._error: str | None = None

    def start(self) -> None:
        """Start the reader thread (returns at once; opening happens in the thread)."""
        if self._thread is not None:
            raise CameraError(f"camera {self.name} is already running")
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name=f"camera-{self.name}", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop and join the reader thread (blocking: call it off the event loop)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                logger.warning("camera %s: reader thread did not stop in %.0f s", self.name,
                               timeout)
        self._thread = None
        with self._cond:
            self._cond.notify_all()

    def latest(self) -> Frame | None:
        """The newest frame, or None before the first one."""
        return self._frame

    def wait_newer(self, seq: int, timeout: float) -> Frame | None:
        """Block until a frame newer than `seq` exists (or `timeout`); return the newest."""
        with self._cond:
            self._cond.wait_for(
                lambda: (self._frame is not None and self._frame.seq > seq) or self._stop.is_set()
                or self._ended, timeout)
            frame = self._frame
        return frame if frame is not None and frame.seq > seq else None

    def health(self, offline_after: float) -> CameraHealth:
        """The current health; `offline` once disconnected for `offline_after` seconds."""
        now = time.monotonic()
        offline = not self._connected and not self._ended and now - self._since >= offline_after
        return CameraHealth(self.name, self._connected, self._since, offline, self._count,
                            self._ended, self._error)

    def _set_connected(self, connected: bool, error: str | None = None) -> None:
        if connected != self._connected:
            self._connected, self._since = connected, time.monotonic()
            logger.info("camera %s %s", self.name, "connected" if connected else "lost")
        if error:
            self._error = error

    def _run(self) -> None:
        attempt = 0
        while not self._stop.is_set() and not self._ended:
            cap = self._open()
            if cap is None:
                self._set_connected(False, "cannot open source")
                self._stop.wait(self.backoff(attempt))
                attempt += 1
                continue
            attempt = 0
            try:
                self._read_until_failure(cap)
            finally:
                cap.release()
        self._set_connected(False)

    def _open(self) -> cv2.VideoCapture | None:
        cap = cv2.VideoCapture(self.source.target, self.source.api)
        if not cap.isOpened():
            cap.release()
            return None
        if self.source.live:
            cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)  # the driver's queue is a backlog too
        return cap

    def _read_until_failure(self, cap: cv2.VideoCapture) -> None:
        period = 0.0 if self.source.live else 1.0 / (self.fps or cap.get(cv2.CAP_PROP_FPS) or 25)
        next_at = time.monotonic()
        while not self._stop.is_set():
            ok, image = cap.read()
            if not ok or image is None:
                self._end_of_stream(cap)
                return
            self._publish(np.asarray(image, dtype=np.uint8))
            if period:
                next_at += period
                self._stop.wait(max(0.0, next_at - time.monotonic()))

    def _end_of_stream(self, cap: cv2.VideoCapture) -> None:
        if self.source.live:
            self._set_connected(False, "stream interrupted")
        elif self.loop:
            cap.set(cv2.CAP_PROP_POS_FRAMES, 0)  # next open starts over; keep "connected"
        else:
            with self._cond:
                self._ended = True
                self._cond.notify_all()
            if self.on_frame is not None:
                self.on_frame()  # wakes async waiters so they see the end

    def _publish(self, image: npt.NDArray[np.uint8]) -> None:
        self._set_connected(True)
        with self._cond:
            self._count += 1
            self._frame = Frame(image, self._count, time.monotonic())
            self._cond.notify_all()
        if self.on_frame is not None:
            self.on_frame()


class Camera:
    """A camera for the event loop: ``async with Camera(src) as cam: async for f in cam.frames()``.

    Reusable but not reentrant. Blocking OpenCV calls stay in the grabber's thread or run in
    ``asyncio.to_thread``.

    Args:
        source: URL, device, video file or image-sequence pattern.
        name: the camera's name in health reports and logs.
        offline_after: seconds without frames before `health().offline` (``camera_offline``).
        **grabber: `FrameGrabber` options (fps, loop, backoff).
    """

    def __init__(
        self, source: str | int | Path, *, name: str = "door", offline_after: float = 30.0,
        **grabber: Any,
    ) -> None:
        self.source, self.name, self.offline_after = source, name, offline_after
        self._options = grabber
        self._grabber: FrameGrabber | None = None
        self._new: asyncio.Event | None = None

    async def __aenter__(self) -> Self:
        if self._grabber is not None:
            raise CameraError(f"camera {self.name} is already open")
        loop = asyncio.get_running_loop()
        new = asyncio.Event()

        def wake() -> None:
            # From the reader thread: only hand the loop a flag, never a frame copy.
            loop.call_soon_threadsafe(new.set)

        grabber = FrameGrabber(self.source, name=self.name, on_frame=wake, **self._options)
        grabber.start()
        self._grabber, self._new = grabber, new
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        grabber, self._grabber, self._new = self._grabber, None, None
        if grabber is not None:
            await asyncio.to_thread(grabber.stop)

    def _require(self) -> tuple[FrameGrabber, asyncio.Event]:
        if self._grabber is None or self._new is None:
            raise CameraError(f"camera {self.name} is not open (use `async with`)")
        return self._grabber, self._new

    def health(self) -> CameraHealth:
        """Current health (cheap; poll it from the supervisor)."""
        grabber, _ = self._require()
        return grabber.health(self.offline_after)

    async def next_frame(self, after: int = 0, timeout: float | None = None) -> Frame | None:
        """The newest frame with ``seq > after``; None on timeout or when a file ended."""
        grabber, new = self._require()
        try:
            async with asyncio.timeout(timeout):
                while True:
                    frame = grabber.latest()
                    if frame is not None and frame.seq > after:
                        return frame
                    if grabber.health(self.offline_after).ended:
                        return None
                    new.clear()
                    await new.wait()
        except TimeoutError:
            return None

    async def frames(self) -> AsyncIterator[Frame]:
        """Yield ever newer frames (never a backlog) until a file source ends."""
        seq = 0
        while (frame := await self.next_frame(seq)) is not None:
            seq = frame.seq
            yield frame
