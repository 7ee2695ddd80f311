"""What a notify says: Lakala's v3 notify body, or the seed's v1 body, for an order and a trade.

Built once, when the change happens (so a notify held back still reports the state it was made
for), and validated against ``v3/notify`` / ``v1/notify``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from typing import Any

from cryptography.hazmat.primitives.asymmetric import rsa

from sandbox import __version__
from sandbox.core.engine import Order
from sandbox.core.settings import Settings
from sandbox.wire import signing
from sandbox.wire.envelopes import strict_json
from sandbox.wire.schemas import Schemas
from sandbox.wire.vocabulary import STATUS_V1, OrderStatus

V3_ACK_SCHEMA = "v3/notify_ack"
V1_ACK_SCHEMA = "v1/notify_ack"
STALE_SECONDS = 3600
TRADE_FIELDS = (
    "trade_no",
    "log_no",
    "trade_ref_no",
    "trade_type",
    "trade_status",
    "trade_amount",
    "payer_amount",
    "user_id1",
    "user_id2",
    "busi_type",
    "trade_time",
    "acc_trade_no",
    "payer_account_no",
    "payer_name",
    "payer_account_bank",
    "acc_type",
    "pay_mode",
    "settle_merchant_no",
    "settle_term_no",
    "origin_trade_no",
    "bank_type",
)


def schema_name(dialect: str) -> str:
    return "v1/notify" if dialect == "v1" else "v3/notify"


def ack_schema(dialect: str) -> str:
    return V1_ACK_SCHEMA if dialect == "v1" else V3_ACK_SCHEMA


def ack_text(dialect: str) -> str:
    return '{"code":"000000",...}' if dialect == "v1" else '{"code":"SUCCESS",...}'


def build(
    settings: Settings,
    order: Order,
    trade: Mapping[str, Any] | None,
    now14: str,
    *,
    reason: str | None = None,
) -> dict[str, Any]:
    """The body for ``order`` in its own dialect; ``trade`` is what the notify reports."""
    if order.dialect == "v1":
        return v1_body(order, trade, now14)
    if trade is None:
        raise ValueError("a v3 notify reports a trade")
    return v3_body(settings, order, trade, reason=reason)


def v3_body(
    settings: Settings, order: Order, trade: Mapping[str, Any], *, reason: str | None = None
) -> dict[str, Any]:
    """Shaped as Lakala sends it: keys in alphabetical order, fields without a value left out,
    order amounts as numbers, the ``acc_*`` amounts as strings (``""`` for no discount)."""
    d = order.data
    term_no = d.get("term_no") or settings.term_no
    info = {k: trade.get(k) for k in TRADE_FIELDS}
    info["settle_term_no"] = info["settle_term_no"] or term_no
    info["trade_remark"] = reason or trade.get("trade_remark") or ""  # (kept with the trade)
    if trade.get("trade_type") == "PAY" and trade.get("trade_status") == "S":
        info.update(
            {
                "acc_settle_amount": str(trade["trade_amount"]),
                "acc_mdiscount_amount": "",
                "acc_discount_amount": "",
                "acc_other_discount_amount": "",
            }
        )
    body = {
        "pay_order_no": order.pay_order_no,
        "out_order_no": order.out_order_no,
        "channel_id": str(d.get("channel_id") or settings.channel_id),
        "merchant_no": order.merchant_no,
        "term_no": term_no,
        "trans_merchant_no": order.merchant_no,
        "trans_term_no": term_no,
        "order_status": str(order.status),
        "order_info": d.get("order_info"),
        "total_amount": order.total_amount,
        "order_create_time": d["order_create_time"],
        "order_efficient_time": d["order_efficient_time"],
        "split_mark": None if d.get("split_mark") is None else str(d["split_mark"]),
        "counter_remark": d.get("counter_remark"),
        "order_trade_info": _present(info),
    }
    return _present(body)


def _present(fields: dict[str, Any]) -> dict[str, Any]:
    """``fields`` without those that have no value, keys sorted."""
    return {k: fields[k] for k in sorted(fields) if fields[k] is not None}


def v1_body(order: Order, trade: Mapping[str, Any] | None, now14: str) -> dict[str, Any]:
    paid = (
        trade if trade is not None and trade.get("trade_type") == "PAY" else order.last_trade("PAY")
    )
    return {
        "out_order_no": order.out_order_no,
        "pay_order_no": order.pay_order_no,
        "order_status": STATUS_V1[order.status],
        "total_amount": str(order.total_amount),
        "resp_time": now14,
        "merchant_no": order.merchant_no,
        "pay_mode": paid["pay_mode"] if paid else None,
        "trade_no": paid["trade_no"] if paid else None,
        "trade_time": paid["trade_time"] if paid else None,
        "order_info": order.data.get("order_info"),
        "refund_amount": str(order.refunded) if order.status == OrderStatus.REFUNDED else None,
    }


def tamper_amount(body: dict[str, Any]) -> dict[str, Any]:
    """The same body claiming another amount: 1 fen (or 100 when it was 1)."""
    changed = dict(body)
    original = int(body["total_amount"])
    forged = 100 if original == 1 else 1
    changed["total_amount"] = str(forged) if isinstance(body["total_amount"], str) else forged
    return changed


def ack_problem(
    schemas: Schemas, dialect: str, status: int | None, answer: str | None
) -> str | None:
    """None when ``answer`` is the dialect's success ack (with a 2xx status), else why not."""
    expected = ack_text(dialect)
    if status is None or not 200 <= status < 300:
        return f"HTTP {status}: only a 2xx answer with {expected} acknowledges"
    try:
        data = strict_json(answer or "")
    except ValueError:
        return f"the answer is not JSON; expected {expected}"
    problems = schemas.problems(ack_schema(dialect), data)
    if problems:
        return f"the answer is not the ack {expected}: {problems[0]}"
    return None


def prepare(
    key: rsa.RSAPrivateKey,
    body: dict[str, Any],
    *,
    signature: str = "valid",
    tamper: str | None = None,
) -> tuple[dict[str, str], bytes, bytes]:
    """(headers, bytes to send, signed string) for one attempt. ``signature`` bad: signed over
    other bytes; stale: a timestamp an hour old. ``tamper`` amount: changed after signing."""
    signed_body = encode(body)
    sent = encode(tamper_amount(body)) if tamper == "amount" else signed_body
    timestamp = int(time.time()) - (STALE_SECONDS if signature == "stale" else 0)
    signed_over = signed_body + (b" " if signature == "bad" else b"")
    header, signed = signing.notify_authorization(key, signed_over, timestamp=str(timestamp))
    headers = {
        "Content-Type": "application/json; charset=utf-8",
        "Authorization": header,
        "User-Agent": f"lakala-sandbox/{__version__}",
    }
    return headers, sent, signed


def encode(body: dict[str, Any]) -> bytes:
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
