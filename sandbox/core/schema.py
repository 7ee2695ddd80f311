"""Every table of the store, in one registry, and the version of their shape.

The store creates them all when it opens, whichever services then use them: orders and trades
(the engine), meta (the clock and keys' bookkeeping), notifies and their attempts (the notifier's
outbox), scenario runs and armed faults (the scenario runner). A database records the version it
was made with (``PRAGMA user_version``); a store opened by an older sandbox is brought forward by
``MIGRATIONS``, one newer than this code is refused rather than misread.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable

# Bump when a table's shape changes, and add the step that brings a store of the version before
# it forward to MIGRATIONS.
SCHEMA_VERSION = 3

ORDERS = """
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

NOTIFY_OUTBOX = """
CREATE TABLE IF NOT EXISTS notifies (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    pay_order_no TEXT NOT NULL REFERENCES orders(pay_order_no) ON DELETE CASCADE,
    sequence INTEGER NOT NULL,
    kind TEXT NOT NULL,
    dialect TEXT NOT NULL,
    url TEXT,
    receiver TEXT,  -- scheme://host:port of url: a receiver's share of delivery slots
    body TEXT NOT NULL,
    policy TEXT NOT NULL,
    retry INTEGER NOT NULL,
    created_ts REAL NOT NULL,
    UNIQUE (pay_order_no, sequence)
);
CREATE TABLE IF NOT EXISTS notify_attempts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    notify_id INTEGER NOT NULL REFERENCES notifies(id) ON DELETE CASCADE,
    pay_order_no TEXT NOT NULL REFERENCES orders(pay_order_no) ON DELETE CASCADE,
    attempt INTEGER NOT NULL,
    state TEXT NOT NULL,
    due_ts REAL NOT NULL,
    sent_ts REAL,
    request_headers TEXT,
    request_body TEXT,
    signed_string TEXT,
    response_status INTEGER,
    response_body TEXT,
    latency_ms INTEGER,
    error TEXT,
    UNIQUE (notify_id, attempt)
);
CREATE INDEX IF NOT EXISTS notify_attempts_pending ON notify_attempts (state, due_ts);
CREATE INDEX IF NOT EXISTS notify_attempts_by_order ON notify_attempts (pay_order_no, id);
"""

SCENARIO_RUNS = """
CREATE TABLE IF NOT EXISTS scenario_runs (
    pay_order_no TEXT PRIMARY KEY REFERENCES orders(pay_order_no) ON DELETE CASCADE,
    scenario TEXT NOT NULL,
    reason TEXT NOT NULL,
    steps TEXT NOT NULL,
    step_index INTEGER NOT NULL,
    due_ts REAL NOT NULL,
    state TEXT NOT NULL,
    error TEXT,
    log TEXT NOT NULL DEFAULT '[]'
);
CREATE INDEX IF NOT EXISTS scenario_runs_active ON scenario_runs (state, due_ts);
"""

SCENARIO_FAULTS = """
CREATE TABLE IF NOT EXISTS scenario_faults (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    pay_order_no TEXT REFERENCES orders(pay_order_no) ON DELETE CASCADE,
    call TEXT NOT NULL,
    spec TEXT NOT NULL,
    remaining INTEGER NOT NULL
);
"""

# Refunds by what finds them (the refund APIs' numbers, the order, a payment's log_no /
# trade_ref_no), the outcome armed for an order's next refund, and when a processing one settles.
REFUNDS = """
CREATE TABLE IF NOT EXISTS refunds (
    trade_no TEXT PRIMARY KEY
        REFERENCES trades(trade_no) ON DELETE CASCADE ON UPDATE CASCADE,
    pay_order_no TEXT NOT NULL,
    merchant_no TEXT NOT NULL,
    out_trade_no TEXT NOT NULL,
    api TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    settle_ts REAL,
    settle_to TEXT,
    settle_reason TEXT,
    UNIQUE (merchant_no, out_trade_no)
);
CREATE INDEX IF NOT EXISTS refunds_by_order ON refunds (pay_order_no);
CREATE INDEX IF NOT EXISTS refunds_processing ON refunds (settle_ts) WHERE settle_ts IS NOT NULL;
CREATE TABLE IF NOT EXISTS refund_outcomes (
    pay_order_no TEXT PRIMARY KEY REFERENCES orders(pay_order_no) ON DELETE CASCADE,
    result TEXT NOT NULL,
    after REAL NOT NULL,
    reason TEXT
);
CREATE INDEX IF NOT EXISTS trades_by_log_no ON trades (json_extract(data, '$.log_no'));
CREATE INDEX IF NOT EXISTS trades_by_ref_no ON trades (json_extract(data, '$.trade_ref_no'));
"""

TABLES = (ORDERS, NOTIFY_OUTBOX, SCENARIO_RUNS, SCENARIO_FAULTS, REFUNDS)
LEGACY_REFUND_NOTES = "_refund"  # where version-2 stores kept a refund's number and fingerprint


def move_refund_notes(conn: sqlite3.Connection) -> None:
    """Version 2 -> 3: each refund's ``_refund`` notes move out of its trade's JSON into the
    refunds table, which is indexed (looking them up scanned every trade)."""
    for statement in REFUNDS.split(";"):
        if statement.strip():
            conn.execute(statement)
    rows = conn.execute(
        "SELECT t.trade_no, t.pay_order_no, t.data, o.merchant_no FROM trades t "
        "JOIN orders o USING (pay_order_no) WHERE json_extract(t.data, ?) IS NOT NULL",
        (f"$.{LEGACY_REFUND_NOTES}",),
    ).fetchall()
    for row in rows:
        trade = json.loads(row["data"])
        notes = trade.pop(LEGACY_REFUND_NOTES)
        if isinstance(notes, dict) and notes.get("out_trade_no"):
            conn.execute(
                "INSERT OR IGNORE INTO refunds (trade_no, pay_order_no, merchant_no, "
                "out_trade_no, api, request_hash) VALUES (?, ?, ?, ?, 'refund', ?)",
                (
                    row["trade_no"],
                    row["pay_order_no"],
                    row["merchant_no"],
                    str(notes["out_trade_no"]),
                    str(notes.get("request_hash", "")),
                ),
            )
        conn.execute(
            "UPDATE trades SET data = ? WHERE trade_no = ?",
            (
                json.dumps(trade, ensure_ascii=False, sort_keys=True, separators=(",", ":")),
                row["trade_no"],
            ),
        )


def _add_column(table: str, column: str, declaration: str) -> Callable[[sqlite3.Connection], None]:
    """A step that adds a column to a table that lacks it (a table not made yet gets it when it
    is made, from the statements above)."""

    def step(conn: sqlite3.Connection) -> None:
        have = {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}
        if have and column not in have:
            conn.execute(f"ALTER TABLE {table} ADD COLUMN {column} {declaration}")

    return step


# version n -> the step that makes a store of version n into one of version n + 1. Version 0 is a
# store made before versions were recorded: its tables have version 1's shape.
MIGRATIONS: dict[int, Callable[[sqlite3.Connection], None]] = {
    0: lambda conn: None,
    # 2: each notify names its receiver (the notifier fills it in for those written before)
    1: _add_column("notifies", "receiver", "TEXT"),
    # 3: refunds move out of their trades' JSON into the indexed refunds table
    2: move_refund_notes,
}
