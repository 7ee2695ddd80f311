"""The counter page over HTTP without a browser: forms in, redirects and HTML out (no JS)."""

from __future__ import annotations

import re
from html import unescape
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import yaml

from sandbox.client.transport import InProcessTransport
from sandbox.core import cards
from sandbox.core.engine import Order
from sandbox.runtime import Sandbox
from sandbox.scenarios.files import check_paths
from sandbox.server.pages.common import yuan
from sandbox.server.pages.counter import parse_policy, step_yaml
from sandbox.wire.vocabulary import PAY_MODE_NAMES
from tests.conftest import make_app
from tests.paths import ROOT
from tests.support import V1, future14, seed_create, snapshot, v3_post, v3_req_data

SEED_NAMES = [
    "支付宝",
    "微信支付",
    "银联云闪付",
    "POS刷卡",
    "线上转账",
    "快捷支付",
    "网银支付",
    "银联支付",
    "翼支付",
    "花呗分期",
    "银联聚分期",
    "线上外卡",
    "京东白条",
    "支付宝香港钱包",
]


def create(http: httpx.Client, sb: Sandbox, out_order_no: str, **changes: Any) -> Order:
    body = seed_create(sb, out_order_no, **changes)
    for key in [k for k, v in changes.items() if v is None]:
        body.pop(key)
    out = http.post(V1 + "create", json=body).json()
    assert out["code"] == "000000", out
    return sb.engine.get(out["resp_data"]["pay_order_no"])


def page_query(order: Order) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(order.counter_url).query).items()}


def counter(http: httpx.Client, order: Order, **params: str) -> httpx.Response:
    return http.get("/b/pay", params={**page_query(order), **params})


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf" value="([0-9a-f]+)"', html)
    assert match, "no form token on the page"
    return match.group(1)


def submit(
    http: httpx.Client, order: Order, action: str, pay_mode: str = "ALIPAY", **fields: str
) -> httpx.Response:
    page = counter(http, order, payMode=pay_mode)
    form = {
        **page_query(order),
        "csrf": csrf_of(page.text),
        "action": action,
        "pay_mode": pay_mode,
        **fields,
    }
    return http.post("/b/pay/submit", data=form)


def field(html: str, name: str) -> str:
    match = re.search(rf'data-field="{name}"[^>]*>([^<]*)<', html)
    assert match, f"no {name} on the page"
    return unescape(match.group(1)).strip()


def test_page_shows_the_order_with_amount_in_yuan_and_all_fourteen_methods(
    http: httpx.Client, sb: Sandbox
) -> None:
    order = create(http, sb, "P-ALL", payment_method=None)
    page = counter(http, order)
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert '<html lang="zh-CN">' in page.text
    assert field(page.text, "amount") == "¥1.00"
    assert field(page.text, "order_info") == "测试商品购买"
    assert field(page.text, "out_order_no") == "P-ALL"
    assert field(page.text, "pay_order_no") == order.pay_order_no
    assert re.findall(r'<span class="method-name">([^<]+)</span>', page.text) == SEED_NAMES
    assert re.search(r"data-countdown[^>]*>0:59:5\d<", page.text)


@pytest.mark.parametrize(
    ("changes", "shown"),
    [
        ({"payment_method": "WECHAT"}, ["WECHAT"]),
        ({"payment_method": "CARD"}, ["CARD"]),
    ],
)
def test_v1_payment_method_narrows_the_methods(
    http: httpx.Client, sb: Sandbox, changes: dict[str, str], shown: list[str]
) -> None:
    order = create(http, sb, "P-NARROW-" + shown[0], **changes)
    assert offered(counter(http, order).text) == shown


def offered(page: str) -> list[str]:
    """The methods a page offers: its list, or the one method it opened on by itself."""
    listed = re.findall(r'data-mode="([A-Z_]+)"', page)
    if listed:
        return listed
    assert 'class="panel method-screen"' in page
    return sorted(set(re.findall(r'name="pay_mode" value="([A-Z_]+)"', page)))


@pytest.mark.parametrize(
    ("changes", "opened"),
    [
        ({"payment_method": "WECHAT"}, 'class="qr"'),
        ({"payment_method": "CARD"}, 'name="card_no"'),
    ],
)
def test_an_order_limited_to_one_pay_mode_opens_on_it_without_a_click(
    http: httpx.Client, sb: Sandbox, changes: dict[str, str], opened: str
) -> None:
    order = create(http, sb, "P-ONE-" + changes["payment_method"], **changes)
    page = counter(http, order).text
    assert opened in page and 'class="methods"' not in page
    assert 'class="other"' not in page  # no other method to go back to
    # and paying from it works as from the list
    mode = changes["payment_method"]
    extra = {"card_no": "6212 3400 0000 0001"} if mode == "CARD" else {}
    submit(http, order, "card" if extra else "pay", pay_mode=mode, **extra)
    assert sb.engine.get(order.pay_order_no).status == 2


@pytest.mark.parametrize(
    ("req", "shown"),
    [
        ({"counter_param": '{"pay_mode":"UNION"}'}, ["UNION"]),
        (
            {
                "busi_type_param": '[{"busi_type":"SCPAY","params":{"pay_mode":"ALIPAY"}},'
                '{"busi_type":"UPCARD","params":{"crd_flg":"CRDFLG_D"}}]'
            },
            ["ALIPAY", "CARD", "UNION_CC", "UNION_FQ"],
        ),
    ],
)
def test_v3_counter_param_and_busi_type_param_narrow_the_methods(
    sb: Sandbox, http: httpx.Client, req: dict[str, str], shown: list[str]
) -> None:
    out = v3_post(http, sb, "special_create", v3_req_data(sb, "P-V3-" + shown[0], **req)).json()
    assert out["code"] == "000000", out
    order = sb.engine.get(out["resp_data"]["pay_order_no"])
    assert offered(counter(http, order).text) == shown


def test_english_with_lang_en(http: httpx.Client, sb: Sandbox) -> None:
    order = create(http, sb, "P-EN", payment_method=None)
    page = counter(http, order, lang="en")
    assert '<html lang="en">' in page.text
    assert "Choose a payment method" in page.text
    assert re.findall(r'<span class="method-name">([^<]+)</span>', page.text)[:2] == [
        "Alipay",
        "WeChat Pay",
    ]
    assert 'name="lang" value="en"' in page.text


def test_order_info_markup_is_shown_as_text(http: httpx.Client, sb: Sandbox) -> None:
    order = create(http, sb, "P-XSS", order_info='<script>alert("x")</script><b>hi</b>')
    for params in ({}, {"payMode": "ALIPAY"}):
        html = counter(http, order, **params).text
        assert "<script>alert" not in html and "<b>hi" not in html
        assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;&lt;b&gt;hi&lt;/b&gt;" in html


def test_scan_method_shows_a_qr_code_of_the_phone_link(http: httpx.Client, sb: Sandbox) -> None:
    order = create(http, sb, "P-QR")
    html = counter(http, order, payMode="ALIPAY").text
    assert "<svg" in html and 'class="qr-svg"' in html
    phone = unescape(re.search(r'data-phone-url="([^"]+)"', html).group(1))
    assert phone.startswith("http://sandbox.test/b/pay?")
    assert parse_qs(urlsplit(phone).query)["payMode"] == ["ALIPAY"]
    assert [b for b in ("支付成功", "支付失败", "取消支付", "保持支付中") if b in html] == [
        "支付成功",
        "支付失败",
        "取消支付",
        "保持支付中",
    ]


def test_qr_code_uses_the_configured_public_url() -> None:
    app = make_app(public_url="https://pay.example.test/sbx")
    sandbox: Sandbox = app.state.sandbox
    with httpx.Client(transport=InProcessTransport(app), base_url="http://127.0.0.1:1") as client:
        order = create(client, sandbox, "P-PUBLIC")
        html = counter(client, order, payMode="ALIPAY").text
    phone = unescape(re.search(r'data-phone-url="([^"]+)"', html).group(1))
    assert phone.startswith("https://pay.example.test/sbx/b/pay?")


def test_card_method_shows_the_card_form_and_the_test_cards(
    http: httpx.Client, sb: Sandbox
) -> None:
    order = create(http, sb, "P-CARDFORM", payment_method=None)
    html = counter(http, order, payMode="QUICK_PAY").text
    assert 'name="card_no"' in html and '<label for="card_no">卡号</label>' in html
    for card in cards.TEST_CARDS:
        assert card.spaced in html


@pytest.mark.parametrize("card", cards.TEST_CARDS, ids=lambda c: c.number)
def test_each_test_card_runs_its_outcome(http: httpx.Client, sb: Sandbox, card: cards.Card) -> None:
    order = create(http, sb, "P-CARD-" + card.number[-4:], payment_method=None)
    response = submit(http, order, "card", pay_mode="UNION_CC", card_no=card.spaced)
    assert response.status_code == 303
    after = sb.engine.get(order.pay_order_no)
    assert after.status == {"pay": 2, "fail": 3, "paying": 1, "cancel": 5}[card.action]
    if card.action in ("pay", "fail", "paying"):
        assert after.trades[0]["pay_mode"] == "UNION_CC"
    page = http.get(response.headers["location"])
    assert card.zh in page.text


@pytest.mark.parametrize(
    ("typed", "message"),
    [
        ("4242 4242 4242 4241", "卡号无效"),
        ("6212 3400 0000 0050", "这不是沙箱测试卡号"),
        ("", "卡号无效"),
    ],
)
def test_a_wrong_card_number_changes_nothing_and_says_why(
    http: httpx.Client, sb: Sandbox, typed: str, message: str
) -> None:
    order = create(http, sb, "P-BADCARD-" + str(len(typed)), payment_method=None)
    before = snapshot(sb)
    response = submit(http, order, "card", pay_mode="CARD", card_no=typed)
    assert response.status_code == 422
    assert message in response.text and 'aria-invalid="true"' in response.text
    assert snapshot(sb) == before


def test_card_numbers_are_luhn_valid_and_documented_in_the_readme() -> None:
    pages = (ROOT / "docs" / "pages.md").read_text(encoding="utf-8")
    assert cards.markdown_table() in pages
    assert all(cards.luhn_ok(c.number) for c in cards.TEST_CARDS)


@pytest.mark.parametrize(
    ("action", "status", "word"),
    [
        ("pay", 2, "SUCCESS"),
        ("fail", 3, "FAILED"),
        ("cancel", 5, "CANCELLED"),
        ("paying", 1, "PAYING"),
    ],
)
def test_outcome_buttons_post_then_redirect_and_return_to_callback(
    http: httpx.Client, sb: Sandbox, action: str, status: int, word: str
) -> None:
    order = create(
        http,
        sb,
        "P-OUT-" + action,
        support_repeat_pay=0,
        callback_url="https://shop.example.test/pay/done?from=lkl#/result",
    )
    response = submit(http, order, action)
    assert response.status_code == 303
    assert sb.engine.get(order.pay_order_no).status == status
    location = response.headers["location"]
    assert location.startswith("/b/pay?") and f"ran={action}" in location
    page = http.get(location)
    notify = {"pay_mode": "ALIPAY"} if action != "cancel" else {}
    assert field(page.text, "step") == step_yaml(action, notify.get("pay_mode"), "now")
    back = http.get("/b/pay/return", params=page_query(order))
    assert back.status_code == 303
    assert back.headers["location"] == (
        f"https://shop.example.test/pay/done?from=lkl&out_order_no={order.out_order_no}"
        f"&status={word}#/result"
    )


def test_notify_policy_of_a_click_reaches_the_listeners(http: httpx.Client, sb: Sandbox) -> None:
    heard: list[Any] = []
    sb.engine.listeners.append(heard.append)
    order = create(http, sb, "P-POLICY")
    response = submit(http, order, "pay", notify="after", notify_after="45")
    assert response.status_code == 303
    change = heard[-1]
    assert (change.action, change.source) == ("pay", "page")
    assert change.options == {"notify": {"after": 45}}
    page = http.get(response.headers["location"])
    assert field(page.text, "step") == "- pay: {pay_mode: ALIPAY, notify: {after: 45}}"


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({}, "now"),
        ({"notify": "never"}, "never"),
        ({"notify": "twice"}, "twice"),
        ({"notify": "after", "notify_after": "0"}, {"after": 0}),
    ],
)
def test_notify_policies(fields: dict[str, str], expected: Any) -> None:
    assert parse_policy(fields) == expected


@pytest.mark.parametrize(
    "fields",
    [
        {"action": "refund"},
        {"action": ""},
        {"pay_mode": "BITCOIN"},
        {"notify": "sometimes"},
        {"notify": "after", "notify_after": "-1"},
        {"notify": "after", "notify_after": "soon"},
    ],
)
def test_bad_form_fields_get_a_clear_page_and_change_nothing(
    http: httpx.Client, sb: Sandbox, fields: dict[str, str]
) -> None:
    order = create(http, sb, "P-BAD-" + str(abs(hash(str(fields))) % 10**8))
    before = snapshot(sb)
    page = counter(http, order, payMode="ALIPAY")
    form = {
        **page_query(order),
        "csrf": csrf_of(page.text),
        "action": "pay",
        "pay_mode": "ALIPAY",
        **fields,
    }
    response = http.post("/b/pay/submit", data=form)
    assert response.status_code == 400
    assert "请求有误" in response.text
    english = http.post("/b/pay/submit", data={**form, "lang": "en"})
    assert english.status_code == 400 and "Bad request" in english.text
    assert snapshot(sb) == before


@pytest.mark.parametrize(
    ("fields", "zh", "en"),
    [
        (
            {"action": "refund"},
            "action 须为 pay, fail, cancel, paying 之一（收到 'refund'）",
            "action must be one of pay, fail, cancel, paying (got 'refund')",
        ),
        (
            {"pay_mode": "BITCOIN"},
            "未知的支付方式 pay_mode 'BITCOIN'",
            "unknown pay_mode 'BITCOIN'",
        ),
        (
            {"notify": "sometimes"},
            "notify 须为 now, after, never, twice 之一（收到 'sometimes'）",
            "notify must be one of now, after, never, twice (got 'sometimes')",
        ),
        (
            {"notify": "after", "notify_after": "soon"},
            "notify_after 须为 0 到 604800 的整秒数（收到 'soon'）",
            "notify_after must be whole seconds 0..604800 (got 'soon')",
        ),
    ],
)
def test_a_bad_form_field_is_explained_in_the_pages_language(
    http: httpx.Client, sb: Sandbox, fields: dict[str, str], zh: str, en: str
) -> None:
    order = create(http, sb, "P-BADLANG-" + str(abs(hash(str(fields))) % 10**8))
    page = counter(http, order, payMode="ALIPAY")
    form = {
        **page_query(order),
        "csrf": csrf_of(page.text),
        "action": "pay",
        "pay_mode": "ALIPAY",
        **fields,
    }
    assert message_of(http.post("/b/pay/submit", data=form).text) == zh
    assert message_of(http.post("/b/pay/submit", data={**form, "lang": "en"}).text) == en


def message_of(html: str) -> str:
    match = re.search(r'<p class="message-text">([^<]*)<', html)
    assert match, "no message on the page"
    return unescape(match.group(1))


@pytest.mark.parametrize(
    ("headers", "token", "zh", "en"),
    [
        (
            {"Origin": "http://evil.example"},
            True,
            "表单来自 http://evil.example，而非本沙箱。",
            "the form was posted from http://evil.example, not from this sandbox",
        ),
        (
            {"Referer": "http://evil.example/page"},
            True,
            "表单来自 http://evil.example，而非本沙箱。",
            "the form was posted from http://evil.example, not from this sandbox",
        ),
        (
            {"Sec-Fetch-Site": "cross-site"},
            True,
            "浏览器表明此请求来自其他网站（Sec-Fetch-Site: cross-site）。",
            "the browser says this request came from another site (Sec-Fetch-Site: cross-site)",
        ),
        (
            {"Origin": "null"},
            True,
            "表单来自 null，而非本沙箱。",
            "the form was posted from null, not from this sandbox",
        ),
        (
            {},
            False,
            "表单令牌缺失或不正确，请刷新页面后重试。",
            "the form token is missing or wrong; reload the page and try again",
        ),
    ],
)
def test_forged_posts_are_refused_with_a_clear_page_in_the_pages_language(
    http: httpx.Client, sb: Sandbox, headers: dict[str, str], token: bool, zh: str, en: str
) -> None:
    order = create(http, sb, "P-CSRF-" + str(len(headers)) + str(token))
    before = snapshot(sb)
    page = counter(http, order, payMode="ALIPAY")
    form = {
        **page_query(order),
        "action": "pay",
        "pay_mode": "ALIPAY",
        "csrf": csrf_of(page.text) if token else "0" * 64,
    }
    chinese = http.post("/b/pay/submit", data=form, headers=headers)
    assert chinese.status_code == 403
    assert "请求被拒绝" in chinese.text and message_of(chinese.text) == zh
    assert "本沙箱收银台页面" in chinese.text
    english = http.post("/b/pay/submit", data={**form, "lang": "en"}, headers=headers)
    assert english.status_code == 403
    assert "Request refused" in english.text and message_of(english.text) == en
    assert "请求被拒绝" not in english.text
    assert snapshot(sb) == before


def test_a_form_the_page_cannot_read_gets_a_page_saying_why(
    http: httpx.Client, sb: Sandbox
) -> None:
    order = create(http, sb, "P-BIGFORM")
    before = snapshot(sb)
    page = counter(http, order, payMode="ALIPAY")
    fields = {**page_query(order), "action": "pay", "csrf": csrf_of(page.text)}
    big = {name: (None, value) for name, value in fields.items()}
    big["pay_mode"] = (None, "A" * (2 * 1024 * 1024))  # multipart: a part over 1 MiB
    too_big = http.post("/b/pay/submit", files=big)
    too_many = http.post("/b/pay/submit", data={**fields, **{f"x{i}": "1" for i in range(40)}})
    for response in (too_big, too_many):
        assert response.status_code == 400
        assert response.headers["content-type"].startswith("text/html")
        text = unescape(response.text)
        assert "无法读取表单" in text and "the form could not be read" in text
    assert snapshot(sb) == before


def test_same_origin_post_is_accepted(http: httpx.Client, sb: Sandbox) -> None:
    order = create(http, sb, "P-SAME")
    page = counter(http, order, payMode="ALIPAY")
    form = {**page_query(order), "action": "pay", "pay_mode": "ALIPAY", "csrf": csrf_of(page.text)}
    response = http.post(
        "/b/pay/submit",
        data=form,
        headers={"Origin": "http://sandbox.test", "Sec-Fetch-Site": "same-origin"},
    )
    assert response.status_code == 303
    paid = sb.engine.get(order.pay_order_no)
    assert paid.status == 2 and paid.trades[0]["pay_mode"] == "ALIPAY"
    location = response.headers["location"]
    assert location.startswith("/b/pay?") and "ran=pay" in location
    assert f"payOrderNo={order.pay_order_no}" in location
    assert field(http.get(location).text, "state") == "支付成功"


@pytest.mark.parametrize(
    "callback",
    [
        "javascript:alert(1)",
        "ftp://shop.example/x",
        "//evil.example/x",
        "data:text/html,hi",
        None,
    ],
)
def test_only_http_callbacks_are_followed(
    http: httpx.Client, sb: Sandbox, callback: str | None
) -> None:
    # the create schemas refuse such URLs already; the page must not trust that alone
    req = {
        "merchant_no": sb.settings.merchant_no,
        "out_order_no": f"P-CB-{len(str(callback))}",
        "total_amount": 100,
        "order_info": "callback test",
        "order_efficient_time": future14(sb),
        "callback_url": callback,
    }
    order, _ = sb.engine.create("v1", req, request_hash="h", base_url="http://sandbox.test")
    sb.engine.apply(order.pay_order_no, "pay")
    page = counter(http, order)
    assert "返回商户" not in page.text and "不会跳转" in page.text
    assert "data-redirect-url" not in page.text and 'http-equiv="refresh"' not in page.text
    back = http.get("/b/pay/return", params=page_query(order))
    assert back.status_code == 303 and back.headers["location"].startswith("/b/pay?")


def test_paid_order_shows_its_state_and_returns_automatically(
    http: httpx.Client, sb: Sandbox
) -> None:
    order = create(http, sb, "P-PAID")
    sb.engine.apply(order.pay_order_no, "pay", pay_mode="ALIPAY")
    html = counter(http, order, payMode="ALIPAY").text
    assert field(html, "state") == "支付成功"
    assert 'name="action"' not in html
    assert 'data-redirect-url="/b/pay/return?' in html
    assert '<noscript><meta http-equiv="refresh" content="5;url=/b/pay/return?' in html


@pytest.mark.parametrize(
    ("action", "text"),
    [("expire", "订单已过期"), ("close", "订单已关闭"), ("fail", "支付失败"), ("cancel", "已取消")],
)
def test_finished_orders_show_their_state_instead_of_buttons(
    http: httpx.Client, sb: Sandbox, action: str, text: str
) -> None:
    order = create(http, sb, "P-END-" + action, support_repeat_pay=0)
    sb.engine.apply(order.pay_order_no, action)
    html = counter(http, order).text
    assert field(html, "state") == text
    assert 'name="action"' not in html and 'name="payMode"' not in html


def test_repeat_pay_offers_methods_again_after_a_failure(http: httpx.Client, sb: Sandbox) -> None:
    order = create(http, sb, "P-REPEAT", support_repeat_pay=1, payment_method=None)
    sb.engine.apply(order.pay_order_no, "fail")
    html = counter(http, order).text
    assert "上次支付失败，可重新支付。" in html and 'name="payMode"' in html
    assert submit(http, order, "pay").status_code == 303
    assert sb.engine.get(order.pay_order_no).status == 2


def test_support_cancel_offers_revoking_a_paid_order(http: httpx.Client, sb: Sandbox) -> None:
    plain = create(http, sb, "P-NOCANCEL", support_cancel=0)
    sb.engine.apply(plain.pay_order_no, "pay")
    assert "撤销支付" not in counter(http, plain).text
    order = create(http, sb, "P-CANCEL", support_cancel=1)
    sb.engine.apply(order.pay_order_no, "pay")
    html = counter(http, order).text
    assert "撤销支付" in html
    form = {**page_query(order), "csrf": csrf_of(html), "action": "cancel"}
    assert http.post("/b/pay/submit", data=form).status_code == 303
    assert sb.engine.get(order.pay_order_no).status == 5


def test_an_action_that_became_illegal_meanwhile_says_so(http: httpx.Client, sb: Sandbox) -> None:
    order = create(http, sb, "P-LATE")
    page = counter(http, order, payMode="ALIPAY")
    sb.engine.advance_order(order.pay_order_no, 7200)
    before = snapshot(sb)
    form = {**page_query(order), "csrf": csrf_of(page.text), "action": "pay", "pay_mode": "ALIPAY"}
    response = http.post("/b/pay/submit", data=form)
    assert response.status_code == 303 and "refused=pay" in response.headers["location"]
    assert snapshot(sb) == before
    html = http.get(response.headers["location"]).text
    assert "「支付成功」未执行：订单当前状态为「订单已过期」。" in html
    assert field(html, "state") == "订单已过期"


def test_a_method_the_order_does_not_allow_is_not_offered(http: httpx.Client, sb: Sandbox) -> None:
    order = create(http, sb, "P-WRONGMODE", payment_method="ALIPAY")
    html = counter(http, order, payMode="WECHAT").text
    # said so, and the page opens on the one method the order allows instead
    assert "该订单不支持微信支付。" in html
    assert offered(html) == ["ALIPAY"] and "请使用支付宝扫码支付" in html
    assert 'name="pay_mode" value="WECHAT"' not in html
    before = snapshot(sb)
    token = csrf_of(counter(http, order, payMode="ALIPAY").text)
    form = {**page_query(order), "csrf": token, "action": "pay", "pay_mode": "WECHAT"}
    refused = http.post("/b/pay/submit", data=form)
    assert refused.status_code == 303 and "refused=pay" in refused.headers["location"]
    assert snapshot(sb) == before


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"payOrderNo": "nope"},
        {"merchantNo": "X"},
        {"merchantOrderNo": "other"},
    ],
)
def test_a_wrong_link_gets_a_not_found_page(
    http: httpx.Client, sb: Sandbox, params: dict[str, str]
) -> None:
    order = create(http, sb, "P-404")
    query = {**page_query(order), **params} if params else {}
    for path in ("/b/pay", "/b/pay/return"):
        response = http.get(path, params=query)
        assert response.status_code == 404 and "订单不存在" in response.text
    assert http.get("/b/pay/status", params=query).status_code == 404


def test_status_endpoint_reports_the_orders_own_clock(http: httpx.Client, sb: Sandbox) -> None:
    order = create(http, sb, "P-STATUS")
    first = http.get("/b/pay/status", params=page_query(order)).json()
    assert first["order_status"] == "0" and first["status"] == "WAIT_PAY"
    assert 3590 <= first["remaining_seconds"] <= 3600
    sb.engine.advance_order(order.pay_order_no, 3600)
    assert http.get("/b/pay/status", params=page_query(order)).json() == {
        "order_status": "4",
        "status": "EXPIRED",
        "remaining_seconds": 0,
    }


def test_yuan_formats_fen() -> None:
    assert [yuan(v) for v in (100, 1, 123456789, 0)] == ["¥1.00", "¥0.01", "¥1,234,567.89", "¥0.00"]


def test_every_pay_mode_has_both_names(sb: Sandbox) -> None:
    assert sorted(PAY_MODE_NAMES) == sorted(sb.engine.pay_modes)


@pytest.mark.parametrize(("action", "word"), [("paying", "PAYING"), ("fail", "FAILED")])
def test_a_still_payable_order_offers_the_way_back_to_the_merchant(
    http: httpx.Client, sb: Sandbox, action: str, word: str
) -> None:
    order = create(
        http,
        sb,
        "P-EARLY-" + action,
        support_repeat_pay=1,
        callback_url="https://shop.example.test/pay/done",
    )
    response = submit(http, order, action)
    html = http.get(response.headers["location"]).text
    assert 'name="action"' in html or 'name="payMode"' in html  # the payer may still pay
    assert 'action="/b/pay/return"' in html and ">返回商户</button>" in html
    assert "data-redirect-url" not in html  # no automatic return while it can still be paid
    english = counter(http, order, lang="en").text
    assert ">Back to merchant</button>" in english
    back = http.get("/b/pay/return", params=page_query(order))
    assert back.status_code == 303
    assert back.headers["location"] == (
        f"https://shop.example.test/pay/done?out_order_no={order.out_order_no}&status={word}"
    )


def test_without_a_callback_a_paying_order_offers_no_way_back(
    http: httpx.Client, sb: Sandbox
) -> None:
    order = create(http, sb, "P-EARLY-NOCB", callback_url=None)
    html = http.get(submit(http, order, "paying").headers["location"]).text
    assert "/b/pay/return" not in html and "返回商户" not in html


@pytest.mark.parametrize(
    "card", [c for c in cards.TEST_CARDS if c.action != "cancel"], ids=lambda c: c.number
)
def test_a_card_payment_records_the_card_typed_masked(
    http: httpx.Client, sb: Sandbox, card: cards.Card
) -> None:
    order = create(http, sb, "P-MASK-" + card.number[-4:], payment_method=None)
    assert submit(http, order, "card", pay_mode="QUICK_PAY", card_no=card.spaced).status_code == 303
    trades = http.get(f"/sandbox/api/orders/{order.pay_order_no}").json()["order"]["trades"]
    assert trades[0]["payer_account_no"] == "621234******" + card.number[-4:]
    assert trades[0]["payer_account_bank"]  # a bank the sandbox picked: 621234 is no known BIN


def test_a_card_of_a_known_bin_names_its_bank() -> None:
    assert cards.payer_fields("6222020000000007") == {
        "payer_account_no": "622202******0007",
        "payer_account_bank": "中国工商银行",
        "bank_type": "ICBC",
    }
    assert cards.payer_fields("6212340000000001") == {"payer_account_no": "621234******0001"}


@pytest.mark.parametrize(
    ("lang", "state", "reason"),
    [(None, "支付失败", "余额不足"), ("en", "Payment failed", "insufficient funds")],
)
def test_a_failed_card_payment_shows_why_on_the_result(
    http: httpx.Client, sb: Sandbox, lang: str | None, state: str, reason: str
) -> None:
    order = create(http, sb, "P-WHY-" + (lang or "zh"), payment_method=None, support_repeat_pay=0)
    extra = {"lang": lang} if lang else {}
    response = submit(
        http, order, "card", pay_mode="QUICK_PAY", card_no="6212 3400 0000 0019", **extra
    )
    html = http.get(response.headers["location"]).text
    assert field(html, "state") == state
    assert field(html, "fail-reason") == reason


def test_a_partly_refunded_order_shows_how_much_was_refunded(
    http: httpx.Client, sb: Sandbox
) -> None:
    order = create(http, sb, "P-REFUNDED", total_amount=1000, support_refund=1)
    sb.engine.apply(order.pay_order_no, "pay")
    sb.engine.apply(order.pay_order_no, "refund", amount=300)
    html = counter(http, order).text
    assert field(html, "state") == "已退款" and field(html, "refunded") == "¥3.00"
    page = http.get(f"/dashboard/orders/{order.pay_order_no}").text
    assert field(page, "refunded") == "¥3.00 (300 fen) · 可退 left ¥7.00"


def test_a_failure_without_a_reason_shows_none(http: httpx.Client, sb: Sandbox) -> None:
    order = create(http, sb, "P-WHY-NONE", support_repeat_pay=0)
    html = http.get(submit(http, order, "fail").headers["location"]).text
    assert field(html, "state") == "支付失败" and 'data-field="fail-reason"' not in html


def test_the_reason_is_kept_with_the_trade_and_shown_on_a_later_visit(
    http: httpx.Client, sb: Sandbox
) -> None:
    order = create(http, sb, "P-WHY-LATER", payment_method=None, support_repeat_pay=0)
    submit(http, order, "card", pay_mode="QUICK_PAY", card_no="6212 3400 0000 0019")
    later = counter(http, order).text  # a fresh visit: no step in the link
    assert field(later, "fail-reason") == "余额不足"
    trade = sb.engine.get(order.pay_order_no).last_trade("PAY")
    assert trade is not None and trade["trade_remark"] == "余额不足"
    # a failure from the admin API (or a scenario step) with a reason shows it the same way
    other = create(http, sb, "P-WHY-ADMIN", support_repeat_pay=0)
    failed = http.post(
        f"/sandbox/api/orders/{other.pay_order_no}/fail",
        json={"reason": "BBS10000 业务处理失败"},
    )
    assert failed.status_code == 200, failed.text
    assert field(counter(http, other).text, "fail-reason") == "BBS10000 业务处理失败"


def test_a_failed_card_payment_on_a_repeat_pay_order_says_why_above_the_methods(
    http: httpx.Client, sb: Sandbox
) -> None:
    order = create(http, sb, "P-WHY-REPEAT", payment_method=None, support_repeat_pay=1)
    response = submit(http, order, "card", pay_mode="CARD", card_no="6212 3400 0000 0027")
    html = http.get(response.headers["location"]).text
    assert "上次支付失败（发卡行拒绝交易），可重新支付。" in html and 'name="payMode"' in html


def test_a_failed_card_payments_step_has_its_reason_and_replays_as_a_scenario(
    http: httpx.Client, sb: Sandbox, tmp_path: Path
) -> None:
    heard: list[Any] = []
    sb.engine.listeners.append(heard.append)
    order = create(http, sb, "P-STEP-REASON", payment_method=None)
    response = submit(http, order, "card", pay_mode="QUICK_PAY", card_no="6212 3400 0000 0019")
    # the same reason reaches the notify (v3 trade_remark) as a pasted step would give it
    assert heard[-1].options == {"notify": "now", "reason": "余额不足"}
    step = field(http.get(response.headers["location"]).text, "step")
    assert step == "- fail: {pay_mode: QUICK_PAY, notify: now, reason: 余额不足}"
    pasted = tmp_path / "pasted.yaml"
    pasted.write_text(f"description: pasted from the counter page\nsteps:\n  {step}\n", "utf-8")
    loaded, problems = check_paths([pasted])
    assert problems == []
    assert list(loaded[0].steps) == [
        {"fail": {"pay_mode": "QUICK_PAY", "notify": "now", "reason": "余额不足"}}
    ]


@pytest.mark.parametrize("reason", ["余额不足", "a: b #c", "yes", "'quoted'", "{x}", "7"])
def test_a_steps_reason_is_quoted_as_yaml_needs(reason: str) -> None:
    step = step_yaml("fail", "WECHAT", {"after": 5}, reason)
    assert "\n" not in step
    assert yaml.safe_load(step) == [
        {"fail": {"pay_mode": "WECHAT", "notify": {"after": 5}, "reason": reason}}
    ]
