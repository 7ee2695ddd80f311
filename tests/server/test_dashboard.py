"""The dashboard over HTTP without a browser: what it lists, what its forms do, who may use it."""

from __future__ import annotations

import re
from collections.abc import Iterator
from html import unescape
from typing import Any

import httpx
import pytest

from sandbox.client.transport import InProcessTransport
from sandbox.runtime import Sandbox
from sandbox.testing.receiver import NotifyReceiver
from sandbox.wire import signing
from tests.conftest import make_app
from tests.support import V1, seed_create, snapshot

V1_ACK = {"code": "000000", "msg": "Notification received successfully"}


@pytest.fixture
def receiver() -> Iterator[NotifyReceiver]:
    with NotifyReceiver(answer=V1_ACK, path="/api/payment/notify") as rx:
        yield rx


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf" value="([0-9a-f]+)"', html)
    assert match, "no form token on the page"
    return match.group(1)


def create(http: httpx.Client, sb: Sandbox, out_order_no: str, **changes: Any) -> str:
    out = http.post(V1 + "create", json=seed_create(sb, out_order_no, **changes)).json()
    assert out["code"] == "000000", out
    return str(out["resp_data"]["pay_order_no"])


def post(http: httpx.Client, path: str, **fields: str) -> httpx.Response:
    return http.post(path, data={"csrf": csrf_of(http.get("/").text), **fields})


def flash(response: httpx.Response, http: httpx.Client) -> str:
    assert response.status_code == 303
    page = http.get(response.headers["location"]).text
    match = re.search(r'class="notice notice-(?:ok|error)" role="(?:status|alert)">([^<]*)<', page)
    assert match, "no message on the page"
    return unescape(match.group(1))


def test_orders_are_listed_newest_first_with_badges_and_amounts(
    http: httpx.Client, sb: Sandbox
) -> None:
    first = create(http, sb, "D-FIRST", total_amount=100)
    second = create(http, sb, "D-SECOND", total_amount=123456)
    sb.engine.apply(second, "pay")
    page = http.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert re.findall(r'data-order="(\d+)"', page.text) == [second, first]
    assert re.findall(r'class="badge badge-(\d)"', page.text) == ["2", "0"]
    assert "¥1,234.56" in page.text and "¥1.00" in page.text


def test_order_fields_are_escaped_on_the_dashboard(http: httpx.Client, sb: Sandbox) -> None:
    no = create(http, sb, "D-XSS", order_info="<script>alert(1)</script>")
    for path in ("/", f"/dashboard/orders/{no}"):
        html = http.get(path).text
        assert "<script>alert(1)" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_create_form_makes_a_v1_order_and_opens_its_counter_page(
    http: httpx.Client, sb: Sandbox
) -> None:
    response = post(
        http,
        "/dashboard/create",
        amount="2.50",
        order_info="手机壳",
        payment_method="WECHAT",
        callback_url="http://127.0.0.1:1/back",
        valid_minutes="15",
    )
    assert response.status_code == 303
    location = response.headers["location"]
    assert location.startswith("http://sandbox.test/b/pay?merchantNo=8222900701106PZ&")
    order = sb.engine.recent()[0]
    assert (order.dialect, order.total_amount, order.data["order_info"]) == ("v1", 250, "手机壳")
    assert sb.engine.allowed_pay_modes(order) == ["WECHAT"]
    assert sb.clock.parse(order.data["order_efficient_time"]) - order.created_ts == pytest.approx(
        900, abs=1
    )
    counter = http.get(location)
    assert counter.status_code == 200 and "¥2.50" in counter.text


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"amount": "abc"}, "amount must be yuan"),
        ({"amount": "0"}, "amount must be positive"),
        ({"amount": "1.001"}, "at most two decimals"),
        # Decimal reads these; 1e999997 once held the server for half a minute
        ({"amount": "1e999997"}, "amount must be yuan"),
        ({"amount": "Infinity"}, "amount must be yuan"),
        ({"amount": "sNaN"}, "amount must be yuan"),
        ({"amount": "1", "valid_minutes": "²"}, "valid_minutes"),
        ({"amount": "1", "callback_url": "javascript:alert(1)"}, "callback_url"),
        ({"amount": "1", "payment_method": "BITCOIN"}, "payment_method"),
        ({"amount": "1", "valid_minutes": "0"}, "valid_minutes"),
    ],
)
def test_create_form_refuses_bad_input_and_creates_nothing(
    http: httpx.Client, sb: Sandbox, fields: dict[str, str], message: str
) -> None:
    before = snapshot(sb)
    response = post(http, "/dashboard/create", **fields)
    assert message in flash(response, http)
    assert snapshot(sb) == before


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        (
            {"amount": "0"},
            "金额须为正数，最多两位小数（收到 '0'） "
            "amount must be positive yuan with at most two decimals (got '0')",
        ),
        (
            {"amount": "abc"},
            "金额须以元为单位，如 1.00（收到 'abc'） amount must be yuan like 1.00 (got 'abc')",
        ),
        (
            {"amount": "1", "valid_minutes": "0"},
            "有效期（分钟）须为 1 到 10080（收到 '0'） valid_minutes must be 1..10080 (got '0')",
        ),
    ],
)
def test_create_form_errors_are_in_chinese_and_english(
    http: httpx.Client, fields: dict[str, str], message: str
) -> None:
    assert flash(post(http, "/dashboard/create", **fields), http) == message


def test_dashboard_messages_are_in_chinese_and_english(http: httpx.Client, sb: Sandbox) -> None:
    no = create(http, sb, "D-BOTH")
    back = f"/dashboard/orders/{no}"
    said = flash(post(http, "/dashboard/clock", seconds="60", back=back), http)
    assert said.startswith("时钟已前进 60 秒，到 ") and " clock advanced 60s to " in said
    said = flash(post(http, f"/dashboard/orders/{no}/action", action="close", back=back), http)
    assert said == "close：订单状态现为 7（已关闭） close: order is now 7 (CLOSED)"
    said = flash(post(http, f"/dashboard/orders/{no}/action", action="nap", back=back), http)
    assert said.startswith("action 须为 ") and " action must be one of " in said
    said = flash(post(http, f"/dashboard/orders/{no}/advance", seconds="x", back=back), http)
    assert said.startswith("秒数须为 0 到 ") and " seconds must be whole seconds " in said
    page = http.get(back).text
    assert "订单当前状态不允许任何操作。 The order's state allows no action." in page
    assert "还没有交易。 No trades yet." in page


def test_order_page_shows_trades_and_every_notify_attempt_and_replays(
    http: httpx.Client, sb: Sandbox, receiver: NotifyReceiver
) -> None:
    no = create(http, sb, "D-NOTIFY", notify_url=receiver.url)
    sb.engine.apply(no, "pay", pay_mode="ALIPAY")
    receiver.wait(1)
    assert sb.notifier.drain()
    page = http.get(f"/dashboard/orders/{no}").text
    trade_no = sb.engine.get(no).trades[0]["trade_no"]
    assert f'data-trade="{trade_no}"' in page
    attempts = sb.notifier.attempts(no)
    assert re.findall(r'data-attempt="(\d+)" data-state="(\w+)"', page) == [
        (str(a["id"]), a["state"]) for a in attempts
    ]
    assert attempts[0]["state"] == "delivered"
    signed = unescape(re.search(r'data-field="signed-string">([^<]*)<', page).group(1))
    assert signed == attempts[0]["signed_string"]
    assert "Notification received successfully" in page
    replayed = post(
        http, f"/dashboard/notifies/{attempts[0]['id']}/replay", back=f"/dashboard/orders/{no}"
    )
    assert "replays the body" in flash(replayed, http)
    assert len(receiver.wait(2)) == 2
    assert receiver.received[1].body == receiver.received[0].body
    assert sb.notifier.drain()
    assert len(sb.notifier.attempts(no)) == len(attempts) + 1


def test_send_notify_now_from_the_order_page(
    http: httpx.Client, sb: Sandbox, receiver: NotifyReceiver
) -> None:
    no = create(http, sb, "D-SENDNOW", notify_url=receiver.url)
    response = post(http, f"/dashboard/orders/{no}/notify", back=f"/dashboard/orders/{no}")
    assert "queued to " + receiver.url in flash(response, http)
    assert receiver.wait(1)[0].json()["order_status"] == "WAIT_PAY"


def test_order_page_offers_only_legal_transitions(http: httpx.Client, sb: Sandbox) -> None:
    no = create(http, sb, "D-LEGAL", support_refund=1, support_cancel=0)
    sb.engine.apply(no, "pay")
    page = http.get(f"/dashboard/orders/{no}").text
    assert re.findall(r'name="action" value="(\w+)"', page) == ["refund"]


@pytest.mark.parametrize(
    ("action", "status"),
    [("pay", 2), ("fail", 3), ("paying", 1), ("cancel", 5), ("close", 7), ("expire", 4)],
)
def test_force_a_transition(http: httpx.Client, sb: Sandbox, action: str, status: int) -> None:
    no = create(http, sb, "D-FORCE-" + action, payment_method="WECHAT")
    response = post(
        http,
        f"/dashboard/orders/{no}/action",
        action=action,
        pay_mode="WECHAT",
        notify="never",
        back=f"/dashboard/orders/{no}",
    )
    assert f"order is now {status}" in flash(response, http)
    assert sb.engine.get(no).status == status


def test_an_illegal_transition_is_shown_and_changes_nothing(
    http: httpx.Client, sb: Sandbox
) -> None:
    no = create(http, sb, "D-ILLEGAL")
    sb.engine.apply(no, "pay")
    before = snapshot(sb)
    response = post(
        http, f"/dashboard/orders/{no}/action", action="pay", back=f"/dashboard/orders/{no}"
    )
    assert "cannot pay (already paid)" in flash(response, http)
    assert response.headers["location"].startswith(f"/dashboard/orders/{no}?error=")
    assert snapshot(sb) == before


def test_clock_advances_and_resets(http: httpx.Client, sb: Sandbox) -> None:
    start = sb.clock.timestamp()
    response = post(http, "/dashboard/clock", seconds="3600")
    assert "clock advanced 3600s" in flash(response, http)
    assert sb.clock.timestamp() - start == pytest.approx(3600, abs=5)
    assert "clock reset" in flash(post(http, "/dashboard/clock", op="reset"), http)
    assert sb.clock.timestamp() - start == pytest.approx(0, abs=5)
    assert "seconds must be whole seconds" in flash(
        post(http, "/dashboard/clock", seconds="-5"), http
    )


def test_advance_one_orders_clock_expires_it(http: httpx.Client, sb: Sandbox) -> None:
    no = create(http, sb, "D-ADVANCE")
    other = create(http, sb, "D-OTHER")
    post(http, f"/dashboard/orders/{no}/advance", seconds="7200", back=f"/dashboard/orders/{no}")
    assert sb.engine.get(no).status == 4
    assert sb.engine.get(other).status == 0


def test_the_order_page_says_whose_clock_the_order_time_is(http: httpx.Client, sb: Sandbox) -> None:
    no = create(http, sb, "D-OWNCLOCK")
    page = http.get(f"/dashboard/orders/{no}").text
    assert "<dt>订单时钟 this order's clock</dt>" in page
    note = re.search(r'data-field="order-clock-note">([^<]*)<', page)
    assert note and unescape(note.group(1)).startswith("(= 沙箱时钟 the sandbox clock")
    post(http, f"/dashboard/orders/{no}/advance", seconds="60", back=f"/dashboard/orders/{no}")
    page = http.get(f"/dashboard/orders/{no}").text
    note = re.search(r'data-field="order-clock-note">([^<]*)<', page)
    assert note and "this order was advanced on its own" in unescape(note.group(1))
    assert "the sandbox clock + 60.0 s" in unescape(note.group(1))


def test_default_scenario_is_chosen_from_the_shipped_list(http: httpx.Client, sb: Sandbox) -> None:
    page = http.get("/").text
    names = re.findall(r'<option value="([\w-]+)"(?: selected)?>\1</option>', page)
    assert names == [s["name"] for s in sb.runner.list()["scenarios"]]
    assert "manual" in names and "auto-success" in names
    response = post(http, "/dashboard/scenario", name="auto-success")
    assert "default scenario is now auto-success" in flash(response, http)
    assert sb.runner.list()["default"] == "auto-success"
    assert "no scenario named 'nope'" in flash(post(http, "/dashboard/scenario", name="nope"), http)


def test_key_downloads_are_linked(http: httpx.Client, sb: Sandbox) -> None:
    page = http.get("/").text
    files = {}
    for name in ("platform.cer", "merchant.cer", "merchant_private_key.pem"):
        assert f'href="/sandbox/keys/{name}"' in page
        download = http.get(f"/sandbox/keys/{name}")
        assert download.status_code == 200
        assert download.headers["content-disposition"] == f'attachment; filename="{name}"'
        files[name] = download.content
    # the files are this sandbox's own keys, as PEM: what signs its answers and notifies ...
    platform = signing.load_certificate(files["platform.cer"])
    assert files["platform.cer"].startswith(b"-----BEGIN CERTIFICATE-----\n")
    assert platform == sb.keys.platform_cert
    # ... and the merchant's pair, which signs requests this sandbox accepts
    merchant = signing.load_certificate(files["merchant.cer"])
    assert merchant == sb.keys.merchant_cert
    key = signing.load_private_key(files["merchant_private_key.pem"])
    assert files["merchant_private_key.pem"].startswith(b"-----BEGIN PRIVATE KEY-----\n")
    assert key.private_numbers() == sb.keys.merchant_key.private_numbers()
    message = b"signed with the downloaded key"
    signature = signing.sign(key, message)
    assert signing.verify(signing.certificate_public_key(merchant), message, signature)


def test_a_forged_dashboard_post_is_refused(http: httpx.Client, sb: Sandbox) -> None:
    before = snapshot(sb)
    token = csrf_of(http.get("/").text)
    for headers, form in [
        ({"Origin": "http://evil.example"}, {"csrf": token}),
        ({}, {"csrf": "0" * 64}),
        ({"Referer": "http://[zz/page"}, {"csrf": token}),  # an address that does not parse
    ]:
        response = http.post("/dashboard/create", data={**form, "amount": "1"}, headers=headers)
        assert response.status_code == 403 and "请求被拒绝 Request refused" in response.text
    assert snapshot(sb) == before
    said = re.search(r'<p class="message-text">([^<]*)<', response.text)
    assert said and unescape(said.group(1)) == (
        "提交表单的页面地址无法解析。 the form was posted from a page whose address does not parse"
    )


def test_dashboard_answers_loopback_only_like_the_admin_api() -> None:
    app = make_app()
    remote = InProcessTransport(app, client=("203.0.113.7", 4000))
    with httpx.Client(transport=remote, base_url="http://sandbox.test") as client:
        page = client.get("/")
        assert page.status_code == 403 and "loopback" in page.text
        assert "控制台仅限本机访问 Dashboard: loopback only" in page.text
        assert client.get("/dashboard/orders/1").status_code == 403
        assert client.post("/dashboard/clock", data={"seconds": "60"}).status_code == 403
        assert client.get("/sandbox/api/orders").status_code == 403


def test_with_an_admin_token_the_dashboard_asks_for_it_once() -> None:
    app = make_app(admin_token="s3cret")
    remote = InProcessTransport(app, client=("203.0.113.7", 4000))
    with httpx.Client(transport=remote, base_url="http://sandbox.test") as client:
        ask = client.get("/")
        assert ask.status_code == 401 and 'name="token"' in ask.text
        wrong = client.post("/dashboard/login", data={"token": "guess"})
        assert wrong.status_code == 401
        assert "这不是管理令牌。 That is not the admin token." in wrong.text
        right = client.post("/dashboard/login", data={"token": "s3cret"})
        assert right.status_code == 303
        cookie = right.headers["set-cookie"]
        assert "httponly" in cookie.lower() and "samesite=strict" in cookie.lower()
        assert client.get("/").status_code == 200
        assert client.get("/", headers={"Authorization": "Bearer s3cret"}).status_code == 200


def test_a_token_that_is_not_ascii_is_just_a_wrong_token() -> None:
    app = make_app(admin_token="s3cret")
    remote = InProcessTransport(app, client=("203.0.113.7", 4000))
    with httpx.Client(transport=remote, base_url="http://sandbox.test") as client:
        typed = client.post("/dashboard/login", data={"token": "é"})
        assert typed.status_code == 401 and "not the admin token" in typed.text
        assert (
            client.get("/", headers={"Cookie": "lakala_sandbox_admin=é".encode()}).status_code
            == 401
        )
        header = client.get("/sandbox/api/orders", headers={"X-Sandbox-Admin-Token": "é".encode()})
        assert header.status_code == 403 and header.json()["code"] == "SBX30006"
        bearer = client.get("/sandbox/api/orders", headers={"Authorization": "Bearer é".encode()})
        assert bearer.status_code == 403


def test_demo_callback_page_shows_what_the_merchant_page_reads(http: httpx.Client) -> None:
    page = http.get("/dashboard/callback", params={"out_order_no": "A<1>", "status": "SUCCESS"})
    assert page.status_code == 200
    assert 'data-field="param-out_order_no">A&lt;1&gt;<' in page.text
    assert 'data-field="param-status">SUCCESS<' in page.text


def test_unknown_order_page_is_a_404_page(http: httpx.Client) -> None:
    page = http.get("/dashboard/orders/nope")
    assert page.status_code == 404 and "Order not found" in page.text
