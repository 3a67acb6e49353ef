"""A thin portable layer over sqlite3 and psycopg: one SQL dialect (``?`` placeholders,
``ON CONFLICT``), explicit transactions, rows as dicts."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol


class Database(Protocol):
    """What the station store needs from a database connection."""

    kind: str

    def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Run one statement; return the number of rows it changed."""
        ...

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        """Run a query; return its rows as dicts."""
        ...

    def transaction(self) -> Any:
        """A context manager: commit on success, roll back on error."""
        ...

    def close(self) -> None:
        """Close the connection."""
        ...


class SqliteDatabase:
    """SQLite in WAL mode (the default for a single station process)."""

    kind = "sqlite"

    def __init__(self, path: Path | str) -> None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        self.conn = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self.conn.row_factory = sqlite3.Row
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA busy_timeout=10000")
        self._depth = 0

    def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Run one statement; return the number of rows it changed."""
        return self.conn.execute(sql, tuple(params)).rowcount

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        """Run a query; return its rows as dicts."""
        return [dict(row) for row in self.conn.execute(sql, tuple(params)).fetchall()]

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """``BEGIN IMMEDIATE`` … ``COMMIT`` (nested calls join the outer transaction)."""
        if self._depth:
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
            return
        self.conn.execute("BEGIN IMMEDIATE")
        self._depth = 1
        try:
            yield
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        else:
            self.conn.execute("COMMIT")
        finally:
            self._depth = 0

    def close(self) -> None:
        """Close the connection."""
        self.conn.close()


class PostgresDatabase:
    """PostgreSQL through psycopg 3, for stations that outgrow one SQLite file."""

    kind = "postgresql"

    def __init__(self, url: str) -> None:
        import psycopg
        from psycopg.rows import dict_row

        self.conn = psycopg.connect(url, autocommit=True, row_factory=dict_row)

    @staticmethod
    def _sql(sql: str) -> str:
        # Our statements never contain a literal "?" or "%" (LIKE patterns are parameters).
        return sql.replace("?", "%s")

    def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Run one statement; return the number of rows it changed."""
        with self.conn.cursor() as cursor:
            cursor.execute(self._sql(sql), tuple(params))
            return cursor.rowcount

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        """Run a query; return its rows as dicts."""
        with self.conn.cursor() as cursor:
            cursor.execute(self._sql(sql), tuple(params))
            return [dict(row) for row in cursor.fetchall()]

    def transaction(self) -> Any:
        """A psycopg transaction block (savepoints when nested)."""
        return self.conn.transaction()

    def close(self) -> None:
        """Close the connection."""
        self.conn.close()


def connect(target: str | Path) -> Database:
    """PostgreSQL for a ``postgresql://`` (or ``postgres://``) URL, else a SQLite file path."""
    text = str(target)
    if text.startswith(("postgresql://", "postgres://")):
        return PostgresDatabase(text)
    return SqliteDatabase(target)
