"""Library side of `doorgate reader watch`: open one reader and print what it reads.

Installers use it to check wiring and card compatibility. Output is masked by default
(`110105********1234`, `张*`, `******51C6`); `reveal` prints every decoded field, for an
installer standing next to the card holder.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import enum
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from drivers.idcard import CardRejected, IdCardRead, IdCardReader
from drivers.idcard.text import LONG_TERM
from drivers.osdp_cp import OsdpReader, load_scbk
from drivers.pn532 import Pn532Reader
from drivers.rdm6300 import Rdm6300Reader
from drivers.serial_transport import SerialTransport
from drivers.supervise import ReaderDevice
from drivers.types import CardRead, KeyPress
from drivers.wiegand import GpiodEdgeSource, WiegandReader

Record = IdCardRead | CardRead | KeyPress | CardRejected


class ReaderKind(enum.StrEnum):
    """The reader models `reader watch` can open."""

    IDCARD = "idcard"
    RDM6300 = "rdm6300"
    PN532 = "pn532"
    WIEGAND = "wiegand"
    OSDP = "osdp"


DEFAULT_BAUD = {
    ReaderKind.IDCARD: 115200, ReaderKind.RDM6300: 9600, ReaderKind.PN532: 115200,
    ReaderKind.OSDP: 9600,
}  # fmt: skip


def mask_id_number(number: str) -> str:
    """`11010519491231002X` → `110105********002X` (region and last 4 kept, as the store does)."""
    if len(number) <= 10:
        return "*" * len(number)
    return number[:6] + "*" * (len(number) - 10) + number[-4:]


def mask_name(name: str) -> str:
    """`张三` → `张*`; `WANG, JOHN` → `W*********`."""
    return name[:1] + "*" * (len(name) - 1)


def mask_uid(uid_hex: str) -> str:
    """`67003B51C6` → `******51C6`."""
    return "*" * max(0, len(uid_hex) - 4) + uid_hex[-4:]


def _plain(value: object) -> object:
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


def _fields(record: Record, reveal: bool) -> dict[str, Any]:
    if isinstance(record, IdCardRead):
        return _idcard_fields(record, reveal)
    if isinstance(record, CardRead):
        uid = record.uid_hex if reveal else mask_uid(record.uid_hex)
        extra = record.extra if reveal else {}
        return {
            "kind": "card",
            "reader": record.reader,
            "tech": str(record.tech),
            "uid": uid,
        } | extra
    if isinstance(record, KeyPress):
        return {
            "kind": "keys",
            "reader": record.reader,
            "keys": record.keys if reveal else "*" * len(record.keys),
        }
    return {"kind": "rejected", "reader": record.reader, "reason": record.reason}


def _idcard_fields(card: IdCardRead, reveal: bool) -> dict[str, Any]:
    base: dict[str, Any] = {
        "kind": "idcard",
        "reader": card.reader,
        "card_type": str(card.card_type),
    }
    if not reveal:
        return base | {"name": mask_name(card.name), "id_number": mask_id_number(card.id_number)}
    # The issue and the station call the issuing authority `authority` (the driver: `issuer`).
    # `valid_to` is None for 长期 (long-term): null in JSON, the card's own word in text.
    return base | {
        "name": card.name, "sex": card.sex, "ethnicity": card.ethnicity,
        "birth": _plain(card.birth), "address": card.address, "id_number": card.id_number,
        "authority": card.issuer,
        "valid_from": _plain(card.valid_from),
        "valid_to": _plain(card.valid_to),
    } | card.extra  # fmt: skip


def format_read(read: Record, reveal: bool, as_json: bool) -> str:
    """One printable line for a read: masked unless `reveal`, JSON or `key=value` text.

    Args:
        read: an ID card read, a card read, key presses, or a rejected card.
        reveal: print every decoded field unmasked (never the photo); ID cards give card_type,
            name, sex, ethnicity, birth, address, id_number, authority, valid_from and valid_to
            (ISO dates; valid_to null in JSON, `长期` in text, for a long-term card).
        as_json: one JSON object per line instead of text.
    """
    fields = _fields(read, reveal)
    if as_json:
        return json.dumps(fields, ensure_ascii=False, sort_keys=False)
    if fields.get("kind") == "idcard" and "valid_to" in fields and fields["valid_to"] is None:
        fields["valid_to"] = LONG_TERM
    return " ".join(f"{key}={value}" for key, value in fields.items())


def open_reader(
    kind: ReaderKind | str,
    port: str,
    *,
    baud: int | None = None,
    name: str = "watch",
    scbk_file: Path | None = None,
    osdp_address: int = 0,
    wiegand_lines: tuple[int, int] = (17, 27),
    on_reject: Any = None,
    debounce: float | None = None,
) -> ReaderDevice[Record]:
    """Build the (unopened) reader device for `kind` on `port`.

    Args:
        kind: reader model.
        port: serial device/URL; for Wiegand the gpiochip path (`/dev/gpiochip0`).
        baud: line speed (default per model; ID card readers also probe 9600).
        name: reader name in the output.
        scbk_file: OSDP secure channel key file (None: plain text).
        osdp_address: OSDP PD address.
        wiegand_lines: GPIO offsets of D0 and D1.
        on_reject: ID card rejections callback.
        debounce: seconds before the same card counts again (default per model).
    """
    kind = ReaderKind(kind)
    rate = baud or DEFAULT_BAUD.get(kind, 9600)
    if kind is ReaderKind.WIEGAND:
        source = GpiodEdgeSource(port, *wiegand_lines, name=name)
        return WiegandReader(source, debounce=1.0 if debounce is None else debounce)
    if kind is ReaderKind.OSDP:
        scbk = load_scbk(scbk_file) if scbk_file else None
        return OsdpReader(port, address=osdp_address, baudrate=rate, scbk=scbk, name=name)
    transport = SerialTransport(port, rate, name=name)
    if kind is ReaderKind.IDCARD:
        rates = (rate, 9600) if rate != 9600 else (9600,)
        gap = 3.0 if debounce is None else debounce
        return IdCardReader(transport, baudrates=rates, on_reject=on_reject, debounce=gap)
    if kind is ReaderKind.PN532:
        return Pn532Reader(transport, debounce=0.5 if debounce is None else debounce)
    return Rdm6300Reader(transport, debounce=0.5 if debounce is None else debounce)


async def watch(
    kind: ReaderKind | str,
    port: str,
    *,
    baud: int | None = None,
    reveal: bool = False,
    as_json: bool = False,
    **options: Any,
) -> AsyncIterator[str]:
    """Open the reader and yield one formatted line per read (and per rejected ID card).

    Errors opening or reading the device propagate as `DriverError` (the CLI turns them into an
    exit status); extra keyword `options` go to `open_reader`.
    """
    lines: asyncio.Queue[str | BaseException] = asyncio.Queue()

    def on_reject(rejection: CardRejected) -> None:
        lines.put_nowait(format_read(rejection, reveal, as_json))

    reader = open_reader(kind, port, baud=baud, on_reject=on_reject, **options)

    async def pump() -> None:
        try:
            async with reader:
                async for read in reader.reads():
                    lines.put_nowait(format_read(read, reveal, as_json))
        except Exception as err:  # noqa: BLE001 -- handed to the consumer, re-raised there
            lines.put_nowait(err)

    task = asyncio.get_running_loop().create_task(pump(), name=f"watch-{kind}")
    try:
        while True:
            item = await lines.get()
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
