"""China resident ID card readers with a SAM_V module (protocols §1).

Split as transport (`drivers.serial_transport`) → protocol (`frames`, `text`) → device
(`reader`). Import the public names from here.
"""

from drivers.idcard.frames import (
    STATUS_ERRORS,
    Command,
    FrameSplitter,
    NoCardError,
    SamResponse,
    SamStatusError,
    check_status,
    encode_command,
    encode_response,
    parse_command,
    parse_response,
)
from drivers.idcard.reader import (
    BAUDRATES,
    CardRejected,
    IdCardRead,
    IdCardReader,
    parse_read_payload,
)
from drivers.idcard.text import (
    CardDataError,
    IdCardText,
    IdCardType,
    IdNumberError,
    encode_text_block,
    id_check_char,
    parse_text_block,
    validate_id_number,
)

__all__ = [
    "BAUDRATES",
    "STATUS_ERRORS",
    "CardDataError",
    "CardRejected",
    "Command",
    "FrameSplitter",
    "IdCardRead",
    "IdCardReader",
    "IdCardText",
    "IdCardType",
    "IdNumberError",
    "NoCardError",
    "SamResponse",
    "SamStatusError",
    "check_status",
    "encode_command",
    "encode_response",
    "encode_text_block",
    "id_check_char",
    "parse_command",
    "parse_read_payload",
    "parse_response",
    "parse_text_block",
    "validate_id_number",
]
