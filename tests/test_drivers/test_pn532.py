"""PN532 over HSU: frames, ACK/NACK, target parsing, and the reader against a pty simulator."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from drivers.errors import FrameError, ReaderDisconnected, ReaderTimeout
from drivers.pn532 import (
    ACK,
    IN_LIST_PASSIVE_TARGET,
    NACK,
    SAM_CONFIGURATION,
    WAKEUP,
    FrameKind,
    FrameSplitter,
    Pn532Error,
    Pn532Reader,
    encode_frame,
    parse_frame,
    parse_targets,
)
from drivers.serial_transport import SerialTransport
from drivers.simulators.pn532 import Pn532Simulator
from drivers.types import CardRead, CardTech
from tests.test_drivers.conftest import load_fixture

FIX = load_fixture("pn532", "frames.json")


@pytest.mark.parametrize("vector", FIX["commands"] + FIX["responses"], ids=lambda v: v["name"])
def test_frame_vectors(vector: dict[str, str]) -> None:
    frame = bytes.fromhex(vector["hex"])
    assert encode_frame(bytes.fromhex(vector["body"])) == frame
    assert parse_frame(frame).body == bytes.fromhex(vector["body"])


def test_ack_nack_and_error_frames() -> None:
    assert parse_frame(bytes.fromhex(FIX["ack"])).kind is FrameKind.ACK
    assert parse_frame(bytes.fromhex(FIX["nack"])).kind is FrameKind.NACK
    assert parse_frame(bytes.fromhex(FIX["error"])).kind is FrameKind.ERROR


@pytest.mark.parametrize("vector", FIX["responses"][1:], ids=lambda v: v["name"])
def test_targets_with_4_and_7_byte_uids(vector: dict[str, object]) -> None:
    (target,) = parse_targets(parse_frame(bytes.fromhex(str(vector["hex"]))).body)
    assert target.uid == bytes.fromhex(str(vector["uid"]))
    assert (target.atqa, target.sak) == (vector["atqa"], vector["sak"])


def test_empty_field_and_bad_target_data() -> None:
    assert parse_targets(bytes.fromhex("D54B00")) == []
    with pytest.raises(FrameError, match="truncated"):
        parse_targets(bytes.fromhex("D54B0101000408 04DEAD"))
    with pytest.raises(FrameError, match="cannot be 5"):
        parse_targets(bytes.fromhex("D54B010100040805DEADBEEF00"))


@pytest.mark.parametrize(
    "frame",
    ["0000FF0CF5D54B010100040804DEADBEEF9600", "0000FF0CF4D54B010100040804DEADBEEF9700",
     "0000FF02FED5151601", "00FE02FED5151600"],
    ids=["lcs", "dcs", "postamble", "start"],
)  # fmt: skip
def test_corrupt_frames_are_rejected(frame: str) -> None:
    with pytest.raises(FrameError):
        parse_frame(bytes.fromhex(frame))


@given(st.binary(max_size=300))
def test_random_bytes_only_raise_frame_errors(data: bytes) -> None:
    try:
        parse_frame(data)
    except FrameError:
        pass
    FrameSplitter().feed(data)


@given(st.binary(min_size=1, max_size=255))
def test_encode_parse_round_trip(body: bytes) -> None:
    frame = parse_frame(encode_frame(body))
    assert frame.body == body or frame.kind is FrameKind.ERROR


@given(st.binary(max_size=40), st.binary(max_size=40), st.integers(1, 9))
def test_frame_in_garbage_is_found(before: bytes, after: bytes, chunk: int) -> None:
    frame = bytes.fromhex(FIX["responses"][1]["hex"])
    stream, splitter, found = before + frame + after, FrameSplitter(), []
    for i in range(0, len(stream), chunk):
        found += [f.body for f in splitter.feed(stream[i : i + chunk])]
    assert parse_frame(frame).body in found


def _reader(port: Path, **kwargs: float) -> Pn532Reader:
    options = {"ack_timeout": 0.05, "response_timeout": 0.1, "poll_interval": 0.01} | kwargs
    return Pn532Reader(SerialTransport(str(port), 115200, name="gate"), **options)  # type: ignore[arg-type]


async def _next(reader: Pn532Reader, timeout: float = 2.0) -> CardRead:
    async with asyncio.timeout(timeout):
        return await anext(aiter(reader.reads()))


async def test_wakes_configures_and_reads_a_4_byte_uid(port: Path) -> None:
    async with Pn532Simulator(port) as sim, _reader(port) as reader:
        sent = b"".join(sim.received)
        assert sent.startswith(WAKEUP)
        assert bytes.fromhex("0000FF05FBD41401000017 00") in sent
        assert reader.firmware == bytes.fromhex("32010607")
        sim.uid = bytes.fromhex("DEADBEEF")
        read = await _next(reader)
        assert (read.tech, read.uid_hex, read.extra) == (
            CardTech.ISO14443A, "DEADBEEF", {"atqa": 4, "sak": 8})  # fmt: skip


async def test_seven_byte_uid_and_debounce(port: Path) -> None:
    async with Pn532Simulator(port) as sim, _reader(port, debounce=0.15) as reader:
        sim.uid, sim.atqa, sim.sak = bytes.fromhex("04A224B2C35E80"), 0x44, 0
        seen: list[CardRead] = []

        async def collect() -> None:
            async for read in reader.reads():
                seen.append(read)

        task = asyncio.create_task(collect())
        await asyncio.sleep(0.25)
        assert [r.uid_hex for r in seen] == ["04A224B2C35E80"]
        sim.uid = None
        await asyncio.sleep(0.25)
        sim.uid = bytes.fromhex("04A224B2C35E80")
        await asyncio.sleep(0.1)
        task.cancel()
        assert len(seen) == 2


async def test_nack_is_retransmitted_and_garbage_skipped(port: Path) -> None:
    async with Pn532Simulator(port) as sim, _reader(port) as reader:
        sim.nacks = 2
        sim.garbage = b"\x00\xff\x05garbage"
        sim.chunk, sim.gap = 3, 0.001
        sim.uid = bytes.fromhex("DEADBEEF")
        assert (await _next(reader)).uid == bytes.fromhex("DEADBEEF")
        assert sim.commands.count(IN_LIST_PASSIVE_TARGET) >= 1


async def test_unknown_command_gets_error_frame(port: Path) -> None:
    async with Pn532Simulator(port), _reader(port) as reader:
        with pytest.raises(Pn532Error, match="error frame"):
            await reader.call(0x60)


async def test_asleep_chip_without_wakeup_times_out_with_bounded_retries(port: Path) -> None:
    async with Pn532Simulator(port) as sim:
        reader = _reader(port)
        await reader.transport.__aenter__()
        try:
            with pytest.raises(ReaderTimeout, match="14"):
                await reader.call(SAM_CONFIGURATION, b"\x01\x00\x00")
        finally:
            await reader.transport.__aexit__(None, None, None)
        assert sim.commands == []
        frames = b"".join(sim.received).count(bytes.fromhex("D4140100 00"))
        assert frames == reader.retries
        assert ACK in b"".join(sim.received)


async def test_mute_chip_is_reported_disconnected(port: Path) -> None:
    async with Pn532Simulator(port) as sim, _reader(port, max_silent=2) as reader:
        sim.mute = True
        with pytest.raises(ReaderDisconnected, match="stopped answering"):
            await _next(reader)


async def test_unplug_and_replug_needs_a_new_session(port: Path) -> None:
    async with Pn532Simulator(port) as sim:
        async with _reader(port) as reader:
            task = asyncio.create_task(_next(reader))
            await asyncio.sleep(0.03)
            sim.unplug()
            with pytest.raises(ReaderDisconnected):
                await task
        sim.plug()
        sim.uid = bytes.fromhex("DEADBEEF")
        async with _reader(port) as reader:
            assert (await _next(reader)).uid_hex == "DEADBEEF"


def test_nack_constant() -> None:
    assert bytes.fromhex(FIX["nack"]) == NACK
