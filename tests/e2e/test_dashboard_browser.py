"""The dashboard in headless Chromium against a served sandbox: try a payment in ten seconds, then
read the order, its trades and notifies, replay one, and move the clock."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.browser_support import MerchantApp, Screenshots, expect
from tests.servers import SandboxProcess, loopback

pytestmark = pytest.mark.browser
V1 = "/api/v1/payment/lakala/counter/"


def create_order(served: SandboxProcess, out_order_no: str, **changes: Any) -> dict[str, Any]:
    body = {
        "out_order_no": out_order_no,
        "total_amount": 100,
        "order_info": "测试商品购买",
        **changes,
    }
    out = loopback.post(served.url + V1 + "create", json=body).json()
    assert out["code"] == "000000", out
    return dict(out["resp_data"])


def test_a_test_order_from_the_dashboard_pays_in_ten_seconds(
    page: Any, served: SandboxProcess, screenshots: Screenshots
) -> None:
    page.goto(served.url + "/")
    expect(page.get_by_role("heading", name=re.compile("创建测试订单"))).to_be_visible()
    for width in (375, 1280):
        page.set_viewport_size({"width": width, "height": 800})
        overflow = page.evaluate("() => document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, f"the dashboard scrolls sideways at {width}px"
    screenshots.take(page, "dashboard-1-home")
    page.get_by_label("金额（元） Amount (yuan)").fill("12.34")
    page.get_by_label("商品 order_info").fill("演示商品")
    page.get_by_role("button", name=re.compile("创建并打开收银台")).click()
    page.wait_for_url(re.compile(re.escape(served.url) + r"/b/pay\?"))
    expect(page.locator('[data-field="amount"]')).to_have_text("¥12.34")
    page.locator('button[data-mode="ALIPAY"]').click()
    page.get_by_role("button", name="支付成功").click()
    page.wait_for_url(re.compile(re.escape(served.url) + r"/dashboard/callback\?"), timeout=15_000)
    expect(page.locator('[data-field="param-status"]')).to_have_text("SUCCESS")
    screenshots.take(page, "dashboard-2-demo-callback")
    page.goto(served.url + "/")
    first = page.locator("tr[data-order]").first
    expect(first).to_contain_text("演示商品")
    expect(first).to_contain_text("¥12.34")
    expect(first.locator(".badge")).to_have_text("支付成功")


def test_order_page_shows_notifies_and_replay_sends_another(
    page: Any, merchant: MerchantApp, served: SandboxProcess, screenshots: Screenshots
) -> None:
    created = create_order(
        served,
        "DASH-NOTIFY",
        notify_url=merchant.url + "/api/payment/notify",
        callback_url=merchant.url + "/payment/success",
    )
    page.goto(created["counter_url"] + "&payMode=ALIPAY")
    page.get_by_role("button", name="支付成功").click()
    expect(page.locator('[data-field="state"]')).to_have_text("支付成功")
    merchant.wait_notifies("DASH-NOTIFY", 1)
    page.goto(served.url + "/")
    page.locator("tr[data-order] a", has_text="DASH-NOTIFY").click()
    expect(page.get_by_role("heading", name=re.compile("DASH-NOTIFY"))).to_be_visible()
    expect(page.locator("[data-trade]")).to_have_count(1)
    attempts = page.locator("details.attempt")
    expect(attempts.first).to_have_attribute("data-state", "delivered", timeout=10_000)
    count = attempts.count()
    attempts.first.locator("summary").click()
    expect(attempts.first.locator('[data-field="signed-string"]')).to_contain_text(
        '"out_order_no":"DASH-NOTIFY"'
    )
    expect(attempts.first).to_contain_text("Notification received successfully")
    for width in (375, 1280):
        page.set_viewport_size({"width": width, "height": 800})
        overflow = page.evaluate("() => document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, f"the order page scrolls sideways at {width}px"
    screenshots.take(page, "dashboard-3-order")
    attempts.first.get_by_role("button", name=re.compile("Replay")).click()
    expect(page.get_by_role("status")).to_contain_text("replays the body")
    assert len(merchant.wait_notifies("DASH-NOTIFY", 2)) == 2
    expect(page.locator("details.attempt")).to_have_count(count + 1, timeout=10_000)
    expect(page.locator("details.attempt").last).to_have_attribute(
        "data-state", "delivered", timeout=10_000
    )


def test_dashboard_updates_itself_and_moves_the_clock(page: Any, served: SandboxProcess) -> None:
    page.goto(served.url + "/")
    before = page.locator('[data-field="clock-now"]').inner_text()
    created = create_order(served, "DASH-LIVE")
    # no reload: the page fetches itself while it is open
    expect(page.locator(f'tr[data-order="{created["pay_order_no"]}"]')).to_be_visible(
        timeout=10_000
    )
    page.get_by_role("button", name="+1 day").click()
    expect(page.get_by_role("status")).to_contain_text("clock advanced 86400s")
    after = page.locator('[data-field="clock-now"]').inner_text()
    assert int(after) - int(before) >= 10000  # yyyyMMddHHmmss: a day later
    page.get_by_role("button", name=re.compile("重置 Reset")).click()
    expect(page.get_by_role("status")).to_contain_text("clock reset")


def test_force_a_transition_from_the_order_page(page: Any, served: SandboxProcess) -> None:
    created = create_order(served, "DASH-FORCE", payment_method="WECHAT")
    page.goto(f"{served.url}/dashboard/orders/{created['pay_order_no']}")
    page.get_by_role("button", name="fail", exact=True).click()
    expect(page.locator('[data-field="status"]')).to_have_text("支付失败 · FAILED")
    expect(page.get_by_role("button", name="pay", exact=True)).to_have_count(0)
    page.get_by_role("button", name="close", exact=True).click()
    expect(page.locator('[data-field="status"]')).to_have_text("已关闭 · CLOSED")


def test_script_in_order_info_does_not_run_on_the_dashboard(
    page: Any, served: SandboxProcess
) -> None:
    evil = "<script>window.__pwned=1</script><img src=x onerror=__pwned=2>"
    created = create_order(served, "DASH-XSS", order_info=evil)
    for path in ("/", f"/dashboard/orders/{created['pay_order_no']}"):
        page.goto(served.url + path)
        expect(page.get_by_text(evil).first).to_be_visible()
        assert page.evaluate("() => window.__pwned") is None


def test_order_page_refresh_keeps_a_selection_and_the_buttons_while_only_clocks_tick(
    page: Any, merchant: MerchantApp, served: SandboxProcess
) -> None:
    created = create_order(served, "DASH-SELECT", notify_url=merchant.url + "/api/payment/notify")
    no = created["pay_order_no"]
    loopback.post(f"{served.url}/sandbox/api/orders/{no}/pay", json={}).raise_for_status()
    merchant.wait_notifies("DASH-SELECT", 1)
    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto(f"{served.url}/dashboard/orders/{no}")
    first = page.locator("details.attempt").first
    expect(first).to_have_attribute("data-state", "delivered", timeout=10_000)
    first.locator("summary").click()
    # select the signature base string with the mouse, as a reader copying it does
    signed = first.locator('[data-field="signed-string"]')
    box = signed.bounding_box()
    page.mouse.move(box["x"] + 2, box["y"] + 4)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] - 2, box["y"] + box["height"] - 4, steps=5)
    page.mouse.up()
    selected = page.evaluate("() => getSelection().toString()")
    assert '"out_order_no":"DASH-SELECT"' in selected
    page.evaluate(
        "() => { window.__replay = document.querySelector('form[action$=\"/replay\"] button'); }"
    )
    ticking = page.locator('[data-field="order-time"]')
    before = ticking.inner_text()
    # two refreshes or more: the order's time moves on, nothing else changes
    expect(ticking).not_to_have_text(before, timeout=6_000)
    page.wait_for_timeout(2_500)
    assert page.evaluate("() => getSelection().toString()") == selected
    assert page.evaluate(
        "() => window.__replay.isConnected && window.__replay === "
        "document.querySelector('form[action$=\"/replay\"] button')"
    )
    expect(first).to_have_attribute("open", "")
    # a change that matters shows without a reload, and leaves the unchanged attempt alone
    count = page.locator("details.attempt").count()
    loopback.post(f"{served.url}/sandbox/api/orders/{no}/notify", json={}).raise_for_status()
    expect(page.locator("details.attempt")).to_have_count(count + 1, timeout=10_000)
    assert page.evaluate("() => getSelection().toString()") == selected
    assert page.evaluate("() => window.__replay.isConnected")


def test_dashboard_home_refresh_keeps_a_selection_and_typed_seconds(
    page: Any, served: SandboxProcess
) -> None:
    page.goto(served.url + "/")
    speed = page.locator('[data-field="clock-speed"]')
    speed.evaluate(
        "el => { const r = document.createRange(); r.selectNodeContents(el); "
        "getSelection().removeAllRanges(); getSelection().addRange(r); }"
    )
    selected = page.evaluate("() => getSelection().toString()")
    assert selected.endswith("×")
    page.get_by_label("秒数 seconds").fill("90")
    page.locator("#clock-title").click()  # focus leaves the field; the page refreshes again
    speed.evaluate(
        "el => { const r = document.createRange(); r.selectNodeContents(el); "
        "getSelection().removeAllRanges(); getSelection().addRange(r); }"
    )
    clock = page.locator('[data-field="clock-now"]')
    before = clock.inner_text()
    expect(clock).not_to_have_text(before, timeout=6_000)  # the clock panel refreshed
    page.wait_for_timeout(2_500)
    assert page.evaluate("() => getSelection().toString()") == selected
    expect(page.get_by_label("秒数 seconds")).to_have_value("90")


LONG_NO = "L" * 32


@pytest.mark.parametrize("width", [375, 1280, 1920])
def test_orders_list_uses_the_width_and_breaks_long_order_numbers(
    page: Any, served: SandboxProcess, width: int
) -> None:
    out_order_no = LONG_NO[:-4] + str(width).zfill(4)
    created = create_order(served, out_order_no, total_amount=123456)
    loopback.post(
        f"{served.url}/sandbox/api/orders/{created['pay_order_no']}/pay", json={}
    ).raise_for_status()
    page.set_viewport_size({"width": width, "height": 900})
    page.goto(served.url + "/")
    table = page.locator("table.orders")
    fits = table.evaluate(
        "t => ({table: t.scrollWidth, wrap: t.parentElement.clientWidth, "
        "page: document.documentElement.scrollWidth})"
    )
    assert fits["table"] <= fits["wrap"], f"the orders table scrolls sideways at {width}px: {fits}"
    assert fits["page"] <= width
    row = page.locator(f'tr[data-order="{created["pay_order_no"]}"]')
    wrap = table.evaluate("t => t.parentElement.getBoundingClientRect().toJSON()")
    key_cells = [
        row.get_by_role("link", name=out_order_no),
        row.locator('[data-field="amount"]'),
        row.locator(".badge"),
    ]
    for cell in key_cells:
        expect(cell).to_be_visible()
        box = cell.bounding_box()
        assert wrap["left"] <= box["x"] and box["x"] + box["width"] <= wrap["right"] + 0.5
    expect(row.locator('[data-field="amount"]')).to_have_text("¥1,234.56")
    badge = row.locator(".badge")
    expect(badge).to_have_text("支付成功")
    assert badge.evaluate("b => b.scrollWidth <= b.clientWidth")
    if width >= 1280:
        headers = table.locator("thead th")
        expect(headers).to_have_count(7)
        for i in range(7):
            expect(headers.nth(i)).to_be_visible()
    if width == 1920:
        assert wrap["width"] > 1100, f"the orders list keeps to {wrap['width']}px of 1920"
        # with room for it, the long number stays on one line
        assert row.get_by_role("link", name=out_order_no).bounding_box()["height"] < 30


def test_the_order_page_keeps_the_next_refund_processing(page: Any, served: SandboxProcess) -> None:
    from sandbox.client.clients import LakalaClient

    created = create_order(served, "DASH-REFUND", support_refund=1)
    no = created["pay_order_no"]
    assert loopback.post(f"{served.url}/sandbox/api/orders/{no}/pay").status_code == 200
    page.goto(f"{served.url}/dashboard/orders/{no}")
    form = page.get_by_role("form", name="refund outcome")
    form.get_by_label(re.compile("next refund")).select_option("success")
    form.get_by_label(re.compile("PROCESSING for seconds")).fill("30")
    form.get_by_role("button", name=re.compile("Set the refund outcome")).click()
    expect(page.locator(".notice")).to_contain_text("the next refund will succeed after 30s")
    with LakalaClient(base_url=served.url, merchant_no="8222900701106PZ") as client:
        made = client.relation_refund(
            out_trade_no="DASH-R-1", refund_amount=100, origin_out_trade_no="DASH-REFUND"
        )
    assert made["trade_state"] == "PROCESSING"
    page.reload()
    expect(page.locator('[data-field="status"]')).to_have_text("支付成功 · SUCCESS")
