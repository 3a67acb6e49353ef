"""Operations: systemd notify and watchdog, Prometheus metrics, retention purge."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from drivers.simulators.rdm6300 import Rdm6300Simulator
from gateway.app import Gateway
from gateway.broker import free_port
from gateway.config import broker_settings, load_config, read_secret
from sync.contract import AccessRecord
from sync.store import Store

pytestmark = pytest.mark.broker


def test_ready_and_watchdog_reach_systemd(tmp_path: Path, simulator: Rdm6300Simulator, broker, gw) -> None:
    path = gw.write_config(tmp_path, simulator.port, broker.url)
    notify_path = tmp_path / "notify.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(notify_path))
        sock.settimeout(20)
        env = {**os.environ, "NOTIFY_SOCKET": str(notify_path), "WATCHDOG_USEC": "400000"}
        proc = subprocess.Popen([sys.executable, "-m", "gateway", "run", "--config", str(path)],
                                env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            messages = [sock.recv(1024).decode() for _ in range(3)]
        finally:
            proc.terminate()
            proc.wait(10)
    assert messages[0].startswith("READY=1\nSTATUS=running")
    assert "waiting" not in messages[0]  # the reader and the broker were up
    assert messages[1:] == ["WATCHDOG=1", "WATCHDOG=1"]


async def test_metrics_endpoint_counts_decisions(tmp_path: Path, simulator: Rdm6300Simulator, broker, gw) -> None:
    path = gw.write_config(tmp_path, simulator.port, broker.url)
    port = free_port()
    path.write_text(path.read_text() + f'\n[metrics]\nlisten = "127.0.0.1:{port}"\n')
    config = load_config(path)
    key = read_secret(config.secrets.hash_key_file, path)
    store = Store.open(config.store.path, key)
    gw.seed(store)
    store.close()
    async with Gateway(config, hash_key=key, broker=broker_settings(config, path)) as gateway:
        run = asyncio.create_task(gateway.run())
        async with asyncio.timeout(10):
            while not gateway.health.get("entrance", {}).get("connected"):
                await asyncio.sleep(0.02)
        await simulator.tap(0x003B51C6, version=0x67, repeats=1)
        await simulator.tap(0x0000BEEF, version=0x01, repeats=1)
        async with asyncio.timeout(10):
            while sum(gateway.metrics.decisions.values()) < 2:
                await asyncio.sleep(0.02)
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /metrics HTTP/1.0\r\n\r\n")
        body = (await reader.read()).decode()
        writer.close()
        run.cancel()
    assert body.startswith("HTTP/1.0 200 OK")
    assert 'doorgate_decisions_total{kind="ic",verdict="allow"} 1' in body
    assert 'doorgate_decisions_total{kind="ic",verdict="deny"} 1' in body
    assert "doorgate_decision_seconds_count 2" in body
    assert 'doorgate_device_up{device="entrance"} 1' in body


async def test_a_busy_metrics_port_does_not_stop_the_gateway(tmp_path: Path, simulator, broker, gw) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        path = gw.write_config(tmp_path, simulator.port, broker.url)
        path.write_text(path.read_text() + f'\n[metrics]\nlisten = "127.0.0.1:{port}"\n')
        config = load_config(path)
        key = read_secret(config.secrets.hash_key_file, path)
        async with Gateway(config, hash_key=key, broker=broker_settings(config, path)) as gateway:
            run = asyncio.create_task(gateway.run())
            await asyncio.sleep(1.0)
            assert not run.done()
            run.cancel()


async def test_retention_purges_old_rows(tmp_path: Path, simulator, broker, gw) -> None:
    path = gw.write_config(tmp_path, simulator.port, broker.url)
    config = load_config(path)
    key = read_secret(config.secrets.hash_key_file, path)
    async with Gateway(config, hash_key=key, broker=broker_settings(config, path)) as gateway:
        store = gateway.store.store
        now = datetime.now(UTC)
        for event_id, age in (("old", 400), ("recent", 3)):
            record = AccessRecord(event_id, now - timedelta(days=age), "main", "in", "ic", None, None,
                                  "******0001", "deny", ("unknown_credential",))
            store.record_access(record, "event/access", "{}")
        await gateway.purge(now)
        assert store.access_ids() == {"recent"}
        assert store.outbox_depth() == 2  # the outbox is never purged: undelivered events stay
