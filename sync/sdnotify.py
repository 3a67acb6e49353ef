"""systemd's notify protocol without libsystemd: READY, STATUS and watchdog pings.

``Type=notify`` units get ``$NOTIFY_SOCKET`` (a Unix datagram socket, ``@`` for the abstract
namespace) and, with ``WatchdogSec=``, ``$WATCHDOG_USEC``. Outside systemd both are unset and
every call is a no-op.
"""

from __future__ import annotations

import logging
import os
import socket

logger = logging.getLogger(__name__)


def notify(message: str) -> bool:
    """Send one notification such as ``READY=1``; False when not under systemd."""
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return False
    target = "\0" + address[1:] if address.startswith("@") else address
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.sendto(message.encode(), target)
    except OSError as err:
        logger.warning("sd_notify %s failed: %s", message.split("=", 1)[0], err)
        return False
    return True


def watchdog_interval() -> float | None:
    """Seconds between watchdog pings (half of ``WatchdogSec``), or None without a watchdog."""
    usec = os.environ.get("WATCHDOG_USEC")
    pid = os.environ.get("WATCHDOG_PID")
    if not usec or (pid and int(pid) != os.getpid()):
        return None
    return int(usec) / 2_000_000
