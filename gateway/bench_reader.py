"""`doorgate bench reader`: card frame's last byte → door command, with 100,000 occupants enrolled.

The whole daemon path is measured: an RDM6300 simulator writes real frames on a pseudo-terminal,
the real `Gateway` reads them through pyserial, resolves the card in a real SQLite store (WAL,
``synchronous=FULL``), lets the rules decide, commits the access-log and outbox rows in one
durable transaction and drives a `SimulatedDoor`. Latency is the door's own relay command
timestamp minus the moment the simulator wrote the frame's last byte (taken just before the
write, so it errs on the long side).

The broker URL points at a closed port: the decision must not depend on the network, and the
uplink retrying in the background is part of the load. The naive way, measured in the same run
on the same gateway, resolves a card by scanning every credential row with a constant-time hash
compare (what a lookup without the ``(kind, secret_hash)`` index amounts to).

The rules' periodic roster pass (vacancy, tenancy, approvals over every occupant) runs on the
event loop; its cost is reported separately (`rules_tick_ms`) because a card arriving during it
waits for it. The bench sets ``tick_s`` high so that pass does not land at a random tap.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import random
import secrets
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from unittest import mock

from drivers.door import SimulatedDoor
from drivers.rdm6300 import encode_frame
from drivers.simulators.rdm6300 import Rdm6300Simulator
from gateway.app import Gateway, Outcome
from gateway.config import broker_settings, load_config
from rules.events import Tick
from rules.identity import check_character, mask_id_number, mask_uid
from rules.model import Credential, CredentialKind, CredentialStatus, Occupant
from sync.store import Store

BUDGET_P99_MS = 5.0
WARM_UP = 3
OCCUPANTS_PER_UNIT = 4
EM4100_VERSION = 0x42
_SPREAD = 2_654_435_761  # odd: i → i·k mod 2³² is a bijection, so serials are unique
Progress = Callable[[str], None]


def card_uid(index: int) -> bytes:
    """The EM4100 UID (version + 32-bit serial) of bench occupant `index`."""
    serial = (index * _SPREAD) & 0xFFFF_FFFF
    return bytes([EM4100_VERSION]) + serial.to_bytes(4, "big")


def bench_id_number(index: int) -> str:
    """A distinct, valid resident ID number for bench occupant `index` (up to 36.5 million)."""
    birth = date(1950, 1, 1) + timedelta(days=index // 1000)
    first17 = f"110105{birth:%Y%m%d}{index % 1000:03d}"
    return first17 + check_character(first17)


def enrol_bulk(store: Store, occupants: int, today: date) -> None:
    """Insert `occupants` approved tenants with one IC card each, in one transaction.

    Rows carry the same keyed hashes the store computes (`hash_id_number`, `hash_uid`), so
    `resolve_card` finds them exactly as it finds cards added with `doorgate card add`.
    """
    now = datetime.now(UTC).isoformat()
    start = (today - timedelta(days=30)).isoformat()
    units = [
        (f"B-{u:05d}", "B", 1 + u // 100, f"{u:05d}", OCCUPANTS_PER_UNIT, now)
        for u in range(-(-occupants // OCCUPANTS_PER_UNIT))
    ]
    people = []
    cards = []
    for i in range(occupants):
        number = bench_id_number(i)
        occupant_id = f"b{i:07d}"
        people.append((
            occupant_id, units[i // OCCUPANTS_PER_UNIT][0], f"住户{i}",
            store.hash_id_number(number), mask_id_number(number), "approved", start, None,
            "bench", now, now, now,
        ))  # fmt: skip
        uid = card_uid(i).hex().upper()
        secret_hash = store.hash_uid(CredentialKind.IC, uid)
        cards.append((occupant_id, "ic", secret_hash, mask_uid(uid), "active", now))
    conn = store.db.conn
    with conn:
        conn.executemany(
            "INSERT INTO units (id, building, floor, room, capacity, created)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            units,
        )
        conn.executemany(
            "INSERT INTO occupants (id, unit_id, name, id_hash, id_masked, status, valid_from,"
            " valid_to, approved_by, approved_at, created, updated)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            people,
        )
        conn.executemany(
            "INSERT INTO credentials (occupant_id, kind, secret_hash, masked, status, created)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            cards,
        )


def naive_resolver(
    store: Store,
) -> Callable[[CredentialKind, str], tuple[Credential | None, Occupant | None]]:
    """`resolve_card` the naive way: scan every credential, compare each hash in constant time."""

    def resolve(kind: CredentialKind, uid_hex: str) -> tuple[Credential | None, Occupant | None]:
        wanted = store.hash_uid(kind, uid_hex)
        rows = store.db.execute(
            "SELECT id, occupant_id, kind, secret_hash, status FROM credentials"
        )
        found = None
        for row in rows:
            if row[2] == kind.value and hmac.compare_digest(row[3], wanted):
                found = row
        if found is None:
            return None, None
        credential = Credential(int(found[0]), found[1], kind, CredentialStatus(found[4]))
        return credential, store.get_occupant(found[1])

    return resolve


def write_config(folder: Path, port: str) -> Path:
    """The bench gateway's config: one RDM6300 reader, one simulated door, no reachable broker."""
    (folder / "hash_key").write_text(secrets.token_hex(32))
    path = folder / "doorgate.toml"
    path.write_text(
        f"""[site]
site = "bench"
gateway = "reader"

[store]
path = "gateway.db"

[secrets]
hash_key_file = "hash_key"

[broker]
url = "mqtt://127.0.0.1:1"

[rules]
tick_s = 3600

[[readers]]
name = "entrance"
kind = "rdm6300"
port = "{port}"
door = "main"
debounce_s = 0.05

[[doors]]
name = "main"
unlock_s = 5
""",
        encoding="utf-8",
    )
    return path


def summary(samples_ms: list[float]) -> dict[str, Any]:
    """n, p50, p99, max and mean of latencies in ms (p99 by linear interpolation)."""
    if not samples_ms:
        return {"n": 0}
    cuts = statistics.quantiles(
        samples_ms * (2 if len(samples_ms) == 1 else 1), n=100, method="inclusive"
    )
    return {
        "n": len(samples_ms),
        "p50_ms": round(statistics.median(samples_ms), 3),
        "p99_ms": round(cuts[98], 3),
        "max_ms": round(max(samples_ms), 3),
        "mean_ms": round(statistics.fmean(samples_ms), 3),
    }


class _TapMeter:
    """Taps cards on the simulator and reads the door's relay command for each."""

    def __init__(self, gateway: Gateway, simulator: Rdm6300Simulator) -> None:
        door = gateway.doors["main"]
        if not isinstance(door, SimulatedDoor):
            raise TypeError("the bench needs the simulated door")
        self.door = door
        self.simulator = simulator
        self.missed: list[str] = []
        self._decided = asyncio.Event()
        self._last: Outcome | None = None
        gateway.callbacks.append(self._on_outcome)

    def _on_outcome(self, outcome: Outcome) -> None:
        self._last = outcome
        self._decided.set()

    async def tap(self, index: int) -> float | None:
        """Tap occupant `index`'s card once; the latency in ms, None if the door stayed shut."""
        if not self.door.locked:
            await self.door.lock()
        before = len(self.door.commands)
        self._decided.clear()
        uid = card_uid(index)
        frame = encode_frame(uid[0], int.from_bytes(uid[1:], "big"))
        self.simulator.write_now(frame[:-1])
        await asyncio.sleep(0.002)  # the reader has the first 13 bytes; the frame is not done
        written = time.monotonic()
        self.simulator.write_now(frame[-1:])
        try:
            async with asyncio.timeout(5):
                await self._decided.wait()
        except TimeoutError:
            self.missed.append(f"{mask_uid(uid.hex())}: no decision")
            return None
        unlocks = [c for c in self.door.commands[before:] if not c.locked]
        if not unlocks:
            reasons = self._last.record.reasons if self._last else ()
            self.missed.append(f"{mask_uid(uid.hex())}: denied {','.join(reasons)}")
            return None
        return (unlocks[0].monotonic - written) * 1000


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    # The uplink warns about the unreachable broker on every retry: expected here, and noise.
    logging.disable(logging.WARNING)
    try:
        yield
    finally:
        logging.disable(logging.NOTSET)


async def bench_reader(
    occupants: int = 100_000,
    taps: int = 400,
    naive_taps: int = 40,
    *,
    seed: int | None = None,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Run the benchmark; return the JSON-ready result.

    Args:
        occupants: approved tenants enrolled, one IC card each.
        taps: cards tapped through the indexed (normal) lookup.
        naive_taps: cards tapped through the naive full scan, in the same run.
        seed: random seed for which occupants tap (default: random).
        progress: called with a short line per stage.
    """
    say = progress or (lambda _: None)
    rng = random.Random(seed)
    # Distinct cards throughout: the same card twice within the debounce gap is (rightly) ignored.
    chosen = rng.sample(range(occupants), min(occupants, WARM_UP + taps + naive_taps))
    with tempfile.TemporaryDirectory(prefix="doorgate-bench-reader-") as tmp, _quiet():
        folder = Path(tmp)
        with Rdm6300Simulator(folder / "rdm6300") as simulator:
            config_path = write_config(folder, simulator.port)
            config = load_config(config_path)
            key = (folder / "hash_key").read_text().strip().encode()
            say(f"enrolling {occupants} occupants")
            started = time.perf_counter()
            store = Store.open(folder / "gateway.db", key)
            enrol_bulk(store, occupants, date.today())
            store.close()
            enrol_s = time.perf_counter() - started
            say("starting the gateway")
            async with Gateway(
                config,
                hash_key=key,
                broker=broker_settings(config, config_path),
                config_path=config_path,
            ) as gateway:
                runner = asyncio.get_running_loop().create_task(gateway.run(), name="gateway")
                try:
                    result = await _measure(gateway, simulator, chosen, taps, say)
                finally:
                    runner.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await runner
    return {"occupants": occupants, "enrol_s": round(enrol_s, 2), **result}


async def _measure(
    gateway: Gateway,
    simulator: Rdm6300Simulator,
    chosen: list[int],
    taps: int,
    say: Progress,
) -> dict[str, Any]:
    async with asyncio.timeout(30):
        while not gateway.health.get("entrance", {}).get("connected"):  # noqa: ASYNC110
            await asyncio.sleep(0.01)  # the gateway reports health in a dict, not an event
    meter = _TapMeter(gateway, simulator)
    for index in chosen[:WARM_UP]:  # thread pool, page cache, first-use imports
        await meter.tap(index)
    meter.missed.clear()
    normal, slow_cards = chosen[WARM_UP : WARM_UP + taps], chosen[WARM_UP + taps :]
    say(f"tapping {len(normal)} cards")
    indexed = await _taps(meter, normal)
    say(f"tapping {len(slow_cards)} cards through the naive full scan")
    store = gateway.store.store
    with mock.patch.object(store, "resolve_card", naive_resolver(store)):
        naive = await _taps(meter, slow_cards)
    fast, slow = summary(indexed), summary(naive)
    return {
        "path": "rdm6300 pty → pyserial → Gateway → SQLite (WAL, synchronous=FULL) → door",
        "indexed": fast,
        "naive_full_scan": slow,
        "ratio_p50": _ratio(slow, fast, "p50_ms"),
        "ratio_p99": _ratio(slow, fast, "p99_ms"),
        "budget_p99_ms": BUDGET_P99_MS,
        "within_budget": bool(fast.get("p99_ms", float("inf")) <= BUDGET_P99_MS),
        "missed": meter.missed,
        "rules_tick_ms": _time_ticks(gateway),
    }


async def _taps(meter: _TapMeter, indices: list[int]) -> list[float]:
    samples = []
    for index in indices:
        latency = await meter.tap(index)
        if latency is not None:
            samples.append(latency)
        await asyncio.sleep(0.005)
    return samples


def _ratio(slow: dict[str, Any], fast: dict[str, Any], key: str) -> float | None:
    if key not in slow or key not in fast or not fast[key]:
        return None
    return round(float(slow[key]) / float(fast[key]), 1)


def _time_ticks(gateway: Gateway) -> dict[str, float]:
    """How long one rules tick holds the event loop: with the roster pass, and without."""
    now = datetime.now(gateway.tz)
    started = time.perf_counter()
    gateway.rules.step(Tick(now), now)  # the first tick runs the roster pass
    roster = time.perf_counter() - started
    started = time.perf_counter()
    gateway.rules.step(Tick(now + timedelta(seconds=5)), now + timedelta(seconds=5))
    plain = time.perf_counter() - started
    return {"with_roster_pass": round(roster * 1000, 1), "plain": round(plain * 1000, 2)}
