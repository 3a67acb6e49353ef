"""The door: relay pulses per polarity, pulse extension, contact and exit-button events."""

from __future__ import annotations

import asyncio

import pytest

from drivers.door import Door, DoorEvent, DoorEventKind, LockPolarity, SimulatedDoor


async def _events(door: Door, count: int) -> list[DoorEvent]:
    out: list[DoorEvent] = []
    async with asyncio.timeout(1):
        async for event in door.events():
            out.append(event)
            if len(out) == count:
                break
    return out


@pytest.mark.parametrize(
    ("polarity", "locked_coil"), [(LockPolarity.FAIL_SECURE, False), (LockPolarity.FAIL_SAFE, True)]
)
async def test_unlock_pulse_drives_the_relay_per_polarity(
    polarity: LockPolarity, locked_coil: bool
) -> None:
    async with SimulatedDoor("front", pulse=0.05, polarity=polarity) as door:
        assert door.locked
        assert door.energised is locked_coil
        await door.unlock()
        assert not door.locked
        assert door.energised is not locked_coil
        await asyncio.sleep(0.1)
        assert door.locked
    coils = [c.energised for c in door.commands]
    assert coils[:3] == [locked_coil, not locked_coil, locked_coil]
    assert [c.locked for c in door.commands[:3]] == [True, False, True]
    held = door.commands[2].monotonic - door.commands[1].monotonic
    assert 0.045 <= held < 0.09


async def test_second_unlock_extends_the_pulse() -> None:
    async with SimulatedDoor(pulse=0.08) as door:
        await door.unlock()
        await asyncio.sleep(0.05)
        await door.unlock()
        await asyncio.sleep(0.05)
        assert not door.locked  # 0.1 s after the first unlock, but within the second pulse
        await asyncio.sleep(0.06)
        assert door.locked
    unlocks = [c for c in door.commands if not c.locked]
    assert len(unlocks) == 1


async def test_lock_cancels_a_running_pulse_and_exit_locks() -> None:
    door = SimulatedDoor(pulse=5)
    async with door:
        await door.unlock()
        await door.lock()
        assert door.locked
        await door.unlock(10)
    assert door.locked


async def test_contact_and_exit_button_events() -> None:
    async with SimulatedDoor("back") as door:
        door.press_exit()
        door.open_contact()
        door.open_contact()  # already open: no second event
        assert door.contact_open
        door.close_contact()
        events = await _events(door, 3)
    assert [e.kind for e in events] == [
        DoorEventKind.EXIT_REQUEST, DoorEventKind.OPENED, DoorEventKind.CLOSED]  # fmt: skip
    assert all(e.door == "back" for e in events)
    assert events[0].monotonic <= events[1].monotonic <= events[2].monotonic
    assert not door.contact_open
