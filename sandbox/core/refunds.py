"""The refund book: one row per REFUND trade a refund API made, indexed by what finds refunds.

A refund is looked up by the merchant's number for it (``out_trade_no``, idmrefund's
``out_refund_order_no``), by Lakala's numbers (``trade_no``) and by the order it refunds; its
payment is found by the payment's ``trade_no``, ``log_no`` or ``trade_ref_no``. Each of those is
an index here, so a lookup costs the same with 1,000 orders as with 200,000 (no scan of every
trade's JSON).

The tables are in ``schema.py``; an earlier store kept a refund's bookkeeping inside its trade's
JSON (``_refund``), and opening it moves that into the table (``schema.move_refund_notes``).
"""

from __future__ import annotations

import sqlite3
from dataclasses import astuple, dataclass, fields

from sandbox.core.engine import Engine
from sandbox.core.scheduler import DUE_SLACK
from sandbox.core.store import Store
from sandbox.wire.errors import SandboxError

MAX_SETTLED_PER_PASS = 10_000


@dataclass(frozen=True)
class RefundRow:
    trade_no: str
    pay_order_no: str
    merchant_no: str
    out_trade_no: str
    api: str
    request_hash: str
    settle_ts: float | None = None
    settle_to: str | None = None
    settle_reason: str | None = None


_COLUMNS = [f.name for f in fields(RefundRow)]  # a row is stored column for field
INSERT_REFUND = (
    f"INSERT INTO refunds ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' * len(_COLUMNS))})"
)


@dataclass(frozen=True)
class Outcome:
    """How an order's next refund turns out: ``result`` success or fail, ``after`` seconds of
    the order's clock (0: at once; more: PROCESSING until then)."""

    result: str
    after: float = 0.0
    reason: str | None = None

    @property
    def status(self) -> str:
        """The REFUND trade's status when it is made: S, F, or P (processing)."""
        if self.after > 0:
            return "P"
        return "S" if self.result == "success" else "F"

    @property
    def settles_to(self) -> str:
        return "S" if self.result == "success" else "F"


class RefundBook:
    """``RefundBook(store)``: the refunds table, its indexes and the lookups that use them."""

    def __init__(self, store: Store) -> None:
        self.store = store

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
        settle_ts: float | None = None,
        settle_to: str | None = None,
        settle_reason: str | None = None,
    ) -> RefundRow:
        row = RefundRow(
            trade_no,
            pay_order_no,
            merchant_no,
            out_trade_no,
            api,
            request_hash,
            settle_ts,
            settle_to,
            settle_reason,
        )
        conn.execute(INSERT_REFUND, astuple(row))
        return row

    # -- outcomes (a scenario step, the admin API, the dashboard) -----------------------------
    def arm(self, pay_order_no: str, outcome: Outcome) -> None:
        """The order's next refund through a refund API turns out as ``outcome``."""
        with self.store.transaction() as conn:
            conn.execute(
                "INSERT INTO refund_outcomes (pay_order_no, result, after, reason) "
                "VALUES (?, ?, ?, ?) ON CONFLICT(pay_order_no) DO UPDATE SET "
                "result = excluded.result, after = excluded.after, reason = excluded.reason",
                (pay_order_no, outcome.result, outcome.after, outcome.reason),
            )

    def armed(self, pay_order_no: str) -> Outcome | None:
        rows = self.store.execute(
            "SELECT result, after, reason FROM refund_outcomes WHERE pay_order_no = ?",
            (pay_order_no,),
        )
        return Outcome(**dict(rows[0])) if rows else None

    @staticmethod
    def take(conn: sqlite3.Connection, pay_order_no: str) -> Outcome | None:
        """The outcome armed for the order's next refund, used up (inside the refund's
        transaction, so a refused refund leaves it armed)."""
        row = conn.execute(
            "SELECT result, after, reason FROM refund_outcomes WHERE pay_order_no = ?",
            (pay_order_no,),
        ).fetchone()
        if row is None:
            return None
        conn.execute("DELETE FROM refund_outcomes WHERE pay_order_no = ?", (pay_order_no,))
        return Outcome(**dict(row))

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


class RefundSettler:
    """The scheduler's job that ends each refund left PROCESSING when its order's clock reaches
    the time its outcome set: the REFUND trade becomes S (the order 6) or F, and is notified."""

    def __init__(self, store: Store, engine: Engine) -> None:
        self.store = store
        self.engine = engine

    def run_due(self) -> None:
        for _ in range(MAX_SETTLED_PER_PASS):
            with self.store.transaction() as conn:
                row = conn.execute(
                    "SELECT r.trade_no, r.pay_order_no, r.settle_to, r.settle_reason "
                    "FROM refunds r JOIN orders o USING (pay_order_no) "
                    "WHERE r.settle_ts IS NOT NULL AND r.settle_ts <= ? + o.clock_offset "
                    "ORDER BY r.settle_ts - o.clock_offset LIMIT 1",
                    (self.engine.clock.timestamp() + DUE_SLACK,),
                ).fetchone()
                if row is None:
                    return
                conn.execute(
                    "UPDATE refunds SET settle_ts = NULL WHERE trade_no = ?", (row["trade_no"],)
                )
                reason = row["settle_reason"]
                try:
                    self.engine.settle_refund(
                        row["pay_order_no"],
                        row["trade_no"],
                        row["settle_to"],
                        options={"reason": reason} if reason else {},
                    )
                except SandboxError:
                    pass  # no longer processing (settled by hand): nothing left to do

    def next_due(self) -> float | None:
        rows = self.store.execute(
            "SELECT MIN(r.settle_ts - o.clock_offset) AS due FROM refunds r "
            "JOIN orders o USING (pay_order_no) WHERE r.settle_ts IS NOT NULL"
        )
        due = rows[0]["due"]
        return None if due is None else float(due)

    def busy(self) -> bool:
        return False

    def stop(self, timeout: float) -> None:
        return None
