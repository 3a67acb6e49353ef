"""Fixtures for gateway tests: a config on disk, a seeded store, a simulated RDM6300."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest

from drivers.simulators.rdm6300 import Rdm6300Simulator
from rules.model import CredentialKind, Unit
from sync.store import Store

KEY = "0123456789abcdef0123456789abcdef"
APPROVED_UID = "67003B51C6"
PENDING_UID = "67003BA86C"


def write_config(folder: Path, port: str, broker_url: str = "mqtt://127.0.0.1:1") -> Path:
    (folder / "hash_key").write_text(KEY)
    path = folder / "doorgate.toml"
    path.write_text(
        f"""[site]
site = "{folder.name[-20:].replace("_", "-") or "site"}"
gateway = "gw-test"

[store]
path = "gateway.db"

[broker]
url = "{broker_url}"

[uplink]
heartbeat_s = 1

[station]
approval = "local"

[[readers]]
name = "entrance"
kind = "rdm6300"
port = "{port}"
debounce_s = 0.2

[[doors]]
name = "main"
unlock_s = 0.2
""",
        encoding="utf-8",
    )
    return path


def seed(store: Store) -> dict[str, str]:
    """One approved tenant with a card, one pending tenant with a card."""
    store.add_unit(Unit("A-101", "A", 1, "101", 2))
    today = date.today()
    a = store.add_occupant("A-101", "张伟", "11010519491231002X", today - timedelta(days=30), None)
    store.approve(a.id, by="test")
    store.add_card(a.id, CredentialKind.IC, APPROVED_UID)
    b = store.add_occupant("A-101", "王芳", "440524188001010014", today, None)
    store.add_card(b.id, CredentialKind.IC, PENDING_UID)
    return {"approved": a.id, "pending": b.id}


@pytest.fixture
def simulator(tmp_path: Path) -> Iterator[Rdm6300Simulator]:
    with Rdm6300Simulator(tmp_path / "rdm6300") as sim:
        yield sim


@pytest.fixture
def gw() -> SimpleNamespace:
    """The helpers above, for test modules (test folders are not packages, so no imports)."""
    return SimpleNamespace(
        write_config=write_config, seed=seed, APPROVED_UID=APPROVED_UID, PENDING_UID=PENDING_UID
    )
