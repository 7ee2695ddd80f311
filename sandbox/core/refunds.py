"""The refund book: one row per REFUND trade a refund API made, indexed by what finds refunds.

A refund is looked up by the merchant's number for it (``out_trade_no``, idmrefund's
``out_refund_order_no``), by Lakala's numbers (``trade_no``) and by the order it refunds; its
payment is found by the payment's ``trade_no``, ``log_no`` or ``trade_ref_no``. Each of those is
an index here, so a lookup costs the same with 1,000 orders as with 200,000 (no scan of every
trade's JSON).

Earlier stores kept a refund's bookkeeping inside its trade's JSON (``_refund``); opening such a
store moves it into the table once.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from typing import Any

from sandbox.core.store import Store

SCHEMA = """
CREATE TABLE IF NOT EXISTS refunds (
    trade_no TEXT PRIMARY KEY
        REFERENCES trades(trade_no) ON DELETE CASCADE ON UPDATE CASCADE,
    pay_order_no TEXT NOT NULL,
    merchant_no TEXT NOT NULL,
    out_trade_no TEXT NOT NULL,
    api TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    UNIQUE (merchant_no, out_trade_no)
);
CREATE INDEX IF NOT EXISTS refunds_by_order ON refunds (pay_order_no);
CREATE INDEX IF NOT EXISTS trades_by_log_no ON trades (json_extract(data, '$.log_no'));
CREATE INDEX IF NOT EXISTS trades_by_ref_no ON trades (json_extract(data, '$.trade_ref_no'));
"""
LEGACY = "_refund"  # where earlier stores kept a refund's out_trade_no and request fingerprint
MIGRATED = "refunds_migrated"


@dataclass(frozen=True)
class RefundRow:
    trade_no: str
    pay_order_no: str
    merchant_no: str
    out_trade_no: str
    api: str
    request_hash: str


class RefundBook:
    """``RefundBook(store)``: the refunds table, its indexes and the lookups that use them."""

    def __init__(self, store: Store) -> None:
        self.store = store
        store.executescript(SCHEMA)
        if store.get_meta(MIGRATED) is None:
            self._migrate()

    def _migrate(self) -> None:
        with self.store.transaction() as conn:
            rows = conn.execute(
                "SELECT t.trade_no, t.pay_order_no, t.data, o.merchant_no FROM trades t "
                "JOIN orders o USING (pay_order_no) WHERE json_extract(t.data, ?) IS NOT NULL",
                (f"$.{LEGACY}",),
            ).fetchall()
            for row in rows:
                trade = json.loads(row["data"])
                notes = trade.pop(LEGACY)
                if isinstance(notes, dict) and notes.get("out_trade_no"):
                    conn.execute(
                        "INSERT OR IGNORE INTO refunds (trade_no, pay_order_no, merchant_no, "
                        "out_trade_no, api, request_hash) VALUES (?, ?, ?, ?, ?, ?)",
                        (
                            row["trade_no"],
                            row["pay_order_no"],
                            row["merchant_no"],
                            str(notes["out_trade_no"]),
                            "refund",
                            str(notes.get("request_hash", "")),
                        ),
                    )
                conn.execute(
                    "UPDATE trades SET data = ? WHERE trade_no = ?",
                    (_dumps(trade), row["trade_no"]),
                )
            conn.execute(
                "INSERT INTO meta (key, value) VALUES (?, '1') "
                "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                (MIGRATED,),
            )

    # -- write (inside the caller's transaction) ---------------------------------------------
    def record(
        self,
        conn: sqlite3.Connection,
        *,
        trade_no: str,
        pay_order_no: str,
        merchant_no: str,
        out_trade_no: str,
        api: str,
        request_hash: str,
    ) -> RefundRow:
        row = RefundRow(trade_no, pay_order_no, merchant_no, out_trade_no, api, request_hash)
        conn.execute(
            "INSERT INTO refunds (trade_no, pay_order_no, merchant_no, out_trade_no, api, "
            "request_hash) VALUES (?, ?, ?, ?, ?, ?)",
            (trade_no, pay_order_no, merchant_no, out_trade_no, api, request_hash),
        )
        return row

    # -- read -------------------------------------------------------------------------------
    def named(
        self, conn: sqlite3.Connection, merchant_no: str, out_trade_no: str
    ) -> RefundRow | None:
        row = conn.execute(
            "SELECT * FROM refunds WHERE merchant_no = ? AND out_trade_no = ?",
            (merchant_no, out_trade_no),
        ).fetchone()
        return _row(row)

    def by_trade_no(self, conn: sqlite3.Connection, trade_no: str) -> RefundRow | None:
        return _row(
            conn.execute("SELECT * FROM refunds WHERE trade_no = ?", (trade_no,)).fetchone()
        )

    def of_order(self, conn: sqlite3.Connection, pay_order_no: str) -> dict[str, RefundRow]:
        """The order's refunds made through a refund API, by trade_no."""
        rows = conn.execute("SELECT * FROM refunds WHERE pay_order_no = ?", (pay_order_no,))
        return {r["trade_no"]: RefundRow(**dict(r)) for r in rows}

    @staticmethod
    def trades_with(conn: sqlite3.Connection, field: str, value: str) -> list[sqlite3.Row]:
        """Trades whose ``log_no`` or ``trade_ref_no`` is ``value`` (through their indexes)."""
        if field not in ("log_no", "trade_ref_no"):
            raise ValueError(f"trades are not indexed by {field}")
        return conn.execute(
            "SELECT pay_order_no, trade_no, data FROM trades "  # noqa: S608 - field is one of ours
            f"WHERE json_extract(data, '$.{field}') = ?",
            (value,),
        ).fetchall()


def _row(row: sqlite3.Row | None) -> RefundRow | None:
    return None if row is None else RefundRow(**dict(row))


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
