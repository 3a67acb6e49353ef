"""Shared fixtures: a real MQTT broker over TCP on an ephemeral loopback port.

Mosquitto when its binary is installed (CI installs it), otherwise the pure-Python amqtt broker
in a child process. Each test gets its own broker process, so topics never leak between tests.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

# DOORGATE_TEST_BROKER=amqtt runs the suite as a machine without Mosquitto would.
MOSQUITTO = (
    None
    if os.environ.get("DOORGATE_TEST_BROKER") == "amqtt"
    else (
        shutil.which("mosquitto")
        or ("/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").exists() else None)
    )
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.02)
    raise RuntimeError(f"broker did not listen on {port} within {timeout} s")


class BrokerProcess:
    """A broker in a child process that tests can stop and start again on the same port."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.workdir = workdir
        self.kind = "mosquitto" if MOSQUITTO else "amqtt"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def _command(self) -> list[str]:
        if MOSQUITTO:
            conf = self.workdir / "mosquitto.conf"
            # Started as root, Mosquitto drops to user "mosquitto", which cannot write in a
            # private temporary folder; stay as the invoking user instead.
            user = "user root\n" if os.geteuid() == 0 else ""
            conf.write_text(
                f"{user}listener {self.port} 127.0.0.1\nallow_anonymous true\n"
                f"persistence true\npersistence_location {self.workdir}/\n"
                "max_queued_messages 100000\nmax_inflight_messages 100\n"
            )
            return [MOSQUITTO, "-c", str(conf)]
        return [sys.executable, "-m", "gateway.broker", str(self.port)]

    def start(self) -> None:
        log = (self.workdir / "broker.log").open("ab")
        self.proc = subprocess.Popen(self._command(), stdout=log, stderr=log, cwd=self.workdir)
        wait_for_port(self.port)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None


@pytest.fixture
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrokerProcess]:
    """A fresh broker for this test (Mosquitto if installed, else amqtt)."""
    proc = BrokerProcess(tmp_path_factory.mktemp("broker"))
    proc.start()
    try:
        yield proc
    finally:
        proc.stop()


@pytest.fixture(autouse=True)
def _english_and_quiet(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Tests read English messages unless they ask for Chinese; language reset after each."""
    from rules.i18n import set_language

    monkeypatch.setenv("DOORGATE_LANG", "en")
    monkeypatch.setenv("COLUMNS", "200")
    set_language("en")
    yield
    set_language("zh")
    os.environ.pop("CREDENTIALS_DIRECTORY", None)
