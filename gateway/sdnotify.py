"""systemd's notify protocol: lives in `sync.sdnotify` so the station can use it too."""

from __future__ import annotations

from sync.sdnotify import notify, watchdog_interval

__all__ = ["notify", "watchdog_interval"]
