"""The refund APIs Lakala's SDKs call through their typed classes, on the rules of
``sandbox.server.refunds``:

- ``labs/relation/refund`` (聚合扫码-退款交易, the PHP SDK's ``RelationRefundApi``);
- ``lams/trade/trade_refund`` (统一退货) and its query ``lams/trade/trade_refund_query``;
- ``labs/relation/idmrefund`` (商户订单退款) and its query ``labs/query/idmrefundquery``.

The PHP SDK sends every key of its typed request, ``null`` where unset, and its examples send unused
``origin_*`` fields as ``""``: those count as absent (``drop_absent``).
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request

from sandbox.core.engine import Order, ScenarioChoice, Trade
from sandbox.core.refunds import RefundRow
from sandbox.runtime import Sandbox
from sandbox.server import refunds
from sandbox.wire.errors import SandboxError


def drop_absent(req_data: Any) -> Any:
    """``req_data`` without its ``null`` and ``""`` values (in ``location_info`` too)."""
    if not isinstance(req_data, dict):
        return req_data
    kept = {k: drop_absent(v) for k, v in req_data.items() if v is not None and v != ""}
    return kept


# -- 聚合扫码-退款交易 (scan refund) ---------------------------------------------------------
def relation_refund(
    sb: Sandbox, request: Request, req: dict[str, Any], _scenario: ScenarioChoice | None
) -> dict[str, Any]:
    order, trade, row = refunds.make_refund(
        sb, req, api="relation_refund", out_trade_no=str(req["out_trade_no"])
    )
    return relation_data(order, trade, row)


def relation_data(order: Order, trade: Trade, row: RefundRow) -> dict[str, Any]:
    data = {
        "trade_state": refunds.trade_state(trade),
        "merchant_no": order.merchant_no,
        "out_trade_no": row.out_trade_no,
        "trade_no": trade["trade_no"],
        "log_no": trade["log_no"],
        "acc_trade_no": trade.get("acc_trade_no"),
        "account_type": refunds.ACCOUNT_TYPE.get(str(trade.get("pay_mode"))),
        "total_amount": str(order.total_amount),
        "refund_amount": str(trade["trade_amount"]),
        "payer_amount": str(trade["payer_amount"]),
        "trade_time": trade["trade_time"],
        "origin_trade_no": trade.get("origin_trade_no"),
        "origin_out_trade_no": order.out_order_no,
    }
    return {k: v for k, v in data.items() if v is not None}


# -- 商户订单退款 (merchant-order refund) -----------------------------------------------------
def idmrefund(
    sb: Sandbox, request: Request, req: dict[str, Any], _scenario: ScenarioChoice | None
) -> dict[str, Any]:
    order, trade, row = refunds.make_refund(
        sb, req, api="idmrefund", out_trade_no=str(req["out_refund_order_no"])
    )
    return {"out_refund_order_no": row.out_trade_no, **relation_data(order, trade, row)}


def idmrefundquery(
    sb: Sandbox, request: Request, req: dict[str, Any], _scenario: ScenarioChoice | None
) -> dict[str, Any]:
    order, trade, row = _named(sb, str(req["merchant_no"]), str(req["out_refund_order_no"]))
    return {"out_refund_order_no": row.out_trade_no, **relation_data(order, trade, row)}


# -- 统一退货 (unified refund) ---------------------------------------------------------------
def trade_refund(
    sb: Sandbox, request: Request, req: dict[str, Any], _scenario: ScenarioChoice | None
) -> dict[str, Any]:
    if req.get("origin_trade_no") is None and req.get("origin_log_no") is None:
        raise SandboxError(
            "INVALID_PARAM",
            field="req_data.origin_card_no",
            rule="names a card, not one payment: give the counter payment's origin_trade_no "
            "or origin_log_no",
        )

    def check(order: Order, payment: Trade) -> None:
        _check_date(req, payment)

    order, trade, row = refunds.make_refund(
        sb, req, api="trade_refund", out_trade_no=str(req["out_trade_no"]), check=check
    )
    data = {
        "trade_state": refunds.trade_state(trade),
        "merchant_no": order.merchant_no,
        "out_trade_no": row.out_trade_no,
        "trade_no": trade["trade_no"],
        "log_no": trade["log_no"],
        "trade_time": trade["trade_time"],
        "total_amount": str(order.total_amount),
        "payer_amount": str(trade["payer_amount"]),
        "refund_amount": str(trade["trade_amount"]),
        "acc_trade_no": trade.get("acc_trade_no"),
        "origin_trade_no": req.get("origin_trade_no"),
        "origin_log_no": req.get("origin_log_no"),
        "origin_out_trade_no": order.out_order_no,
    }
    return {k: v for k, v in data.items() if v is not None}


def trade_refund_query(
    sb: Sandbox, request: Request, req: dict[str, Any], _scenario: ScenarioChoice | None
) -> dict[str, Any]:
    merchant_no = str(req["merchant_no"])
    order, trade, row = _named(sb, merchant_no, str(req["out_trade_no"]))
    payment = refunds.payment_of(order)
    for field, value in (
        ("origin_trade_no", payment["trade_no"]),
        ("origin_trade_ref_no", payment.get("trade_ref_no")),
        ("origin_out_trade_no", order.out_order_no),
        ("pay_order_no", order.pay_order_no),
    ):
        if req.get(field) is not None and str(req[field]) != value:
            raise SandboxError(
                "ORDER_NOT_FOUND",
                what=f"refund out_trade_no={row.out_trade_no} of the payment "
                f"{field}={req[field]} (it refunds {field}={value})",
            )
    _check_date(req, payment)
    item = {
        "out_trade_no": row.out_trade_no,
        "trade_time": trade["trade_time"],
        "trade_state": refunds.trade_state(trade),
        "trade_no": trade["trade_no"],
        "log_no": trade["log_no"],
        "refund_amount": str(trade["trade_amount"]),
        "payer_amount": str(trade["payer_amount"]),
        "bank_type": trade.get("bank_type"),
        **refunds.payer_fields(trade),
    }
    return {"refund_list": [{k: v for k, v in item.items() if v is not None}]}


def _check_date(req: dict[str, Any], payment: Trade) -> None:
    """``origin_trade_date`` is the payment's date on the sandbox's (Beijing) clock."""
    paid_on = str(payment["trade_time"])[:8]
    if str(req["origin_trade_date"]) != paid_on:
        raise SandboxError(
            "INVALID_PARAM",
            field="req_data.origin_trade_date",
            rule=f"must be the payment's date in Beijing time, {paid_on} "
            f"(got {req['origin_trade_date']})",
        )


def _named(sb: Sandbox, merchant_no: str, number: str) -> tuple[Order, Trade, RefundRow]:
    with sb.store.transaction() as conn:
        found = refunds.refund_named(sb, conn, merchant_no, number)
    if found is None:
        raise SandboxError("ORDER_NOT_FOUND", what=f"refund {number} of merchant {merchant_no}")
    return found
