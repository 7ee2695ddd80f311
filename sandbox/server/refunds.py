"""Lakala's refund APIs for counter orders: ``/api/v3/rfd/refund_front/{refund,refund_query}``,
and the ones Lakala's SDKs call by their typed classes: ``labs/relation/refund`` (聚合扫码-退款),
``lams/trade/trade_refund`` + ``trade_refund_query`` (统一退货) and ``labs/relation/idmrefund`` +
``labs/query/idmrefundquery`` (商户订单退款). All share one set of rules and one refunds table, so a
refund made through one is found by the queries of the others.

A refund names the payment by its ``trade_no``, its ``log_no`` or the order's ``out_order_no``
(as ``origin_out_trade_no``), and takes all or part of what is left of it. Each refund is a REFUND
trade on the order, which moves to 6 (部分退款或者全部退款) and is notified like any refund. The
merchant's ``out_trade_no`` names the refund: a repeat of the same request returns the same
refund, a different request with the same ``out_trade_no`` is refused.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from starlette.requests import Request

from sandbox.core.engine import Order, ScenarioChoice, Trade, request_hash
from sandbox.core.refunds import Outcome, RefundRow
from sandbox.runtime import Sandbox
from sandbox.wire.errors import SandboxError
from sandbox.wire.vocabulary import CARD_MODES, REFUND_PREFIX

PREFIX = REFUND_PREFIX
DONE = "RFD00000#成功"
# channel_ret_desc by trade_state, for refunds an outcome made fail or wait
RET_DESC = {"SUCCESS": DONE, "FAIL": "RFD10001#失败", "PROCESSING": "RFD00001#处理中"}
REFUND_TYPE = "00"
# the wallet a scan payment came from, as the refund API names it
ACCOUNT_TYPE = {
    "ALIPAY": "ALIPAY",
    "ALIPAY_HK": "ALIPAY",
    "HB_FQ": "ALIPAY",
    "WECHAT": "WECHAT",
    "UNION": "UQRCODEPAY",
    "BESTPAY": "BESTPAY",
}
ORIGINS = ("origin_trade_no", "origin_log_no", "origin_out_trade_no")
# every field a refund API may name its payment by
ALL_ORIGINS = (*ORIGINS, "origin_trade_ref_no")


def refund(
    sb: Sandbox, request: Request, req: dict[str, Any], _scenario: ScenarioChoice | None
) -> dict[str, Any]:
    order, trade, row = make_refund(sb, req, api="refund", out_trade_no=str(req["out_trade_no"]))
    return refund_data(order, trade, row, req)


Check = Callable[[Order, Trade], None]


def make_refund(
    sb: Sandbox,
    req: dict[str, Any],
    *,
    api: str,
    out_trade_no: str,
    check: Check | None = None,
) -> tuple[Order, Trade, RefundRow]:
    """The refund ``req`` asks for: made now, or the earlier one an identical repeat names.

    ``check(order, payment)`` refuses what an API asks beyond the shared rules (a date, say)."""
    merchant_no = str(req["merchant_no"])
    digest = request_hash(req)
    with sb.store.transaction() as conn:
        earlier = refund_named(sb, conn, merchant_no, out_trade_no)
        if earlier is not None:
            order, trade, row = earlier
            if row.request_hash != digest:
                raise SandboxError(
                    "REFUND_EXISTS", out_trade_no=out_trade_no, merchant_no=merchant_no
                )
            return order, trade, row
        paid = _paid_order(sb, conn, merchant_no, req)
        if check is not None:
            check(paid, payment_of(paid))
        outcome = sb.refunds.take(conn, paid.pay_order_no) or Outcome("success")
        options: dict[str, Any] = {}
        reason = req.get("refund_reason")
        if outcome.status == "F":
            reason = outcome.reason or "refund failed (the order's refund outcome)"
        if reason:
            options["reason"] = reason
        if outcome.status == "P":
            options["notify"] = "never"  # Lakala notifies a refund's result, not that it began
        order = sb.engine.apply(
            paid.pay_order_no,
            "refund",
            source="api",
            amount=int(req["refund_amount"]),
            amount_field="req_data.refund_amount",
            options=options,
            refund_status=outcome.status,
        )
        made = order.last_trade("REFUND")
        assert made is not None
        row = sb.refunds.record(
            conn,
            trade_no=made["trade_no"],
            pay_order_no=order.pay_order_no,
            merchant_no=merchant_no,
            out_trade_no=out_trade_no,
            api=api,
            request_hash=digest,
            settle_ts=sb.engine.now_for(order) + outcome.after if outcome.status == "P" else None,
            settle_to=outcome.settles_to if outcome.status == "P" else None,
            settle_reason=outcome.reason if outcome.status == "P" else None,
        )
    if outcome.status == "P":
        sb.scheduler.wake()
    return order, made, row


def payment_of(order: Order) -> Trade:
    """The order's payment: the PAY trade that took the money."""
    return next(t for t in order.trades if t["trade_type"] == "PAY" and t["trade_status"] == "S")


def trade_state(trade: Trade) -> str:
    """A REFUND trade's state as the refund APIs name it."""
    return {"S": "SUCCESS", "F": "FAIL"}.get(str(trade.get("trade_status")), "PROCESSING")


def refund_query(
    sb: Sandbox, request: Request, req: dict[str, Any], _scenario: ScenarioChoice | None
) -> dict[str, Any]:
    merchant_no = str(req["merchant_no"])
    found: Found | None
    with sb.store.transaction() as conn:
        if req.get("out_trade_no") is not None:
            found = refund_named(sb, conn, merchant_no, str(req["out_trade_no"]))
        else:
            found = _refund_by_trade_no(sb, conn, merchant_no, str(req["trade_no"]))
    if found is None or (
        req.get("trade_no") is not None and found[1]["trade_no"] != str(req["trade_no"])
    ):
        what = ", ".join(f"{k}={req[k]}" for k in ("out_trade_no", "trade_no") if k in req)
        raise SandboxError("ORDER_NOT_FOUND", what=f"refund {what} of merchant {merchant_no}")
    order, trade, row = found
    data = {
        "out_trade_no": row.out_trade_no if row else None,  # none from the admin API
        "trade_time": trade["trade_time"],
        "trade_state": trade_state(trade),
        "trade_no": trade["trade_no"],
        "log_no": trade["log_no"],
        "acc_trade_no": trade.get("acc_trade_no"),
        "refund_amount": str(trade["trade_amount"]),
        "payer_amount": str(trade["payer_amount"]),
        "channel_ret_desc": RET_DESC[trade_state(trade)],
        **payer_fields(trade),
    }
    return {k: v for k, v in data.items() if v is not None}


def refund_data(order: Order, trade: Trade, row: RefundRow, req: dict[str, Any]) -> dict[str, Any]:
    data = {
        "trade_state": trade_state(trade),
        "refund_type": REFUND_TYPE,
        "merchant_no": order.merchant_no,
        "out_trade_no": row.out_trade_no,
        "trade_no": trade["trade_no"],
        "log_no": trade["log_no"],
        "acc_trade_no": trade.get("acc_trade_no"),
        "account_type": ACCOUNT_TYPE.get(str(trade.get("pay_mode"))),
        "total_amount": str(order.total_amount),
        "refund_amount": str(trade["trade_amount"]),
        "payer_amount": str(trade["payer_amount"]),
        "trade_time": trade["trade_time"],
        **{k: req[k] for k in ORIGINS if k in req},
        "channel_ret_desc": RET_DESC[trade_state(trade)],
    }
    return {k: v for k, v in data.items() if v is not None}


def payer_fields(trade: Trade) -> dict[str, Any]:
    """The refund query's payer fields: the card for a card payment, else the wallet."""
    if trade.get("pay_mode") in CARD_MODES:
        return {"pay_mode": trade.get("acc_type"), "crd_no": trade.get("payer_account_no")}
    return {"account_type": ACCOUNT_TYPE.get(str(trade.get("pay_mode")))}


def _paid_order(sb: Sandbox, conn: Any, merchant_no: str, req: dict[str, Any]) -> Order:
    """The order whose payment ``req`` names, checked against every origin it gives."""
    orders = set()
    for field, rows in (
        (
            "origin_trade_no",
            lambda v: conn.execute(
                "SELECT pay_order_no, data FROM trades WHERE trade_no = ?", (v,)
            ).fetchall(),
        ),
        ("origin_log_no", lambda v: sb.refunds.trades_with(conn, "log_no", v)),
        ("origin_trade_ref_no", lambda v: sb.refunds.trades_with(conn, "trade_ref_no", v)),
    ):
        if req.get(field) is None:
            continue
        paid = [r for r in rows(str(req[field])) if _took_money(r)]
        if not paid:
            raise SandboxError("ORDER_NOT_FOUND", what=f"payment {field}={req[field]}")
        orders.add(paid[0]["pay_order_no"])
    if req.get("origin_out_trade_no") is not None:
        orders.add(
            sb.engine.find(merchant_no, out_order_no=str(req["origin_out_trade_no"])).pay_order_no
        )
    given = ", ".join(f"{k}={req[k]}" for k in ALL_ORIGINS if k in req)
    if len(orders) != 1:
        raise SandboxError("ORDER_NOT_FOUND", what=f"one payment for {given}")
    order = sb.engine.get(orders.pop())
    if order.merchant_no != merchant_no:
        raise SandboxError("ORDER_NOT_FOUND", what=f"{given} for merchant_no={merchant_no}")
    return order


def _took_money(row: Any) -> bool:
    """A payment that was made: not a failed, pending or reversed attempt."""
    trade = json.loads(row["data"])
    return bool(trade["trade_type"] == "PAY" and trade["trade_status"] == "S")


Found = tuple[Order, Trade, RefundRow | None]


def refund_named(
    sb: Sandbox, conn: Any, merchant_no: str, out_trade_no: str
) -> tuple[Order, Trade, RefundRow] | None:
    """The refund the merchant numbered ``out_trade_no``, through the refunds table's index."""
    row = sb.refunds.named(conn, merchant_no, out_trade_no)
    if row is None:
        return None
    order = sb.engine.get(row.pay_order_no)
    trade = next(t for t in order.trades if t["trade_no"] == row.trade_no)
    return order, trade, row


def _refund_by_trade_no(sb: Sandbox, conn: Any, merchant_no: str, trade_no: str) -> Found | None:
    """A REFUND trade by its trade_no (made by a refund API, the admin API or the page)."""
    found = conn.execute(
        "SELECT t.pay_order_no FROM trades t JOIN orders o USING (pay_order_no) "
        "WHERE t.trade_no = ? AND o.merchant_no = ?",
        (trade_no, merchant_no),
    ).fetchone()
    if found is None:
        return None
    order = sb.engine.get(found["pay_order_no"])
    trade = next(t for t in order.trades if t["trade_no"] == trade_no)
    if trade["trade_type"] != "REFUND":
        return None
    return order, trade, sb.refunds.by_trade_no(conn, trade_no)
