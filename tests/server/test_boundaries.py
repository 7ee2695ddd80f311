"""Edges a one-character slip would move, each checked on its own and through more than one door:
the exact moment of expiry, the Bearer scheme, the signature timestamp window both ways, the
refund limit through the admin API and for v1 orders, refunds of a payment that failed, and
cross-site POSTs that need no preflight."""

from __future__ import annotations

import re
import time
from typing import Any

import httpx
import pytest

from sandbox.client.transport import InProcessTransport
from sandbox.runtime import Sandbox
from sandbox.wire import signing
from tests.conftest import make_app
from tests.server.test_counter_page import counter, csrf_of, field, page_query
from tests.support import V1, seed_create, snapshot, v3_body, v3_post, v3_req_data

RFD = "/api/v3/rfd/refund_front/"
SEED_MERCHANT = "8222900701106PZ"  # v1 orders' default
START = "20261126100000"  # a whole second: the frozen clock then stands on exact times


def set_clock(http: httpx.Client, time14: str) -> None:
    answer = http.post("/sandbox/api/clock/set", json={"time": time14})
    assert answer.status_code == 200, answer.text


def advance(http: httpx.Client, seconds: float) -> None:
    answer = http.post("/sandbox/api/clock/advance", json={"seconds": seconds})
    assert answer.status_code == 200, answer.text


def v1_status(http: httpx.Client, out_order_no: str) -> str:
    return str(
        http.post(V1 + "query", json={"out_order_no": out_order_no}).json()["resp_data"][
            "order_status"
        ]
    )


def refund(http: httpx.Client, sb: Sandbox, out_trade_no: str, **fields: Any) -> httpx.Response:
    """Lakala's refund API, signed."""
    req = {
        "merchant_no": SEED_MERCHANT,
        "term_no": "D9296400",
        "out_trade_no": out_trade_no,
        "location_info": {"request_ip": "127.0.0.1"},
        **fields,
    }
    return v3_post(http, sb, "refund", req, prefix=RFD)


# -- expiry: at order_efficient_time exactly, the order has expired ------------------------------


def test_an_order_reads_expired_at_its_efficient_time_exactly(
    frozen: tuple[httpx.Client, Sandbox],
) -> None:
    http, sb = frozen
    set_clock(http, START)
    expiry = sb.clock.format(sb.clock.timestamp() + 60)
    created = http.post(
        V1 + "create", json=seed_create(sb, "EDGE-EXP-1", order_efficient_time=expiry)
    ).json()
    order = sb.engine.get(created["resp_data"]["pay_order_no"])
    advance(http, 59)
    assert v1_status(http, "EDGE-EXP-1") == "WAIT_PAY"  # a second before: still payable
    offered = counter(http, order, payMode="ALIPAY").text
    assert 'name="action"' in offered  # a second before, the page offers to pay
    advance(http, 1)
    assert sb.clock.now14() == expiry
    assert v1_status(http, "EDGE-EXP-1") == "EXPIRED"
    admin = http.get(f"/sandbox/api/orders/{order.pay_order_no}").json()["order"]
    assert admin["order_status"] == "4"
    page_now = counter(http, order, payMode="ALIPAY").text
    assert field(page_now, "state") == "订单已过期" and 'name="action"' not in page_now
    before = snapshot(sb)
    paid = http.post(f"/sandbox/api/orders/{order.pay_order_no}/pay")
    assert (paid.status_code, paid.json()["code"]) == (409, "SBX20003")
    assert f"expired at {expiry}" in paid.json()["msg"]
    form = {**page_query(order), "csrf": csrf_of(offered), "action": "pay", "pay_mode": "ALIPAY"}
    page = http.post("/b/pay/submit", data=form)  # the button clicked a second too late
    assert page.status_code == 303 and "refused=pay" in page.headers["location"]
    assert snapshot(sb) == before
    # seen expired, it stays expired when the clock goes back
    set_clock(http, sb.clock.format(sb.clock.timestamp() - 30))
    assert v1_status(http, "EDGE-EXP-1") == "EXPIRED"


def test_a_v3_order_reads_expired_at_its_efficient_time_exactly(
    frozen: tuple[httpx.Client, Sandbox],
) -> None:
    http, sb = frozen
    set_clock(http, START)
    expiry = sb.clock.format(sb.clock.timestamp() + 120)
    req = v3_req_data(sb, "EDGE-EXP-2", order_efficient_time=expiry)
    assert v3_post(http, sb, "special_create", req).json()["code"] == "000000"
    query = {"merchant_no": req["merchant_no"], "out_order_no": "EDGE-EXP-2"}
    advance(http, 119)
    assert v3_post(http, sb, "query", query).json()["resp_data"]["order_status"] == "0"
    advance(http, 1)
    assert v3_post(http, sb, "query", query).json()["resp_data"]["order_status"] == "4"


# -- the Bearer scheme --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "authorization", ["Basic secret-1", "secret-1", "Token secret-1", "Bearer", "Bearersecret-1"]
)
def test_a_v1_token_outside_the_bearer_scheme_is_refused(authorization: str) -> None:
    app = make_app(v1_tokens=("secret-1",))
    sb: Sandbox = app.state.sandbox
    try:
        with httpx.Client(transport=InProcessTransport(app), base_url="http://s") as http:
            refused = http.post(
                V1 + "create",
                json=seed_create(sb, "EDGE-TOKEN-1"),
                headers={"Authorization": authorization},
            )
            assert (refused.status_code, refused.json()["code"]) == (401, "SBX30005")
            assert sb.engine.count() == 0
            taken = http.post(
                V1 + "create",
                json=seed_create(sb, "EDGE-TOKEN-1"),
                headers={"Authorization": "bearer secret-1"},  # (the scheme in any case)
            )
            assert taken.json()["code"] == "000000"
    finally:
        sb.close()


@pytest.mark.parametrize("authorization", ["Basic t0ken", "t0ken", "Token t0ken"])
def test_an_admin_token_outside_the_bearer_scheme_is_refused(authorization: str) -> None:
    app = make_app(admin_token="t0ken")
    remote = InProcessTransport(app, client=("203.0.113.9", 4000))
    try:
        with httpx.Client(transport=remote, base_url="http://s") as http:
            refused = http.post(
                "/sandbox/api/clock/advance",
                json={"seconds": 60},
                headers={"Authorization": authorization},
            )
            assert (refused.status_code, refused.json()["code"]) == (403, "SBX30006")
            assert app.state.sandbox.clock.advanced == 0
            ok = http.get("/sandbox/api/orders", headers={"Authorization": "Bearer t0ken"})
            assert ok.status_code == 200
    finally:
        app.state.sandbox.close()


# -- the signature timestamp window, both ways --------------------------------------------------


@pytest.mark.parametrize(
    ("skew", "taken"),
    [(-75, False), (-45, True), (0, True), (45, True), (75, False)],
    ids=["75s-old", "45s-old", "now", "45s-ahead", "75s-ahead"],
)
def test_the_signature_timestamp_window_is_checked_both_ways(skew: int, taken: bool) -> None:
    app = make_app(signature_max_skew=60)
    sb: Sandbox = app.state.sandbox
    try:
        with httpx.Client(transport=InProcessTransport(app), base_url="http://s") as http:
            raw = v3_body_for(sb, f"EDGE-SKEW-{skew}")
            header = signing.sign_request(
                sb.keys.merchant_key,
                sb.settings.appid,
                sb.settings.serial_no,
                raw,
                timestamp=str(int(time.time()) + skew),
            )
            answer = v3_post(http, sb, "special_create", body=raw, authorization=header).json()
        if taken:
            assert answer["code"] == "000000", answer
            assert sb.engine.count() == 1
        else:
            assert answer["code"] == "SBX30003"
            # (a second may tick between signing and checking)
            said = re.search(r"is (-?\d+)s from the wall clock", answer["msg"])
            assert said and abs(int(said.group(1)) - skew) <= 1, answer["msg"]
            assert sb.engine.count() == 0
    finally:
        sb.close()


def v3_body_for(sb: Sandbox, out_order_no: str) -> bytes:
    return v3_body(v3_req_data(sb, out_order_no))


# -- the refund limit, through the admin API and for v1 orders ----------------------------------


def paid_v1_order(http: httpx.Client, sb: Sandbox, out_order_no: str, amount: int) -> str:
    body = seed_create(sb, out_order_no, total_amount=amount)
    no = str(http.post(V1 + "create", json=body).json()["resp_data"]["pay_order_no"])
    assert http.post(f"/sandbox/api/orders/{no}/pay").status_code == 200
    return no


def test_the_admin_api_refunds_no_more_than_is_left(frozen: tuple[httpx.Client, Sandbox]) -> None:
    http, sb = frozen
    no = paid_v1_order(http, sb, "EDGE-RFD-1", 500)
    assert http.post(f"/sandbox/api/orders/{no}/refund", json={"amount": 200}).status_code == 200
    before = snapshot(sb)
    for amount, says in [
        (301, "amount: must be from 1 to 300 fen"),  # the order's limit, from the engine
        (500, "amount: must be from 1 to 300 fen"),
        (0, "amount: must be at least 1"),  # the admin body's schema
    ]:
        over = http.post(f"/sandbox/api/orders/{no}/refund", json={"amount": amount})
        assert (over.status_code, over.json()["code"]) == (400, "SBX10001")
        assert says in over.json()["msg"]
        assert f"(got {amount})" in over.json()["msg"]
    assert snapshot(sb) == before
    queried = http.post(V1 + "query", json={"out_order_no": "EDGE-RFD-1"}).json()["resp_data"]
    assert (queried["order_status"], queried["refund_amount"]) == ("REFUNDED", "200")
    # exactly what is left is taken; then nothing more
    assert http.post(f"/sandbox/api/orders/{no}/refund", json={"amount": 300}).status_code == 200
    done = http.post(f"/sandbox/api/orders/{no}/refund", json={"amount": 1})
    assert (done.status_code, done.json()["code"]) == (409, "SBX20003")
    assert "refunded in full: 500 fen" in done.json()["msg"]
    queried = http.post(V1 + "query", json={"out_order_no": "EDGE-RFD-1"}).json()["resp_data"]
    assert queried["refund_amount"] == "500"


def test_a_v1_order_is_refunded_no_more_than_is_left_through_lakalas_refund_api(
    frozen: tuple[httpx.Client, Sandbox],
) -> None:
    http, sb = frozen
    paid_v1_order(http, sb, "EDGE-RFD-2", 400)
    first = refund(
        http,
        sb,
        "EDGE-R-21",
        refund_amount=150,
        origin_out_trade_no="EDGE-RFD-2",
    ).json()
    assert first["code"] == "000000", first
    before = snapshot(sb)
    over = refund(
        http,
        sb,
        "EDGE-R-22",
        refund_amount=251,
        origin_out_trade_no="EDGE-RFD-2",
    ).json()
    assert over["code"] == "SBX10001" and "from 1 to 250 fen" in over["msg"]
    assert snapshot(sb) == before
    queried = http.post(V1 + "query", json={"out_order_no": "EDGE-RFD-2"}).json()["resp_data"]
    assert queried["refund_amount"] == "150"


# -- a payment that failed is not refunded ------------------------------------------------------


def test_an_order_whose_payment_failed_is_not_refunded(
    frozen: tuple[httpx.Client, Sandbox],
) -> None:
    http, sb = frozen
    body = seed_create(sb, "EDGE-FAIL-1", total_amount=300)
    no = http.post(V1 + "create", json=body).json()["resp_data"]["pay_order_no"]
    assert http.post(f"/sandbox/api/orders/{no}/fail").status_code == 200
    before = snapshot(sb)
    admin = http.post(f"/sandbox/api/orders/{no}/refund", json={"amount": 100})
    assert (admin.status_code, admin.json()["code"]) == (409, "SBX20003")
    assert "支付失败" in admin.json()["msg"] or "status 3" in admin.json()["msg"]
    lakala: dict[str, Any] = refund(
        http,
        sb,
        "EDGE-R-F1",
        refund_amount=100,
        origin_out_trade_no="EDGE-FAIL-1",
    ).json()
    assert lakala["code"] != "000000" and lakala["resp_data"] is None
    assert snapshot(sb) == before
    assert v1_status(http, "EDGE-FAIL-1") == "FAILED"


# -- cross-site POSTs that need no preflight ----------------------------------------------------


@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data"]
)
def test_a_simple_cross_site_post_cannot_close_an_order(
    frozen: tuple[httpx.Client, Sandbox], content_type: str
) -> None:
    http, sb = frozen
    body = seed_create(sb, "EDGE-CLOSE-1")
    no = http.post(V1 + "create", json=body).json()["resp_data"]["pay_order_no"]
    before = snapshot(sb)
    evil = {"Origin": "https://evil.example", "Content-Type": content_type}
    for path, payload in (
        (V1 + "close", '{"out_order_no": "EDGE-CLOSE-1"}'),
        (f"/sandbox/api/orders/{no}/close", "{}"),
    ):
        answer = http.post(path, content=payload, headers=evil)
        assert answer.status_code == 403, (path, answer.text)
        assert answer.json()["code"] in ("SBX30007", "SBX30006")
    assert snapshot(sb) == before
    assert v1_status(http, "EDGE-CLOSE-1") == "WAIT_PAY"
    # the same call from outside a browser (no Origin) closes it
    closed = http.post(V1 + "close", json={"out_order_no": "EDGE-CLOSE-1"}).json()
    assert closed["code"] == "000000" and closed["resp_data"]["order_status"] == "CLOSED"
