"""Build reader and door devices from the configuration, and name what they read."""

from __future__ import annotations

from pathlib import Path

from drivers.door import Door, GpiodDoor, LockPolarity, SimulatedDoor
from drivers.idcard import IdCardRead
from drivers.reader_watch import Record, open_reader
from drivers.supervise import ReaderDevice
from drivers.types import CardRead
from gateway.config import DoorConfig, ReaderConfig, credentials_dir
from rules.model import CredentialKind

Read = Record


def make_reader(reader: ReaderConfig, config_path: Path | None) -> ReaderDevice[Read]:
    """A fresh, unopened device for one configured reader (called on every reconnect)."""
    scbk = None
    if reader.scbk_file:
        name = Path(reader.scbk_file)
        scbk = name if name.is_absolute() else credentials_dir(config_path) / name
    device: ReaderDevice[Read] = open_reader(
        reader.kind,
        reader.port,
        baud=reader.baud,
        name=reader.name,
        scbk_file=scbk,
        osdp_address=reader.address,
        wiegand_lines=(reader.d0_line, reader.d1_line),
        debounce=reader.debounce_s,
    )
    return device


def make_door(door: DoorConfig) -> Door:
    """The configured door: relay and contact through gpiod, or the simulated door."""
    polarity = LockPolarity.FAIL_SAFE if door.fail_safe else LockPolarity.FAIL_SECURE
    if door.backend == "gpiod":
        return GpiodDoor(
            door.chip,
            relay=door.relay_line,
            contact=door.contact_line,
            exit_button=door.exit_line,
            name=door.name,
            pulse=door.unlock_s,
            polarity=polarity,
        )
    return SimulatedDoor(door.name, pulse=door.unlock_s, polarity=polarity)


def credential_of(read: CardRead | IdCardRead) -> tuple[CredentialKind, str]:
    """The credential kind and the value to look up (card UID hex, or the ID number)."""
    if isinstance(read, IdCardRead):
        return CredentialKind.IDCARD, read.id_number
    return CredentialKind.IC, read.uid_hex
