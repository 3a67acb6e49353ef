"""The 256-byte text block of PSB ID cards (protocols §1.7-1.9, §1.11).

The block is 128 UTF-16LE characters, space padded. The card family is the character at index 124
(byte 248): space = resident ID card, `J` = Hong Kong/Macao/Taiwan residence permit, `I` = 2017
foreigner's permanent residence card, `Y` = 2023 foreigner's card (single-source layout: best
effort). Each family has its own layout, so the marker is decoded first.
"""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass, field

from drivers.errors import FrameError

TEXT_LEN = 256
CHARS = TEXT_LEN // 2
MARKER_INDEX = 124
LONG_TERM = "长期"

_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_CHECK_CHARS = "10X98765432"

SEXES = {"0": "未知", "1": "男", "2": "女", "9": "未说明"}

# GB 3304 (protocols §1.9).
_ETHNICITY_NAMES = [
    "汉", "蒙古", "回", "藏", "维吾尔", "苗", "彝", "壮", "布依", "朝鲜",
    "满", "侗", "瑶", "白", "土家", "哈尼", "哈萨克", "傣", "黎", "傈僳",
    "佤", "畲", "高山", "拉祜", "水", "东乡", "纳西", "景颇", "柯尔克孜",
    "土", "达斡尔", "仫佬", "羌", "布朗", "撒拉", "毛南", "仡佬", "锡伯",
    "阿昌", "普米", "塔吉克", "怒", "乌孜别克", "俄罗斯", "鄂温克", "德昂",
    "保安", "裕固", "京", "塔塔尔", "独龙", "鄂伦春", "赫哲", "门巴", "珞巴",
    "基诺",
]  # fmt: skip
ETHNICITIES = dict(enumerate(_ETHNICITY_NAMES, start=1))
ETHNICITIES |= {97: "其他", 98: "外国血统中国籍人士"}


class IdCardType(enum.StrEnum):
    """The PSB card family, from the marker character at byte 248."""

    RESIDENT = "resident"
    HMT_PERMIT = "hk_macao_taiwan_permit"
    FOREIGNER_2017 = "foreigner_permanent_2017"
    FOREIGNER_2023 = "foreigner_permanent_2023"


_MARKERS = {
    " ": IdCardType.RESIDENT,
    "J": IdCardType.HMT_PERMIT,
    "I": IdCardType.FOREIGNER_2017,
    "Y": IdCardType.FOREIGNER_2023,
}


class CardDataError(FrameError):
    """The text block arrived intact but its content is invalid (bad date, unknown marker…)."""


class IdNumberError(CardDataError):
    """The ID or permit number fails its structure or GB 11643 check character."""


# Field layouts as (start char, length in chars) inside the 128-char block.
Layout = dict[str, tuple[int, int]]
RESIDENT_LAYOUT: Layout = {
    "name": (0, 15), "sex": (15, 1), "ethnicity": (16, 2), "birth": (18, 8),
    "address": (26, 35), "id_number": (61, 18), "issuer": (79, 15),
    "valid_from": (94, 8), "valid_to": (102, 8),
}  # fmt: skip
HMT_LAYOUT: Layout = RESIDENT_LAYOUT | {"pass_number": (110, 9), "issue_count": (119, 2)}
FOREIGNER_2017_LAYOUT: Layout = {
    "english_name": (0, 60), "sex": (60, 1), "id_number": (61, 15), "nationality": (76, 3),
    "name": (79, 15), "valid_from": (94, 8), "valid_to": (102, 8), "birth": (110, 8),
    "card_version": (118, 2), "issuer": (120, 4),
}  # fmt: skip
FOREIGNER_2023_LAYOUT: Layout = {
    "name": (0, 15), "sex": (15, 1), "renewal_count": (16, 2), "birth": (18, 8),
    "english_name": (26, 35), "id_number": (61, 18), "valid_from": (94, 8),
    "valid_to": (102, 8), "english_name_2": (110, 11), "nationality": (121, 3),
    "previous_number": (125, 3),
}  # fmt: skip
LAYOUTS = {
    IdCardType.RESIDENT: RESIDENT_LAYOUT,
    IdCardType.HMT_PERMIT: HMT_LAYOUT,
    IdCardType.FOREIGNER_2017: FOREIGNER_2017_LAYOUT,
    IdCardType.FOREIGNER_2023: FOREIGNER_2023_LAYOUT,
}


def id_check_char(first17: str) -> str:
    """GB 11643 / ISO 7064 MOD 11-2 check character of 17 digits (`0-9` or `X`).

    Raises:
        IdNumberError: `first17` is not 17 ASCII digits.
    """
    if len(first17) != 17 or not (first17.isascii() and first17.isdigit()):
        raise IdNumberError("ID number must start with 17 digits")
    total = sum(int(d) * w for d, w in zip(first17, _WEIGHTS, strict=True))
    return _CHECK_CHARS[total % 11]


def validate_id_number(number: str) -> None:
    """Check an 18-character ID/permit number: digits, birth date and check character.

    Raises:
        IdNumberError: with a reason that never echoes the number itself.
    """
    if len(number) != 18:
        raise IdNumberError(f"ID number has {len(number)} characters, expected 18")
    expected = id_check_char(number[:17])
    if number[17] != expected:
        raise IdNumberError("ID number check character is wrong (GB 11643 MOD 11-2)")
    try:
        _parse_date(number[6:14], "birth date inside the ID number")
    except CardDataError as err:
        raise IdNumberError(str(err)) from err


def validate_foreigner_2017_number(number: str) -> None:
    """Check a 15-character 2017 permit number: 3 letters (nationality) + 12 digits.

    Raises:
        IdNumberError: the number has the wrong shape.
    """
    letters, digits = number[:3], number[3:]
    if len(number) != 15 or not (letters.isascii() and letters.isalpha() and letters.isupper()):
        raise IdNumberError("permit number must be 3 capital letters + 12 digits")
    if not (digits.isascii() and digits.isdigit()):
        raise IdNumberError("permit number must be 3 capital letters + 12 digits")


def _parse_date(text: str, what: str) -> dt.date:
    if len(text) != 8 or not (text.isascii() and text.isdigit()):
        raise CardDataError(f"{what} is not YYYYMMDD")
    try:
        return dt.date(int(text[:4]), int(text[4:6]), int(text[6:]))
    except ValueError as err:
        raise CardDataError(f"{what} is not a calendar date") from err


@dataclass(frozen=True, slots=True)
class IdCardText:
    """The decoded text of one card (no photo, no reader context).

    Personal fields are left out of `repr` so an accidental log line leaks nothing.

    Attributes:
        card_type: the card family.
        name: Chinese name (for the 2017 foreigner card: the Chinese name, or the English name
            when the card has none).
        sex: GB/T 2261.1 code (`1` male, `2` female, `0`/`9` unknown).
        ethnicity: GB 3304 two-digit code for resident cards, "" for other families.
        birth: date of birth.
        address: address (resident cards and permits only).
        id_number: the citizen ID number or permit number.
        issuer: issuing authority (name, or a 4-char code on 2017 foreigner cards).
        valid_from: first day of validity.
        valid_to: last day of validity, None for 长期 (long-term).
        extra: family-specific fields (pass_number, issue_count, english_name, nationality…).
    """

    card_type: IdCardType
    name: str = field(repr=False)
    sex: str
    ethnicity: str
    birth: dt.date = field(repr=False)
    address: str = field(repr=False)
    id_number: str = field(repr=False)
    issuer: str
    valid_from: dt.date
    valid_to: dt.date | None
    extra: dict[str, str] = field(default_factory=dict, repr=False)

    @property
    def sex_name(self) -> str:
        """The sex in Chinese (男/女/未知)."""
        return SEXES.get(self.sex, "未知")

    @property
    def ethnicity_name(self) -> str:
        """The ethnicity in Chinese, or "" when absent or unknown."""
        if not self.ethnicity.isdigit():
            return ""
        return ETHNICITIES.get(int(self.ethnicity), "")


def _fields(chars: str, layout: Layout) -> dict[str, str]:
    return {key: chars[start : start + size].rstrip(" ") for key, (start, size) in layout.items()}


def _validity_end(text: str) -> dt.date | None:
    return None if text == LONG_TERM else _parse_date(text, "valid-to date")


def parse_text_block(block: bytes) -> IdCardText:
    """Decode the 256-byte text block of any supported card family.

    Raises:
        FrameError: the block has the wrong size or is not UTF-16LE.
        CardDataError: unknown card marker, malformed dates.
        IdNumberError: the ID/permit number fails its check.
    """
    if len(block) != TEXT_LEN:
        raise FrameError(f"ID card text block must be {TEXT_LEN} bytes, got {len(block)}")
    try:
        chars = block.decode("utf-16-le")
    except UnicodeDecodeError as err:
        raise FrameError("ID card text block is not valid UTF-16LE") from err
    marker = chars[MARKER_INDEX]
    card_type = _MARKERS.get(marker)
    if card_type is None:
        raise CardDataError(f"unknown card type marker {marker!r} at byte 248")
    values = _fields(chars, LAYOUTS[card_type])
    return _build(card_type, values)


def _build(card_type: IdCardType, values: dict[str, str]) -> IdCardText:
    id_number = values.pop("id_number")
    if card_type is IdCardType.FOREIGNER_2017:
        validate_foreigner_2017_number(id_number)
    else:
        validate_id_number(id_number)
    birth = _parse_date(values.pop("birth"), "birth date")
    if card_type in (IdCardType.RESIDENT, IdCardType.HMT_PERMIT) and (
        id_number[6:14] != birth.strftime("%Y%m%d")
    ):
        raise IdNumberError("birth date in the ID number differs from the card's birth date")
    name = values.pop("name")
    if card_type is IdCardType.FOREIGNER_2017 and not name:
        name = values["english_name"]
    if card_type is IdCardType.FOREIGNER_2023:
        values["english_name"] = (values["english_name"] + values.pop("english_name_2")).strip()
    ethnicity = values.pop("ethnicity", "") if card_type is IdCardType.RESIDENT else ""
    values.pop("ethnicity", None)
    return IdCardText(
        card_type=card_type,
        name=name,
        sex=values.pop("sex"),
        ethnicity=ethnicity,
        birth=birth,
        address=values.pop("address", ""),
        id_number=id_number,
        issuer=values.pop("issuer", ""),
        valid_from=_parse_date(values.pop("valid_from"), "valid-from date"),
        valid_to=_validity_end(values.pop("valid_to")),
        extra={k: v for k, v in values.items() if v},
    )


def encode_text_block(card: IdCardText) -> bytes:
    """Lay out `card` as the 256-byte block a SAM returns (for simulators and tests).

    Raises:
        ValueError: a field is longer than its slot.
    """
    values = {
        "name": card.name,
        "sex": card.sex,
        "ethnicity": card.ethnicity,
        "birth": card.birth.strftime("%Y%m%d"),
        "address": card.address,
        "id_number": card.id_number,
        "issuer": card.issuer,
        "valid_from": card.valid_from.strftime("%Y%m%d"),
        "valid_to": LONG_TERM if card.valid_to is None else card.valid_to.strftime("%Y%m%d"),
    } | card.extra
    if card.card_type is IdCardType.FOREIGNER_2023:
        english = values.get("english_name", "")
        values["english_name"], values["english_name_2"] = english[:35], english[35:]
    chars = [" "] * CHARS
    for key, (start, size) in LAYOUTS[card.card_type].items():
        value = values.get(key, "")
        if len(value) > size:
            raise ValueError(f"{key} is longer than {size} characters")
        chars[start : start + len(value)] = value
    marker = {v: k for k, v in _MARKERS.items()}[card.card_type]
    chars[MARKER_INDEX] = marker
    return "".join(chars).encode("utf-16-le")
