"""SQLite storage (stdlib ``sqlite3``, WAL): orders and trades; other modules add their tables.

One connection guarded by one lock: every engine change runs inside ``transaction()``, so two
simultaneous actions on an order are serialised and a rejected call writes nothing.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

SCHEMA = """
CREATE TABLE IF NOT EXISTS orders (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    pay_order_no TEXT NOT NULL UNIQUE,
    merchant_no TEXT NOT NULL,
    out_order_no TEXT NOT NULL,
    dialect TEXT NOT NULL,
    status INTEGER NOT NULL,
    request_hash TEXT NOT NULL,
    created_ts REAL NOT NULL,
    efficient_ts REAL NOT NULL,
    clock_offset REAL NOT NULL DEFAULT 0,
    updated_ts REAL NOT NULL,
    data TEXT NOT NULL,
    UNIQUE (merchant_no, out_order_no)
);
CREATE TABLE IF NOT EXISTS trades (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    pay_order_no TEXT NOT NULL REFERENCES orders(pay_order_no) ON DELETE CASCADE,
    trade_no TEXT NOT NULL UNIQUE,
    data TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS trades_by_order ON trades (pay_order_no, seq);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


class Store:
    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self.conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self.conn.row_factory = sqlite3.Row
        self.lock = threading.RLock()
        with self.lock:
            if self.path != ":memory:":
                self.conn.execute("PRAGMA journal_mode=WAL")
                self.conn.execute("PRAGMA synchronous=NORMAL")
            self.conn.execute("PRAGMA foreign_keys=ON")
            self.conn.executescript(SCHEMA)
        self._depth = 0

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """All-or-nothing; nested calls join the outer transaction."""
        with self.lock:
            outer = self._depth == 0
            if outer:
                self.conn.execute("BEGIN IMMEDIATE")
            self._depth += 1
            try:
                yield self.conn
            except BaseException:
                self._depth -= 1
                if outer:
                    self.conn.execute("ROLLBACK")
                raise
            self._depth -= 1
            if outer:
                self.conn.execute("COMMIT")

    def execute(
        self, sql: str, params: tuple[object, ...] | dict[str, object] = ()
    ) -> list[sqlite3.Row]:
        with self.lock:
            return self.conn.execute(sql, params).fetchall()

    def executescript(self, sql: str) -> None:
        with self.lock:
            self.conn.executescript(sql)

    def get_meta(self, key: str) -> str | None:
        rows = self.execute("SELECT value FROM meta WHERE key = ?", (key,))
        return rows[0]["value"] if rows else None

    def set_meta(self, key: str, value: str) -> None:
        self.execute(
            "INSERT INTO meta (key, value) VALUES (?, ?) "
            "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            (key, value),
        )

    def clear(self, tables: list[str]) -> None:
        with self.transaction() as conn:
            for table in tables:
                conn.execute(f"DELETE FROM {table}")  # noqa: S608 - table names are ours

    def close(self) -> None:
        with self.lock:
            self.conn.close()
