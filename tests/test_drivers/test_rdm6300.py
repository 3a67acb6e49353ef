"""RDM6300: frame vectors, property tests, and the reader over a pty with line faults."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from drivers.errors import FrameError, ReaderDisconnected
from drivers.rdm6300 import FrameSplitter, Rdm6300Reader, encode_frame, parse_frame
from drivers.serial_transport import SerialTransport
from drivers.simulators.rdm6300 import Rdm6300Simulator
from drivers.types import CardRead
from tests.test_drivers.conftest import load_fixture

FIX = load_fixture("rdm6300", "frames.json")


def _wire(vector: dict[str, object]) -> bytes:
    if "hex" in vector:
        return bytes.fromhex(str(vector["hex"]))
    return b"\x02" + str(vector["ascii"]).encode() + b"\x03"


@pytest.mark.parametrize("vector", FIX["valid"], ids=lambda v: str(v["serial"]))
def test_vectors(vector: dict[str, object]) -> None:
    tag = parse_frame(_wire(vector))
    assert (tag.version, tag.serial) == (vector["version"], vector["serial"])
    assert encode_frame(tag.version, tag.serial) == _wire(vector)


@pytest.mark.parametrize("body", FIX["bad_checksum"])
def test_bad_checksum_is_rejected(body: str) -> None:
    with pytest.raises(FrameError, match="checksum"):
        parse_frame(b"\x02" + body.encode() + b"\x03")


@given(st.binary(max_size=60))
def test_random_bytes_only_raise_frame_errors(data: bytes) -> None:
    try:
        parse_frame(data)
    except FrameError:
        pass
    FrameSplitter().feed(data)


@given(st.integers(0, 255), st.integers(0, 0xFFFF_FFFF))
def test_round_trip(version: int, serial: int) -> None:
    tag = parse_frame(encode_frame(version, serial))
    assert (tag.version, tag.serial) == (version, serial)


@given(st.binary(max_size=30), st.binary(max_size=30), st.integers(1, 14))
def test_frame_in_garbage_is_found(before: bytes, after: bytes, chunk: int) -> None:
    frame = encode_frame(0x67, 3887558)
    stream, splitter, found = before + frame + after, FrameSplitter(), []
    for i in range(0, len(stream), chunk):
        found += splitter.feed(stream[i : i + chunk])
    assert any(t.serial == 3887558 for t in found)


async def _collect(reader: Rdm6300Reader, count: int) -> list[CardRead]:
    out: list[CardRead] = []
    async with asyncio.timeout(2):
        async for read in reader.reads():
            out.append(read)
            if len(out) == count:
                break
    return out


async def test_reader_survives_garbage_split_and_slow_frames(port: Path) -> None:
    sim = Rdm6300Simulator(port)
    sim.plug()
    async with Rdm6300Reader(SerialTransport(str(port), name="gate"), debounce=0.05) as reader:
        task = asyncio.create_task(_collect(reader, 2))
        await sim.send(b"\x02\x02garbage\x03\xff")
        await sim.send(encode_frame(0x67, 3909740), chunk=3, gap=0.002)
        await asyncio.sleep(0.1)
        await sim.send(encode_frame(0x68, 0x3B51C6)[:-3] + b"XX\x03")  # corrupt
        sim.paced = True
        await sim.tap(3909735, repeats=3, interval=0.01)
        reads = await task
    assert [int.from_bytes(r.uid[1:], "big") for r in reads] == [3909740, 3909735]
    assert reader.rejected_frames >= 2


async def test_unplug_surfaces_as_disconnected(port: Path) -> None:
    sim = Rdm6300Simulator(port)
    sim.plug()
    async with Rdm6300Reader(SerialTransport(str(port))) as reader:
        task = asyncio.create_task(_collect(reader, 1))
        await asyncio.sleep(0.02)
        sim.unplug()
        with pytest.raises(ReaderDisconnected):
            await task
