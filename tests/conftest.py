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


def _postgres_bin() -> Path | None:
    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"), reverse=True)
    return candidates[0].parent if candidates else None


@pytest.fixture(scope="session")
def postgres_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A throw-away PostgreSQL cluster on a free loopback port; yields its admin URL.

    Skipped when PostgreSQL's server binaries are not installed (CI installs them).
    """
    bindir = _postgres_bin()
    if bindir is None:
        pytest.skip("PostgreSQL server binaries not installed (apt-get install postgresql)")
    import pwd

    folder = tmp_path_factory.mktemp("pg")
    data, port = folder / "data", free_port()
    # PostgreSQL refuses to run as root: run it as the postgres system user then.
    as_user: list[str] = []
    if os.geteuid() == 0:
        folder.chmod(0o777)
        as_user = ["runuser", "-u", "postgres", "--"]
        owner = pwd.getpwnam("postgres")
        for parent in folder.parents:
            if parent == Path("/tmp"):
                break
            parent.chmod(parent.stat().st_mode | 0o011)
        os.chown(folder, owner.pw_uid, owner.pw_gid)
    subprocess.run([*as_user, str(bindir / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres",
                    "--no-sync", "-E", "UTF8"], check=True, capture_output=True)
    options = f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c fsync=off"
    subprocess.run([*as_user, str(bindir / "pg_ctl"), "-D", str(data), "-o", options, "-w", "-l",
                    str(folder / "pg.log"), "start"], check=True, capture_output=True)
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run([*as_user, str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
                       check=False, capture_output=True)


@pytest.fixture
def postgres_url(postgres_server: str) -> str:
    """A fresh, empty database for this test."""
    import uuid

    import psycopg

    name = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_server, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')  # type: ignore[arg-type]
    return postgres_server.rsplit("/", 1)[0] + f"/{name}"
