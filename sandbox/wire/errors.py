"""Every error the sandbox answers with: one table, one exception type.

Business errors travel as HTTP 200 in the dialect's envelope (as Lakala does); transport errors
use their HTTP status. The README's error table is printed from ``ERRORS``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

# The name of every error below: a misspelt name is a type error, not a KeyError at run time
# (tests/wire/test_errors_table.py holds it to ERRORS).
ErrorName = Literal[
    "INVALID_PARAM",
    "EFFICIENT_TIME_BEFORE_CLOCK",
    "ORDER_EXISTS",
    "ORDER_NOT_FOUND",
    "ILLEGAL_TRANSITION",
    "PAY_MODE_NOT_ALLOWED",
    "REFUND_EXISTS",
    "SIGNATURE_MISSING",
    "SIGNATURE_INVALID",
    "SIGNATURE_EXPIRED",
    "UNKNOWN_APP",
    "UNAUTHORIZED",
    "ADMIN_FORBIDDEN",
    "ORIGIN_NOT_ALLOWED",
    "HOST_NOT_ALLOWED",
    "NOT_JSON",
    "BODY_TOO_LARGE",
    "METHOD_NOT_ALLOWED",
    "NOT_FOUND",
    "SERVICE_UNAVAILABLE",
    "UPSTREAM_ERROR",
    "UPSTREAM_INVALID",
    "SCENARIO_ERROR",
    "SCENARIO_NOT_FOUND",
    "NO_NOTIFY_URL",
    "NOTHING_TO_NOTIFY",
    "NOTIFY_NOT_FOUND",
    "INTERNAL",
]


@dataclass(frozen=True)
class ErrorKind:
    name: ErrorName
    code: str
    http_status: int
    business: bool
    message: str
    meaning: str

    def status_for_api(self) -> int:
        return 200 if self.business else self.http_status


def _kind(
    name: ErrorName, code: str, http: int, business: bool, message: str, meaning: str
) -> ErrorKind:
    return ErrorKind(name, code, http, business, message, meaning)


ERRORS: dict[ErrorName, ErrorKind] = {
    k.name: k
    for k in [
        _kind(
            "INVALID_PARAM",
            "SBX10001",
            400,
            True,
            "参数错误 invalid parameter: {field}: {rule}",
            "A field breaks its schema rule; the message names the field and the rule.",
        ),
        _kind(
            "EFFICIENT_TIME_BEFORE_CLOCK",
            "SBX10002",
            400,
            True,
            "参数错误 invalid parameter: {field}: {value} is not later than the sandbox time "
            "{now} (the sandbox clock is {ahead} ahead of wall time; "
            "POST /sandbox/api/clock/reset to go back)",
            "order_efficient_time is before a sandbox clock that was advanced.",
        ),
        _kind(
            "ORDER_EXISTS",
            "SBX20001",
            409,
            True,
            "订单号重复 out_order_no {out_order_no} already exists for merchant {merchant_no} "
            "with a different request; an identical repeat returns the original order",
            "Same out_order_no, different body. Nothing was changed.",
        ),
        _kind(
            "ORDER_NOT_FOUND",
            "SBX20002",
            404,
            True,
            "订单不存在 order not found: {what}",
            "No order with that out_order_no / pay_order_no for that merchant.",
        ),
        _kind(
            "ILLEGAL_TRANSITION",
            "SBX20003",
            409,
            True,
            "订单状态不允许此操作 order {pay_order_no} is {status} ({status_name}); "
            "cannot {action}{hint}",
            "The order's state does not allow the action (e.g. closing a paid order).",
        ),
        _kind(
            "PAY_MODE_NOT_ALLOWED",
            "SBX20004",
            409,
            True,
            "支付方式不可用 pay_mode {pay_mode} is not allowed for order {pay_order_no}; "
            "allowed: {allowed}",
            "The order's counter_param / busi_type_param / payment_method excludes the mode.",
        ),
        _kind(
            "REFUND_EXISTS",
            "SBX20005",
            409,
            True,
            "退款流水号重复 out_trade_no {out_trade_no} already names a refund of merchant "
            "{merchant_no} with a different request; an identical repeat returns that refund",
            "A refund's out_trade_no was used before with another body. Nothing was changed.",
        ),
        _kind(
            "SIGNATURE_MISSING",
            "SBX30001",
            401,
            True,
            "签名缺失 missing or malformed Authorization header: {reason}",
            "No LKLAPI-SHA256withRSA Authorization header, or one that cannot be parsed.",
        ),
        _kind(
            "SIGNATURE_INVALID",
            "SBX30002",
            401,
            True,
            "验签失败 signature does not verify with certificate serial {serial} ({subject}); "
            "the sandbox verified over {signed!r}",
            "The signature does not match the bytes sent; the message shows the signed string.",
        ),
        _kind(
            "SIGNATURE_EXPIRED",
            "SBX30003",
            401,
            True,
            "签名过期 signature timestamp {timestamp} is {skew}s from the wall clock "
            "(at most {limit}s allowed)",
            "The Authorization timestamp is more than 5 minutes from wall time.",
        ),
        _kind(
            "UNKNOWN_APP",
            "SBX30004",
            401,
            True,
            "应用不存在 no certificate registered for appid {appid} serial_no {serial}",
            "appid/serial_no are not registered (see apps file and /sandbox/keys).",
        ),
        _kind(
            "UNAUTHORIZED",
            "SBX30005",
            401,
            False,
            "未授权 missing or wrong bearer token",
            "v1 tokens are configured and the request's Bearer token is not one of them.",
        ),
        _kind(
            "ADMIN_FORBIDDEN",
            "SBX30006",
            403,
            False,
            "forbidden: {why}",
            "Admin API from a non-loopback address without --admin-token, or a wrong token.",
        ),
        _kind(
            "ORIGIN_NOT_ALLOWED",
            "SBX30007",
            403,
            False,
            "跨域不允许 a page on {origin} may not call /api/v1; allow it with --cors-origins "
            "(LAKALA_SANDBOX_CORS_ORIGINS)",
            "A browser page on another origin asked to call the v1 API; --cors-origins does "
            "not list it.",
        ),
        _kind(
            "HOST_NOT_ALLOWED",
            "SBX30008",
            403,
            False,
            "主机名不允许 this sandbox does not answer to the host name {host!r} (Host header); "
            "it answers to loopback names, the address called, --public-url's host and "
            "--allowed-hosts (LAKALA_SANDBOX_ALLOWED_HOSTS)",
            "The Host header names a host the sandbox does not answer to (a defence against DNS "
            "rebinding); list more with --allowed-hosts.",
        ),
        _kind(
            "NOT_JSON",
            "SBX40001",
            400,
            False,
            "请求体不是JSON body is not valid JSON: {reason}",
            "The body is not JSON (or not UTF-8, or not an object, or breaks JSON's rules: "
            "NaN, a key given twice, a lone surrogate, a number of more than 100 digits, arrays "
            "and objects nested more than 512 deep).",
        ),
        _kind(
            "BODY_TOO_LARGE",
            "SBX40002",
            413,
            False,
            "请求体过大 body exceeds {limit} bytes",
            "The body is larger than 1 MiB.",
        ),
        _kind(
            "METHOD_NOT_ALLOWED",
            "SBX40003",
            405,
            False,
            "method {method} not allowed for {path}",
            "Wrong HTTP method for the path.",
        ),
        _kind("NOT_FOUND", "SBX40004", 404, False, "no such path: {path}", "Unknown path."),
        _kind(
            "SERVICE_UNAVAILABLE",
            "SBX50001",
            503,
            False,
            "{reason}",
            "The sandbox was told to fail this call (scenario) or an upstream is down.",
        ),
        _kind(
            "UPSTREAM_ERROR",
            "SBX50002",
            502,
            True,
            "拉卡拉返回错误 Lakala answered {code}: {msg}",
            "Real mode: Lakala refused the call; the message carries Lakala's own code.",
        ),
        _kind(
            "UPSTREAM_INVALID",
            "SBX50003",
            502,
            False,
            "拉卡拉响应验证失败 Lakala's answer failed verification: {reason}",
            "Real mode: Lakala's answer was unsigned, too large, broke schemas/ "
            "or was about another order.",
        ),
        _kind(
            "SCENARIO_ERROR",
            "SBX60001",
            200,
            True,
            "{message}",
            "A scenario told the sandbox to answer this call with an error; the code and "
            "message are the scenario's own (e.g. Lakala's `BBS11184 该商户已停用`).",
        ),
        _kind(
            "SCENARIO_NOT_FOUND",
            "SBX60002",
            404,
            False,
            "场景不存在 no scenario named {name!r}; known: {known}",
            "No loaded scenario has that name (see GET /sandbox/api/scenarios).",
        ),
        _kind(
            "NO_NOTIFY_URL",
            "SBX60003",
            409,
            False,
            "无通知地址 order {pay_order_no} has no notify_url to send a notify to",
            "A notify was asked for an order created without notify_url.",
        ),
        _kind(
            "NOTHING_TO_NOTIFY",
            "SBX60004",
            409,
            False,
            "无可通知交易 order {pay_order_no} has no trade yet; a v3 notify reports one "
            "(order_trade_info)",
            "A v3 notify was asked for an order nobody has tried to pay yet.",
        ),
        _kind(
            "NOTIFY_NOT_FOUND",
            "SBX60005",
            404,
            False,
            "通知不存在 no notify attempt {attempt_id}",
            "No notify attempt with that id.",
        ),
        _kind(
            "INTERNAL",
            "SBX99999",
            500,
            False,
            "internal error: {reason}",
            "A bug in the sandbox. Please report it with the request.",
        ),
    ]
}


class SandboxError(Exception):
    """Raised anywhere; rendered once, in the envelope of the surface that was called."""

    def __init__(self, name: ErrorName, /, **params: Any) -> None:
        self.kind = ERRORS[name]
        self.params = params
        super().__init__(self.kind.message.format(**params))

    @property
    def code(self) -> str:
        return self.kind.code

    def is_one_of(self, *names: ErrorName) -> bool:
        return self.kind.name in names

    @property
    def message(self) -> str:
        return str(self)


def error_table_markdown() -> str:
    rows = ["| code | HTTP (v1, v3) | HTTP (admin API) | meaning |", "|---|---|---|---|"]
    for kind in ERRORS.values():
        http = "200 (business)" if kind.business else str(kind.http_status)
        rows.append(f"| `{kind.code}` | {http} | {kind.http_status} | {kind.meaning} |")
    return "\n".join(rows)


class ConnectionDropped(Exception):
    """A scenario asked for the connection to be closed without a complete answer."""
