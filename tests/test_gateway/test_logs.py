"""Structured logs: journald's native protocol, JSON lines, and the auto choice."""

from __future__ import annotations

import json
import logging
import os
import socket
import struct
import subprocess
import sys
from pathlib import Path

from gateway.logs import JournalHandler, JsonFormatter, stderr_is_journal


def parse_journal(data: bytes) -> dict[str, str]:
    fields, rest = {}, data
    while rest:
        line, _, rest = rest.partition(b"\n")
        if b"=" in line:
            key, _, value = line.partition(b"=")
        else:  # binary-safe field: name, 64-bit length, data, newline
            key, size = line, struct.unpack("<Q", rest[:8])[0]
            value, rest = rest[8 : 8 + size], rest[9 + size :]
        fields[key.decode()] = value.decode()
    return fields


def test_records_reach_journald_with_fields(tmp_path: Path) -> None:
    path = str(tmp_path / "journal.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(path)
        handler = JournalHandler(path)
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger = logging.getLogger("gateway.test_logs")
        logger.addHandler(handler)
        try:
            logger.warning("door %s held open", "main", extra={"DOORGATE_DOOR": "main"})
            logger.error("two\nlines")
        finally:
            logger.removeHandler(handler)
            handler.close()
        first, second = parse_journal(sock.recv(65536)), parse_journal(sock.recv(65536))
    assert first["MESSAGE"] == "door main held open"
    assert first["PRIORITY"] == "4" and first["SYSLOG_IDENTIFIER"] == "doorgate"
    assert first["LOGGER"] == "gateway.test_logs" and first["DOORGATE_DOOR"] == "main"
    assert first["CODE_FILE"].endswith("test_logs.py") and int(first["CODE_LINE"]) > 0
    assert second["MESSAGE"] == "two\nlines" and second["PRIORITY"] == "3"


def test_json_lines_carry_extras() -> None:
    record = logging.LogRecord("gateway.app", logging.INFO, __file__, 1, "unlock %s", ("main",), None)
    record.DOORGATE_DOOR = "main"
    data = json.loads(JsonFormatter().format(record))
    assert data["message"] == "unlock main" and data["level"] == "info"
    assert data["doorgate_door"] == "main" and data["ts"].endswith("+00:00")


def test_auto_picks_the_journal_only_when_stderr_is_the_journal(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("JOURNAL_STREAM", raising=False)
    assert not stderr_is_journal()
    st = os.fstat(sys.stderr.fileno())
    monkeypatch.setenv("JOURNAL_STREAM", f"{st.st_dev}:{st.st_ino}")
    assert stderr_is_journal()


def test_cli_writes_json_logs(tmp_path: Path) -> None:
    env = {**os.environ, "DOORGATE_LOG_FORMAT": "json", "DOORGATE_LANG": "en"}
    env.pop("JOURNAL_STREAM", None)
    code = ("import logging, sys; from gateway.cli import main; sys.argv=['doorgate','--log-format',"
            "'json','check-config','/nonexistent'];\ntry: main()\nexcept SystemExit: pass\n"
            "logging.getLogger('gateway.x').warning('hello')")
    proc = subprocess.run(check=False, args=[sys.executable, "-c", code], capture_output=True, text=True, env=env)
    line = [x for x in proc.stderr.splitlines() if x.startswith("{")][-1]
    assert json.loads(line)["message"] == "hello"
