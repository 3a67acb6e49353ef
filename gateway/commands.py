"""Handlers for the station's signed commands (verification happens in `sync.downlink`)."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from gateway.rules_runtime import override_errors
from rules.model import OccupantStatus
from sync.commands import Command, Reply
from sync.contract import Topics, door_payload, dumps
from sync.downlink import Handler
from sync.store import AsyncStore

UnlockDoor = Callable[[str], Awaitable[bool]]

_STATUS_OF = {
    "occupant_revoke": OccupantStatus.SUSPENDED.value,
    "occupant_move_out": OccupantStatus.MOVED_OUT.value,
}


def command_handlers(
    store: AsyncStore,
    topics: Topics,
    unlock: UnlockDoor,
    changed: Callable[[], Awaitable[None]],
) -> Mapping[str, Handler]:
    """The handler of every command this gateway accepts.

    Args:
        store: the gateway store.
        topics: this gateway's topics (for the ``event/door`` of a remote unlock).
        unlock: releases the named door; returns False when no such door exists.
        changed: called after occupants or rules thresholds changed.
    """

    async def occupant_change(command: Command) -> Reply:
        body = command.body
        change: dict[str, Any] = {
            k: body[k] for k in ("status", "valid_from", "valid_to", "approved_by") if k in body
        }
        if command.name in _STATUS_OF:
            change["status"] = _STATUS_OF[command.name]
        code, occupant = await store.run(
            store.store.apply_station_change, body["occupant_id"], body["version"], change
        )
        await changed()
        return Reply(code, f"{occupant.id} is {occupant.status}", {"status": occupant.status.value})

    async def resync(command: Command) -> Reply:
        rows = await store.run(store.store.snapshot)
        return Reply("applied", f"{len(rows)} occupants", {"occupants": rows})

    async def remote_unlock(command: Command) -> Reply:
        door = command.body["door"]
        if not await unlock(door):
            return Reply("failed", f"no door named {door!r}", ok=False)
        payload = door_payload(door, "remote_unlock", topics, command_id=command.id)
        await store.run(store.store.enqueue, payload["id"], "event/door", dumps(payload))
        return Reply("applied", f"door {door} unlocked")

    async def rules_config(command: Command) -> Reply:
        version = command.body["version"]
        if errors := override_errors(command.body["config"]):
            return Reply("invalid_body", f"rules_config: {'; '.join(errors)}", ok=False)
        current = await store.run(store.store.get_state, "rules_config")
        if current is not None and json.loads(current)["version"] >= version:
            return Reply("stale", f"rules config version {version} is not newer")
        await store.run(store.store.set_state, "rules_config", json.dumps(command.body))
        await changed()
        return Reply("applied", f"rules config version {version} stored")

    return {
        "occupant_upsert": occupant_change,
        "occupant_revoke": occupant_change,
        "occupant_move_out": occupant_change,
        "resync": resync,
        "unlock": remote_unlock,
        "rules_config": rules_config,
    }
