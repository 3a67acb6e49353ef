"""Log output: plain text on a terminal, structured records for journald or as JSON lines.

``--log-format auto`` (the default) sends records to journald over its native protocol when
stderr is the journal (systemd sets ``$JOURNAL_STREAM`` to its device and inode), so every record
carries fields (``PRIORITY``, ``LOGGER``, ``CODE_FILE``/``CODE_LINE``, ``TASK``, and any
``extra={"DOORGATE_…": …}`` the caller adds) that ``journalctl -o json`` or
``journalctl DOORGATE_DOOR=main`` can filter on. ``json`` writes one JSON object per line to
stderr (for a log shipper), ``text`` the classic one-line format.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
import struct
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any, Literal

JOURNAL_SOCKET = "/run/systemd/journal/socket"
LogFormat = Literal["auto", "text", "json", "journal"]
FORMATS: tuple[str, ...] = ("auto", "text", "json", "journal")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# Attributes every LogRecord has; anything else came in through `extra=`.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


def _priority(levelno: int) -> int:
    # syslog priorities: 2 crit, 3 err, 4 warning, 6 info, 7 debug
    if levelno >= logging.CRITICAL:
        return 2
    if levelno >= logging.ERROR:
        return 3
    if levelno >= logging.WARNING:
        return 4
    return 6 if levelno >= logging.INFO else 7


def _task_name() -> str | None:
    try:
        task = asyncio.current_task()
    except RuntimeError:
        return None
    return task.get_name() if task is not None else None


def _extras(record: logging.LogRecord) -> Iterator[tuple[str, Any]]:
    # What the caller added through `extra=` under an upper-case name (``DOORGATE_DOOR``).
    return ((k, v) for k, v in vars(record).items() if k not in _STANDARD and k.isupper())


def record_fields(record: logging.LogRecord, message: str) -> dict[str, str]:
    """The journald fields of one record (upper-case names, string values)."""
    fields = {
        "MESSAGE": message,
        "PRIORITY": str(_priority(record.levelno)),
        "SYSLOG_IDENTIFIER": "doorgate",
        "LOGGER": record.name,
        "CODE_FILE": record.pathname,
        "CODE_LINE": str(record.lineno),
        "CODE_FUNC": record.funcName,
    }
    if task := _task_name():
        fields["TASK"] = task
    for key, value in _extras(record):
        if key.replace("_", "").isalnum():  # journald field names: A-Z, 0-9 and _
            fields[key] = str(value)
    return fields


def _encode(fields: dict[str, str]) -> bytes:
    out = bytearray()
    for key, value in fields.items():
        data = value.encode("utf-8", "replace")
        if b"\n" in data:  # binary-safe form: name, newline, 64-bit LE length, data
            out += key.encode() + b"\n" + struct.pack("<Q", len(data)) + data + b"\n"
        else:
            out += key.encode() + b"=" + data + b"\n"
    return bytes(out)


class JournalHandler(logging.Handler):
    """Sends each record to journald as one native-protocol datagram (no libsystemd)."""

    def __init__(self, address: str = JOURNAL_SOCKET) -> None:
        super().__init__()
        self.address = address
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.fallback = logging.StreamHandler(sys.stderr)
        self.fallback.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = self.format(record)
            self.sock.sendto(_encode(record_fields(record, message)), self.address)
        except OSError:
            # Journal gone or the record too big for one datagram: stderr also reaches journald.
            self.fallback.emit(record)

    def close(self) -> None:
        self.sock.close()
        super().close()


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, message, task and any upper-case extras."""

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        if record.exc_info:
            message += "\n" + self.formatException(record.exc_info)
        data: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": message,
        }
        if task := _task_name():
            data["task"] = task
        for key, value in _extras(record):
            data[key.lower()] = value if isinstance(value, int | float | bool) else str(value)
        return json.dumps(data, ensure_ascii=False)


def stderr_is_journal() -> bool:
    """True when stderr is connected to journald (systemd's documented check)."""
    stream = os.environ.get("JOURNAL_STREAM", "")
    dev, _, inode = stream.partition(":")
    if not dev.isdigit() or not inode.isdigit():
        return False
    try:
        st = os.fstat(sys.stderr.fileno())
    except (OSError, ValueError):
        return False
    return (st.st_dev, st.st_ino) == (int(dev), int(inode))


def setup_logging(level: int, fmt: str = "auto") -> logging.Handler:
    """Install one root handler for `fmt` and return it."""
    if fmt == "auto":
        fmt = "journal" if stderr_is_journal() and os.path.exists(JOURNAL_SOCKET) else "text"
    handler: logging.Handler
    if fmt == "journal":
        handler = JournalHandler()
        handler.setFormatter(logging.Formatter("%(message)s"))
    elif fmt == "json":
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(JsonFormatter())
    else:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter(TEXT_FORMAT))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    return handler
