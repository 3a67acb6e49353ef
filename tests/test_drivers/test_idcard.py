"""ID card reader (SAM_V): frames, text block, check digit, device loop over a real pty."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from drivers.errors import FrameError, ReaderDisconnected, ReaderTimeout
from drivers.idcard import (
    STATUS_ERRORS,
    CardDataError,
    CardRejected,
    Command,
    FrameSplitter,
    IdCardRead,
    IdCardReader,
    IdCardText,
    IdCardType,
    IdNumberError,
    SamStatusError,
    check_status,
    encode_command,
    encode_response,
    encode_text_block,
    id_check_char,
    parse_read_payload,
    parse_response,
    parse_text_block,
    validate_id_number,
)
from drivers.idcard.frames import NoCardError, SamAuthError
from drivers.serial_transport import SerialTransport
from drivers.simulators.idcard import IdCardSimulator, read_reply, sample_card, sample_photo
from tests.test_drivers.conftest import load_fixture

FIX = load_fixture("idcard", "frames.json")


# ---- frames -------------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "expected"), FIX["commands"].items())
def test_command_frames_match_the_protocol_notes(name: str, expected: str) -> None:
    assert encode_command(Command[name]) == bytes.fromhex(expected)


@pytest.mark.parametrize("vector", FIX["responses"], ids=lambda v: v["name"])
def test_response_vectors_parse(vector: dict[str, object]) -> None:
    response = parse_response(bytes.fromhex(str(vector["hex"])))
    assert response.sw3 == vector["sw3"]
    assert response.data == bytes.fromhex(str(vector["data"]))
    assert encode_response(response.sw3, response.data) == bytes.fromhex(str(vector["hex"]))


def test_every_documented_sw3_is_a_typed_error() -> None:
    documented = {0x80, 0x81, 0x41, 0x91, 0x10, 0x11, 0x21, 0x23, 0x24, 0x31, 0x32, 0x33, 0x40,
                  0x47, 0x60, 0x66, 0xFF}  # fmt: skip
    assert set(STATUS_ERRORS) == documented
    for code, cls in STATUS_ERRORS.items():
        with pytest.raises(cls, match=f"{code:02X}"):
            check_status(Command.SELECT, parse_response(encode_response(code)))


def test_find_succeeds_only_on_9f_and_unknown_status_is_still_typed() -> None:
    assert check_status(Command.FIND, parse_response(encode_response(0x9F))).sw3 == 0x9F
    with pytest.raises(SamStatusError, match="90"):
        check_status(Command.FIND, parse_response(encode_response(0x90)))
    with pytest.raises(SamStatusError, match="77"):
        check_status(Command.READ_TEXT_PHOTO, parse_response(encode_response(0x77)))


@pytest.mark.parametrize(
    "frame",
    [
        "AAAAAA9669000800009F0000000096",  # checksum off by one
        "AAAAAA9669000900009F0000000097",  # LEN says one more byte
        "AAAAAA9769000800009F0000000097",  # broken preamble
        "AAAAAA96690002",  # truncated
    ],
)
def test_malformed_frames_are_rejected(frame: str) -> None:
    with pytest.raises(FrameError):
        parse_response(bytes.fromhex(frame))


@given(st.binary(max_size=300))
def test_random_bytes_only_raise_frame_errors(data: bytes) -> None:
    try:
        parse_response(data)
    except FrameError:
        pass
    FrameSplitter().feed(data)


@given(st.integers(0, 255), st.binary(max_size=2400))
def test_encode_parse_round_trip(sw3: int, data: bytes) -> None:
    assert parse_response(encode_response(sw3, data)).data == data


@given(st.binary(max_size=64), st.binary(max_size=64), st.integers(1, 50))
def test_frame_in_garbage_is_found(before: bytes, after: bytes, chunk: int) -> None:
    frame = encode_response(0x90, bytes(range(40)))
    stream = before + frame + after
    splitter = FrameSplitter()
    found = []
    for i in range(0, len(stream), chunk):
        found += splitter.feed(stream[i : i + chunk])
    assert frame in found


# ---- text block and ID numbers ------------------------------------------------------------------


def test_text_block_bytes_match_the_protocol_sample() -> None:
    block = encode_text_block(sample_card())
    assert block.hex().upper().startswith(FIX["text_sample_prefix"])
    assert block[204:220] == bytes.fromhex(FIX["long_term_valid_to"])


def test_resident_card_decodes_with_long_term_validity() -> None:
    card = parse_text_block(encode_text_block(sample_card()))
    assert card.card_type is IdCardType.RESIDENT
    assert (card.name, card.sex_name, card.ethnicity_name) == ("张三", "男", "汉")
    assert card.birth == dt.date(1949, 12, 31)
    assert card.valid_to is None


def test_hk_macao_taiwan_permit_layout() -> None:
    number = "810000199001010" + "00"
    number += id_check_char(number)
    permit = sample_card(
        card_type=IdCardType.HMT_PERMIT, id_number=number, birth=dt.date(1990, 1, 1),
        ethnicity="", valid_to=dt.date(2030, 1, 1),
        extra={"pass_number": "H12345678", "issue_count": "01"},
    )  # fmt: skip
    block = encode_text_block(permit)
    assert block[248:250] == b"J\x00"
    assert block[220:238].decode("utf-16-le") == "H12345678"
    assert parse_text_block(block) == permit


def test_foreigner_2017_layout() -> None:
    card = IdCardText(
        IdCardType.FOREIGNER_2017, "WANG, JOHN", "1", "", dt.date(1980, 5, 6), "",
        "USA110080050601", "1100", dt.date(2017, 6, 1), dt.date(2027, 6, 1),
        {"english_name": "WANG, JOHN", "nationality": "USA", "card_version": "01"},
    )  # fmt: skip
    block = encode_text_block(card)
    assert block[248:250] == b"I\x00"
    assert block[122:152].decode("utf-16-le") == "USA110080050601"
    assert parse_text_block(block) == card


def test_foreigner_2023_best_effort() -> None:
    number = "93311019800506001"
    number += id_check_char(number)
    card = sample_card(
        card_type=IdCardType.FOREIGNER_2023, id_number=number, birth=dt.date(1980, 5, 6),
        ethnicity="", address="", issuer="", extra={"english_name": "WANG JOHN", "nationality": "USA"},
    )  # fmt: skip
    assert parse_text_block(encode_text_block(card)) == card


@pytest.mark.parametrize("number", FIX["id_numbers"]["valid"])
def test_valid_id_numbers(number: str) -> None:
    validate_id_number(number)


@pytest.mark.parametrize("number", FIX["id_numbers"]["bad_check"])
def test_bad_check_character_is_rejected_with_a_reason(number: str) -> None:
    with pytest.raises(IdNumberError, match="check character") as info:
        validate_id_number(number)
    assert number not in str(info.value)  # the reason never echoes the number


@pytest.mark.parametrize(
    ("number", "reason"),
    [
        ("1101051949123100", "18"),
        ("1101051949123100AX", "17 digits"),
        ("11010519491331002" + id_check_char("11010519491331002"), "calendar date"),
    ],
)
def test_malformed_id_numbers(number: str, reason: str) -> None:
    with pytest.raises(IdNumberError, match=reason):
        validate_id_number(number)


def test_birth_mismatch_and_unknown_marker_are_card_data_errors() -> None:
    with pytest.raises(IdNumberError, match="birth date"):
        parse_text_block(encode_text_block(sample_card(birth=dt.date(1950, 1, 1))))
    block = bytearray(encode_text_block(sample_card()))
    block[248:250] = "Q".encode("utf-16-le")
    with pytest.raises(CardDataError, match="marker"):
        parse_text_block(bytes(block))


@given(st.binary(min_size=256, max_size=256))
def test_random_text_blocks_only_raise_frame_errors(block: bytes) -> None:
    try:
        parse_text_block(block)
    except FrameError:
        pass


_names = st.text(st.characters(min_codepoint=0x4E00, max_codepoint=0x9FA5), min_size=1, max_size=15)
_dates = st.dates(dt.date(1900, 1, 1), dt.date(2099, 12, 31))


@given(_names, _dates, st.integers(0, 999), st.one_of(st.none(), _dates))
def test_resident_text_round_trip(
    name: str, birth: dt.date, seq: int, valid_to: dt.date | None
) -> None:
    first17 = f"110105{birth:%Y%m%d}{seq:03d}"
    card = sample_card(
        name=name, birth=birth, id_number=first17 + id_check_char(first17), valid_to=valid_to
    )
    assert parse_text_block(encode_text_block(card)) == card


def test_read_payload_takes_lengths_from_the_reply() -> None:
    block, photo = encode_text_block(sample_card()), sample_photo()
    frame = read_reply(block, photo)
    assert len(frame) == 1295
    assert frame[:14] == bytes.fromhex("AAAAAA9669050800009001000400")
    text, wlt = parse_read_payload(parse_response(frame).data)
    assert wlt == photo
    assert text.id_number == "11010519491231002X"
    with pytest.raises(FrameError, match="shorter"):
        parse_read_payload(parse_response(frame).data[:-1])


def test_photo_and_identity_stay_out_of_repr() -> None:
    read = IdCardRead.from_text(sample_card(), b"\xff" * 1024, "lobby", 1.0)
    text = repr(read)
    assert "11010519491231002X" not in text
    assert "张三" not in text
    assert "photo" not in text
    assert read.photo_wlt == b"\xff" * 1024


# ---- the device over a real pty -----------------------------------------------------------------


def _reader(port: Path, **kwargs: object) -> IdCardReader:
    options: dict[str, object] = {
        "poll_interval": 0.01, "probe_timeout": 0.15, "command_timeout": 0.2, "read_timeout": 0.5,
        "debounce": 0.3,
    } | kwargs  # fmt: skip
    return IdCardReader(SerialTransport(str(port), name="lobby"), **options)  # type: ignore[arg-type]


async def _next(reader: IdCardReader, timeout: float = 2.0) -> IdCardRead:
    async with asyncio.timeout(timeout):
        return await anext(aiter(reader.reads()))


async def test_reads_a_card_through_find_select_read(port: Path) -> None:
    async with IdCardSimulator(port) as sim, _reader(port) as reader:
        sim.insert()
        card = await _next(reader)
        assert card.id_number == "11010519491231002X"
        assert card.reader == "lobby"
        assert card.photo_wlt == sim.photo
        assert await reader.sam_id() == FIX["sam_id_display"]
        sent = b"".join(sim.received)
        for command in (Command.FIND, Command.SELECT, Command.READ_TEXT_PHOTO):
            assert encode_command(command) in sent


async def test_no_card_polls_without_yielding(port: Path) -> None:
    async with IdCardSimulator(port) as sim, _reader(port) as reader:
        assert await reader.read_card() is None
        with pytest.raises(NoCardError):
            await reader.command(Command.FIND)
        sim.status[Command.READ_TEXT_PHOTO] = 0x32
        sim.insert()
        with pytest.raises(SamAuthError, match="fake or damaged"):
            await reader.read_card()


async def test_falls_back_to_9600_when_the_sam_ignores_115200(port: Path) -> None:
    async with IdCardSimulator(port, baudrate=9600) as sim, _reader(port) as reader:
        assert reader.transport.baudrate == 9600
        assert sim.line_baudrate() == 9600
        sim.insert()
        assert (await _next(reader)).name == "张三"


async def test_no_answer_at_any_speed_fails_to_open(port: Path) -> None:
    async with IdCardSimulator(port, baudrate=57600):
        reader = _reader(port)
        with pytest.raises(ReaderTimeout, match="115200, 9600"):
            await reader.__aenter__()
        assert not reader.transport.is_open


async def test_garbage_split_and_slow_replies_still_read(port: Path) -> None:
    async with IdCardSimulator(port) as sim, _reader(port, read_timeout=1.5) as reader:
        sim.garbage = b"\xaa\xaa\x00\x13garbage\xaa\xaa\xaa\x96"
        sim.chunk, sim.gap = 97, 0.002
        sim.insert()
        card = await _next(reader, 5.0)
        assert card.id_number == "11010519491231002X"
        assert reader.rejected_frames > 0


async def test_invalid_id_number_is_rejected_and_reading_continues(port: Path) -> None:
    rejected: list[CardRejected] = []
    async with IdCardSimulator(port) as sim, _reader(port, on_reject=rejected.append) as reader:
        sim.insert(sample_card(id_number="110105194912310021"))
        reads = reader.reads()
        task = asyncio.create_task(anext(reads))
        async with asyncio.timeout(2):
            while not rejected:
                await asyncio.sleep(0.01)
        assert "check character" in rejected[0].reason
        assert not task.done()
        sim.insert()
        async with asyncio.timeout(2):
            card = await task
        assert card.id_number == "11010519491231002X"


async def test_same_card_is_debounced_until_lifted(port: Path) -> None:
    async with IdCardSimulator(port) as sim, _reader(port, debounce=0.2) as reader:
        sim.insert()
        seen: list[float] = []

        async def collect() -> None:
            async for card in reader.reads():
                seen.append(card.monotonic)

        task = asyncio.create_task(collect())
        await asyncio.sleep(0.3)  # the card stays on the antenna: read again and again
        assert len(seen) == 1
        sim.remove()
        await asyncio.sleep(0.3)
        sim.insert()
        await asyncio.sleep(0.2)
        task.cancel()
        assert len(seen) == 2


async def test_silent_sam_counts_as_disconnected(port: Path) -> None:
    async with IdCardSimulator(port) as sim, _reader(port, max_silent=2) as reader:
        sim.mute = True
        with pytest.raises(ReaderDisconnected, match="stopped answering"):
            await _next(reader)


async def test_unplug_is_detected(port: Path) -> None:
    async with IdCardSimulator(port) as sim, _reader(port) as reader:
        task = asyncio.create_task(_next(reader))
        await asyncio.sleep(0.05)
        sim.unplug()
        with pytest.raises(ReaderDisconnected):
            await task
        assert not reader.transport.health.connected


def test_read_record_is_frozen() -> None:
    read = IdCardRead.from_text(sample_card(), b"", "r", 0.0)
    with pytest.raises(dataclasses.FrozenInstanceError):
        read.name = "x"  # type: ignore[misc]
