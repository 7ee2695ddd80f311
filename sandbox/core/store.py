"""SQLite storage (stdlib ``sqlite3``, WAL), with every table of ``schema.py``.

One connection guarded by one lock: every engine change runs inside ``transaction()``, so two
simultaneous actions on an order are serialised and a rejected call writes nothing.

Checkpoints (copying the write-ahead log into the database file, with an fsync) run on a
short-lived thread of their own every ``CHECKPOINT_EVERY`` writes, not inside a commit: SQLite's
own automatic checkpoint ran in whichever commit crossed 1,000 log pages, about every 120th
create, and stalled the server's event loop (and every request in flight) for that fsync, 5 to
30 ms on a quiet disk and far more on a busy one. A commit is as durable as before: it is in the
log, which survives the process. Once the log is large, a checkpoint makes it start over, holding
commits back for the last few milliseconds of its copying (see ``_checkpoint``); a log a burst of
writes left larger than ``LOG_LIMIT`` (a reset of many orders) is then cut back to it.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sandbox.core.schema import MIGRATIONS, SCHEMA_VERSION, TABLES

CHECKPOINT_EVERY = 100  # writes (commits and single statements) between two checkpoints
RESTART_AFTER = 4096  # pages in the log (16 MiB) past which a checkpoint starts it over
LOG_LIMIT = 32 * 1024 * 1024  # bytes: a log left larger (by a reset, say) is cut back to this

log = logging.getLogger(__name__)


class Store:
    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        self.lock = threading.RLock()
        self._depth = 0
        self._writes = 0
        self._checkpointer: threading.Thread | None = None  # the latest checkpoint's thread
        try:
            if self.path != ":memory:":
                Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            self.conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
            self.conn.row_factory = sqlite3.Row
            self.conn.execute("PRAGMA foreign_keys=ON")
            self._bring_up_to_date()  # first: a store that is not ours is left untouched
            self._check_shape("orders", ("pay_order_no", "clock_offset", "data"))
            self._check_shape("meta", ("key", "value"))
            if self.path != ":memory:":
                self.conn.execute("PRAGMA journal_mode=WAL")
                self.conn.execute("PRAGMA synchronous=NORMAL")
                self.conn.execute("PRAGMA wal_autocheckpoint=0")  # see _written
                self.conn.execute(f"PRAGMA journal_size_limit={LOG_LIMIT}")
        except (OSError, sqlite3.Error) as exc:
            if hasattr(self, "conn"):
                self.conn.close()
            raise ValueError(
                f"{self.path}: cannot open the sandbox's store ({exc}). If it is damaged or "
                "not the sandbox's, move it away (or use another --data-dir) to start afresh"
            ) from None

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
                self._written()

    def execute(
        self, sql: str, params: tuple[object, ...] | dict[str, object] = ()
    ) -> list[sqlite3.Row]:
        with self.lock:
            rows = self.conn.execute(sql, params).fetchall()
            if self._depth == 0 and not sql.lstrip().upper().startswith("SELECT"):
                self._written()
            return rows

    def _written(self) -> None:
        """Count a write (under the lock); every ``CHECKPOINT_EVERY``, checkpoint off-thread."""
        self._writes += 1
        if self._writes < CHECKPOINT_EVERY or self.path == ":memory:":
            return
        if self._checkpointer is not None and self._checkpointer.is_alive():
            return  # (the next write tries again)
        self._writes = 0
        self._checkpointer = threading.Thread(
            target=self._checkpoint, name="lakala-sandbox-checkpoint", daemon=True
        )
        self._checkpointer.start()

    def _checkpoint(self) -> None:
        """Copy what the log holds into the database file, on a connection of its own, beside
        commits (it never waits for them, nor they for it).

        The log starts over from its beginning only after a checkpoint has copied all of it,
        and such a pass always leaves the commits made while it ran: under steady load the log
        never started over, and grew by every commit's pages without end (35 KB a create,
        gigabytes in a day's run), each read searching more of it. So once the log holds more
        than ``RESTART_AFTER`` pages, a second pass copies the rest with the store's lock held:
        the few commits made meanwhile, a few milliseconds during which commits wait, once in
        some hundreds of creates. The next commit starts the log over."""
        try:
            conn = sqlite3.connect(self.path, check_same_thread=False)
            try:
                _, logged, _ = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
                if logged > RESTART_AFTER:
                    with self.lock:
                        conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
            finally:
                conn.close()
        except sqlite3.Error as exc:  # (the next one tries again; closing checkpoints anyway)
            log.debug("checkpoint of %s failed: %s", self.path, exc)

    def _bring_up_to_date(self) -> None:
        """Make the tables of ``schema.py``: an older store is migrated first, step by step; a
        newer one is refused (this code would misread it)."""
        version = int(self.conn.execute("PRAGMA user_version").fetchone()[0])
        if version > SCHEMA_VERSION:
            raise sqlite3.DatabaseError(
                f"it was made by a newer lakala-sandbox (store version {version}; this one "
                f"reads up to {SCHEMA_VERSION})"
            )
        made = self.conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'orders'"
        ).fetchone()
        if version == SCHEMA_VERSION and made:
            return
        if made:  # another program's database is left as it was found
            self._check_shape("orders", ("pay_order_no", "data"))
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            if made:  # an older store: each step alters the tables it already has
                for step in range(version, SCHEMA_VERSION):
                    MIGRATIONS[step](self.conn)
            for tables in TABLES:  # a table or index new since then is made here
                for statement in tables.split(";"):
                    if statement.strip():
                        self.conn.execute(statement)
            self.conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")

    def _check_shape(self, table: str, columns: tuple[str, ...]) -> None:
        """A table another program made under the same name has other columns."""
        have = {row["name"] for row in self.conn.execute(f"PRAGMA table_info({table})")}
        if not set(columns) <= have:
            raise sqlite3.DatabaseError(f"its {table} table is not the sandbox's")

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

    def clear_all(self) -> None:
        """Empty every table, and start every AUTOINCREMENT numbering again."""
        with self.transaction() as conn:
            tables = [
                row["name"]
                for row in conn.execute(
                    "SELECT name FROM sqlite_master WHERE type = 'table' "
                    "AND name NOT LIKE 'sqlite_%'"
                )
            ]
            conn.execute("PRAGMA defer_foreign_keys = ON")  # (children and parents together)
            for table in tables:
                conn.execute(f'DELETE FROM "{table}"')  # noqa: S608 - the store's own tables
            if conn.execute(
                "SELECT 1 FROM sqlite_master WHERE name = 'sqlite_sequence'"
            ).fetchone():
                conn.execute("DELETE FROM sqlite_sequence")

    def close(self) -> None:
        """Close the store, after a checkpoint in progress: its connection holds the files too,
        and its last pass waits for the lock taken here."""
        checkpointer = self._checkpointer
        if checkpointer is not None:
            checkpointer.join(10)
        with self.lock:
            self.conn.close()
