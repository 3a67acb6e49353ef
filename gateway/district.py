"""``doorgate bench district``: many gateways → one broker → K station consumers sharing a
subscription; events/s, end-to-end latency and loss.

Each simulated gateway has its own identity (site, gateway, MQTT client id), its own event rate
(the mean rate × 0.5–1.5, Poisson arrivals) and publishes real ``event/access`` payloads built by
`sync.contract` at QoS 1, counting an event as sent once the broker acknowledged it. Gateways are
aiomqtt clients multiplexed on the event loops of a few worker processes (one TCP connection
each, as in the field). The stations are `station.consumer.StationConsumer` processes subscribed
through ``$share/<group>/doorgate/v1/+/+/#``, each storing into its own SQLite file (or all into
one PostgreSQL database with ``--db postgresql://…``). Latency is the payload's ``ts`` (set just
before the publish) to the moment the station committed the row.
"""

# The orchestration polls marker files written by its child processes, on purpose.
# ruff: noqa: ASYNC110, ASYNC240

from __future__ import annotations

import asyncio
import contextlib
import json
import multiprocessing
import random
import resource
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiomqtt

from sync.contract import AccessRecord, Topics, access_payload, dumps, new_event_id
from sync.mqtt import BrokerSettings

GROUP = "district"


def identity(index: int) -> Topics:
    """Gateway `index`: 100 buildings per site (``d007/b00712``)."""
    return Topics(f"d{index // 100:03d}", f"b{index:05d}")


def _payload(topics: Topics, seq: int) -> tuple[str, str]:
    record = AccessRecord(
        new_event_id(), datetime.now(UTC), "main", "in", "ic", f"o{seq}", "A-101",
        "******51C6", "allow", ("granted",),
    )
    return record.id, dumps(access_payload(record, topics))


async def _one_gateway(  # noqa: PLR0917
    index: int, url: str, rate: float, until: float, start_at: float, sent: list[str],
    errors: list[str],
) -> None:
    topics = identity(index)
    settings = BrokerSettings.from_url(url, f"doorgate-{topics.site}-{topics.gateway}")
    rng = random.Random(index)
    own_rate = rate * rng.uniform(0.5, 1.5)
    await asyncio.sleep(max(0.0, start_at - time.time()))
    seq = 0
    try:
        async with aiomqtt.Client(
            settings.host, settings.port, identifier=settings.client_id, keepalive=60,
            clean_session=True, timeout=30,
        ) as client:
            while (now := time.time()) < until:
                await asyncio.sleep(min(rng.expovariate(own_rate), max(0.0, until - now)))
                if time.time() >= until:
                    break
                seq += 1
                event_id, body = _payload(topics, seq)
                await client.publish(f"{topics.root}/event/access", body, qos=1)
                sent.append(event_id)
    except aiomqtt.MqttError as err:
        errors.append(f"{topics.gateway}: {err}")


def _gateway_worker(  # noqa: PLR0917
    indices: list[int], url: str, rate: float, start: float, ramp: float, until: float,
    out: str,
) -> None:
    async def main() -> None:
        sent: list[str] = []
        errors: list[str] = []
        count = max(1, len(indices))
        await asyncio.gather(*(
            _one_gateway(i, url, rate, until, start + ramp * n / count, sent, errors)
            for n, i in enumerate(indices)
        ))
        Path(out).write_text(json.dumps({"sent": sent, "errors": errors}))

    asyncio.run(main())


def _station_worker(  # noqa: PLR0917
    number: int, url: str, db: str, ready: str, stop: str, out: str) -> None:
    from station.consumer import StationConsumer
    from station.store import StationStore

    async def main() -> None:
        store = StationStore(db)
        stored: list[str] = []
        latencies: list[float] = []
        arrivals: list[float] = []
        duplicates = 0
        last = time.monotonic()

        def on_event(kind: str, payload: dict[str, Any], is_new: bool) -> None:
            nonlocal duplicates, last
            last = time.monotonic()
            if kind != "event/access":
                return
            if not is_new:
                duplicates += 1
                return
            stored.append(payload["id"])
            sent_at = datetime.fromisoformat(payload["ts"].replace("Z", "+00:00")).timestamp()
            now = time.time()
            arrivals.append(now)
            latencies.append(now - sent_at)

        consumer = StationConsumer(
            store, BrokerSettings.from_url(url, f"district-station-{number}"),
            share_group=GROUP, on_event=on_event,
        )
        task = asyncio.create_task(consumer.run())
        await consumer.connected.wait()
        Path(ready).touch()
        # Run until told to stop and nothing arrived for 2 s (the broker has drained).
        while not (Path(stop).exists() and time.monotonic() - last > 2.0):
            await asyncio.sleep(0.2)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        store.close()
        Path(out).write_text(json.dumps(
            {"stored": stored, "latencies": latencies, "arrivals": arrivals,
             "duplicates": duplicates, "rejected": consumer.rejected}
        ))

    asyncio.run(main())


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def raise_fd_limit(need: int) -> int:
    """Raise the soft open-files limit towards `need` (the broker child inherits it)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < need:
        target = need if hard == resource.RLIM_INFINITY else min(need, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        soft = target
    return soft


async def run_district(
    folder: Path,
    url: str,
    *,
    gateways: int = 1000,
    stations: int = 2,
    rate: float = 0.5,
    duration: float = 30.0,
    workers: int | None = None,
    db: str | None = None,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Run the district against the broker at `url` and report what arrived how fast."""
    say = progress or (lambda _msg: None)
    ctx = multiprocessing.get_context("spawn")
    workers = workers or max(1, min(8, (gateways + 249) // 250))
    stop = folder / "stop"
    station_procs = []
    for k in range(stations):
        target = db or str(folder / f"station-{k}.db")
        proc = ctx.Process(
            target=_station_worker,
            args=(k, url, target, str(folder / f"ready-{k}"), str(stop),
                  str(folder / f"station-{k}.json")),
            name=f"district-station-{k}",
        )
        proc.start()
        station_procs.append(proc)
    deadline = time.monotonic() + 60
    while not all((folder / f"ready-{k}").exists() for k in range(stations)):
        if time.monotonic() > deadline or any(not p.is_alive() for p in station_procs):
            raise RuntimeError("a station consumer did not subscribe")
        await asyncio.sleep(0.05)
    say(f"{stations} station consumers subscribed ($share/{GROUP}/…)")

    ramp = min(10.0, max(1.0, gateways / 200))  # connect storm spread over `ramp` seconds
    start = time.time() + 1.0
    until = start + ramp + duration
    gateway_procs = []
    for w in range(workers):
        proc = ctx.Process(
            target=_gateway_worker,
            args=(list(range(w, gateways, workers)), url, rate, start, ramp, until,
                  str(folder / f"gateways-{w}.json")),
            name=f"district-gateways-{w}",
        )
        proc.start()
        gateway_procs.append(proc)
    say(f"{gateways} gateways in {workers} processes, ramp {ramp:.0f} s, then {duration:.0f} s")
    while any(p.is_alive() for p in gateway_procs):
        await asyncio.sleep(0.2)
    sending_s = time.time() - start
    stop.touch()
    while any(p.is_alive() for p in station_procs):
        await asyncio.sleep(0.2)

    sent: list[str] = []
    errors: list[str] = []
    for w in range(workers):
        data = json.loads((folder / f"gateways-{w}.json").read_text())
        sent += data["sent"]
        errors += data["errors"]
    stored: list[str] = []
    latencies: list[float] = []
    arrivals: list[float] = []
    duplicates = rejected = 0
    per_station = []
    for k in range(stations):
        data = json.loads((folder / f"station-{k}.json").read_text())
        stored += data["stored"]
        latencies += data["latencies"]
        arrivals += data["arrivals"]
        duplicates += data["duplicates"]
        rejected += data["rejected"]
        per_station.append(len(data["stored"]))
    distinct = set(stored)
    duplicates += len(stored) - len(distinct)  # the same id stored by two consumers
    lost = len(set(sent) - distinct)
    return {
        "gateways": gateways,
        "stations": stations,
        "gateway_processes": workers,
        "rate_per_gateway": rate,
        "duration_s": duration,
        "ramp_s": ramp,
        "sent": len(sent),
        "stored": len(distinct),
        "lost": lost,
        "duplicates": duplicates,
        "rejected": rejected,
        "connect_errors": len(errors),
        "errors_sample": errors[:5],
        "per_station": per_station,
        "offered_events_per_s": round(gateways * rate, 1),
        # Stored per second once every gateway is connected (after the ramp, before the end).
        "events_per_s": round(
            sum(start + ramp <= t < until for t in arrivals) / duration, 1
        ),
        "wall_s": round(sending_s, 1),
        "latency_ms": {
            "p50": round(_percentile(latencies, 0.50) * 1000, 1),
            "p95": round(_percentile(latencies, 0.95) * 1000, 1),
            "p99": round(_percentile(latencies, 0.99) * 1000, 1),
            "max": round(max(latencies, default=0.0) * 1000, 1),
        },
    }
