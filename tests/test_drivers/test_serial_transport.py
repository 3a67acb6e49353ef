"""Serial transport, supervisor and `reader watch` over real pseudo-terminals."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from pathlib import Path

import pytest

from drivers.errors import ReaderDisconnected, ReaderTimeout
from drivers.idcard import CardRejected, IdCardRead
from drivers.rdm6300 import Rdm6300Reader
from drivers.reader_watch import format_read, mask_id_number, mask_name, mask_uid, watch
from drivers.serial_transport import SerialTransport
from drivers.simulators.idcard import IdCardSimulator, sample_card
from drivers.simulators.rdm6300 import Rdm6300Simulator
from drivers.supervise import ReaderHealth, ReaderState, supervise_reader
from drivers.types import CardRead, CardTech


async def test_read_write_timeout_and_baud_change(port: Path) -> None:
    with Rdm6300Simulator(port) as sim:
        async with SerialTransport(str(port), 115200, name="t") as link:
            assert link.health.connected
            await link.write(b"hello")
            await asyncio.sleep(0.01)
            assert sim.read_available() == b"hello"
            with pytest.raises(ReaderTimeout):
                await link.read(timeout=0.02)
            link.set_baudrate(9600)
            assert sim.line_baudrate() == 9600
            sim.write_now(b"stale")
            await asyncio.sleep(0.01)
            assert await link.discard_input() == 5
        assert not link.health.connected


async def test_vanished_device_is_detected_and_reported(port: Path) -> None:
    with Rdm6300Simulator(port) as sim:
        async with SerialTransport(str(port), name="t") as link:
            sim.unplug()
            with pytest.raises(ReaderDisconnected):
                await link.read(timeout=1)
            assert not link.health.connected
            assert link.health.last_error


async def test_missing_port_fails_to_open_and_can_retry(port: Path) -> None:
    link = SerialTransport(str(port), name="t")
    with pytest.raises(ReaderDisconnected, match="cannot open"):
        await link.__aenter__()
    with Rdm6300Simulator(port):
        async with link:
            assert link.is_open


async def test_supervisor_reconnects_and_reports_offline_then_online(port: Path) -> None:
    sim = Rdm6300Simulator(port)
    sim.plug()
    reads: list[CardRead] = []
    health: list[ReaderHealth] = []
    task = asyncio.create_task(
        supervise_reader(
            lambda: Rdm6300Reader(SerialTransport(str(port), name="door1")),
            reads.append, health.append, offline_after=0.15, backoff=lambda n: 0.02,
        )
    )  # fmt: skip
    try:
        await _until(lambda: health and health[-1].state is ReaderState.ONLINE)
        await sim.tap(3887558, repeats=1)
        await _until(lambda: len(reads) == 1)
        sim.unplug()
        await _until(lambda: health[-1].state is ReaderState.OFFLINE)
        assert [h.state for h in health] == ["online", "reconnecting", "offline"]
        assert health[-1].since == health[1].since  # offline counts from the loss
        assert health[-1].attempts >= 2
        sim.plug()
        await _until(lambda: health[-1].state is ReaderState.ONLINE)
        await sim.tap(3887558, repeats=1)
        await _until(lambda: len(reads) == 2)
    finally:
        task.cancel()
    assert reads[0].uid == reads[1].uid == bytes.fromhex("67003B51C6")


async def test_short_outage_never_reports_offline(port: Path) -> None:
    with Rdm6300Simulator(port) as sim:
        health: list[ReaderHealth] = []
        task = asyncio.create_task(
            supervise_reader(
                lambda: Rdm6300Reader(SerialTransport(str(port), name="door1")),
                lambda read: None, health.append, offline_after=5, backoff=lambda n: 0.02,
            )
        )  # fmt: skip
        await _until(lambda: health and health[-1].state is ReaderState.ONLINE)
        sim.unplug()
        sim.plug()
        await _until(lambda: len(health) == 3)
        task.cancel()
    assert [h.state for h in health] == ["online", "reconnecting", "online"]


async def _until(condition: object, timeout: float = 2.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():  # type: ignore[operator]
            await asyncio.sleep(0.005)


# ---- reader watch -------------------------------------------------------------------------------


def test_masks() -> None:
    assert mask_id_number("110105194912311234") == "110105********1234"
    assert mask_name("张三") == "张*"
    assert mask_uid("67003B51C6") == "******51C6"


def test_format_masks_by_default_and_reveals_on_request() -> None:
    card = IdCardRead.from_text(sample_card(), b"\x00" * 1024, "lobby", 1.0)
    masked = format_read(card, reveal=False, as_json=False)
    assert "110105********002X" in masked
    assert "张*" in masked
    assert "11010519491231002X" not in masked
    assert "景山" not in masked
    shown = json.loads(format_read(card, reveal=True, as_json=True))
    assert shown["id_number"] == "11010519491231002X"
    assert shown["valid_to"] is None  # 长期 (long-term)
    assert shown["birth"] == "1949-12-31"
    assert shown["authority"] == "北京市公安局东城分局"
    assert "issuer" not in shown
    assert {"card_type", "name", "sex", "ethnicity", "address", "valid_from"} <= set(shown)
    text = format_read(card, reveal=True, as_json=False)
    assert "valid_to=长期" in text
    assert "authority=北京市公安局东城分局" in text
    dated = IdCardRead.from_text(sample_card(valid_to=dt.date(2035, 1, 1)), b"", "lobby", 1.0)
    assert json.loads(format_read(dated, reveal=True, as_json=True))["valid_to"] == "2035-01-01"
    tag = CardRead("r", CardTech.EM4100, bytes.fromhex("67003B51C6"), 0.0, {"version": 103})
    assert "uid=******51C6" in format_read(tag, reveal=False, as_json=False)
    assert json.loads(format_read(tag, reveal=True, as_json=True))["uid"] == "67003B51C6"
    assert "check" in format_read(CardRejected("r", "check character", 0), False, False)


async def test_watch_idcard_prints_masked_reads_and_rejections(port: Path) -> None:
    async with IdCardSimulator(port) as sim:
        sim.insert(sample_card(id_number="110105194912310021"))
        lines = watch("idcard", str(port))
        async with asyncio.timeout(3):
            first = await anext(lines)
            assert "rejected" in first
            assert "check character" in first
            sim.insert()
            second = await anext(lines)
        await lines.aclose()
    assert "110105********002X" in second


async def test_watch_rdm6300_json(port: Path) -> None:
    with Rdm6300Simulator(port) as sim:
        lines = watch("rdm6300", str(port), as_json=True, reveal=True)
        task = asyncio.create_task(anext(lines))
        await asyncio.sleep(0.1)
        await sim.tap(3887558, repeats=2)
        async with asyncio.timeout(2):
            record = json.loads(await task)
        await lines.aclose()
    assert record == {
        "kind": "card",
        "reader": "watch",
        "tech": "em4100",
        "uid": "67003B51C6",
        "version": 103,
    }


async def test_watch_surfaces_open_errors(port: Path) -> None:
    with pytest.raises(ReaderDisconnected):
        await anext(watch("pn532", str(port)))
