"""OSDP: doorgate's control panel against libosdp's own PeripheralDevice over a real pty."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from drivers.errors import DriverError, FrameError, ReaderDisconnected, ReaderTimeout
from drivers.osdp_cp import OsdpReader, decode_keys, load_scbk, unpack_card
from drivers.simulators.osdp_pd import OsdpPdSimulator, pack_bits
from drivers.types import CardRead, CardTech, KeyPress
from drivers.wiegand import encode_w26, encode_w34
from tests.test_drivers.conftest import load_fixture

FIX = load_fixture("osdp", "vectors.json")
KEY = bytes.fromhex("000102030405060708090A0B0C0D0E0F")


def test_raw_payload_of_the_spec_vector_decodes() -> None:
    vector = FIX["raw_reply_w26"]
    frame = bytes.fromhex(vector["frame"])
    payload = frame[6:-2]  # SOM ADDR LEN LEN CTRL CODE | payload | CRC
    assert payload[0] == vector["reader"]
    assert payload[1] == vector["format"]
    assert int.from_bytes(payload[2:4], "little") == vector["bits"]
    uid, extra = unpack_card(payload[4:], vector["bits"])
    assert payload[4:] == bytes.fromhex(vector["data"]) == pack_bits(encode_w26(90, 324))
    assert (extra["facility"], extra["number"], uid) == (90, 324, bytes.fromhex("5A0144"))


def test_keypad_vector_and_special_keys() -> None:
    frame = bytes.fromhex(FIX["keypad_reply"]["frame"])
    assert decode_keys(frame[8:-2]) == FIX["keypad_reply"]["keys"]
    assert decode_keys(b"\x7f\x0d9") == "*#9"


def test_bad_parity_in_raw_card_is_a_frame_error() -> None:
    bits = list(encode_w26(90, 324))
    bits[0] = "1"
    with pytest.raises(FrameError, match="parity"):
        unpack_card(pack_bits("".join(bits)), 26)
    with pytest.raises(FrameError, match="bytes for"):
        unpack_card(b"\x01", 26)


@given(st.binary(max_size=16), st.integers(0, 200))
def test_random_card_payloads_only_raise_frame_errors(data: bytes, bits: int) -> None:
    try:
        unpack_card(data, bits)
    except FrameError:
        pass


@given(st.text(alphabet="01", min_size=1, max_size=80))
def test_pack_unpack_round_trip_for_raw_lengths(bits: str) -> None:
    if len(bits) in (26, 34):
        return
    uid, extra = unpack_card(pack_bits(bits), len(bits))
    assert extra == {"bits": len(bits)}
    assert f"{int.from_bytes(uid, 'big'):0{len(uid) * 8}b}"[: len(bits)] == bits


def test_scbk_file_formats(tmp_path: Path) -> None:
    hex_file, raw_file, bad = tmp_path / "hex", tmp_path / "raw", tmp_path / "bad"
    hex_file.write_text(KEY.hex() + "\n")
    raw_file.write_bytes(KEY)
    bad.write_text("abcd")
    assert load_scbk(hex_file) == load_scbk(raw_file) == KEY
    with pytest.raises(DriverError, match="2 bytes"):
        load_scbk(bad)
    with pytest.raises(DriverError, match="cannot read"):
        load_scbk(tmp_path / "missing")


async def _next(reader: OsdpReader, timeout: float = 3.0) -> CardRead | KeyPress:
    async with asyncio.timeout(timeout):
        return await anext(aiter(reader.reads()))


@pytest.mark.parametrize("scbk", [None, KEY], ids=["plain", "secure"])
async def test_card_read_reaches_the_control_panel(port: Path, scbk: bytes | None) -> None:
    with OsdpPdSimulator(port, address=1, scbk=scbk) as pd:
        async with OsdpReader(str(port), address=1, scbk=scbk, name="front") as reader:
            assert reader.online
            assert reader.secure is (scbk is not None)
            pd.tap_bits(encode_w34(0x6B3D12D6))
            read = await _next(reader)
    assert isinstance(read, CardRead)
    assert (read.tech, read.uid_hex, read.extra["bits"]) == (CardTech.OSDP, "6B3D12D6", 34)


async def test_keypad_and_feedback_commands(port: Path) -> None:
    with OsdpPdSimulator(port, scbk=KEY) as pd:
        async with OsdpReader(str(port), scbk=KEY) as reader:
            pd.press("12#")
            keys = await _next(reader)
            assert isinstance(keys, KeyPress)
            assert keys.keys == "12#"
            assert await reader.feedback(allowed=True)
            assert await reader.feedback(allowed=False)
            async with asyncio.timeout(2):
                while len(pd.commands) < 4:
                    await asyncio.sleep(0.01)
    leds = [c for c in pd.commands if "led_number" in c]
    buzzers = [c for c in pd.commands if "rep_count" in c]
    assert [c["on_color"] for c in leds] == [2, 1]  # green, then red
    assert [c["rep_count"] for c in buzzers] == [1, 3]


async def test_wrong_key_never_comes_online(port: Path) -> None:
    with OsdpPdSimulator(port, scbk=KEY):
        reader = OsdpReader(str(port), scbk=bytes(16), online_timeout=0.5)
        with pytest.raises(ReaderTimeout, match="SCBK"):
            await reader.__aenter__()


async def test_garbage_on_the_bus_does_not_lose_reads(port: Path) -> None:
    with OsdpPdSimulator(port) as pd:
        async with OsdpReader(str(port)) as reader:
            pd.inject_garbage(b"\x53\x00\xff\xff garbage \x53")
            pd.tap_bits(encode_w26(59, 20934))
            read = await _next(reader)
            assert isinstance(read, CardRead)
            assert read.uid_hex == "3B51C6"


async def test_unplugged_pd_raises_disconnected(port: Path) -> None:
    with OsdpPdSimulator(port) as pd:
        async with OsdpReader(str(port), offline_after=0.3) as reader:
            pd.unplug()
            with pytest.raises(ReaderDisconnected):
                await _next(reader, timeout=12)


async def test_missing_port_fails_to_open(port: Path) -> None:
    with pytest.raises(ReaderDisconnected, match="cannot open"):
        await OsdpReader(str(port)).__aenter__()
