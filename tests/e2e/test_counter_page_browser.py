"""The counter page in headless Chromium against a served sandbox, driven the way a payer drives it.

The merchant side is the seed's own frontend snippets (``tests/seed_frontend.js``, verbatim), served
by a merchant web app on another loopback port that proxies ``/api/v1/*`` to the sandbox, serves the
``callback_url`` page and receives the notifies.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from sandbox.core import cards
from tests.browser_support import SEED_JS, MerchantApp, Screenshots, expect
from tests.paths import TESTS
from tests.servers import SandboxProcess, loopback

pytestmark = pytest.mark.browser
V1 = "/api/v1/payment/lakala/counter/"


def query(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


def start_checkout(page: Any, merchant: MerchantApp, served: SandboxProcess) -> str:
    """Click the shop's pay button (the seed's createPaymentOrder); the out_order_no it made."""
    page.goto(merchant.url + "/")
    page.get_by_role("button", name="去支付").click()
    page.wait_for_url(re.compile(re.escape(served.url) + r"/b/pay\?"))
    return query(page.url)["merchantOrderNo"]


def sandbox_status(served: SandboxProcess, out_order_no: str) -> str:
    out = loopback.post(served.url + V1 + "query", json={"out_order_no": out_order_no}).json()
    return str(out["resp_data"]["order_status"])


def create_order(
    served: SandboxProcess, merchant: MerchantApp, out_order_no: str, **changes: Any
) -> dict[str, Any]:
    body = {
        "out_order_no": out_order_no,
        "total_amount": 100,
        "order_info": "测试商品购买",
        "notify_url": merchant.url + "/api/payment/notify",
        "callback_url": merchant.url + "/payment/success",
    }
    body.update(changes)
    body = {k: v for k, v in body.items() if v is not None}  # None: leave the field out
    out = loopback.post(served.url + V1 + "create", json=body).json()
    assert out["code"] == "000000", out
    return dict(out["resp_data"])


def land_on_callback(page: Any, merchant: MerchantApp, out_order_no: str, status: str) -> None:
    page.wait_for_url(re.compile(re.escape(merchant.url) + r"/payment/success\?"), timeout=15_000)
    assert query(page.url) == {"out_order_no": out_order_no, "status": status}


def test_seed_snippets_are_the_seed_documents_own() -> None:
    # tests/seed_document.txt is the seed document the v1 API and these snippets come from
    seed = (TESTS / "seed_document.txt").read_text(encoding="utf-8")
    blocks = re.findall(r"```javascript\n(.*?)```", seed, flags=re.S)
    assert len(blocks) == 3
    ours = SEED_JS.read_text(encoding="utf-8")
    assert all(block in ours for block in blocks)
    assert "async function createPaymentOrder()" in ours and "window.location.href" in ours


def test_seed_frontend_pays_with_alipay_and_returns_to_the_callback(
    page: Any, merchant: MerchantApp, served: SandboxProcess, screenshots: Screenshots
) -> None:
    out_order_no = start_checkout(page, merchant, served)
    expect(page.locator('[data-field="amount"]')).to_have_text("¥1.00")
    expect(page.locator('[data-field="order_info"]')).to_have_text("测试商品购买")
    expect(page.locator("[data-countdown]")).to_have_text(re.compile(r"^0:59:\d\d$"))
    # the seed's order allows Alipay only: the page opens on it, with no method to click first
    expect(page.locator("button.method")).to_have_count(0)
    screenshots.take(page, "counter-1-order")
    expect(page.locator(".qr-svg")).to_be_visible()
    expect(page.get_by_role("heading", name="请使用支付宝扫码支付")).to_be_visible()
    screenshots.take(page, "counter-2-scan-alipay")
    page.get_by_role("button", name="支付成功").click()
    expect(page.locator('[data-field="state"]')).to_have_text("支付成功")
    expect(page.locator('[data-field="step"]')).to_have_text(
        "- pay: {pay_mode: ALIPAY, notify: now}"
    )
    screenshots.take(page, "counter-3-result-success")
    land_on_callback(page, merchant, out_order_no, "SUCCESS")
    expect(page.locator("#outcome")).to_have_attribute("data-state", "success")
    expect(page.locator("#outcome")).to_have_text("支付成功：" + out_order_no)
    notify = merchant.wait_notifies(out_order_no)[0]
    assert notify.verified, "the notify's signature does not verify with platform.cer"
    assert notify.json()["order_status"] == "SUCCESS"
    result = page.evaluate("orderNo => pollOrderStatus(orderNo)", out_order_no)
    assert result["success"] is True
    assert result["data"]["order_status"] == "SUCCESS"
    assert result["data"]["out_order_no"] == out_order_no


def test_seed_frontend_failure_reaches_the_callback_and_the_poll(
    page: Any, merchant: MerchantApp, served: SandboxProcess, screenshots: Screenshots
) -> None:
    out_order_no = start_checkout(page, merchant, served)
    page.get_by_role("button", name="支付失败").click()
    expect(page.locator('[data-field="state"]')).to_have_text("支付失败")
    screenshots.take(page, "counter-4-result-failed")
    land_on_callback(page, merchant, out_order_no, "FAILED")
    expect(page.locator("#outcome")).to_have_attribute("data-state", "failure")
    notify = merchant.wait_notifies(out_order_no)[0]
    assert notify.verified and notify.json()["order_status"] == "FAILED"
    result = page.evaluate("orderNo => pollOrderStatus(orderNo)", out_order_no)
    assert result == {"success": False, "error": "支付失败: FAILED"}


def test_seed_frontend_cancel_returns_cancelled(
    page: Any, merchant: MerchantApp, served: SandboxProcess
) -> None:
    out_order_no = start_checkout(page, merchant, served)
    page.get_by_role("button", name="取消支付").click()
    expect(page.locator('[data-field="state"]')).to_have_text("已取消")
    land_on_callback(page, merchant, out_order_no, "CANCELLED")
    expect(page.locator("#outcome")).to_have_attribute("data-state", "failure")
    assert sandbox_status(served, out_order_no) == "CANCELLED"
    assert merchant.wait_notifies(out_order_no)[0].json()["order_status"] == "CANCELLED"


def test_order_that_expires_while_the_page_is_open(
    page: Any, merchant: MerchantApp, served: SandboxProcess, screenshots: Screenshots
) -> None:
    out_order_no = start_checkout(page, merchant, served)
    expect(page.get_by_role("button", name="支付成功")).to_be_visible()
    pay_order_no = query(page.url)["payOrderNo"]
    moved = loopback.post(
        f"{served.url}/sandbox/api/orders/{pay_order_no}/advance", json={"seconds": 3601}
    )
    assert moved.status_code == 200, moved.text
    expect(page.locator('[data-field="state"]')).to_have_text("订单已过期", timeout=5_000)
    expect(page.get_by_role("button", name="支付成功")).to_have_count(0)
    screenshots.take(page, "counter-5-expired")
    land_on_callback(page, merchant, out_order_no, "EXPIRED")
    assert sandbox_status(served, out_order_no) == "EXPIRED"


def test_a_click_after_the_order_expired_is_refused_with_a_message(
    page: Any, merchant: MerchantApp, served: SandboxProcess
) -> None:
    created = create_order(served, merchant, "BROWSER-LATE", payment_method="WECHAT")
    page.goto(created["counter_url"] + "&payMode=WECHAT")
    # the script would reload the page the moment it sees the expiry; this payer is quicker
    page.evaluate("() => { for (let i = 1; i < 10000; i++) clearInterval(i); }")
    loopback.post(
        f"{served.url}/sandbox/api/orders/{created['pay_order_no']}/advance", json={"seconds": 7200}
    ).raise_for_status()
    page.get_by_role("button", name="支付成功").click()
    expect(page.get_by_role("alert")).to_have_text(
        "「支付成功」未执行：订单当前状态为「订单已过期」。"
    )
    expect(page.locator('[data-field="state"]')).to_have_text("订单已过期")


@pytest.mark.parametrize("card", cards.TEST_CARDS, ids=lambda c: c.number)
def test_each_test_card_in_the_card_form(
    page: Any,
    merchant: MerchantApp,
    served: SandboxProcess,
    screenshots: Screenshots,
    card: cards.Card,
) -> None:
    created = create_order(served, merchant, "BROWSER-CARD-" + card.number[-4:])
    page.goto(created["counter_url"])
    page.locator('button[data-mode="UNION_CC"]').click()
    page.get_by_label("卡号").fill(card.spaced)
    page.get_by_label("有效期（MM/YY）").fill("12/30")
    page.get_by_label("安全码").fill("123")
    if card is cards.TEST_CARDS[0]:
        screenshots.take(page, "counter-6-card-form")
    page.get_by_role("button", name="确认付款 ¥1.00").click()
    expect(page.locator(".step")).to_contain_text(card.zh)
    expected = {"pay": "SUCCESS", "fail": "FAILED", "paying": "PAYING", "cancel": "CANCELLED"}
    assert sandbox_status(served, created["out_order_no"]) == expected[card.action]
    if card.reason:
        expect(page.locator('[data-field="fail-reason"]')).to_have_text(card.reason[0])
        expect(page.locator('[data-field="step"]')).to_contain_text(f"reason: {card.reason[0]}")
    if card.action != "cancel":
        # the trade records the card typed, masked
        order = loopback.get(f"{served.url}/sandbox/api/orders/{created['pay_order_no']}").json()
        assert order["order"]["trades"][0]["payer_account_no"] == "621234******" + card.number[-4:]
    if card.action == "paying":
        expect(page.get_by_role("alert")).to_have_text("支付处理中，可继续选择结果。")
    else:
        land_on_callback(page, merchant, created["out_order_no"], expected[card.action])


def test_the_payer_can_go_back_to_the_merchant_while_paying(
    page: Any, merchant: MerchantApp, served: SandboxProcess, screenshots: Screenshots
) -> None:
    created = create_order(served, merchant, "BROWSER-BACK-PAYING", payment_method="ALIPAY")
    page.goto(created["counter_url"] + "&payMode=ALIPAY")
    page.get_by_role("button", name="保持支付中").click()
    expect(page.get_by_role("alert")).to_have_text("支付处理中，可继续选择结果。")
    back = page.get_by_role("button", name="返回商户")
    expect(back).to_be_visible()
    expect(page.get_by_role("button", name="支付成功")).to_be_visible()  # still payable
    screenshots.take(page, "counter-10-paying-back")
    back.click()
    land_on_callback(page, merchant, created["out_order_no"], "PAYING")
    assert sandbox_status(served, created["out_order_no"]) == "PAYING"


def test_the_payer_can_go_back_after_a_failure_that_may_be_retried(
    page: Any, merchant: MerchantApp, served: SandboxProcess
) -> None:
    created = create_order(served, merchant, "BROWSER-BACK-REPEAT", support_repeat_pay=1)
    page.goto(created["counter_url"] + "&payMode=WECHAT")
    page.get_by_role("button", name="支付失败").click()
    expect(page.get_by_role("alert")).to_have_text("上次支付失败，可重新支付。")
    expect(page.locator('button[data-mode="ALIPAY"]')).to_be_visible()  # may pay again
    page.wait_for_timeout(3_500)  # longer than the sandbox's automatic return: none happens
    assert page.url.startswith(served.url + "/b/pay?")
    page.get_by_role("button", name="返回商户").click()
    land_on_callback(page, merchant, created["out_order_no"], "FAILED")
    expect(page.locator("#outcome")).to_have_attribute("data-state", "failure")


def test_the_scenario_step_shows_whole_on_a_phone(
    page: Any, merchant: MerchantApp, served: SandboxProcess
) -> None:
    created = create_order(
        served, merchant, "BROWSER-STEP-375", payment_method="WECHAT", callback_url=None
    )
    page.goto(created["counter_url"] + "&payMode=WECHAT")
    page.get_by_role("button", name="支付失败").click()
    step = page.locator('[data-field="step"]')
    expect(step).to_have_text("- fail: {pay_mode: WECHAT, notify: now}")
    box = page.locator(".step pre").evaluate(
        "pre => ({scroll: pre.scrollWidth, client: pre.clientWidth, "
        "right: pre.getBoundingClientRect().right})"
    )
    assert box["scroll"] <= box["client"], f"the step scrolls sideways: {box}"
    assert box["right"] <= 375
    # the last character, the closing brace, is on screen
    end = step.evaluate(
        """code => {
          const r = document.createRange(), t = code.firstChild;
          r.setStart(t, t.length - 1); r.setEnd(t, t.length);
          return r.getBoundingClientRect().right;
        }"""
    )
    assert 0 < end <= box["right"]


def test_a_card_number_that_is_not_a_test_card_is_refused_in_the_form(
    page: Any, merchant: MerchantApp, served: SandboxProcess
) -> None:
    created = create_order(served, merchant, "BROWSER-CARD-BAD", payment_method="CARD")
    page.goto(created["counter_url"])  # a CARD-only order opens on the card form
    page.get_by_label("卡号").fill("6212 3400 0000 0050")
    page.get_by_role("button", name="确认付款 ¥1.00").click()
    expect(page.locator("#card-error")).to_contain_text("这不是沙箱测试卡号")
    expect(page.get_by_label("卡号")).to_have_attribute("aria-invalid", "true")
    assert sandbox_status(served, created["out_order_no"]) == "WAIT_PAY"


def decode_qr(page: Any) -> str:
    """Rasterise the page's QR SVG in the browser and decode the pixels with zxing-cpp."""
    import numpy
    import zxingcpp

    pixels = page.evaluate("""async () => {
      const svg = document.querySelector('.qr-svg');
      const size = 8 * svg.viewBox.baseVal.width;
      const xml = new XMLSerializer().serializeToString(svg)
        .replace('<svg ', `<svg width="${size}" height="${size}" `);
      const img = new Image();
      img.src = 'data:image/svg+xml;base64,' + btoa(xml);
      await img.decode();
      const canvas = document.createElement('canvas');
      canvas.width = canvas.height = size;
      const ctx = canvas.getContext('2d');
      ctx.fillStyle = '#fff'; ctx.fillRect(0, 0, size, size);
      ctx.drawImage(img, 0, 0, size, size);
      const data = ctx.getImageData(0, 0, size, size).data;
      const grey = [];
      for (let i = 0; i < data.length; i += 4) grey.push(data[i + 1]);
      return {size, grey};
    }""")
    image = numpy.array(pixels["grey"], dtype=numpy.uint8).reshape(pixels["size"], pixels["size"])
    found = zxingcpp.read_barcodes(image)
    assert len(found) == 1, "no QR code found in the page's SVG"
    return str(found[0].text)


def test_qr_code_decodes_to_the_phone_page_which_pays_the_same_order(
    page: Any,
    chromium: Any,
    merchant: MerchantApp,
    served: SandboxProcess,
    screenshots: Screenshots,
) -> None:
    created = create_order(served, merchant, "BROWSER-QR", payment_method="WECHAT")
    page.goto(created["counter_url"])  # a WECHAT-only order opens on its QR code
    phone_url = decode_qr(page)
    assert phone_url == page.locator(".qr").get_attribute("data-phone-url")
    assert phone_url.startswith(served.url + "/b/pay?")
    assert query(phone_url) == {**query(created["counter_url"]), "payMode": "WECHAT", "via": "qr"}
    phone = chromium.new_context(viewport={"width": 375, "height": 812}, is_mobile=True)
    try:
        on_phone = phone.new_page()
        on_phone.goto(phone_url)
        expect(on_phone.get_by_role("heading", name="在手机上确认支付")).to_be_visible()
        screenshots.take(on_phone, "counter-7-phone")
        on_phone.get_by_role("button", name="支付成功").click()
        expect(on_phone.locator('[data-field="state"]')).to_have_text("支付成功")
    finally:
        phone.close()
    # the desktop page notices by itself and returns the payer to the merchant
    expect(page.locator('[data-field="state"]')).to_have_text("支付成功", timeout=5_000)
    land_on_callback(page, merchant, created["out_order_no"], "SUCCESS")


def test_script_in_order_info_does_not_run(
    page: Any, merchant: MerchantApp, served: SandboxProcess
) -> None:
    evil = "<script>window.__pwned=1</script><img src=x onerror=__pwned=2>"
    created = create_order(served, merchant, "BROWSER-XSS", order_info=evil)
    for url in (created["counter_url"], created["counter_url"] + "&payMode=ALIPAY"):
        page.goto(url)
        expect(page.locator('[data-field="order_info"]')).to_have_text(evil)
        assert page.evaluate("() => window.__pwned") is None
        assert page.locator('[data-field="order_info"] img').count() == 0


def test_a_cross_site_post_is_refused(
    page: Any, merchant: MerchantApp, served: SandboxProcess
) -> None:
    created = create_order(served, merchant, "BROWSER-CSRF")
    page.goto(created["counter_url"] + "&payMode=ALIPAY")
    token = page.locator('input[name="csrf"]').first.get_attribute("value")
    fields = {
        **query(created["counter_url"]),
        "csrf": token,
        "action": "pay",
        "pay_mode": "ALIPAY",
        "target": served.url + "/b/pay/submit",
    }
    page.goto(merchant.url + "/attack?" + httpx.QueryParams(fields).__str__())
    page.wait_for_url(served.url + "/b/pay/submit")
    expect(page.get_by_role("heading", name="请求被拒绝")).to_be_visible()
    expect(page.get_by_role("alert")).to_contain_text(f"表单来自 {merchant.url}，而非本沙箱。")
    assert sandbox_status(served, created["out_order_no"]) == "WAIT_PAY"


def test_the_core_flow_works_with_javascript_off(
    chromium: Any, merchant: MerchantApp, served: SandboxProcess
) -> None:
    created = create_order(served, merchant, "BROWSER-NOJS", payment_method="ALIPAY")
    context = chromium.new_context(
        java_script_enabled=False, viewport={"width": 375, "height": 812}
    )
    try:
        page = context.new_page()
        page.goto(created["counter_url"])  # an Alipay-only order opens on Alipay
        page.get_by_role("button", name="支付成功").click()
        expect(page.locator('[data-field="state"]')).to_have_text("支付成功")
        page.get_by_role("button", name="返回商户").click()
        land_on_callback(page, merchant, created["out_order_no"], "SUCCESS")
    finally:
        context.close()
    assert sandbox_status(served, created["out_order_no"]) == "SUCCESS"


def test_keyboard_alone_reaches_and_presses_the_buttons(
    page: Any, merchant: MerchantApp, served: SandboxProcess
) -> None:
    created = create_order(served, merchant, "BROWSER-KEYS", payment_method=None)
    page.goto(created["counter_url"])
    for _ in range(20):
        page.keyboard.press("Tab")
        if page.evaluate("() => document.activeElement.dataset.mode") == "ALIPAY":
            break
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"payMode=ALIPAY"))
    for _ in range(30):
        page.keyboard.press("Tab")
        if page.evaluate("() => document.activeElement.textContent.trim()") == "支付成功":
            break
    page.keyboard.press("Enter")
    expect(page.locator('[data-field="state"]')).to_have_text("支付成功")


def test_english_page_and_layout_at_both_widths(
    page: Any, merchant: MerchantApp, served: SandboxProcess, screenshots: Screenshots
) -> None:
    created = create_order(served, merchant, "BROWSER-EN")
    page.goto(created["counter_url"] + "&lang=en")
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(page.get_by_role("heading", name="Choose a payment method")).to_be_visible()
    assert page.locator("button.method").count() == 14
    for width in (375, 1280):
        page.set_viewport_size({"width": width, "height": 800})
        overflow = page.evaluate("() => document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, f"the page scrolls sideways at {width}px"
    screenshots.take(page, "counter-8-methods-en")
    page.locator('button[data-mode="QUICK_PAY"]').click()
    expect(page.get_by_label("Card number")).to_be_visible()
    page.locator("details.advanced summary").click()
    expect(page.get_by_label("Send after N seconds")).to_be_visible()
    screenshots.take(page, "counter-9-card-en-advanced")
