"""`doorgate backup`, `restore` and `status` on a real store."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from gateway.cli import app
from rules.model import Unit
from sync.contract import AccessRecord
from sync.store import Store

runner = CliRunner()
KEY = b"0123456789abcdef0123456789abcdef"  # the key tests/test_gateway/conftest.py writes


@pytest.fixture
def config(tmp_path: Path, simulator, gw) -> Path:
    path = gw.write_config(tmp_path, simulator.port)
    store = Store.open(tmp_path / "gateway.db", KEY)
    store.add_unit(Unit("A-101", "A", 1, "101", 2))
    record = AccessRecord("e1", datetime.now(UTC), "main", "in", "ic", None, None, "******0001", "deny",
                          ("unknown_credential",))
    store.record_access(record, "event/access", "{}")
    store.close()
    return path


def dg(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, ["--lang", "en", *args])
    return result.exit_code, result.output


def test_backup_status_and_restore(config: Path, tmp_path: Path) -> None:
    backup = tmp_path / "backups" / "gw.db"
    code, out = dg("backup", str(backup), "--config", str(config))
    assert code == 0, out
    assert "backed up" in out
    assert oct(backup.stat().st_mode)[-3:] == "600"

    code, out = dg("status", "--json", "--config", str(config))
    report = json.loads(out)
    assert (report["units"], report["outbox_depth"], report["access_events"]) == (1, 1, 1)

    # Damage the live store, then bring it back from the backup.
    store = Store.open(tmp_path / "gateway.db", KEY)
    store.db.execute("DELETE FROM units")
    store.db.conn.commit()
    store.close()
    code, out = dg("restore", str(backup), "--config", str(config))
    assert code == 1
    assert "--force" in out
    code, out = dg("restore", str(backup), "--force", "--config", str(config))
    assert code == 0, out
    assert json.loads(dg("status", "--json", "--config", str(config))[1])["units"] == 1
    assert (tmp_path / "gateway.db.before-restore").exists()


def test_restore_refuses_a_damaged_backup(config: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.db"
    bad.write_bytes(b"SQLite format 3\x00" + b"\xff" * 5000)
    code, out = dg("restore", str(bad), "--force", "--config", str(config))
    assert code == 1
    assert "not a doorgate database" in out or "integrity" in out
    other = tmp_path / "other.db"
    sqlite3.connect(other).execute("CREATE TABLE x (y)").connection.commit()
    code, out = dg("restore", str(other), "--force", "--config", str(config))
    assert code == 1
    assert "not a doorgate database" in out
