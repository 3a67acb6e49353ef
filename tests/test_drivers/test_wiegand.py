"""Wiegand 26/34 decoding, gap framing, keypad bursts, and the reader on a simulated edge source."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import given
from hypothesis import strategies as st

from drivers.errors import FrameError, ReaderDisconnected
from drivers.simulators.wiegand import SimulatedEdgeSource
from drivers.types import CardRead, CardTech, KeyPress
from drivers.wiegand import (
    EdgeEvent,
    FrameAssembler,
    Line,
    WiegandCard,
    WiegandReader,
    decode_bits,
    encode_key,
    encode_w26,
    encode_w34,
)
from tests.test_drivers.conftest import load_fixture

FIX = load_fixture("wiegand", "vectors.json")


@pytest.mark.parametrize("vector", FIX["w26"], ids=lambda v: v["bits"])
def test_w26_vectors(vector: dict[str, object]) -> None:
    assert encode_w26(int(vector["facility"]), int(vector["number"])) == vector["bits"]  # type: ignore[call-overload]
    card = decode_bits(str(vector["bits"]))
    assert isinstance(card, WiegandCard)
    assert (card.facility, card.number) == (vector["facility"], vector["number"])


@pytest.mark.parametrize("vector", FIX["w34"], ids=lambda v: v["data"])
def test_w34_vectors(vector: dict[str, str]) -> None:
    data = int(vector["data"], 16)
    assert encode_w34(data) == vector["bits"]
    card = decode_bits(vector["bits"])
    assert isinstance(card, WiegandCard)
    assert card.uid == bytes.fromhex(vector["data"])


@pytest.mark.parametrize("bit", [0, 5, 13, 14, 25])
def test_any_flipped_bit_breaks_w26_parity(bit: int) -> None:
    bits = list(encode_w26(90, 324))
    bits[bit] = "1" if bits[bit] == "0" else "0"
    with pytest.raises(FrameError, match="parity"):
        decode_bits("".join(bits))


def test_keypad_bursts() -> None:
    assert [decode_bits(encode_key(k)) for k in "0123456789*#"] == list("0123456789*#")
    assert decode_bits(encode_key("7", bits=8)) == "7"
    with pytest.raises(FrameError, match="complement"):
        decode_bits("00000111")
    with pytest.raises(FrameError, match="not a key"):
        decode_bits("1110")


@pytest.mark.parametrize("n", [1, 12, 25, 27, 33, 35, 37])
def test_other_lengths_are_rejected(n: int) -> None:
    with pytest.raises(FrameError, match=f"{n} bits"):
        decode_bits("0" * n)


@given(st.text(alphabet="01", max_size=64))
def test_random_bits_only_raise_frame_errors(bits: str) -> None:
    try:
        decode_bits(bits)
    except FrameError:
        pass


@given(st.integers(0, 255), st.integers(0, 0xFFFF), st.integers(0, 0xFFFF_FFFF))
def test_round_trips(facility: int, number: int, data: int) -> None:
    w26 = decode_bits(encode_w26(facility, number))
    w34 = decode_bits(encode_w34(data))
    assert isinstance(w26, WiegandCard)
    assert isinstance(w34, WiegandCard)
    assert (w26.facility, w26.number, w34.data) == (facility, number, data)


@given(st.lists(st.sampled_from(["0", "1"]), min_size=1, max_size=40), st.integers(1, 20))
def test_assembler_cuts_frames_on_the_gap(bits: list[str], gap_ms: int) -> None:
    assembler = FrameAssembler(gap=0.025)
    t = 0
    frames = []
    for _ in range(2):
        for bit in bits:
            done = assembler.feed(EdgeEvent(Line(int(bit)), t))
            if done:
                frames.append(done)
            t += gap_ms * 1_000_000  # under the gap: still the same frame
        t += 30_000_000
    frames.append(assembler.flush())
    assert frames == ["".join(bits)] * 2


async def _collect(reader: WiegandReader, count: int) -> list[CardRead | KeyPress]:
    out: list[CardRead | KeyPress] = []
    async with asyncio.timeout(2):
        async for record in reader.reads():
            out.append(record)
            if len(out) == count:
                return out
    return out


async def test_reader_decodes_cards_and_keys() -> None:
    source = SimulatedEdgeSource("side-door")
    async with WiegandReader(source) as reader:
        source.send_w26(59, 20934)
        source.send_keys("12#")
        source.send_w34(0x6B3D12D6)
        records = await _collect(reader, 5)
    first = records[0]
    assert isinstance(first, CardRead)
    assert (first.tech, first.uid_hex, first.extra["facility"]) == (CardTech.WIEGAND, "3B51C6", 59)
    assert [r.keys for r in records[1:4] if isinstance(r, KeyPress)] == ["1", "2", "#"]
    assert isinstance(records[4], CardRead)
    assert records[4].uid_hex == "6B3D12D6"


async def test_noise_and_short_frames_are_dropped_and_reading_continues() -> None:
    source = SimulatedEdgeSource()
    async with WiegandReader(source) as reader:
        source.inject_noise(3, seed=1)
        source.send_short(encode_w26(1, 2), keep=20)
        bits = list(encode_w26(1, 2))
        bits[3] = "1" if bits[3] == "0" else "0"
        source.send_bits("".join(bits))
        source.send_w26(90, 324)
        (record,) = await _collect(reader, 1)
        assert isinstance(record, CardRead)
        assert (record.extra["facility"], record.extra["number"]) == (90, 324)
        assert reader.rejected == 3


async def test_repeated_frames_of_one_card_are_debounced() -> None:
    source = SimulatedEdgeSource()
    async with WiegandReader(source, debounce=0.5) as reader:
        for _ in range(3):
            source.send_w26(90, 324)
        source.send_w26(90, 325)
        records = await _collect(reader, 2)
    assert [r.extra["number"] for r in records if isinstance(r, CardRead)] == [324, 325]


async def test_realtime_pulses_with_slow_bits_are_one_frame() -> None:
    source = SimulatedEdgeSource(period=0.0024)
    async with WiegandReader(source) as reader:
        task = asyncio.create_task(_collect(reader, 1))
        await source.send_bits_live(encode_w26(7, 7))  # edges trickle in one by one
        (record,) = await task
    assert isinstance(record, CardRead)
    assert record.extra["number"] == 7


async def test_lost_gpio_chip_raises_disconnected() -> None:
    source = SimulatedEdgeSource()
    async with WiegandReader(source) as reader:
        source.break_chip()
        with pytest.raises(ReaderDisconnected):
            await _collect(reader, 1)
