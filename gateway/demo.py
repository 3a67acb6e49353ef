"""`doorgate demo`: a demo building, a simulated reader, the gateway and the station, end to end.

Everything is real except the card reader hardware: the reader is a simulator writing the exact
bytes of an RDM6300 (default), a SAM ID card reader, a PN532 or an OSDP reader (libosdp's own
peripheral device, secure channel on) on a pseudo-terminal; the broker is amqtt (or the one given
with ``--broker``), the databases are SQLite files in a temporary folder.

With ``--reader idcard`` the tenants present their resident ID cards (以证管人: the card is the
credential, resolved by the ID number's keyed hash); with ``pn532`` they hold MIFARE cards with
4- and 7-byte UIDs, with ``osdp`` W34 cards; the seeded building has matching credentials.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import secrets
import signal
import tempfile
import time
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from rich.console import Console

from drivers.idcard.text import IdCardText
from drivers.simulators.idcard import sample_card
from drivers.simulators.presenter import CardPresenter, IdCardPresenter, open_presenter
from gateway.app import Gateway, Outcome
from gateway.broker import embedded_broker
from gateway.config import broker_settings, load_config, read_secret, station_public_key
from gateway.demo_camera import DemoCamera, prepare_demo_camera
from gateway.demo_web import LANDLORD, DemoWeb, add_accounts, dashboard_app
from gateway.web_server import serve_asgi
from rules.i18n import t
from rules.identity import check_character, mask_uid
from rules.model import CredentialKind, Unit
from station.commands import Commander
from station.consumer import StationConsumer
from station.store import StationStore
from sync.errors import LinkError
from sync.mqtt import BrokerSettings
from sync.signing import generate_keypair, load_private_key
from sync.store import Store

TAP_INTERVAL_S = 0.6
DRAIN_TIMEOUT_S = 120.0
READER_ONLINE_S = 15.0
# How long a card stays on each reader: two RDM6300 frames, one PN532/SAM read.
HOLD_S = {"rdm6300": 0.2, "pn532": 0.5, "idcard": 0.8, "osdp": 0.2}
DEMO_SCBK = "000102030405060708090a0b0c0d0e0f"  # demo only: a real PD gets its own random key


@dataclass(frozen=True, slots=True)
class DemoCard:
    """A card in the demo building and who holds it.

    Attributes:
        uid: the card UID (IC cards), or the ID number's bytes (resident ID cards).
        holder: the holder's name ("?" for the stranger's card).
        occupant_id: the holder's occupant id.
        pending: whether the holder waits for the station's approval.
        id_card: the resident ID card itself, for the ID card reader.
    """

    uid: bytes
    holder: str
    occupant_id: str | None = None
    pending: bool = False
    id_card: IdCardText | None = None


def demo_id_number(birth: date, serial: int, region: str = "110105") -> str:
    """A syntactically valid resident ID number (made-up; the check character is computed)."""
    first17 = f"{region}{birth:%Y%m%d}{serial:03d}"
    return first17 + check_character(first17)


def demo_uid(reader: str, index: int) -> bytes:
    """Tenant `index`'s card UID on `reader`: EM4100 (5 bytes), MIFARE 4/7 bytes, or W34."""
    serial = 0x003B51C6 + index * 7919
    if reader == "pn532":
        if index % 2:
            return b"\x04" + (0xA1B2C3D4E5 + index * 7919).to_bytes(6, "big")
        return (0x3B51C600 + index * 7919).to_bytes(4, "big")
    if reader == "osdp":
        return (0x5A010000 + index * 7919).to_bytes(4, "big")
    return bytes([0x67]) + serial.to_bytes(4, "big")


def seed_demo_building(store: Store, today: date, reader: str = "rdm6300") -> list[DemoCard]:
    """Units 101-201 with approved, pending, moved-out and expired tenants and their cards.

    Args:
        store: the gateway store.
        today: the demo's date (tenancies are relative to it).
        reader: the reader kind the cards are for; `idcard` tenants are known by their ID
            number, every other kind gets an IC card with a UID that reader reads.
    """
    for unit in (
        Unit("A-101", "A", 1, "101", 2, landlord=LANDLORD),
        Unit("A-102", "A", 1, "102", 1, landlord=LANDLORD),
        Unit("A-201", "A", 2, "201", 3, landlord=LANDLORD),
    ):
        store.add_unit(unit)
    year = timedelta(days=365)
    people: list[tuple[str, str, date, date | None, str]] = [
        ("A-101", "张伟", today - year, today + year, "approved"),
        ("A-101", "李娜", today - year, None, "approved"),
        ("A-102", "王芳", today, today + year, "pending"),
        ("A-201", "刘洋", today - 2 * year, today + year, "moved_out"),
        ("A-201", "陈静", today - 2 * year, today - timedelta(days=3), "approved"),
    ]
    cards: list[DemoCard] = []
    for index, (unit_id, name, start, end, status) in enumerate(people):
        birth = date(1990 + index, 3, 1 + index)
        number = demo_id_number(birth, 100 + index)
        occupant = store.add_occupant(unit_id, name, number, start, end)
        id_card = None
        if reader == "idcard":
            id_card = sample_card(name=name, id_number=number, birth=birth, sex=str(1 + index % 2))
            uid = number.encode()
        else:
            uid = demo_uid(reader, index)
            store.add_card(occupant.id, CredentialKind.IC, uid.hex())
        if status != "pending":
            store.approve(occupant.id, by="demo")
        if status == "moved_out":
            store.move_out(occupant.id)
        cards.append(DemoCard(uid, name, occupant.id, status == "pending", id_card))
    cards.append(_stranger(reader))
    return cards


def _stranger(reader: str) -> DemoCard:
    """A card nobody enrolled (for the ID card reader: a valid ID number nobody enrolled)."""
    if reader == "idcard":
        birth = date(1985, 6, 15)
        number = demo_id_number(birth, 777, region="440305")
        return DemoCard(number.encode(), "?", id_card=sample_card(id_number=number, birth=birth))
    stranger = {"pn532": "1A2B3C4D", "osdp": "1A2B3C4D"}.get(reader, "1A2B3C4D5E")
    return DemoCard(bytes.fromhex(stranger), "?")


def demo_script(cards: list[DemoCard]) -> list[DemoCard]:
    """The tap order: the pending tenant is tapped twice, the station approves in between."""
    script: list[DemoCard] = []
    for card in cards:
        script += [card, card] if card.pending else [card]
    return script


def write_demo_config(folder: Path, broker_url: str, port: str, reader: str = "rdm6300") -> Path:
    """Write the demo's doorgate.toml and hash key (and an OSDP key); return the config path."""
    (folder / "hash_key").write_text(secrets.token_hex(32))
    generate_keypair(folder, "station")
    extra = ""
    if reader == "osdp":
        (folder / "osdp.scbk").write_text(DEMO_SCBK)
        extra = 'scbk_file = "osdp.scbk"\n'
    path = folder / "doorgate.toml"
    path.write_text(
        f"""# doorgate demo configuration (generated)
[site]
site = "demo-district"
gateway = "building-a"

[store]
path = "gateway.db"

[secrets]
hash_key_file = "hash_key"

[broker]
url = "{broker_url}"

[uplink]
heartbeat_s = 5

[station]
public_key_file = "station.pub"
approval = "station"

[[readers]]
name = "entrance"
kind = "{reader}"
port = "{port}"
door = "main"
debounce_s = 0.3
{extra}
[[doors]]
name = "main"
unlock_s = 0.5
""",
        encoding="utf-8",
    )
    return path


def _add_camera(
    folder: Path, store: Store, cards: list[DemoCard], config_path: Path
) -> DemoCamera:
    """Enrol the first tenant's face and add the door camera to the demo config."""
    tenant = next(c for c in cards if c.occupant_id is not None)
    door_cam = prepare_demo_camera(folder / "camera", store, tenant.occupant_id or "")
    with config_path.open("a", encoding="utf-8") as config:
        config.write(door_cam.config_toml(door="main", name="door-cam"))
    return door_cam


async def _watch_camera(report: DemoReport, until: float) -> None:
    # Let the video play out (the stranger and the held photo come after the tenant), and give
    # the vision process up to 40 s more to start on a slow machine.
    deadline = until + 40
    while time.monotonic() < until or (report.faces == 0 and time.monotonic() < deadline):  # noqa: ASYNC110
        await asyncio.sleep(0.2)


class DemoReport:
    """Prints each decision and each station receipt; counts what went where."""

    def __init__(self, console: Console, holders: dict[str, str]) -> None:
        self.console = console
        self.holders = holders
        self.decisions = 0
        self.faces = 0
        self.received: set[str] = set()
        self.duplicates = 0

    def on_outcome(self, outcome: Outcome) -> None:
        """Gateway side: one line per decision (cards and faces)."""
        record = outcome.record
        if record.kind == "face":
            self.faces += 1
        else:
            self.decisions += 1
        source = "摄像头 camera" if record.kind == "face" else "网关 gateway"
        colour = "green" if outcome.decision.allowed else "red"
        name = outcome.occupant.name if outcome.occupant else "?"
        reasons = "、".join(t(r) for r in record.reasons)
        self.console.print(
            f"[bold]{source}[/] {record.ts:%H:%M:%S} {record.credential_masked or '(face)'} "
            f"{name:　<3} {record.unit_id or '-':6} [{colour}]{t(record.decision)}[/] {reasons} "
            f"[dim]({outcome.latency_ms:.1f} ms)[/]"
        )

    def on_station(self, kind: str, payload: dict[str, Any], is_new: bool) -> None:
        """Station side: one line per event received."""
        if kind != "event/access":
            return
        if not is_new:
            self.duplicates += 1
            return
        self.received.add(payload["id"])
        self.console.print(
            f"  [cyan]管理站 station[/] ← {kind} {payload['credential']['masked']} "
            f"{t(payload['decision'])} [dim](id {payload['id'][:13]}…)[/]"
        )


async def run_demo(
    *,
    taps: int,
    broker_url: str | None,
    forever: bool,
    console: Console | None = None,
    reader: str = "rdm6300",
    camera: bool = True,
    web: bool = True,
) -> int:
    """Run the demo; return 0 when every event reached the station, 1 otherwise.

    Args:
        taps: card presentations to script.
        broker_url: an external broker, or None for the embedded amqtt.
        forever: keep presenting cards until Ctrl-C.
        console: where to print (default: stdout).
        reader: the simulated reader kind: rdm6300, idcard, pn532 or osdp.
        camera: add a door camera playing a composed video (tenant, stranger, held photo).
        web: serve the landlord portal and the station dashboard on loopback.
    """
    console = console or Console()
    with tempfile.TemporaryDirectory(prefix="doorgate-demo-") as tmp:
        folder = Path(tmp)
        async with AsyncExitStack() as stack:
            url = broker_url
            if url is None:
                url = await stack.enter_async_context(embedded_broker())
            console.print(f"[bold]{t('demo.title')}[/]")
            console.print(f"{t('demo.broker')}: {url}   {t('demo.folder')}: {folder}")
            return await _run(
                stack, folder, url, taps=taps, forever=forever, console=console, reader=reader,
                camera=camera, with_web=web,
            )
    return 1


async def _run(
    stack: AsyncExitStack,
    folder: Path,
    url: str,
    *,
    taps: int,
    forever: bool,
    console: Console,
    reader: str,
    camera: bool,
    with_web: bool = True,
) -> int:
    scbk = bytes.fromhex(DEMO_SCBK) if reader == "osdp" else None
    simulator = await stack.enter_async_context(open_presenter(reader, folder / reader, scbk=scbk))
    config_path = write_demo_config(folder, url, simulator.port, reader)
    web = DemoWeb.pick() if with_web else None
    if web is not None:
        with config_path.open("a", encoding="utf-8") as config_file:
            config_file.write(web.config_section())
    config = load_config(config_path)
    key = read_secret(config.secrets.hash_key_file, config_path)
    store = Store.open(config.store.path, key)
    cards = seed_demo_building(store, date.today(), reader)
    door_cam = _add_camera(folder, store, cards, config_path) if camera else None
    station_store = StationStore(folder / "station.db")
    stack.callback(station_store.close)
    if web is not None:
        add_accounts(store, station_store)
    store.close()
    config = load_config(config_path)
    report = DemoReport(console, {mask_uid(c.uid.hex()): c.holder for c in cards})
    consumer = StationConsumer(
        station_store,
        BrokerSettings.from_url(url, "doorgate-station-demo"),
        on_event=report.on_station,
    )
    station_key = load_private_key((folder / "station.key").read_bytes())
    commander = Commander(
        BrokerSettings.from_url(url, "doorgate-station-cmd-demo"), station_key, station_store
    )
    gateway = await stack.enter_async_context(
        Gateway(
            config,
            hash_key=key,
            broker=broker_settings(config, config_path),
            config_path=config_path,
            station_key=station_public_key(config, config_path),
        )
    )
    gateway.callbacks.append(report.on_outcome)
    async with asyncio.TaskGroup() as tasks:
        runners = [
            tasks.create_task(consumer.run(), name="station"),
            tasks.create_task(gateway.run(), name="gateway"),
        ]
        if web is not None:
            dashboard = dashboard_app(station_store, commander)
            runners.append(tasks.create_task(
                serve_asgi(dashboard, "127.0.0.1", web.dashboard_port, what="dashboard"),
                name="dashboard",
            ))
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(15):
                await consumer.connected.wait()
                await gateway.uplink.connected.wait()
        await _reader_online(gateway, config.readers[0].name)
        if web is not None:
            await web.announce(console, forever)
        camera_started = time.monotonic()
        if door_cam is not None:
            for line in door_cam.expected:
                console.print(f"[yellow]摄像头 camera[/] {line}")
        station = StationSteps(commander, gateway, console)
        tapped = await _tap_script(simulator, demo_script(cards), taps, forever, station)
        if tapped:
            await station.remote_unlock()
        if door_cam is not None:
            await _watch_camera(report, camera_started + door_cam.seconds + 3)
        code = await _finish(gateway, report, tapped, console)
        code = code or station.failures
        for runner in runners:
            runner.cancel()
    return code


class StationSteps:
    """What the station does during the demo: approve the pending tenant, unlock the door."""

    def __init__(self, commander: Commander, gateway: Gateway, console: Console) -> None:
        self.commander = commander
        self.gateway = gateway
        self.console = console
        self.approved: set[str] = set()
        self.failures = 0

    async def before_tap(self, card: DemoCard, seen: set[bytes]) -> None:
        """Approve a pending tenant the second time their card comes up."""
        if not card.pending or card.uid not in seen or card.occupant_id in self.approved:
            return
        assert card.occupant_id is not None
        topics = self.gateway.topics
        reply = await self._retry(
            lambda: self.commander.approve(
                topics.site, topics.gateway, card.occupant_id or "", by="demo-station", wait=15
            )
        )
        self._show("occupant_upsert (approve " + card.holder + ")", reply)
        self.approved.add(card.occupant_id)

    async def remote_unlock(self) -> None:
        """Unlock the main door by signed command."""
        topics = self.gateway.topics

        async def unlock() -> dict[str, Any] | None:
            _, reply = await self.commander.send(
                topics.site, topics.gateway, "unlock", {"door": "main"}, wait=15
            )
            return reply

        self._show("unlock main", await self._retry(unlock))

    async def _retry(
        self, action: Callable[[], Awaitable[dict[str, Any] | None]]
    ) -> dict[str, Any] | None:
        # The station's broker may be restarting (see README: stop the broker mid-demo).
        deadline = time.monotonic() + DRAIN_TIMEOUT_S
        while True:
            try:
                return await action()
            except LinkError as err:
                if time.monotonic() > deadline:
                    self.console.print(f"  [red]{err}[/]")
                    return None
                await asyncio.sleep(1.0)

    def _show(self, what: str, reply: dict[str, Any] | None) -> None:
        target = f"{self.gateway.topics.site}/{self.gateway.topics.gateway}"
        self.console.print(f"  [magenta]{t('station.sent', name=what, target=target)}[/]")
        if reply is None or not reply.get("ok"):
            self.failures = 1
            problem = t("station.no_reply", wait=15) if reply is None else str(reply)
            self.console.print(f"  [red]{problem}[/]")
            return
        self.console.print(
            f"  [magenta]{t('station.reply', code=reply['code'], message=reply['message'])}[/]"
        )


async def _reader_online(gateway: Gateway, name: str) -> None:
    # A reader that talks back (SAM, PN532, OSDP) must be up before the first card, or that
    # presentation would go unread; the RDM6300 port is open at once.
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(READER_ONLINE_S):
            while not gateway.health.get(name, {}).get("connected"):  # noqa: ASYNC110
                await asyncio.sleep(0.05)  # health is a dict the supervisor updates, no event


async def present(simulator: CardPresenter, card: DemoCard) -> None:
    """Present one demo card for as long as that kind of reader needs to read it once."""
    hold = HOLD_S[simulator.kind]
    if isinstance(simulator, IdCardPresenter) and card.id_card is not None:
        await simulator.present_card(card.id_card, hold)
    else:
        await simulator.present(card.uid.hex(), hold)


async def _tap_script(
    simulator: CardPresenter,
    script: list[DemoCard],
    taps: int,
    forever: bool,
    station: StationSteps,
) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    count = 0
    seen: set[bytes] = set()
    cards = itertools.cycle(script)
    try:
        while (forever or count < taps) and not stop.is_set():
            card = next(cards)
            await station.before_tap(card, seen)
            seen.add(card.uid)
            await present(simulator, card)
            count += 1
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(TAP_INTERVAL_S):
                    await stop.wait()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
    return count


async def _finish(gateway: Gateway, report: DemoReport, tapped: int, console: Console) -> int:
    console.print(f"[dim]{t('demo.waiting')}[/]")
    deadline = time.monotonic() + DRAIN_TIMEOUT_S
    store = gateway.store
    while time.monotonic() < deadline:
        depth = await store.run(store.store.outbox_depth)
        decided = await store.run(store.store.access_ids)
        if depth == 0 and report.decisions >= tapped and decided <= report.received:
            break
        await asyncio.sleep(0.2)
    decided = await store.run(store.store.access_ids)
    sent = len(decided - await store.run(store.store.outbox_ids))
    lost = len(decided - report.received)
    console.print(f"taps={tapped} decisions={report.decisions} faces={report.faces} "
                  f"duplicates={report.duplicates}")
    print(f"sent={sent} received={len(report.received)} lost={lost}", flush=True)  # noqa: T201
    return 0 if lost == 0 and report.decisions == tapped else 1
