"""Chinese resident ID numbers (GB 11643-1999) and privacy helpers for identifiers.

The check character is ISO 7064 MOD 11-2 over the first 17 digits. Keyed hashes (HMAC-SHA256 with
the gateway's secret) are what the store indexes; masked forms are what people see.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from datetime import date

_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_CHECK = "10X98765432"
_SHAPE = re.compile(r"^\d{17}[\dX]$")


class InvalidIdNumber(ValueError):
    """An ID number that is not a valid 18-character resident ID number."""


class InvalidUid(ValueError):
    """A card UID that is not 4 to 10 bytes of hex."""


_UID_HEX = re.compile(r"^[0-9A-F]{8,20}$")


def normalise_uid(uid_hex: str) -> str:
    """Upper-case hex without separators; 4 to 10 bytes (EM4100, MIFARE 4/7-byte, 10-byte).

    Raises:
        InvalidUid: anything else (the message repeats the value: show it only to its owner).
    """
    cleaned = re.sub(r"[\s:-]", "", uid_hex).upper()
    if not _UID_HEX.match(cleaned) or len(cleaned) % 2:
        raise InvalidUid(f"card UID must be 8-20 hex digits (4-10 bytes), got {uid_hex!r}")
    return cleaned


def check_character(first17: str) -> str:
    """The GB 11643 check character for the first 17 digits."""
    total = sum(int(d) * w for d, w in zip(first17, _WEIGHTS, strict=True))
    return _CHECK[total % 11]


def normalise_id_number(raw: str) -> str:
    """Validate a resident ID number and return it upper-cased, or raise with the reason.

    Raises:
        InvalidIdNumber: wrong length or characters, impossible birth date, or bad check character.
    """
    number = raw.strip().upper()
    if not _SHAPE.match(number):
        raise InvalidIdNumber(
            f"ID number must be 17 digits followed by a digit or X (got {len(number)} characters)"
        )
    try:
        date(int(number[6:10]), int(number[10:12]), int(number[12:14]))
    except ValueError as err:
        raise InvalidIdNumber(f"ID number holds an impossible birth date {number[6:14]}") from err
    expected = check_character(number[:17])
    if number[17] != expected:
        raise InvalidIdNumber(
            f"ID number check character is {number[17]} but should be {expected}: a digit is wrong"
        )
    return number


def mask_id_number(number: str) -> str:
    """Show the region code and the last four characters only: ``110105********1234``."""
    if len(number) <= 10:
        return "*" * len(number)
    return number[:6] + "*" * (len(number) - 10) + number[-4:]


def mask_uid(uid_hex: str) -> str:
    """Show only the last four hex digits of a card UID: ``******51C6``."""
    return "*" * max(0, len(uid_hex) - 4) + uid_hex[-4:].upper()


def keyed_hash(secret: bytes, kind: str, value: str) -> str:
    """HMAC-SHA256 of `kind:value` under the gateway secret, as hex.

    The kind is mixed in so that an ID number and a card UID with the same digits never collide.
    """
    if len(secret) < 16:
        raise ValueError("the hashing secret must be at least 16 bytes")
    return hmac.new(secret, f"{kind}:{value}".encode(), hashlib.sha256).hexdigest()


#: Hex digits of a keyed hash kept in keys that leave the gateway (64 bits: no collisions among a
#: building's cards, and not the stored index value itself).
SHORT_HASH_LEN = 16


def short_hash(digest: str) -> str:
    """The first `SHORT_HASH_LEN` characters of a keyed hash, for alert keys sent upstream.

    Enough to tell one card or ID number from another, never the number itself, and shorter
    than the full HMAC the store indexes.
    """
    return digest[:SHORT_HASH_LEN]


def mask_name(name: str) -> str:
    """Keep the family name (first character): ``张伟`` → ``张*``, ``欧阳娜娜`` → ``欧***``."""
    name = name.strip()
    return name[:1] + "*" * max(1, len(name) - 1) if name else ""
