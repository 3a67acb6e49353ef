"""Backup, restore and status of a gateway's store (the library behind the CLI commands)."""

from __future__ import annotations

import os
import shutil
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sync.migrations import LATEST

Progress = Callable[[int, int], None]


class OpsError(Exception):
    """A backup or restore that cannot proceed; the message says why."""


@dataclass(frozen=True, slots=True)
class BackupInfo:
    """What a backup or restore produced."""

    path: Path
    bytes: int
    schema_version: int


def _check(path: Path) -> int:
    """Integrity-check a database file and return its schema version."""
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            result = conn.execute("PRAGMA integrity_check").fetchone()[0]
            version = conn.execute("SELECT MAX(version) FROM schema_version").fetchone()[0]
        finally:
            conn.close()
    except sqlite3.Error as err:
        raise OpsError(f"{path} is not a doorgate database: {err}") from err
    if result != "ok":
        raise OpsError(f"{path} failed SQLite's integrity check: {result}")
    return int(version or 0)


def backup(store: Path, dest: Path, progress: Progress | None = None) -> BackupInfo:
    """Copy the live database with SQLite's online backup (consistent while the daemon writes)."""
    if not store.exists():
        raise OpsError(f"no database at {store}")
    dest.parent.mkdir(parents=True, exist_ok=True)
    partial = dest.with_name(dest.name + ".partial")
    partial.unlink(missing_ok=True)
    source = sqlite3.connect(str(store), timeout=30)
    target = sqlite3.connect(str(partial))
    try:
        def report(_status: int, remaining: int, total: int) -> None:
            if progress:
                progress(total - remaining, total)

        source.backup(target, pages=256, progress=report)
    finally:
        target.close()
        source.close()
    os.chmod(partial, 0o600)
    version = _check(partial)
    partial.replace(dest)
    return BackupInfo(dest, dest.stat().st_size, version)


def restore(source: Path, store: Path, *, force: bool = False,
            progress: Progress | None = None) -> BackupInfo:
    """Replace the store with a backup; the old file is kept as ``<name>.before-restore``.

    Raises:
        OpsError: the backup is damaged, from a newer doorgate, or a store exists and not `force`.
    """
    version = _check(source)
    if version > LATEST:
        raise OpsError(f"{source} has schema {version}, newer than this doorgate ({LATEST})")
    if store.exists() and not force:
        raise OpsError(f"{store} exists: stop the daemon and pass --force to replace it")
    if store.exists():
        shutil.copy2(store, store.with_name(store.name + ".before-restore"))
        for suffix in ("-wal", "-shm"):
            store.with_name(store.name + suffix).unlink(missing_ok=True)
    info = backup(source, store, progress)
    return BackupInfo(store, info.bytes, version)


def status(store: Path) -> dict[str, Any]:
    """Counts and health of a store, read-only (safe while the daemon runs)."""
    conn = sqlite3.connect(f"file:{store}?mode=ro", uri=True)
    conn.row_factory = sqlite3.Row
    try:
        def one(sql: str) -> Any:
            return conn.execute(sql).fetchone()[0]

        occupants = {r[0]: r[1] for r in conn.execute(
            "SELECT status, COUNT(*) FROM occupants GROUP BY status")}
        return {
            "database": str(store),
            "schema_version": one("SELECT MAX(version) FROM schema_version"),
            "units": one("SELECT COUNT(*) FROM units"),
            "occupants": occupants,
            "active_cards": one("SELECT COUNT(*) FROM credentials WHERE status = 'active'"),
            "face_templates": one("SELECT COUNT(*) FROM face_templates WHERE negative = 0"),
            "access_events": one("SELECT COUNT(*) FROM access_log"),
            "last_access": one("SELECT MAX(ts) FROM access_log"),
            "outbox_depth": one("SELECT COUNT(*) FROM outbox"),
            "outbox_oldest": one("SELECT MIN(created) FROM outbox"),
            "stranger_clusters": one("SELECT COUNT(*) FROM strangers"),
            "free_mb": round(shutil.disk_usage(store.parent).free / 2**20, 1),
            "checked_at": datetime.now(UTC).isoformat(timespec="seconds"),
        }
    finally:
        conn.close()
