"""The station's ``rules_config`` overrides: numbers only, and a boolean is refused out loud."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from gateway.commands import command_handlers
from gateway.config import load_config, read_secret
from gateway.rules_runtime import override_errors, rules_config
from sync.commands import Command
from sync.contract import Topics
from sync.store import AsyncStore, Store


def command(body: dict[str, object]) -> Command:
    now = datetime.now(UTC)
    return Command("c1", "rules_config", now, now + timedelta(minutes=5), "n1", body)


def test_booleans_are_not_thresholds(tmp_path: Path, gw) -> None:  # type: ignore[no-untyped-def]
    config = load_config(gw.write_config(tmp_path, "/dev/null"))
    rules = rules_config(
        config, {"denial_threshold": True, "door_held_s": False, "vacancy_days": 3}
    )
    assert rules.denial_threshold == 5 and rules.denial_threshold is not True
    assert rules.door_held_s == 60.0 and rules.door_held_s is not False
    assert rules.vacancy_days == 3
    assert override_errors({"denial_threshold": True, "vacancy_days": 3, "nonsense": False}) == [
        "config.denial_threshold: expected a number, got the boolean true"
    ]


@pytest.mark.parametrize(
    ("overrides", "code"),
    [
        ({"denial_threshold": True}, "invalid_body"),
        ({"building_limit": False, "vacancy_days": 3}, "invalid_body"),
        ({"denial_threshold": 3, "door_held_s": 90.5}, "applied"),
    ],
)
async def test_the_command_refuses_a_boolean_threshold(
    tmp_path: Path,
    gw,  # type: ignore[no-untyped-def]
    overrides: dict[str, object],
    code: str,
) -> None:
    path = gw.write_config(tmp_path, "/dev/null")
    config = load_config(path)
    store = AsyncStore(
        Store.open(config.store.path, read_secret(config.secrets.hash_key_file, path))
    )
    changes: list[None] = []

    async def unlock(door: str) -> bool:
        return True

    async def changed() -> None:
        changes.append(None)

    handlers = command_handlers(store, Topics("s", "g"), unlock, changed)
    try:
        reply = await handlers["rules_config"](command({"version": 1, "config": overrides}))
        stored = await store.run(store.store.get_state, "rules_config")
    finally:
        await store.aclose()
    assert reply.code == code, reply
    if code == "invalid_body":
        assert not reply.ok
        bad = next(k for k, v in overrides.items() if isinstance(v, bool))
        assert f"config.{bad}: expected a number, got the boolean" in reply.message
        assert stored is None and changes == []  # nothing stored, the rules untouched
    else:
        assert reply.ok and json.loads(stored or "{}")["config"] == overrides
        assert changes == [None]
