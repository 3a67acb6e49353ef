"""``doorgate bench uplink``: outbox → broker at QoS 1, next to a raw paho loop in the same run.

Both sides publish the same payloads to the same local broker with ~100 messages in flight; the
uplink additionally reads them from SQLite and deletes each acknowledged batch, which is the
price of never holding an event only in memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from gateway.broker import embedded_broker, free_port
from sync.contract import AccessRecord, Topics, access_payload, dumps, new_event_id
from sync.mqtt import BrokerSettings
from sync.store import AsyncStore, Store
from sync.uplink import Uplink

TOPICS = Topics("bench", "gw1")


@asynccontextmanager
async def local_broker(folder: Path) -> AsyncIterator[tuple[str, str]]:
    """Mosquitto on a free port if installed (else amqtt); yields (url, kind)."""
    binary = shutil.which("mosquitto") or (
        "/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").exists() else None
    )
    if binary is None:
        async with embedded_broker() as url:
            yield url, "amqtt"
        return
    port = free_port()
    conf = folder / "mosquitto.conf"
    conf.write_text(
        f"listener {port} 127.0.0.1\nallow_anonymous true\nmax_inflight_messages 1000\n"
        "max_queued_messages 2000000\n"
    )
    proc = subprocess.Popen(
        [binary, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        for _ in range(200):
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", port)) == 0:
                    break
            await asyncio.sleep(0.02)
        yield f"mqtt://127.0.0.1:{port}", "mosquitto"
    finally:
        proc.terminate()
        proc.wait()


def sample_payload() -> str:
    """A realistic access event (≈ 330 bytes)."""
    record = AccessRecord(
        new_event_id(),
        datetime.now(UTC),
        "main",
        "in",
        "ic",
        "9959075b86",
        "A-101",
        "******51C6",
        "allow",
        ("granted",),
    )
    return dumps(access_payload(record, TOPICS))


def fill_outbox(store: Store, count: int, progress: Callable[[int], None] | None = None) -> None:
    """Queue `count` events in batches of 10,000 (a backlog as after a long outage)."""
    payload = sample_payload()
    created = datetime.now(UTC).isoformat()
    for start in range(0, count, 10_000):
        rows = [
            (new_event_id(), "event/access", payload, created)
            for _ in range(min(10_000, count - start))
        ]
        with store.db.atomic():
            store.db.conn.executemany(
                "INSERT INTO outbox (event_id, topic, payload, created) VALUES (?, ?, ?, ?)", rows
            )
        if progress:
            progress(start + len(rows))


async def drain_with_uplink(
    store: AsyncStore,
    url: str,
    count: int,
    window: int,
    progress: Callable[[int], None] | None = None,
) -> float:
    """Seconds the uplink needs to empty an outbox of `count` rows."""
    uplink = Uplink(
        store, TOPICS, BrokerSettings.from_url(url, "bench-uplink"), window=window, heartbeat=3600
    )
    started = time.perf_counter()
    task = asyncio.create_task(uplink.run())
    last = 0
    while uplink.acked < count:
        await asyncio.sleep(0.05)
        if progress and uplink.acked - last >= max(1, count // 20):
            last = uplink.acked
            progress(last)
    elapsed = time.perf_counter() - started
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    return elapsed


def paho_loop(url: str, count: int, window: int) -> float:
    """Seconds a bare paho client needs to publish `count` QoS 1 messages, `window` in flight."""
    settings = BrokerSettings.from_url(url, "bench-paho")
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id="bench-paho")
    client.max_inflight_messages_set(window)
    acked = threading.Semaphore(0)
    client.on_publish = lambda *_: acked.release()
    client.connect(settings.host, settings.port)
    client.loop_start()
    payload = sample_payload()
    started = time.perf_counter()
    for i in range(count):
        if i >= window:
            acked.acquire()
        client.publish(f"{TOPICS.root}/event/access", payload, qos=1)
    for _ in range(min(window, count)):
        acked.acquire()
    elapsed = time.perf_counter() - started
    client.loop_stop()
    client.disconnect()
    return elapsed


async def bench_uplink(
    events: int = 20_000, window: int = 200, progress: Callable[[str, int], None] | None = None
) -> dict[str, Any]:
    """Run both and report events/s, their ratio and what is left in the outbox."""
    with tempfile.TemporaryDirectory(prefix="doorgate-bench-") as tmp:
        folder = Path(tmp)
        async with local_broker(folder) as (url, kind):
            store = Store.open(folder / "bench.db", b"b" * 32)
            fill_outbox(store, events, (lambda n: progress("filled", n)) if progress else None)
            astore = AsyncStore(store)
            uplink_s = await drain_with_uplink(
                astore,
                url,
                events,
                window,
                (lambda n: progress("drained", n)) if progress else None,
            )
            left = await astore.run(store.outbox_depth)
            await astore.aclose()
            paho_s = await asyncio.to_thread(paho_loop, url, events, window)
    uplink_rate, paho_rate = events / uplink_s, events / paho_s
    return {
        "broker": kind,
        "events": events,
        "window": window,
        "uplink_events_per_s": round(uplink_rate),
        "paho_events_per_s": round(paho_rate),
        "uplink_vs_paho": round(uplink_rate / paho_rate, 2),
        "drain_seconds": round(uplink_s, 2),
        "left_in_outbox": left,
    }
