"""Lakala's refund API for counter orders: ``/api/v3/rfd/refund_front/{refund,refund_query}``.

A refund names the payment by its ``trade_no``, its ``log_no`` or the order's ``out_order_no``
(as ``origin_out_trade_no``), and takes all or part of what is left of it. Each refund is a REFUND
trade on the order, which moves to 6 (部分退款或者全部退款) and is notified like any refund. The
merchant's ``out_trade_no`` names the refund: a repeat of the same request returns the same
refund, a different request with the same ``out_trade_no`` is refused.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request

from sandbox.core.engine import Order, ScenarioChoice, request_hash
from sandbox.runtime import Sandbox
from sandbox.wire.errors import SandboxError
from sandbox.wire.vocabulary import CARD_MODES, REFUND_PREFIX

PREFIX = REFUND_PREFIX
DONE = "RFD00000#成功"
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
PRIVATE = "_refund"  # a REFUND trade's bookkeeping: the request's out_trade_no and fingerprint


def refund(
    sb: Sandbox, request: Request, req: dict[str, Any], _scenario: ScenarioChoice | None
) -> dict[str, Any]:
    merchant_no, out_trade_no = str(req["merchant_no"]), str(req["out_trade_no"])
    digest = request_hash(req)
    with sb.store.transaction() as conn:
        earlier = _refund_named(sb, conn, merchant_no, out_trade_no)
        if earlier is not None:
            order, trade = earlier
            if trade[PRIVATE]["request_hash"] != digest:
                raise SandboxError(
                    "REFUND_EXISTS", out_trade_no=out_trade_no, merchant_no=merchant_no
                )
            return refund_data(order, trade, req)
        order = sb.engine.apply(
            _paid_order(sb, conn, merchant_no, req).pay_order_no,
            "refund",
            source="api",
            amount=int(req["refund_amount"]),
            amount_field="req_data.refund_amount",
            options={"reason": req["refund_reason"]} if req.get("refund_reason") else {},
            # the request's own number and fingerprint, kept out of what the query shows
            notes={PRIVATE: {"out_trade_no": out_trade_no, "request_hash": digest}},
        )
        made = order.last_trade("REFUND")
        assert made is not None
    return refund_data(order, made, req)


def refund_query(
    sb: Sandbox, request: Request, req: dict[str, Any], _scenario: ScenarioChoice | None
) -> dict[str, Any]:
    merchant_no = str(req["merchant_no"])
    with sb.store.transaction() as conn:
        if req.get("out_trade_no") is not None:
            found = _refund_named(sb, conn, merchant_no, str(req["out_trade_no"]))
        else:
            found = _one_refund(
                sb,
                conn,
                "t.trade_no = ? AND o.merchant_no = ?",
                (str(req["trade_no"]), merchant_no),
            )
    if found is None or (
        req.get("trade_no") is not None and found[1]["trade_no"] != str(req["trade_no"])
    ):
        what = ", ".join(f"{k}={req[k]}" for k in ("out_trade_no", "trade_no") if k in req)
        raise SandboxError("ORDER_NOT_FOUND", what=f"refund {what} of merchant {merchant_no}")
    order, trade = found
    data = {
        "out_trade_no": trade.get(PRIVATE, {}).get("out_trade_no"),  # none from the admin API
        "trade_time": trade["trade_time"],
        "trade_state": "SUCCESS",
        "trade_no": trade["trade_no"],
        "log_no": trade["log_no"],
        "acc_trade_no": trade.get("acc_trade_no"),
        "refund_amount": str(trade["trade_amount"]),
        "payer_amount": str(trade["payer_amount"]),
        "channel_ret_desc": DONE,
        **_payer(trade),
    }
    return {k: v for k, v in data.items() if v is not None}


def refund_data(order: Order, trade: dict[str, Any], req: dict[str, Any]) -> dict[str, Any]:
    data = {
        "trade_state": "SUCCESS",
        "refund_type": REFUND_TYPE,
        "merchant_no": order.merchant_no,
        "out_trade_no": trade[PRIVATE]["out_trade_no"],
        "trade_no": trade["trade_no"],
        "log_no": trade["log_no"],
        "acc_trade_no": trade.get("acc_trade_no"),
        "account_type": ACCOUNT_TYPE.get(str(trade.get("pay_mode"))),
        "total_amount": str(order.total_amount),
        "refund_amount": str(trade["trade_amount"]),
        "payer_amount": str(trade["payer_amount"]),
        "trade_time": trade["trade_time"],
        **{k: req[k] for k in ORIGINS if k in req},
        "channel_ret_desc": DONE,
    }
    return {k: v for k, v in data.items() if v is not None}


def _payer(trade: dict[str, Any]) -> dict[str, Any]:
    """The refund query's payer fields: the card for a card payment, else the wallet."""
    if trade.get("pay_mode") in CARD_MODES:
        return {"pay_mode": trade.get("acc_type"), "crd_no": trade.get("payer_account_no")}
    return {"account_type": ACCOUNT_TYPE.get(str(trade.get("pay_mode")))}


def _paid_order(sb: Sandbox, conn: Any, merchant_no: str, req: dict[str, Any]) -> Order:
    """The order whose payment ``req`` names, checked against every origin it gives."""
    orders = set()
    for field, sql in (
        ("origin_trade_no", "SELECT pay_order_no, data FROM trades WHERE trade_no = ?"),
        (
            "origin_log_no",
            "SELECT pay_order_no, data FROM trades WHERE json_extract(data, '$.log_no') = ?",
        ),
    ):
        if req.get(field) is None:
            continue
        rows = [r for r in conn.execute(sql, (str(req[field]),)).fetchall() if _took_money(r)]
        if not rows:
            raise SandboxError("ORDER_NOT_FOUND", what=f"payment {field}={req[field]}")
        orders.add(rows[0]["pay_order_no"])
    if req.get("origin_out_trade_no") is not None:
        orders.add(
            sb.engine.find(merchant_no, out_order_no=str(req["origin_out_trade_no"])).pay_order_no
        )
    given = ", ".join(f"{k}={req[k]}" for k in ORIGINS if k in req)
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


def _refund_named(
    sb: Sandbox, conn: Any, merchant_no: str, out_trade_no: str
) -> tuple[Order, dict[str, Any]] | None:
    return _one_refund(
        sb,
        conn,
        f"json_extract(t.data, '$.{PRIVATE}.out_trade_no') = ? AND o.merchant_no = ?",
        (out_trade_no, merchant_no),
    )


def _one_refund(
    sb: Sandbox, conn: Any, where: str, params: tuple[str, ...]
) -> tuple[Order, dict[str, Any]] | None:
    row = conn.execute(
        "SELECT t.pay_order_no, t.data FROM trades t JOIN orders o USING (pay_order_no) "
        f"WHERE {where} AND json_extract(t.data, '$.trade_type') = 'REFUND'",
        params,
    ).fetchone()
    if row is None:
        return None
    return sb.engine.get(row["pay_order_no"]), json.loads(row["data"])
