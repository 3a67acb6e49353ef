"""`doorgate run` as systemd runs it: a child process stopped with SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from drivers.simulators.rdm6300 import Rdm6300Simulator

pytestmark = pytest.mark.broker


def test_sigterm_stops_cleanly_and_says_offline(tmp_path: Path, simulator: Rdm6300Simulator, broker, gw) -> None:
    import paho.mqtt.subscribe as subscribe

    path = gw.write_config(tmp_path, simulator.port, broker.url)
    log = tmp_path / "daemon.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "gateway", "run", "--config", str(path)],
                                stdout=out, stderr=out, env={**os.environ, "DOORGATE_LANG": "en"})
        try:
            deadline = time.monotonic() + 20
            while b"connected to" not in log.read_bytes():
                assert proc.poll() is None, log.read_text()
                assert time.monotonic() < deadline, log.read_text()
                time.sleep(0.05)
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(15) == 0, log.read_text()
        finally:
            proc.kill()
    topic = f"doorgate/v1/{tmp_path.name[-20:].replace('_', '-')}/gw-test/status"
    message = subscribe.simple(topic, hostname="127.0.0.1", port=broker.port, retained=True)
    assert json.loads(message.payload)["state"] == "offline"  # type: ignore[union-attr]
    assert "Traceback" not in log.read_text()
    assert (tmp_path / "gateway.db").exists()
