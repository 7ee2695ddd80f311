"""Bad input of every kind: a clear error in the dialect's envelope, and nothing changed."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from sandbox.core.clock import LATEST
from sandbox.runtime import Sandbox
from sandbox.wire import signing
from tests.support import (
    V1,
    V3,
    future14,
    seed_create,
    snapshot,
    v3_req_data,
    verify_v3_response,
)

Build = Callable[[Sandbox], Any]


@dataclass
class Case:
    id: str
    dialect: str  # v1 | v3
    op: str
    build: Build  # dict -> JSON body; bytes -> raw body
    status: int
    code: str
    says: str
    auth: Callable[[Sandbox, bytes], str | None] | None = None  # v3: override the signature
    method: str = "POST"


def v1c(**changes: Any) -> Build:
    return lambda sb: seed_create(sb, changes.pop("out_order_no", "NEW-1"), **changes)


def v1c_without(field: str) -> Build:
    def build(sb: Sandbox) -> dict[str, Any]:
        body = seed_create(sb, "NEW-1")
        del body[field]
        return body

    return build


def v3c(**changes: Any) -> Build:
    return lambda sb: {
        "req_time": "20261126120000",
        "version": "3.0",
        "req_data": v3_req_data(sb, "NEW-3", **changes),
    }


def v3c_without(field: str) -> Build:
    def build(sb: Sandbox) -> dict[str, Any]:
        data = v3_req_data(sb, "NEW-3")
        del data[field]
        return {"req_time": "20261126120000", "version": "3.0", "req_data": data}

    return build


def envelope(**changes: Any) -> Build:
    def build(sb: Sandbox) -> dict[str, Any]:
        body = {
            "req_time": "20261126120000",
            "version": "3.0",
            "req_data": v3_req_data(sb, "NEW-3"),
        }
        body.update(changes)
        return {k: v for k, v in body.items() if v is not None}

    return build


def signed_with(
    timestamp: Callable[[], str] = lambda: str(int(time.time())),
    appid: str = "OP00000003",
    serial: str = "00dfba8194c41b84cf",
    tamper: bool = False,
) -> Callable[[Sandbox, bytes], str]:
    def auth(sb: Sandbox, raw: bytes) -> str:
        signed_body = raw + b" " if tamper else raw
        return signing.sign_request(
            sb.keys.merchant_key, appid, serial, signed_body, timestamp=timestamp()
        )

    return auth


def days(sb: Sandbox, n: float) -> str:
    return future14(sb, n * 86400)


CN65 = "测" * 65
SPLIT = [
    {"out_sub_order_no": "S1", "merchant_no": "M1", "amount": 40},
    {"out_sub_order_no": "S2", "merchant_no": "M2", "amount": 50},
]
BIG = b'{"pad":"' + b"x" * (2 * 1024 * 1024) + b'"}'

CASES = [
    # v1 create: fields
    Case(
        "v1-missing-out_order_no",
        "v1",
        "create",
        v1c_without("out_order_no"),
        200,
        "SBX10001",
        "out_order_no: is required",
    ),
    Case(
        "v1-missing-total_amount",
        "v1",
        "create",
        v1c_without("total_amount"),
        200,
        "SBX10001",
        "total_amount: is required",
    ),
    Case(
        "v1-missing-order_info",
        "v1",
        "create",
        v1c_without("order_info"),
        200,
        "SBX10001",
        "order_info: is required",
    ),
    Case(
        "v1-out_order_no-33-chars",
        "v1",
        "create",
        v1c(out_order_no="X" * 33),
        200,
        "SBX10001",
        "out_order_no: must be at most 32 characters",
    ),
    Case(
        "v1-out_order_no-empty",
        "v1",
        "create",
        v1c(out_order_no=""),
        200,
        "SBX10001",
        "out_order_no: must not be empty",
    ),
    Case(
        "v1-order_info-65-chinese-chars",
        "v1",
        "create",
        v1c(order_info=CN65),
        200,
        "SBX10001",
        "order_info: must be at most 64 characters",
    ),
    Case(
        "v1-amount-13-digits",
        "v1",
        "create",
        v1c(total_amount=1234567890123),
        200,
        "SBX10001",
        "total_amount",
    ),
    Case(
        "v1-amount-13-digit-string",
        "v1",
        "create",
        v1c(total_amount="1234567890123"),
        200,
        "SBX10001",
        "total_amount",
    ),
    Case(
        "v1-amount-negative",
        "v1",
        "create",
        v1c(total_amount=-100),
        200,
        "SBX10001",
        "total_amount",
    ),
    Case("v1-amount-float", "v1", "create", v1c(total_amount=1.5), 200, "SBX10001", "total_amount"),
    Case(
        "v1-amount-float-one-point-zero",
        "v1",
        "create",
        v1c(total_amount=1.0),
        200,
        "SBX10001",
        "total_amount",
    ),
    Case("v1-amount-zero", "v1", "create", v1c(total_amount=0), 200, "SBX10001", "total_amount"),
    Case(
        "v1-amount-words",
        "v1",
        "create",
        v1c(total_amount="100元"),
        200,
        "SBX10001",
        "total_amount",
    ),
    Case(
        "v1-amount-boolean", "v1", "create", v1c(total_amount=True), 200, "SBX10001", "total_amount"
    ),
    Case(
        "v1-expiry-in-the-past",
        "v1",
        "create",
        lambda sb: seed_create(sb, "NEW-1", order_efficient_time=future14(sb, -60)),
        200,
        "SBX10001",
        "order_efficient_time: must be later than the current time",
    ),
    Case(
        "v1-expiry-beyond-7-days",
        "v1",
        "create",
        lambda sb: seed_create(sb, "NEW-1", order_efficient_time=days(sb, 7.01)),
        200,
        "SBX10001",
        "order_efficient_time: must be at most 7 days",
    ),
    Case(
        "v1-expiry-impossible-date",
        "v1",
        "create",
        v1c(order_efficient_time="20261399000000"),
        200,
        "SBX10001",
        "order_efficient_time",
    ),
    Case(
        "v1-expiry-wrong-format",
        "v1",
        "create",
        v1c(order_efficient_time="2026-11-19"),
        200,
        "SBX10001",
        "order_efficient_time",
    ),
    Case(
        "v1-notify_url-javascript",
        "v1",
        "create",
        v1c(notify_url="javascript:alert(1)"),
        200,
        "SBX10001",
        "notify_url",
    ),
    Case(
        "v1-callback_url-ftp",
        "v1",
        "create",
        v1c(callback_url="ftp://example.com/x"),
        200,
        "SBX10001",
        "callback_url",
    ),
    Case(
        "v1-payment_method-unknown",
        "v1",
        "create",
        v1c(payment_method="PAYPAL"),
        200,
        "SBX10001",
        "payment_method: must be one of",
    ),
    Case("v1-flag-two", "v1", "create", v1c(support_refund=2), 200, "SBX10001", "support_refund"),
    Case(
        "v1-flag-word", "v1", "create", v1c(support_cancel="yes"), 200, "SBX10001", "support_cancel"
    ),
    Case(
        "v1-order_info-number",
        "v1",
        "create",
        v1c(order_info=12345),
        200,
        "SBX10001",
        "order_info: must be of type string",
    ),
    Case(
        "v1-same-order-no-other-body",
        "v1",
        "create",
        v1c(out_order_no="EXISTING", total_amount=999),
        200,
        "SBX20001",
        "already exists",
    ),
    # v1 transport
    Case(
        "v1-body-array",
        "v1",
        "create",
        lambda sb: [1, 2],
        400,
        "SBX40001",
        "expected a JSON object",
    ),
    Case("v1-body-empty", "v1", "create", lambda sb: b"", 400, "SBX40001", "empty"),
    Case(
        "v1-body-garbage",
        "v1",
        "create",
        lambda sb: b"out_order_no=1&x=2",
        400,
        "SBX40001",
        "not valid JSON",
    ),
    Case(
        "v1-body-invalid-utf8",
        "v1",
        "create",
        lambda sb: b'{"order_info":"\xff\xfe"}',
        400,
        "SBX40001",
        "not UTF-8",
    ),
    Case(
        "v1-body-nan", "v1", "create", lambda sb: b'{"total_amount": NaN}', 400, "SBX40001", "NaN"
    ),
    Case(
        "v1-body-deeply-nested",
        "v1",
        "create",
        lambda sb: b"[" * 100_000 + b"]" * 100_000,
        400,
        "SBX40001",
        "not valid JSON",
    ),
    Case("v1-body-2-mib", "v1", "create", lambda sb: BIG, 413, "SBX40002", "exceeds"),
    Case(
        "v1-wrong-method",
        "v1",
        "create",
        lambda sb: b"",
        405,
        "SBX40003",
        "not allowed",
        method="GET",
    ),
    # v1 query / close
    Case(
        "v1-query-without-order-numbers",
        "v1",
        "query",
        lambda sb: {"merchant_no": "X"},
        200,
        "SBX10001",
        "out_order_no or pay_order_no: is required",
    ),
    Case(
        "v1-query-unknown-order",
        "v1",
        "query",
        lambda sb: {"out_order_no": "NOPE"},
        200,
        "SBX20002",
        "out_order_no=NOPE",
    ),
    Case(
        "v1-query-order-no-too-long",
        "v1",
        "query",
        lambda sb: {"out_order_no": "N" * 33},
        200,
        "SBX10001",
        "out_order_no",
    ),
    Case(
        "v1-close-paid-order",
        "v1",
        "close",
        lambda sb: {"out_order_no": "PAID"},
        200,
        "SBX20003",
        "cannot close",
    ),
    # v3 signatures
    Case(
        "v3-no-authorization",
        "v3",
        "special_create",
        v3c(),
        200,
        "SBX30001",
        "no Authorization header",
        auth=lambda sb, raw: None,
    ),
    Case(
        "v3-bearer-instead-of-lklapi",
        "v3",
        "special_create",
        v3c(),
        200,
        "SBX30001",
        "scheme must be LKLAPI-SHA256withRSA",
        auth=lambda sb, raw: "Bearer abc",
    ),
    Case(
        "v3-authorization-missing-signature",
        "v3",
        "special_create",
        v3c(),
        200,
        "SBX30001",
        "missing signature",
        auth=lambda sb, raw: (
            'LKLAPI-SHA256withRSA appid="OP00000003",'
            'serial_no="00dfba8194c41b84cf",timestamp="1",nonce_str="abc"'
        ),
    ),
    Case(
        "v3-signature-over-other-bytes",
        "v3",
        "special_create",
        v3c(),
        200,
        "SBX30002",
        "signature does not verify",
        auth=signed_with(tamper=True),
    ),
    Case(
        "v3-stale-timestamp",
        "v3",
        "special_create",
        v3c(),
        200,
        "SBX30003",
        "from the wall clock",
        auth=signed_with(timestamp=lambda: str(int(time.time()) - 301)),
    ),
    Case(
        "v3-unknown-appid",
        "v3",
        "special_create",
        v3c(),
        200,
        "SBX30004",
        "OP99999999",
        auth=signed_with(appid="OP99999999"),
    ),
    Case(
        "v3-unknown-serial",
        "v3",
        "special_create",
        v3c(),
        200,
        "SBX30004",
        "serial_no 0abc",
        auth=signed_with(serial="0abc"),
    ),
    # v3 envelope
    Case(
        "v3-missing-req_data",
        "v3",
        "special_create",
        envelope(req_data=None),
        200,
        "SBX10001",
        "req_data: is required",
    ),
    Case(
        "v3-wrong-version",
        "v3",
        "special_create",
        envelope(version="2.0"),
        200,
        "SBX10001",
        "version",
    ),
    Case(
        "v3-bad-req_time",
        "v3",
        "special_create",
        envelope(req_time="yesterday"),
        200,
        "SBX10001",
        "req_time",
    ),
    Case(
        "v3-req_data-string",
        "v3",
        "special_create",
        envelope(req_data="{}"),
        200,
        "SBX10001",
        "req_data: must be of type object",
    ),
    # v3 fields
    Case(
        "v3-missing-merchant_no",
        "v3",
        "special_create",
        v3c_without("merchant_no"),
        200,
        "SBX10001",
        "req_data.merchant_no: is required",
    ),
    Case(
        "v3-missing-order_efficient_time",
        "v3",
        "special_create",
        v3c_without("order_efficient_time"),
        200,
        "SBX10001",
        "req_data.order_efficient_time: is required",
    ),
    Case(
        "v3-amount-13-digits",
        "v3",
        "special_create",
        v3c(total_amount="9999999999999"),
        200,
        "SBX10001",
        "req_data.total_amount",
    ),
    Case(
        "v3-counter_param-not-json",
        "v3",
        "special_create",
        v3c(counter_param="{pay_mode:"),
        200,
        "SBX10001",
        "req_data.counter_param: must be a JSON string",
    ),
    Case(
        "v3-counter_param-unknown-mode",
        "v3",
        "special_create",
        v3c(counter_param='{"pay_mode":"PAYPAL"}'),
        200,
        "SBX10001",
        "req_data.counter_param",
    ),
    Case(
        "v3-counter_param-object-not-string",
        "v3",
        "special_create",
        v3c(counter_param={"pay_mode": "ALIPAY"}),
        200,
        "SBX10001",
        "req_data.counter_param: must be of type string",
    ),
    Case(
        "v3-busi_type_param-not-a-list",
        "v3",
        "special_create",
        v3c(busi_type_param='{"busi_type":"SCPAY"}'),
        200,
        "SBX10001",
        "req_data.busi_type_param",
    ),
    Case(
        "v3-split-without-items",
        "v3",
        "special_create",
        v3c(split_mark="1"),
        200,
        "SBX10001",
        "out_split_info",
    ),
    Case(
        "v3-split-amounts-do-not-add-up",
        "v3",
        "special_create",
        v3c(total_amount=100, split_mark="1", out_split_info=SPLIT),
        200,
        "SBX10001",
        "add up to 90",
    ),
    Case(
        "v3-split-amount-negative",
        "v3",
        "special_create",
        v3c(
            total_amount=100,
            split_mark="1",
            out_split_info=[dict(SPLIT[0], amount=-50), dict(SPLIT[1], amount=150)],
        ),
        200,
        "SBX10001",
        "req_data.out_split_info.0.amount: must be at least 1",
    ),
    Case(
        "v3-notify_url-javascript",
        "v3",
        "special_create",
        v3c(notify_url="javascript:alert(1)"),
        200,
        "SBX10001",
        "req_data.notify_url",
    ),
    Case(
        "v3-query-without-order-numbers",
        "v3",
        "query",
        lambda sb: {
            "req_time": "20261126120000",
            "version": "3.0",
            "req_data": {"merchant_no": "82229007392000A"},
        },
        200,
        "SBX10001",
        "out_order_no or pay_order_no",
    ),
    Case(
        "v3-close-unknown-order",
        "v3",
        "close",
        lambda sb: {
            "req_time": "20261126120000",
            "version": "3.0",
            "req_data": {"merchant_no": "82229007392000A", "out_order_no": "NOPE"},
        },
        200,
        "SBX20002",
        "NOPE",
    ),
    Case(
        "v3-body-not-json",
        "v3",
        "query",
        lambda sb: b"\x00\x01 not json",
        400,
        "SBX40001",
        "not valid JSON",
    ),
    Case("v3-body-2-mib", "v3", "query", lambda sb: BIG, 413, "SBX40002", "exceeds"),
    # values that once got through the schema's patterns, or past them to a 500
    Case(
        "v1-callback_url-bracketed-host-not-ipv6",
        "v1",
        "create",
        v1c(callback_url="http://[zz]/"),
        200,
        "SBX10001",
        "callback_url",
    ),
    Case(
        "v1-notify_url-unclosed-bracket",
        "v1",
        "create",
        v1c(notify_url="http://[::1/n"),
        200,
        "SBX10001",
        "notify_url",
    ),
    Case(
        "v1-notify_url-port-out-of-range",
        "v1",
        "create",
        v1c(notify_url="http://127.0.0.1:99999/n"),
        200,
        "SBX10001",
        "port from 0 to 65535",
    ),
    Case(
        "v1-notify_url-trailing-newline",
        "v1",
        "create",
        v1c(notify_url="http://shop.example/n\n"),
        200,
        "SBX10001",
        "notify_url",
    ),
    Case(
        "v1-amount-trailing-newline",
        "v1",
        "create",
        v1c(total_amount="100\n"),
        200,
        "SBX10001",
        "total_amount",
    ),
    Case(
        "v1-number-beyond-a-float",
        "v1",
        "create",
        lambda sb: (
            json.dumps(seed_create(sb, "NEW-1", total_amount=7))
            .encode()
            .replace(b'"total_amount": 7', b'"total_amount": 1e999')
        ),
        400,
        "SBX40001",
        "the number 1e999 is too large",
    ),
    Case(
        "v1-number-of-5000-digits",
        "v1",
        "create",
        lambda sb: b'{"out_order_no": "NEW-1", "total_amount": ' + b"9" * 5000 + b"}",
        400,
        "SBX40001",
        "a number of 5000 digits is too long",
    ),
    Case(
        "v3-goods_field-nested-1024-deep",
        "v3",
        "special_create",
        v3c(goods_field="[" * 1024 + "]" * 1024),
        200,
        "SBX10001",
        "goods_field",
    ),
    Case(
        "v3-split-amount-infinite",
        "v3",
        "special_create",
        lambda sb: (
            json.dumps(
                {
                    "req_time": "20261126120000",
                    "version": "3.0",
                    "req_data": v3_req_data(
                        sb, "NEW-3", total_amount=90, split_mark="1", out_split_info=SPLIT
                    ),
                }
            )
            .encode()
            .replace(b'"amount": 40', b'"amount": 1e999')
        ),
        400,
        "SBX40001",
        "too large",
    ),
    Case(
        "v3-timestamp-of-5000-digits",
        "v3",
        "special_create",
        v3c(),
        200,
        "SBX30001",
        "timestamp must be Unix seconds",
        auth=signed_with(timestamp=lambda: "9" * 5000),
    ),
    Case("v3-unknown-operation", "v3", "refund", v3c(), 404, "SBX40004", "no such path"),
]


@pytest.fixture
def seeded(http: httpx.Client, sb: Sandbox) -> Sandbox:
    """A waiting order and a paid one, so that a wrongly accepted call would show."""
    assert http.post(V1 + "create", json=seed_create(sb, "EXISTING")).json()["code"] == "000000"
    paid = http.post(V1 + "create", json=seed_create(sb, "PAID")).json()["resp_data"]
    assert http.post(f"/sandbox/api/orders/{paid['pay_order_no']}/pay").status_code == 200
    return sb


def test_the_table_is_large_enough() -> None:
    assert len(CASES) >= 40
    assert {c.dialect for c in CASES} == {"v1", "v3"}


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_is_refused_and_changes_nothing(
    http: httpx.Client, seeded: Sandbox, case: Case
) -> None:
    sb = seeded
    before = snapshot(sb)
    payload = case.build(sb)
    raw = (
        payload if isinstance(payload, bytes) else json.dumps(payload, ensure_ascii=False).encode()
    )
    headers = {"Content-Type": "application/json"}
    if case.dialect == "v3":
        auth = case.auth(sb, raw) if case.auth else signed_with()(sb, raw)
        if auth is not None:
            headers["Authorization"] = auth
    path = (V1 if case.dialect == "v1" else V3) + case.op
    response = http.request(case.method, path, content=raw, headers=headers)

    assert response.status_code == case.status, response.text
    out = response.json()
    assert out["code"] == case.code, out
    assert case.says in out["msg"], out["msg"]
    assert out["resp_data"] is None
    assert (out["data"] is None) if case.dialect == "v1" else ("data" not in out)
    assert len(out["resp_time"]) == 14
    if case.dialect == "v3":  # errors are signed too, an unknown path's included
        verify_v3_response(response, sb.keys.platform_cert)
    assert snapshot(sb) == before


def test_efficient_time_before_an_advanced_clock_says_how_to_reset(
    http: httpx.Client, sb: Sandbox
) -> None:
    body = seed_create(sb, "ADV-1", order_efficient_time=future14(sb, 1800))
    sb.clock.advance(3600)
    out = http.post(V1 + "create", json=body).json()
    assert out["code"] == "SBX10002"
    assert "sandbox clock is 1:00:00 ahead" in out["msg"]
    assert "/sandbox/api/clock/reset" in out["msg"]
    assert sb.engine.count() == 0


def test_admin_rejects_unknown_actions_and_pay_modes(http: httpx.Client, sb: Sandbox) -> None:
    created = http.post(V1 + "create", json=seed_create(sb, "ADM-1")).json()["resp_data"]
    no = created["pay_order_no"]
    before = snapshot(sb)
    wrong_action = http.post(f"/sandbox/api/orders/{no}/explode")
    wrong_mode = http.post(f"/sandbox/api/orders/{no}/pay", json={"pay_mode": "PAYPAL"})
    not_allowed = http.post(f"/sandbox/api/orders/{no}/pay", json={"pay_mode": "WECHAT"})
    fail_not_allowed = http.post(f"/sandbox/api/orders/{no}/fail", json={"pay_mode": "WECHAT"})
    unknown = http.post("/sandbox/api/orders/123/pay")
    garbage = http.post(f"/sandbox/api/orders/{no}/pay", content=b"{nope")
    assert (wrong_action.status_code, wrong_action.json()["code"]) == (400, "SBX10001")
    assert (wrong_mode.status_code, wrong_mode.json()["code"]) == (400, "SBX10001")
    assert (not_allowed.status_code, not_allowed.json()["code"]) == (409, "SBX20004")
    assert (fail_not_allowed.status_code, fail_not_allowed.json()["code"]) == (409, "SBX20004")
    assert (unknown.status_code, unknown.json()["code"]) == (404, "SBX20002")
    assert (garbage.status_code, garbage.json()["code"]) == (400, "SBX40001")
    assert snapshot(sb) == before


def test_admin_answers_loopback_only_without_a_token() -> None:
    from sandbox.client.transport import InProcessTransport
    from tests.conftest import make_app

    app = make_app()
    remote = InProcessTransport(app, client=("203.0.113.9", 4000))
    with httpx.Client(transport=remote, base_url="http://s") as http:
        response = http.get("/sandbox/api/orders")
    assert (response.status_code, response.json()["code"]) == (403, "SBX30006")
    assert "loopback clients only" in response.json()["msg"]

    app = make_app(admin_token="t0ken")
    with httpx.Client(
        transport=InProcessTransport(app, client=("203.0.113.9", 4000)), base_url="http://s"
    ) as http:
        refused = http.get("/sandbox/api/orders")
        ok = http.get("/sandbox/api/orders", headers={"Authorization": "Bearer t0ken"})
    assert refused.status_code == 403 and "needs its admin token" in refused.json()["msg"]
    assert ok.status_code == 200 and ok.json()["orders"] == []


def test_a_v1_token_that_is_not_ascii_is_just_a_wrong_token() -> None:
    from sandbox.client.transport import InProcessTransport
    from tests.conftest import make_app

    app = make_app(v1_tokens=("tok1",))
    sb = app.state.sandbox
    with httpx.Client(transport=InProcessTransport(app), base_url="http://s") as http:
        response = http.post(
            V1 + "create",
            json=seed_create(sb, "TOKEN-1"),
            headers={"Authorization": "Bearer é".encode()},
        )
    assert (response.status_code, response.json()["code"]) == (401, "SBX30005")
    assert sb.engine.count() == 0


def test_a_signature_timestamp_of_other_digits_is_refused_signed(
    http: httpx.Client, sb: Sandbox
) -> None:
    """ "²" is a digit to str.isdigit() and not to int(): the header arrives as latin-1."""
    raw = json.dumps(v3c()(sb)).encode()
    good = signing.sign_request(sb.keys.merchant_key, "OP00000003", "00dfba8194c41b84cf", raw)
    fields = signing.parse_authorization(good)
    header = good.replace(f'timestamp="{fields["timestamp"]}"', 'timestamp="\xb2"')
    response = http.post(
        V3 + "special_create",
        content=raw,
        headers={"Authorization": header.encode("latin-1"), "Content-Type": "application/json"},
    )
    out = response.json()
    assert (response.status_code, out["code"]) == (200, "SBX30001")
    assert "timestamp must be Unix seconds" in out["msg"]
    assert "Lklapi-Signature" in response.headers
    assert sb.engine.count() == 0


def test_admin_numbers_out_of_range_and_wrong_methods(http: httpx.Client, sb: Sandbox) -> None:
    no = http.post(V1 + "create", json=seed_create(sb, "ADM-2")).json()["resp_data"]
    before = snapshot(sb)
    replay = http.post("/sandbox/api/notifies/99999999999999999999999/replay")
    limit = http.get("/sandbox/api/orders", params={"limit": "²"})
    huge = http.get("/sandbox/api/orders", params={"limit": "9" * 5000})
    posted = http.post(f"/sandbox/api/orders/{no['pay_order_no']}/notifies")
    assert (replay.status_code, replay.json()["code"]) == (404, "SBX60005")
    assert (limit.status_code, limit.json()["code"]) == (400, "SBX10001")
    assert (huge.status_code, huge.json()["code"]) == (400, "SBX10001")
    assert (posted.status_code, posted.json()["code"]) == (405, "SBX40003")
    assert snapshot(sb) == before


@pytest.mark.parametrize(
    ("call", "body"),
    [
        ("set", {"time": "99991231235958"}),  # formats, but two seconds on is year 10000
        ("set", {"time": "00010101000000"}),
        ("set", {"time": "00010102000000"}),  # "10102000000": a year of one digit
        ("set", {"time": "19691231000000"}),
        ("advance", {"seconds": 10 * 366 * 86400}),  # from 9998: past the last year
    ],
)
def test_the_clock_stays_within_four_digit_years(
    http: httpx.Client, sb: Sandbox, call: str, body: dict[str, Any]
) -> None:
    assert http.post("/sandbox/api/clock/set", json={"time": "99980101000000"}).status_code == 200
    before = http.get("/sandbox/api/clock").json()["clock"]["now"]
    response = http.post(f"/sandbox/api/clock/{call}", json=body)
    assert (response.status_code, response.json()["code"]) == (400, "SBX10001")
    assert "between 19700102080000 and 99990101080000" in response.json()["msg"]
    after = http.get("/sandbox/api/clock").json()["clock"]["now"]
    assert after[:8] == before[:8] == "99980101"
    health = http.get("/healthz")
    assert health.status_code == 200 and len(health.json()["now"]) == 14


def test_one_order_clock_stays_within_four_digit_years(http: httpx.Client, sb: Sandbox) -> None:
    no = http.post(V1 + "create", json=seed_create(sb, "ADV-ORDER")).json()["resp_data"]
    path = f"/sandbox/api/orders/{no['pay_order_no']}/advance"
    year = 366 * 86400
    fits = int((LATEST - sb.clock.timestamp()) // (10 * year))  # about 797 from 2026
    answers = [http.post(path, json={"seconds": 10 * year}).status_code for _ in range(fits + 3)]
    assert answers.count(200) == fits
    assert set(answers[answers.index(400) :]) == {400}
    listed = http.get("/sandbox/api/orders")
    assert listed.status_code == 200 and listed.json()["orders"][0]["order_status"] == "4"


def test_an_order_seen_expired_stays_expired_when_the_clock_goes_back(
    http: httpx.Client, sb: Sandbox
) -> None:
    out = http.post(V1 + "create", json=seed_create(sb, "EXP-BACK")).json()["resp_data"]
    query = {"out_order_no": "EXP-BACK"}
    assert http.post("/sandbox/api/clock/advance", json={"seconds": 7200}).status_code == 200
    assert http.post(V1 + "query", json=query).json()["resp_data"]["order_status"] == "EXPIRED"
    assert http.post("/sandbox/api/clock/reset").status_code == 200
    assert http.post(V1 + "query", json=query).json()["resp_data"]["order_status"] == "EXPIRED"
    paid = http.post(f"/sandbox/api/orders/{out['pay_order_no']}/pay")
    assert (paid.status_code, paid.json()["code"]) == (409, "SBX20003")
