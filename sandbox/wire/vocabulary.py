"""Lakala's words, written once: order statuses, actions, pay modes, paths and success codes.

Every other module reads these names from here; none keeps its own table. An ``OrderStatus`` is
an ``int`` (Lakala's v3 ``order_status``), so ``order.status == OrderStatus.PAID`` and
``STATUS_V1[2]`` both read as the wire does.
"""

from __future__ import annotations

from enum import IntEnum


class OrderStatus(IntEnum):
    """Lakala's ``order_status``: the v3 number, the seed document's v1 name, and its labels."""

    v1: str
    short: str  # 中文, as Lakala's documents name the state (dashboard, admin API)
    zh: str  # the payer's page, in Chinese
    en: str  # the payer's page, in English

    def __new__(cls, number: int, v1: str, short: str, zh: str, en: str) -> OrderStatus:
        status = int.__new__(cls, number)
        status._value_ = number
        status.v1, status.short, status.zh, status.en = v1, short, zh, en
        return status

    @classmethod
    def of(cls, number: int | str) -> OrderStatus:
        """The status numbered ``number`` (``2`` or ``"2"``); ValueError for any other."""
        try:
            return cls._value2member_map_[int(number)]  # type: ignore[return-value]
        except (KeyError, ValueError):
            raise ValueError(f"{number!r} is not an order_status (0-7)") from None

    WAIT_PAY = 0, "WAIT_PAY", "待支付", "待支付", "Awaiting payment"
    PAYING = 1, "PAYING", "支付中", "支付中", "Payment in progress"
    PAID = 2, "SUCCESS", "支付成功", "支付成功", "Paid"
    FAILED = 3, "FAILED", "支付失败", "支付失败", "Payment failed"
    EXPIRED = 4, "EXPIRED", "已过期", "订单已过期", "Order expired"
    CANCELLED = 5, "CANCELLED", "已取消", "已取消", "Cancelled"
    REFUNDED = 6, "REFUNDED", "已退款", "已退款", "Refunded"
    CLOSED = 7, "CLOSED", "已关闭", "订单已关闭", "Order closed"


# The same facts as plain tables, keyed by the v3 number, for code that formats or validates.
STATUS_V1: dict[int, str] = {int(s): s.v1 for s in OrderStatus}
STATUS_NAMES: dict[int, str] = {int(s): s.short for s in OrderStatus}
STATUS_TEXT: dict[int, tuple[str, str]] = {int(s): (s.zh, s.en) for s in OrderStatus}
# States a payer can still pay from (before ``order_efficient_time``).
OPEN: tuple[int, ...] = (int(OrderStatus.WAIT_PAY), int(OrderStatus.PAYING))

# What can happen to an order (the engine's transitions; the admin API and dashboard offer them).
ACTIONS = ("paying", "pay", "fail", "cancel", "close", "expire", "refund")
# The actions whose trade has a pay mode (a pay_mode given to another is refused, not ignored).
PAY_MODE_ACTIONS = ("paying", "pay", "fail")
# The changes Lakala notifies a merchant of.
NOTIFIED_ACTIONS = ("pay", "fail", "refund", "cancel")

# Pay modes: (中文, English) names, as the counter page shows them.
PAY_MODE_NAMES: dict[str, tuple[str, str]] = {
    "ALIPAY": ("支付宝", "Alipay"),
    "WECHAT": ("微信支付", "WeChat Pay"),
    "UNION": ("银联云闪付", "UnionPay QuickPass"),
    "CARD": ("POS刷卡", "Card (POS)"),
    "LKLAT": ("线上转账", "Online transfer"),
    "QUICK_PAY": ("快捷支付", "Quick pay"),
    "EBANK": ("网银支付", "Online banking"),
    "UNION_CC": ("银联支付", "UnionPay card"),
    "BESTPAY": ("翼支付", "Bestpay"),
    "HB_FQ": ("花呗分期", "Huabei instalments"),
    "UNION_FQ": ("银联聚分期", "UnionPay instalments"),
    "ONLINE_CARDLESS": ("线上外卡", "Foreign card online"),
    "JDBT": ("京东白条", "JD Baitiao"),
    "ALIPAY_HK": ("支付宝香港钱包", "AlipayHK"),
}
# Modes paid with a card (the payer page asks for a card; refunds of them take card fields).
CARD_MODES = frozenset(
    {"CARD", "QUICK_PAY", "UNION_CC", "UNION_FQ", "EBANK", "ONLINE_CARDLESS", "LKLAT"}
)
# ``busi_type`` of a pay mode (Lakala's notify and busi_type_param); a mode not listed is SCPAY.
BUSI_TYPE: dict[str, str] = {
    "CARD": "UPCARD",
    "UNION_CC": "UPCARD",
    "UNION_FQ": "UPCARD",
    "QUICK_PAY": "QUICK_PAY",
    "EBANK": "EBANK",
    "LKLAT": "ONLINE",
    "ONLINE_CARDLESS": "ONLINE",
}


def busi_type(pay_mode: str) -> str:
    return BUSI_TYPE.get(pay_mode, "SCPAY")


# Paths.
V1_PREFIX = "/api/v1/"
V3_PREFIX = "/api/v3/"
V1_COUNTER_PREFIX = "/api/v1/payment/lakala/counter/"
COUNTER_PREFIX = "/api/v3/ccss/counter/order/"
REFUND_PREFIX = "/api/v3/rfd/refund_front/"
# the other refund APIs Lakala's SDKs call for counter orders, each by its own path
REFUND_PATHS = {
    "relation_refund": "/api/v3/labs/relation/refund",
    "trade_refund": "/api/v3/lams/trade/trade_refund",
    "trade_refund_query": "/api/v3/lams/trade/trade_refund_query",
    "idmrefund": "/api/v3/labs/relation/idmrefund",
    "idmrefundquery": "/api/v3/labs/query/idmrefundquery",
}
ENCRYPTED_CREATE = "special_create_encry"  # special_create with the whole body SM4-encrypted
# a path whose body is another's, encrypted: its messages are checked as that one's
ENCRYPTED_OF = {ENCRYPTED_CREATE: "special_create"}
COUNTER_PAGE = "/b/pay"  # the hosted counter page a create's counter_url points at

# A call that worked: the code both dialects answer, and its message.
SUCCESS = "000000"
OK_MSG = "操作成功"

# The fields of a v3 request's ``Authorization: LKLAPI-SHA256withRSA ...`` header.
REQUEST_AUTH_FIELDS = ("appid", "serial_no", "timestamp", "nonce_str", "signature")
