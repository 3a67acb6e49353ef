"""`doorgate bench fuzz`: random and mutated frames through every protocol parser of ours.

For each protocol the fuzzer feeds `frames` inputs to the parser: valid frames (which must be
accepted and decode to what was encoded), valid frames with a few mutations (bit flips, bytes
replaced, inserted, deleted, truncated, extended), mutations whose checksum is then repaired (so
the layer behind the checksum — text block, ID number, target list, parity — meets bad data)
and plain random bytes. Every 64 inputs are also streamed, cut at random points, through the
protocol's `FrameSplitter`.

A failure is any exception other than the driver's own `DriverError` family, a valid frame
rejected, or an accepted frame that an independent check finds wrong (checksum, length,
GB 11643 check character, parity). Parsers: RDM6300 frames, ID card SAM frames and text blocks,
PN532 frames and InListPassiveTarget replies, Wiegand bit decoding, and our OSDP card-data
unpacking (framing, CRC and secure channel are libosdp's C code, not ours).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import reduce
from operator import xor
from typing import Any, cast

from drivers import osdp_cp, pn532, rdm6300, wiegand
from drivers.errors import DriverError, FrameError
from drivers.idcard import frames as sam
from drivers.idcard import reader as idreader
from drivers.idcard import text as idtext
from drivers.simulators.idcard import read_reply, sample_card
from drivers.simulators.osdp_pd import pack_bits

_Pn532Decoded = tuple[pn532.Pn532Frame, list[pn532.Target] | None]
_OsdpDecoded = tuple[bytes, dict[str, int | str]]
PROTOCOLS = ("rdm6300", "idcard", "pn532", "wiegand", "osdp")
STREAM_BATCH = 64
MAX_FAILURES = 5
_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)


class Wrong(Exception):
    """An accepted input that the independent check finds wrong (or a valid input rejected)."""


@dataclass
class Counts:
    """Per-protocol tallies."""

    frames: int = 0
    accepted: int = 0
    rejected: int = 0
    stream_frames: int = 0
    failures: list[dict[str, str]] = field(default_factory=list)
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready counts with the rate."""
        return {
            "frames": self.frames,
            "accepted": self.accepted,
            "rejected": self.rejected,
            "stream_frames_checked": self.stream_frames,
            "failures": len(self.failures),
            "seconds": round(self.seconds, 2),
            "rate_per_s": round(self.frames / self.seconds) if self.seconds else None,
        }


def _xor(data: bytes) -> int:
    return reduce(xor, data, 0) if len(data) < 64 else _xor_wide(data)


def _xor_wide(data: bytes) -> int:
    # XOR of all bytes through one big integer: fold 8-byte words, then the bytes of the word.
    pad = data + bytes(-len(data) % 8)
    words = memoryview(pad).cast("Q")
    acc = reduce(xor, words, 0)
    return reduce(xor, acc.to_bytes(8, "little"), 0)


def gb11643_ok(number: str) -> bool:
    """Independent GB 11643 check: 17 digits, then the MOD 11-2 check character."""
    if len(number) != 18 or not number[:17].isascii() or not number[:17].isdigit():
        return False
    total = sum(int(d) * w for d, w in zip(number[:17], _WEIGHTS, strict=True))
    return "10X98765432"[total % 11] == number[17]


# --- mutations ------------------------------------------------------------------------------


def mutate(rng: random.Random, data: bytes) -> bytes:
    """One to three random edits of `data`."""
    out = bytearray(data)
    for _ in range(rng.randint(1, 3)):
        op = rng.randrange(7)
        at = rng.randrange(len(out) + 1)
        if op == 0 and out:
            out[min(at, len(out) - 1)] ^= 1 << rng.randrange(8)
        elif op == 1 and out:
            out[min(at, len(out) - 1)] = rng.randrange(256)
        elif op == 2:
            out[at:at] = rng.randbytes(rng.randint(1, 4))
        elif op == 3 and out:
            del out[at : at + rng.randint(1, 4)]
        elif op == 4:
            del out[at:]
        elif op == 5:
            out += rng.randbytes(rng.randint(1, 8))
        elif out:
            out[at:at] = out[max(0, at - 4) : at]
    return bytes(out)


# --- targets --------------------------------------------------------------------------------


class Target:
    """One protocol's generator, parser call and independent check."""

    name = ""

    def valid(self, rng: random.Random) -> tuple[bytes, object]:
        """A valid input and what it must decode to."""
        raise NotImplementedError

    def repair(self, data: bytes) -> bytes:
        """Make the checksum right again after a mutation (default: unchanged)."""
        return data

    def parse(self, data: bytes) -> object:
        """Run our parser; return the decoded value (raises `DriverError` to reject)."""
        raise NotImplementedError

    def check(self, data: bytes, decoded: object) -> None:
        """Raise `Wrong` if an accepted input is not what the protocol allows."""
        self.check_frame(data)

    def check_frame(self, data: bytes) -> None:
        """Raise `Wrong` unless `data` is one frame with a right checksum (as splitters emit)."""

    def stream(self, data: bytes, rng: random.Random) -> list[bytes]:
        """Feed `data` in random chunks to the splitter; return the frames it cut.

        Each frame comes back as the bytes it must have been cut from, so the caller checks
        that it really occurs in `data` (a splitter must never invent a frame).
        """
        del data, rng
        return []

    def random_input(self, rng: random.Random) -> bytes:
        """Plain random bytes."""
        return rng.randbytes(rng.randint(0, 40))


class Rdm6300Target(Target):
    """14-byte EM4100 frames: STX, 10 hex data, 2 hex XOR checksum, ETX."""

    name = "rdm6300"

    def valid(self, rng: random.Random) -> tuple[bytes, object]:
        version, serial = rng.randrange(256), rng.getrandbits(32)
        return rdm6300.encode_frame(version, serial), (version, serial)

    def repair(self, data: bytes) -> bytes:
        if len(data) != 14:
            return data
        try:
            payload = bytes.fromhex(data[1:11].decode("ascii"))
        except (UnicodeDecodeError, ValueError):
            return data
        return data[:11] + f"{_xor(payload):02X}".encode() + data[13:]

    def parse(self, data: bytes) -> object:
        tag = rdm6300.parse_frame(data)
        return tag.version, tag.serial

    def check_frame(self, data: bytes) -> None:
        if len(data) != 14 or data[0] != 0x02 or data[13] != 0x03:
            raise Wrong("accepted without STX/ETX or with the wrong length")
        try:
            payload = bytes.fromhex(data[1:11].decode("ascii"))
            checksum = int(data[11:13].decode("ascii"), 16)
        except (UnicodeDecodeError, ValueError) as err:
            raise Wrong("accepted non-hex characters") from err
        if _xor(payload) != checksum:
            raise Wrong("accepted a bad XOR checksum")

    def check(self, data: bytes, decoded: object) -> None:
        self.check_frame(data)
        payload = bytes.fromhex(data[1:11].decode("ascii"))
        if decoded != (payload[0], int.from_bytes(payload[1:], "big")):
            raise Wrong(f"decoded {decoded} from {payload.hex()}")

    def stream(self, data: bytes, rng: random.Random) -> list[bytes]:
        splitter = rdm6300.FrameSplitter()
        tags = _chunked(splitter.feed, data, rng)
        return [rdm6300.encode_frame(t.version, t.serial) for t in tags]


class IdCardTarget(Target):
    """SAM_V reply frames; read replies go on to the text block (ID number, dates)."""

    name = "idcard"

    def __init__(self) -> None:
        self._photo = bytes(1024)

    def valid(self, rng: random.Random) -> tuple[bytes, object]:
        if rng.random() < 0.25:
            number = _random_id_number(rng)
            card = sample_card(id_number=number, birth=_birth_of(number))
            return read_reply(idtext.encode_text_block(card), self._photo), number
        data = rng.randbytes(rng.choice((0, 0, 4, 8, 16)))
        return sam.encode_response(rng.choice((0x90, 0x9F, 0x80, 0x41)), data), None

    def repair(self, data: bytes) -> bytes:
        if len(data) < 8 or not data.startswith(sam.PREAMBLE):
            return data
        length = len(data) - 7
        core = length.to_bytes(2, "big") + data[7:-1]
        return sam.PREAMBLE + core + bytes([_xor(core)])

    def random_input(self, rng: random.Random) -> bytes:
        return (
            sam.PREAMBLE + rng.randbytes(rng.randint(0, 24))
            if rng.random() < 0.5
            else (rng.randbytes(rng.randint(0, 40)))
        )

    def parse(self, data: bytes) -> object:
        response = sam.parse_response(data)
        if response.sw3 == 0x90 and len(response.data) >= 4 + idtext.TEXT_LEN:
            text, _photo = idreader.parse_read_payload(response.data)
            return text
        return response

    def check_frame(self, data: bytes) -> None:
        if not data.startswith(sam.PREAMBLE) or len(data) != 7 + int.from_bytes(data[5:7], "big"):
            raise Wrong("accepted a frame whose LEN does not match its size")
        if _xor(data[5:-1]) != data[-1]:
            raise Wrong("accepted a bad XOR checksum")

    def check(self, data: bytes, decoded: object) -> None:
        self.check_frame(data)
        if isinstance(decoded, idtext.IdCardText):
            _check_card(decoded)

    def stream(self, data: bytes, rng: random.Random) -> list[bytes]:
        return _chunked(sam.FrameSplitter().feed, data, rng)


def _check_card(card: idtext.IdCardText) -> None:
    number = card.id_number
    if card.card_type is idtext.IdCardType.FOREIGNER_2017:
        if not (len(number) == 15 and number[:3].isalpha() and number[3:].isdigit()):
            raise Wrong("accepted a malformed 2017 permit number")
        return
    if not gb11643_ok(number):
        raise Wrong("accepted an ID number with a bad GB 11643 check character")
    resident = card.card_type in (idtext.IdCardType.RESIDENT, idtext.IdCardType.HMT_PERMIT)
    if resident and number[6:14] != card.birth.strftime("%Y%m%d"):
        raise Wrong("accepted a birth date that differs from the ID number's")


def _random_id_number(rng: random.Random) -> str:
    birth = f"{rng.randint(1930, 2020)}{rng.randint(1, 12):02d}{rng.randint(1, 28):02d}"
    first17 = f"{rng.randint(110000, 659999)}{birth}{rng.randint(0, 999):03d}"
    return first17 + idtext.id_check_char(first17)


def _birth_of(number: str) -> Any:
    import datetime as dt

    return dt.date(int(number[6:10]), int(number[10:12]), int(number[12:14]))


class Pn532Target(Target):
    """PN532 frames (ACK, NACK, error, data) and InListPassiveTarget replies."""

    name = "pn532"

    def valid(self, rng: random.Random) -> tuple[bytes, object]:
        pick = rng.random()
        if pick < 0.1:
            return pn532.ACK, pn532.FrameKind.ACK
        if pick < 0.6:
            uid = rng.randbytes(rng.choice((4, 7, 10)))
            target = b"\x01\x01\x00\x04\x08" + bytes([len(uid)]) + uid
            return pn532.encode_response(pn532.IN_LIST_PASSIVE_TARGET, target), uid
        body = bytes([pn532.PN532_TFI, rng.randrange(0x4C, 0x100)]) + rng.randbytes(
            rng.randint(0, 18)
        )
        return pn532.encode_frame(body), body

    def repair(self, data: bytes) -> bytes:
        raw = data[1:] if data.startswith(b"\x00\x00\xff") else data
        if len(raw) < 7 or not raw.startswith(pn532.START):
            return data
        body = raw[4:-2]
        if not 1 <= len(body) <= 255:
            return data
        return pn532.encode_frame(body)

    def parse(self, data: bytes) -> object:
        frame = pn532.parse_frame(data)
        reply = bytes([pn532.PN532_TFI, pn532.IN_LIST_PASSIVE_TARGET + 1])
        if frame.kind is pn532.FrameKind.DATA and frame.body[:2] == reply:
            return frame, pn532.parse_targets(frame.body)
        return frame, None

    def check(self, data: bytes, decoded: object) -> None:
        self.check_frame(data)
        _frame, targets = cast(_Pn532Decoded, decoded)
        for target in targets or []:
            if len(target.uid) not in (4, 7, 10):
                raise Wrong("accepted a UID of impossible length")

    def check_frame(self, data: bytes) -> None:
        raw = data[1:] if data.startswith(b"\x00\x00\xff") else data
        if raw in (pn532.ACK[1:], pn532.NACK[1:]):
            return
        if len(raw) < 6 or not raw.startswith(pn532.START):
            raise Wrong("accepted a frame without the 00 FF start code")
        length, lcs = raw[2], raw[3]
        if (length + lcs) & 0xFF or len(raw) != length + 6 or raw[-1] != 0:
            raise Wrong("accepted a bad LEN/LCS or postamble")
        if (sum(raw[4 : 4 + length]) + raw[4 + length]) & 0xFF:
            raise Wrong("accepted a bad data checksum (DCS)")

    def expected(self, decoded: object) -> object:
        """What a valid input's decoded value is compared with."""
        frame, targets = cast(_Pn532Decoded, decoded)
        if targets:
            return targets[0].uid
        return frame.kind if frame.kind is not pn532.FrameKind.DATA else frame.body

    def stream(self, data: bytes, rng: random.Random) -> list[bytes]:
        frames = _chunked(pn532.FrameSplitter().feed, data, rng)
        return [_pn532_bytes(f) for f in frames]


def _pn532_bytes(frame: pn532.Pn532Frame) -> bytes:
    # Without the optional preamble 00: the bytes from the start code 00 FF on.
    if frame.kind is pn532.FrameKind.ACK:
        return pn532.ACK[1:]
    if frame.kind is pn532.FrameKind.NACK:
        return pn532.NACK[1:]
    return pn532.encode_frame(frame.body)[1:]


class WiegandTarget(Target):
    """Wiegand frames as bit strings: W26/W34 with parity, 4/8-bit keys."""

    name = "wiegand"

    def valid(self, rng: random.Random) -> tuple[bytes, object]:
        pick = rng.random()
        if pick < 0.4:
            bits = wiegand.encode_w26(rng.randrange(256), rng.randrange(65536))
        elif pick < 0.8:
            bits = wiegand.encode_w34(rng.getrandbits(32))
        else:
            key = rng.choice(wiegand.KEYS)
            return wiegand.encode_key(key, bits=rng.choice((4, 8))).encode(), key
        return bits.encode(), bits

    def repair(self, data: bytes) -> bytes:
        bits = data.decode("ascii", "replace")
        if len(bits) in (26, 34) and set(bits) <= {"0", "1"}:
            inner = bits[1:-1]
            half = len(inner) // 2
            even = str(inner[:half].count("1") % 2)
            odd = str(1 - inner[half:].count("1") % 2)
            return (even + inner + odd).encode()
        return data

    def random_input(self, rng: random.Random) -> bytes:
        n = rng.choice((4, 8, 26, 34, rng.randint(0, 40)))
        return "".join(rng.choice("01") for _ in range(n)).encode()

    def mutate(self, rng: random.Random, data: bytes) -> bytes:
        """Bit-level edits: flip, drop, add (and rarely a stray character)."""
        bits = list(data.decode("ascii", "replace"))
        for _ in range(rng.randint(1, 2)):
            op, at = rng.randrange(4), rng.randrange(len(bits) + 1)
            if op == 0 and bits:
                i = min(at, len(bits) - 1)
                bits[i] = "1" if bits[i] == "0" else "0"
            elif op == 1 and bits:
                del bits[min(at, len(bits) - 1)]
            elif op == 2:
                bits.insert(at, rng.choice("01"))
            elif rng.random() < 0.1:
                bits.insert(at, rng.choice("2x "))
        return "".join(bits).encode()

    def parse(self, data: bytes) -> object:
        return wiegand.decode_bits(data.decode("ascii", "replace"))

    def check(self, data: bytes, decoded: object) -> None:
        bits = data.decode("ascii", "replace")
        n = len(bits)
        if isinstance(decoded, wiegand.WiegandCard):
            half = n // 2
            if n not in (26, 34):
                raise Wrong(f"accepted a {n}-bit card")
            if bits[:half].count("1") % 2 or bits[half:].count("1") % 2 != 1:
                raise Wrong("accepted a card with bad parity")
            if decoded.data != int(bits[1:-1], 2):
                raise Wrong("decoded the wrong data bits")
        elif n == 4:
            if int(bits, 2) >= 12 or wiegand.KEYS[int(bits, 2)] != decoded:
                raise Wrong("accepted an invalid 4-bit key")
        elif n == 8:
            value = int(bits, 2)
            if value >> 4 != (~value & 0xF) or wiegand.KEYS[value & 0xF] != decoded:
                raise Wrong("accepted an 8-bit key without its complement")
        else:
            raise Wrong(f"accepted a {n}-bit frame")

    def expected(self, decoded: object) -> object:
        """Bits back from the decoded value, to compare with the valid input."""
        if isinstance(decoded, wiegand.WiegandCard):
            return (
                wiegand.encode_w26(decoded.facility, decoded.number)
                if decoded.bits == 26
                else wiegand.encode_w34(decoded.data)
            )
        return decoded


class OsdpTarget(Target):
    """osdp_RAW card data (bits MSB first) as our CP unpacks it; input = bit count + data."""

    name = "osdp"

    def valid(self, rng: random.Random) -> tuple[bytes, object]:
        bits = (
            wiegand.encode_w26(rng.randrange(256), rng.randrange(65536))
            if rng.random() < 0.5
            else wiegand.encode_w34(rng.getrandbits(32))
        )
        return bytes([len(bits)]) + pack_bits(bits), int(bits[1:-1], 2)

    def repair(self, data: bytes) -> bytes:
        if not data or data[0] not in (26, 34) or len(data) * 8 - 8 < data[0]:
            return data
        n = data[0]
        bits = f"{int.from_bytes(data[1:], 'big'):0{(len(data) - 1) * 8}b}"[:n]
        fixed = WiegandTarget().repair(bits.encode()).decode()
        return bytes([n]) + pack_bits(fixed) + data[1 + len(pack_bits(fixed)) :]

    def random_input(self, rng: random.Random) -> bytes:
        return bytes([rng.choice((26, 34, rng.randrange(256)))]) + rng.randbytes(rng.randint(0, 8))

    def parse(self, data: bytes) -> object:
        if not data:
            raise FrameError("no bit count")
        osdp_cp.decode_keys(data[1:])  # must never raise
        return osdp_cp.unpack_card(data[1:], data[0])

    def check(self, data: bytes, decoded: object) -> None:
        bits, payload = data[0], data[1:]
        uid, extra = cast(_OsdpDecoded, decoded)
        if len(payload) * 8 < bits:
            raise Wrong("accepted fewer data bytes than bits")
        if bits in (26, 34):
            text = f"{int.from_bytes(payload, 'big'):0{len(payload) * 8}b}"[:bits]
            WiegandTarget().check(text.encode(), wiegand.decode_bits(text))
            if int.from_bytes(uid, "big") != int(text[1:-1], 2) or extra.get("bits") != bits:
                raise Wrong("unpacked the wrong card number")

    def expected(self, decoded: object) -> object:
        """The card's data bits as an integer."""
        uid, _extra = cast(_OsdpDecoded, decoded)
        return int.from_bytes(uid, "big")


TARGETS: dict[str, Callable[[], Target]] = {
    "rdm6300": Rdm6300Target,
    "idcard": IdCardTarget,
    "pn532": Pn532Target,
    "wiegand": WiegandTarget,
    "osdp": OsdpTarget,
}


def _chunked(feed: Callable[[bytes], list[Any]], data: bytes, rng: random.Random) -> list[Any]:
    out: list[Any] = []
    at = 0
    while at < len(data):
        size = rng.randint(1, 64)
        out += feed(data[at : at + size])
        at += size
    return out


def _expected(target: Target, decoded: object) -> object:
    convert = getattr(target, "expected", None)
    if convert is not None:
        return convert(decoded)
    if isinstance(decoded, idtext.IdCardText):
        return decoded.id_number
    if isinstance(decoded, sam.SamResponse):
        return None
    return decoded


def fuzz_protocol(target: Target, frames: int, rng: random.Random) -> Counts:
    """Feed `frames` inputs to one target; count and collect failures (at most `MAX_FAILURES`)."""
    counts = Counts()
    mutator: Callable[[random.Random, bytes], bytes] = getattr(target, "mutate", None) or mutate
    batch: list[bytes] = []
    started = time.perf_counter()
    for _ in range(frames):
        pick = rng.random()
        expect: object = None
        is_valid = False
        if pick < 0.1:
            data, expect = target.valid(rng)
            is_valid = True
        elif pick < 0.55:
            data = mutator(rng, target.valid(rng)[0])
        elif pick < 0.75:
            data = target.repair(mutator(rng, target.valid(rng)[0]))
        else:
            data = target.random_input(rng)
        counts.frames += 1
        _one(target, data, is_valid, expect, counts)
        batch.append(data)
        if len(batch) == STREAM_BATCH:
            _stream(target, b"".join(batch), rng, counts)
            batch.clear()
        if len(counts.failures) >= MAX_FAILURES:
            break
    counts.seconds = time.perf_counter() - started
    return counts


def _one(target: Target, data: bytes, is_valid: bool, expect: object, counts: Counts) -> None:
    try:
        decoded = target.parse(data)
    except DriverError:
        counts.rejected += 1
        if is_valid:
            _fail(counts, target, data, "a valid frame was rejected")
        return
    except Exception as err:  # noqa: BLE001 - any other exception is what we are hunting
        counts.rejected += 1
        _fail(counts, target, data, f"{type(err).__name__}: {err}")
        return
    counts.accepted += 1
    try:
        target.check(data, decoded)
        _compare(target, decoded, expect if is_valid else None)
    except Wrong as err:
        _fail(counts, target, data, str(err))
    except Exception as err:  # noqa: BLE001 - the independent check itself must not crash
        _fail(counts, target, data, f"check failed: {type(err).__name__}: {err}")


def _compare(target: Target, decoded: object, expect: object) -> None:
    if expect is not None and (got := _expected(target, decoded)) != expect:
        raise Wrong(f"decoded {got!r}, encoded {expect!r}")


def _stream(target: Target, data: bytes, rng: random.Random, counts: Counts) -> None:
    try:
        frames = target.stream(data, rng)
    except Exception as err:  # noqa: BLE001 - a splitter must never raise at all
        _fail(counts, target, data, f"splitter raised {type(err).__name__}: {err}")
        return
    haystack = data.upper() if target.name == "rdm6300" else data  # hex digits in either case
    for frame in frames:
        counts.stream_frames += 1
        if frame not in haystack:
            _fail(counts, target, data, f"splitter emitted {frame.hex()}, not in its input")
            continue
        try:
            target.check_frame(frame)
        except Wrong as err:
            _fail(counts, target, frame, f"splitter emitted a bad frame: {err}")


def _fail(counts: Counts, target: Target, data: bytes, problem: str) -> None:
    if len(counts.failures) < MAX_FAILURES:
        counts.failures.append(
            {"protocol": target.name, "input_hex": data.hex(), "problem": problem}
        )


def run_fuzz(
    frames: int, kinds: list[str] | None = None, seed: int | None = None
) -> dict[str, Any]:
    """Fuzz the chosen protocols (default: all); return the JSON-ready report.

    Args:
        frames: inputs per protocol.
        kinds: protocols from `PROTOCOLS`.
        seed: random seed (default: random; the report names it so a run can be repeated).
    """
    seed = random.randrange(2**32) if seed is None else seed
    report: dict[str, Any] = {"seed": seed, "frames_per_protocol": frames, "protocols": {}}
    failures: list[dict[str, str]] = []
    for name in kinds or list(PROTOCOLS):
        counts = fuzz_protocol(TARGETS[name](), frames, random.Random(f"{seed}:{name}"))
        report["protocols"][name] = counts.as_dict()
        failures += counts.failures
    report["failures"] = failures
    report["ok"] = not failures
    return report
