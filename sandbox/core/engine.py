"""The one order engine both API dialects, the page and the scenarios drive.

States (Lakala's ``order_status``): 0 待支付, 1 支付中, 2 支付成功, 3 支付失败, 4 已过期, 5 已取消,
6 退款, 7 已关闭. An order in 0/1 past ``order_efficient_time`` (on its own clock) reads as 4
without any background job. Every change runs in one SQLite transaction under the store lock, then
listeners (notifier, scenarios) hear about it.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypedDict, cast
from urllib.parse import parse_qsl, quote_plus, urlsplit

from sandbox.core.clock import LATEST, Clock
from sandbox.core.ids import Ids
from sandbox.core.store import Store
from sandbox.wire.envelopes import strict_json
from sandbox.wire.errors import SandboxError
from sandbox.wire.vocabulary import (
    ACTIONS,
    COUNTER_PAGE,
    OPEN,
    PAY_MODE_ACTIONS,
    STATUS_NAMES,
    OrderStatus,
    busi_type,
)

COUNTER_URL_MAX = 256  # Lakala's limit for counter_url (the create responses' schemas)


def counter_url(base_url: str, merchant_no: str, out_order_no: str, pay_order_no: str) -> str:
    """The seed's link, naming the order by its three numbers; or by ``payOrderNo`` alone when
    that would pass Lakala's 256 characters (two ids of 32 characters that each take up to 12
    percent-encoded, ``测`` or an emoji, make a link of over 800)."""
    # (urlencode's own quoting, without its loop over a dict: every create makes one)
    page = base_url.rstrip("/") + COUNTER_PAGE
    pay = "payOrderNo=" + quote_plus(pay_order_no)
    named = f"merchantNo={quote_plus(merchant_no)}&merchantOrderNo={quote_plus(out_order_no)}"
    url = f"{page}?{named}&{pay}"
    return url if len(url) <= COUNTER_URL_MAX else f"{page}?{pay}"


# A trade's note: a payment Lakala reported after the order had expired here (see apply's late).
LATE_PAYMENT = "_late_payment"


class Trade(TypedDict, total=False):
    """One trade of an order, as Lakala's ``order_trade_info_list`` lists it (the query spells
    ``log_No``, the notify ``log_no``; stored as ``log_no``), with the sandbox's own notes."""

    trade_no: str
    log_no: str
    trade_ref_no: str | None
    trade_type: str  # PAY, REFUND, CANCEL
    trade_status: str  # S, F, P (processing)
    trade_amount: int
    payer_amount: int
    user_id1: str | None
    user_id2: str | None
    busi_type: str | None
    trade_time: str
    acc_trade_no: str | None
    payer_account_no: str | None
    payer_name: str | None
    payer_account_bank: str | None
    acc_type: str | None
    pay_mode: str | None
    settle_merchant_no: str | None
    settle_term_no: str | None
    origin_trade_no: str | None
    bank_type: str | None
    trade_remark: str | None
    _late_payment: dict[str, Any]  # LATE_PAYMENT: the expiry a payment Lakala reported came after


@dataclass
class Order:
    seq: int
    pay_order_no: str
    merchant_no: str
    out_order_no: str
    dialect: str
    stored_status: int
    request_hash: str
    created_ts: float
    efficient_ts: float
    clock_offset: float
    updated_ts: float
    data: dict[str, Any]
    trades: list[Trade] = field(default_factory=list)
    status: int = 0

    @property
    def total_amount(self) -> int:
        return int(self.data["total_amount"])

    @property
    def counter_url(self) -> str:
        return str(self.data["counter_url"])

    @property
    def counter_params(self) -> dict[str, str]:
        """What the order's counter link names it by: its three numbers, or ``payOrderNo``
        alone when its ids were too long for a link of the three (see ``counter_url``)."""
        link = urlsplit(self.counter_url)
        named = dict(parse_qsl(link.query))
        if link.path.endswith(COUNTER_PAGE) and "merchantOrderNo" not in named:
            return {"payOrderNo": self.pay_order_no}
        return {
            "merchantNo": self.merchant_no,
            "merchantOrderNo": self.out_order_no,
            "payOrderNo": self.pay_order_no,
        }

    def flag(self, name: str) -> bool:
        return str(self.data.get(name, 0)) == "1"

    def last_trade(self, trade_type: str = "PAY") -> Trade | None:
        return next((t for t in self.trades if t["trade_type"] == trade_type), None)

    @property
    def refunded(self) -> int:
        """Fen refunded so far."""
        return refunded_amount(self.trades)

    @property
    def refundable(self) -> int:
        """Fen of the payment not refunded yet (0 unless paid or partly refunded)."""
        if self.status not in (2, 6):
            return 0
        pending = sum(
            int(t["trade_amount"])
            for t in self.trades
            if t.get("trade_type") == "REFUND" and t.get("trade_status") == "P"
        )  # a refund still processing holds its amount until it settles
        return max(self.total_amount - self.refunded - pending, 0)


def refunded_amount(trades: Sequence[Mapping[str, Any]]) -> int:
    """The fen of the successful REFUND trades in ``trades`` (ours, or Lakala's query list)."""
    return sum(
        int(t["trade_amount"])
        for t in trades
        if t.get("trade_type") == "REFUND" and t.get("trade_status") == "S"
    )


@dataclass(frozen=True)
class ScenarioChoice:
    """The scenario a create was given, chosen once by the endpoint, and why."""

    name: str
    reason: str


@dataclass(frozen=True)
class Change:
    """What listeners hear after a committed change.

    ``options`` carries e.g. a click's notify policy; ``scenario`` a create's chosen scenario.
    """

    order: Order
    action: str
    old_status: int | None
    new_status: int
    trade: Trade | None
    source: str
    options: dict[str, Any]
    scenario: ScenarioChoice | None = None


Listener = Callable[[Change], None]


class Engine:
    def __init__(self, store: Store, clock: Clock, ids: Ids, pay_modes: list[str]) -> None:
        self.store = store
        self.clock = clock
        self.ids = ids
        self.pay_modes = pay_modes
        self.listeners: list[Listener] = []

    # -- time -------------------------------------------------------------------------------
    def now_for(self, order: Order) -> float:
        """An order's own time: the sandbox clock plus the order's private offset."""
        # (bounded: a clock running on, or set, never shows an order a year past 9999)
        return min(self.clock.timestamp() + order.clock_offset, LATEST)

    def furthest_ahead(self) -> tuple[str, float] | None:
        """(pay_order_no, offset) of the order whose own clock is furthest ahead, if any is."""
        row = self.store.execute(
            "SELECT pay_order_no, clock_offset FROM orders WHERE clock_offset > 0 "
            "ORDER BY clock_offset DESC LIMIT 1"
        )
        return (str(row[0]["pay_order_no"]), float(row[0]["clock_offset"])) if row else None

    def advance_order(self, pay_order_no: str, seconds: float) -> Order:
        if seconds < 0:
            raise ValueError("the clock only moves forward")
        with self.store.transaction() as conn:
            self._load(conn, pay_order_no)
            conn.execute(
                "UPDATE orders SET clock_offset = clock_offset + ? WHERE pay_order_no = ?",
                (seconds, pay_order_no),
            )
        return self.get(pay_order_no)

    # -- create -----------------------------------------------------------------------------
    def create(
        self,
        dialect: str,
        req: dict[str, Any],
        *,
        request_hash: str,
        base_url: str,
        extra: dict[str, Any] | None = None,
        source: str = "api",
        scenario: ScenarioChoice | None = None,
        pay_order_no: str | None = None,
    ) -> tuple[Order, bool]:
        """Create from a validated, coerced v3-shaped ``req``.

        Returns (order, created); an identical repeat gives (the original order, False).

        ``pay_order_no`` (and ``order_create_time`` / ``counter_url`` in ``extra``) keep a real
        Lakala order's own values when the proxy mirrors it."""
        merchant_no, out_order_no = str(req["merchant_no"]), str(req["out_order_no"])
        with self.store.transaction() as conn:
            row = conn.execute(
                "SELECT pay_order_no, request_hash FROM orders "
                "WHERE merchant_no = ? AND out_order_no = ?",
                (merchant_no, out_order_no),
            ).fetchone()
            if row is not None:
                if row["request_hash"] != request_hash:
                    raise SandboxError(
                        "ORDER_EXISTS", out_order_no=out_order_no, merchant_no=merchant_no
                    )
                return self._load(conn, row["pay_order_no"]), False
            now = self.clock.timestamp()
            now_dt = self.clock.now()
            given = pay_order_no
            pay_order_no = given or self.ids.pay_order_no(now_dt)
            mirrored = extra or {}
            data = dict(req)
            data.update(mirrored)
            data["order_create_time"] = mirrored.get("order_create_time") or self.clock.format(now)
            efficient_ts = self.clock.parse(str(req["order_efficient_time"]))
            while True:
                data["counter_url"] = mirrored.get("counter_url") or counter_url(
                    base_url, merchant_no, out_order_no, pay_order_no
                )
                stored = _dumps(data)
                # the row in Order's field order; the new order is built from it as _load would
                # read it back, without reading it back (no trades yet, its own clock not moved)
                row = (pay_order_no, merchant_no, out_order_no, dialect, 0, request_hash, now)
                row += (efficient_ts, 0.0, now)
                try:
                    seq = conn.execute(
                        "INSERT INTO orders (pay_order_no, merchant_no, out_order_no, dialect, "
                        "status, request_hash, created_ts, efficient_ts, clock_offset, "
                        "updated_ts, data) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        (*row, stored),
                    ).lastrowid
                    break
                except sqlite3.IntegrityError:
                    # a number drawn twice (one in 10**18): draw again, as many times as it
                    # takes; a given one, or any other conflict, is the caller's problem
                    if given or not self._taken(conn, pay_order_no):
                        raise
                    pay_order_no = self.ids.pay_order_no(now_dt)
            order = self._settled(Order(int(seq or 0), *row, json.loads(stored)))
            # listeners hear inside the transaction: what they record (the notify outbox)
            # commits with the change, in the order the changes happened
            self._emit(Change(order, "create", None, 0, None, source, {}, scenario))
        return order, True

    @staticmethod
    def _taken(conn: Any, pay_order_no: str) -> bool:
        return (
            conn.execute("SELECT 1 FROM orders WHERE pay_order_no = ?", (pay_order_no,)).fetchone()
            is not None
        )

    # -- read -------------------------------------------------------------------------------
    def get(self, pay_order_no: str) -> Order:
        with self.store.lock:
            return self._load(self.store.conn, pay_order_no)

    def find(
        self, merchant_no: str, *, out_order_no: str | None = None, pay_order_no: str | None = None
    ) -> Order:
        """Look up by out_order_no or pay_order_no (both must agree when both are given)."""
        sql, params = "SELECT pay_order_no FROM orders WHERE merchant_no = ?", [merchant_no]
        if out_order_no is not None:
            sql += " AND out_order_no = ?"
            params.append(out_order_no)
        if pay_order_no is not None:
            sql += " AND pay_order_no = ?"
            params.append(pay_order_no)
        rows = self.store.execute(sql, tuple(params))
        if not rows:
            what = ", ".join(
                f"{k}={v}"
                for k, v in (
                    ("merchant_no", merchant_no),
                    ("out_order_no", out_order_no),
                    ("pay_order_no", pay_order_no),
                )
                if v
            )
            raise SandboxError("ORDER_NOT_FOUND", what=what)
        return self.get(rows[0]["pay_order_no"])

    def recent(self, *, limit: int = 50, offset: int = 0) -> list[Order]:
        """Orders newest first."""
        with self.store.lock:
            rows = self.store.conn.execute(
                "SELECT pay_order_no FROM orders ORDER BY seq DESC LIMIT ? OFFSET ?",
                (limit, offset),
            ).fetchall()
            return [self._load(self.store.conn, r["pay_order_no"]) for r in rows]

    def count(self) -> int:
        return int(self.store.execute("SELECT COUNT(*) AS n FROM orders")[0]["n"])

    def has_orders(self) -> bool:
        return bool(self.store.execute("SELECT 1 FROM orders LIMIT 1"))

    def allowed_pay_modes(self, order: Order) -> list[str]:
        """What the counter may offer: counter_param.pay_mode / busi_type_param / v1
        payment_method narrow the full list; nothing given means every mode."""
        wanted, busi_types = requested_pay_modes(order.data)
        wanted.update(m for m in self.pay_modes if busi_type(m) in busi_types)
        return [m for m in self.pay_modes if m in wanted] if wanted else list(self.pay_modes)

    def default_pay_mode(self, order: Order) -> str:
        allowed = self.allowed_pay_modes(order)
        preferred = order.data.get("payment_method") or "ALIPAY"
        return preferred if preferred in allowed else allowed[0]

    def allowed_actions(self, order: Order) -> list[str]:
        """The actions the order's state allows now: what a page may offer (apply still decides)."""
        allowed = []
        for action in ACTIONS:
            try:
                self._target(order, action)
            except SandboxError:
                continue
            allowed.append(action)
        return allowed

    # -- change -----------------------------------------------------------------------------
    def apply(
        self,
        pay_order_no: str,
        action: str,
        *,
        pay_mode: str | None = None,
        source: str = "admin",
        options: dict[str, Any] | None = None,
        trade_data: dict[str, Any] | None = None,
        amount: int | None = None,
        amount_field: str = "amount",
        notes: dict[str, Any] | None = None,
        late: bool = False,
        refund_status: str = "S",
    ) -> Order:
        """Run one action; ILLEGAL_TRANSITION (changing nothing) when the state forbids it.

        ``trade_data`` overrides fields of the trade recorded (the proxy keeps Lakala's own).
        ``amount`` is a refund's, in fen: by default all that is left to refund; a wrong one is
        refused naming ``amount_field``, the caller's name for it. ``notes`` are kept with the
        trade beside its fields (as the options' ``reason`` is, as ``trade_remark``).
        ``refund_status`` P records a refund still processing (``settle_refund`` ends it), F one
        that failed: either leaves the order's status as it was."""
        if action not in ACTIONS:
            raise SandboxError(
                "INVALID_PARAM",
                field="action",
                rule=f"must be one of {', '.join(ACTIONS)} (got {action!r})",
            )
        if pay_mode is not None and action not in PAY_MODE_ACTIONS:
            raise SandboxError(  # no trade of this action has one: it would be ignored
                "INVALID_PARAM",
                field="pay_mode",
                rule=f"is for {', '.join(PAY_MODE_ACTIONS)} only, not {action}",
            )
        with self.store.transaction() as conn:
            order = self._load(conn, pay_order_no)
            old = order.status
            if action == "close" and old == OrderStatus.CLOSED:
                return order  # closing twice is a safe retry
            expired = order.status == OrderStatus.EXPIRED
            new = (
                OrderStatus.PAID
                if late and action == "pay" and expired
                else self._target(order, action)
            )
            if action in PAY_MODE_ACTIONS and pay_mode is not None:
                allowed = self.allowed_pay_modes(order)
                if pay_mode not in allowed:
                    raise SandboxError(
                        "PAY_MODE_NOT_ALLOWED",
                        pay_mode=pay_mode,
                        pay_order_no=pay_order_no,
                        allowed=", ".join(allowed),
                    )
            if action == "refund" and amount is not None and not 1 <= amount <= order.refundable:
                raise SandboxError(
                    "INVALID_PARAM",
                    field=amount_field,
                    rule=f"must be from 1 to {order.refundable} fen, what is left to refund "
                    f"of {order.total_amount} (got {amount})",
                )
            trade = self._record_trade(conn, order, action, pay_mode, amount)
            if action == "refund" and refund_status != "S" and trade is not None:
                new = old  # only a refund that succeeded moves the order to 6
                trade = {**trade, "trade_status": refund_status}
                conn.execute(
                    "UPDATE trades SET data = ? WHERE trade_no = ?",
                    (_dumps(trade), trade["trade_no"]),
                )
            if trade is not None and trade_data:
                trade = self._override_trade(conn, trade, trade_data)
            kept = dict(notes or {})
            if late and action == "pay" and expired:
                kept[LATE_PAYMENT] = {"expired_at": order.data.get("order_efficient_time")}
            reason = (options or {}).get("reason")
            if reason:  # why it failed, say
                kept["trade_remark"] = str(reason)
            if trade is not None and kept:
                trade = cast(Trade, {**trade, **kept})
                conn.execute(
                    "UPDATE trades SET data = ? WHERE trade_no = ?",
                    (_dumps(trade), trade["trade_no"]),
                )
            now = self.clock.timestamp()
            conn.execute(
                "UPDATE orders SET status = ?, updated_ts = ? WHERE pay_order_no = ?",
                (new, now, pay_order_no),
            )
            order = self._load(conn, pay_order_no)
            self._emit(Change(order, action, old, new, trade, source, options or {}))
        return order

    def settle_refund(
        self,
        pay_order_no: str,
        trade_no: str,
        status: str,
        *,
        source: str = "scenario",
        options: dict[str, Any] | None = None,
    ) -> Order:
        """End a refund still processing (P): S moves the order to 6, F leaves it as it is."""
        with self.store.transaction() as conn:
            order = self._load(conn, pay_order_no)
            trade = next((t for t in order.trades if t["trade_no"] == trade_no), None)
            if trade is None or trade["trade_type"] != "REFUND" or trade["trade_status"] != "P":
                raise SandboxError(
                    "ILLEGAL_TRANSITION",
                    pay_order_no=pay_order_no,
                    status=order.status,
                    status_name=STATUS_NAMES[order.status],
                    action="settle_refund",
                    hint=f" (no refund {trade_no} processing)",
                )
            old = order.status
            new = (
                OrderStatus.REFUNDED
                if status == "S" and old in (OrderStatus.PAID, OrderStatus.REFUNDED)
                else old
            )
            reason = (options or {}).get("reason")
            trade = {
                **trade,
                "trade_status": status,
                "trade_time": self.clock.format(self.now_for(order)),
                **({"trade_remark": str(reason)} if reason else {}),
            }
            conn.execute("UPDATE trades SET data = ? WHERE trade_no = ?", (_dumps(trade), trade_no))
            conn.execute(
                "UPDATE orders SET status = ?, updated_ts = ? WHERE pay_order_no = ?",
                (new, self.clock.timestamp(), pay_order_no),
            )
            order = self._load(conn, pay_order_no)
            self._emit(Change(order, "refund", old, new, trade, source, options or {}))
        return order

    def reset(self) -> None:
        self.store.clear(["trades", "orders"])

    def settle_expired(self) -> int:
        """Store as expired every open order whose ``order_efficient_time`` has passed on its
        clock. Called before the clock goes back: an order seen expired stays expired."""
        now = self.clock.timestamp()
        marks = ", ".join("?" for _ in OPEN)
        with self.store.transaction() as conn:
            cursor = conn.execute(
                f"UPDATE orders SET status = 4, updated_ts = ? WHERE status IN ({marks}) "
                "AND efficient_ts <= ? + clock_offset",
                (now, *OPEN, now),
            )
        return cursor.rowcount

    def _target(self, order: Order, action: str) -> int:
        status = order.status
        repeat = order.flag("support_repeat_pay")
        hint = ""
        if action == "paying" and (
            status == OrderStatus.WAIT_PAY or (status == OrderStatus.FAILED and repeat)
        ):
            return OrderStatus.PAYING
        if action == "pay" and (status in OPEN or (status == OrderStatus.FAILED and repeat)):
            return OrderStatus.PAID
        if action == "fail" and status in OPEN:
            return OrderStatus.FAILED
        if action == "cancel":
            if status in OPEN:
                return OrderStatus.CANCELLED
            if status == OrderStatus.PAID and order.flag("support_cancel"):
                return OrderStatus.CANCELLED
            if status == OrderStatus.PAID:
                hint = " (a paid order is cancelled only with support_cancel=1)"
        if action == "close" and status in (
            OrderStatus.WAIT_PAY,
            OrderStatus.PAYING,
            OrderStatus.FAILED,
        ):
            return OrderStatus.CLOSED
        if action == "expire" and status in OPEN:
            return OrderStatus.EXPIRED
        if action == "refund":
            if (
                status in (OrderStatus.PAID, OrderStatus.REFUNDED)
                and order.flag("support_refund")
                and order.refundable > 0
            ):
                return OrderStatus.REFUNDED  # in full or in part: 6 is 部分退款或者全部退款
            if status == OrderStatus.PAID:
                hint = " (refunds need support_refund=1)"
            if status == OrderStatus.REFUNDED:
                hint = f" (refunded in full: {order.total_amount} fen)"
            if (
                status in (OrderStatus.PAID, OrderStatus.REFUNDED)
                and order.flag("support_refund")
                and order.refunded < (order.total_amount)
            ):
                hint = " (what is left is held by a refund still processing)"
        if status == OrderStatus.FAILED and action in ("pay", "paying") and not repeat:
            hint = " (paying again after a failure needs support_repeat_pay=1)"
        if status == OrderStatus.PAID and action in ("pay", "paying"):
            hint = " (already paid)"
        if status == OrderStatus.EXPIRED:
            hint = f" (expired at {order.data['order_efficient_time']})"
        raise SandboxError(
            "ILLEGAL_TRANSITION",
            pay_order_no=order.pay_order_no,
            status=status,
            status_name=STATUS_NAMES[status],
            action=action,
            hint=hint,
        )

    def _record_trade(
        self, conn: Any, order: Order, action: str, pay_mode: str | None, amount: int | None
    ) -> Trade | None:
        now_ts = self.now_for(order)
        now_dt = datetime.fromtimestamp(now_ts, self.clock.tz)
        pending = next(
            (t for t in order.trades if t["trade_type"] == "PAY" and t["trade_status"] == "P"), None
        )
        if action in ("pay", "fail", "paying"):
            if pending is not None and action != "paying":
                status = "S" if action == "pay" else "F"
                pending = {
                    **pending,
                    "trade_status": status,
                    "trade_time": self.clock.format(now_ts),
                }
                if pay_mode is not None and pay_mode != pending["pay_mode"]:
                    pending.update(self._pay_fields(order, pay_mode, now_dt))  # type: ignore[typeddict-item]
                conn.execute(
                    "UPDATE trades SET data = ? WHERE trade_no = ?",
                    (_dumps(pending), pending["trade_no"]),
                )
                return pending
            mode = pay_mode or self.default_pay_mode(order)
            status = {"pay": "S", "fail": "F", "paying": "P"}[action]
            trade = self._new_trade(order, "PAY", status, order.total_amount, now_dt, now_ts)
            trade.update(self._pay_fields(order, mode, now_dt))
        elif (action == "cancel" and order.status == OrderStatus.PAID) or action == "refund":
            paid = order.last_trade("PAY")
            kind = "CANCEL" if action == "cancel" else "REFUND"
            if kind == "REFUND":
                amount = order.refundable if amount is None else amount
            else:
                amount = order.total_amount
            trade = self._new_trade(order, kind, "S", amount, now_dt, now_ts)
            if paid is not None:
                copied = (
                    "pay_mode",
                    "busi_type",
                    "user_id1",
                    "user_id2",
                    "payer_account_no",
                    "payer_name",
                    "payer_account_bank",
                    "acc_type",
                    "bank_type",
                )
                trade.update(cast(Trade, {k: paid.get(k) for k in copied}))
                trade["origin_trade_no"] = paid["trade_no"]
        elif action in ("cancel", "close", "expire") and pending is not None:
            # the payment in progress is reversed with the order
            pending = cast(
                Trade, {**pending, "trade_status": "C", "trade_time": self.clock.format(now_ts)}
            )
            conn.execute(
                "UPDATE trades SET data = ? WHERE trade_no = ?",
                (_dumps(pending), pending["trade_no"]),
            )
            return pending
        else:
            return None
        conn.execute(
            "INSERT INTO trades (pay_order_no, trade_no, data) VALUES (?, ?, ?)",
            (order.pay_order_no, trade["trade_no"], _dumps(trade)),
        )
        return trade

    def _override_trade(self, conn: Any, trade: Trade, fields: Mapping[str, Any]) -> Trade:
        merged = cast(Trade, {**trade, **{k: v for k, v in fields.items() if k in trade}})
        taken = conn.execute(
            "SELECT 1 FROM trades WHERE trade_no = ? AND trade_no != ?",
            (merged["trade_no"], trade["trade_no"]),
        ).fetchone()
        if taken or not merged.get("trade_no"):
            merged["trade_no"] = trade["trade_no"]
        conn.execute(
            "UPDATE trades SET trade_no = ?, data = ? WHERE trade_no = ?",
            (merged["trade_no"], _dumps(merged), trade["trade_no"]),
        )
        return merged

    def _new_trade(
        self, order: Order, trade_type: str, status: str, amount: int, now_dt: Any, now_ts: float
    ) -> Trade:
        return {
            **self.ids.trade_numbers(now_dt),  # type: ignore[typeddict-item]  # trade_no, log_no
            "trade_type": trade_type,
            "trade_status": status,
            "trade_amount": amount,
            "payer_amount": amount,
            "trade_time": self.clock.format(now_ts),
            "pay_mode": None,
            "busi_type": None,
            "acc_trade_no": None,
            "user_id1": None,
            "user_id2": None,
            "payer_account_no": None,
            "payer_name": None,
            "payer_account_bank": None,
            "acc_type": None,
            "bank_type": None,
            "settle_merchant_no": order.merchant_no,
            "settle_term_no": order.data.get("term_no") or None,
            "origin_trade_no": None,
        }

    def _pay_fields(self, order: Order, pay_mode: str, now_dt: Any) -> Trade:
        fields = {
            "pay_mode": pay_mode,
            "busi_type": busi_type(pay_mode),
            "acc_trade_no": self.ids.acc_trade_no(pay_mode, now_dt),
        }
        fields.update(self.ids.payer(pay_mode))
        return cast(Trade, fields)

    def _load(self, conn: Any, pay_order_no: str) -> Order:
        row = conn.execute(
            "SELECT * FROM orders WHERE pay_order_no = ?", (pay_order_no,)
        ).fetchone()
        if row is None:
            raise SandboxError("ORDER_NOT_FOUND", what=f"pay_order_no={pay_order_no}")
        trades = [
            json.loads(r["data"])
            for r in conn.execute(
                "SELECT data FROM trades WHERE pay_order_no = ? ORDER BY seq DESC", (pay_order_no,)
            )
        ]
        order = Order(
            row["seq"],
            row["pay_order_no"],
            row["merchant_no"],
            row["out_order_no"],
            row["dialect"],
            row["status"],
            row["request_hash"],
            row["created_ts"],
            row["efficient_ts"],
            row["clock_offset"],
            row["updated_ts"],
            json.loads(row["data"]),
            trades,
        )
        return self._settled(order)

    def _settled(self, order: Order) -> Order:
        """The order with the status it shows now: an open one whose time has passed is expired."""
        order.status = order.stored_status
        if order.stored_status in OPEN and self.now_for(order) >= order.efficient_ts:
            order.status = int(OrderStatus.EXPIRED)
        return order

    def _emit(self, change: Change) -> None:
        for listener in list(self.listeners):
            listener(change)


def request_hash(payload: Any) -> str:
    return hashlib.sha256(_dumps(payload).encode()).hexdigest()


# (json.dumps with these options would make an encoder each call)
_dumps = json.JSONEncoder(ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode


def requested_pay_modes(fields: Mapping[str, Any]) -> tuple[set[str], set[str]]:
    """The pay modes a create names (v1 payment_method, counter_param.pay_mode, busi_type_param
    params.pay_mode), and the busi_types it names without a pay mode."""
    modes: set[str] = set()
    busi_types: set[str] = set()
    if fields.get("payment_method"):
        modes.add(str(fields["payment_method"]))
    counter = _json_field(fields.get("counter_param"))
    if isinstance(counter, dict) and counter.get("pay_mode"):
        modes.add(str(counter["pay_mode"]))
    busi = _json_field(fields.get("busi_type_param"))
    for entry in busi if isinstance(busi, list) else []:
        if not isinstance(entry, dict):
            continue
        params = entry.get("params")
        if isinstance(params, dict) and params.get("pay_mode"):
            modes.add(str(params["pay_mode"]))
        elif entry.get("busi_type"):
            busi_types.add(str(entry["busi_type"]))
    return modes, busi_types


def _json_field(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    try:
        return strict_json(value)
    except ValueError:
        return None
