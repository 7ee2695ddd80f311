"""The dashboard in headless Chromium against a served sandbox: try a payment in ten seconds, then
read the order, its trades and notifies, replay one, and move the clock."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest

from tests.browser_support import MerchantApp, Screenshots
from tests.servers import SandboxProcess

try:
    from playwright.sync_api import expect
except ImportError:  # the fixtures skip (or, under CI, fail) with the reason
    expect = None

pytestmark = pytest.mark.browser
V1 = "/api/v1/payment/lakala/counter/"


def create_order(served: SandboxProcess, out_order_no: str, **changes: Any) -> dict[str, Any]:
    body = {
        "out_order_no": out_order_no,
        "total_amount": 100,
        "order_info": "测试商品购买",
        **changes,
    }
    out = httpx.post(served.url + V1 + "create", json=body).json()
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
