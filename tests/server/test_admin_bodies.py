"""Admin API bodies held to schemas/admin/ like every other surface's: unknown fields, wrong types
and overlong text are refused naming the field, and nothing changes."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from sandbox.runtime import Sandbox
from tests.notify_receiver import Receiver
from tests.support import V1, seed_create, snapshot, v3_post, v3_req_data


@pytest.fixture
def waiting(http: httpx.Client, sb: Sandbox) -> str:
    created = http.post(V1 + "create", json=seed_create(sb, "ADMIN-BODY")).json()["resp_data"]
    return str(created["pay_order_no"])


@pytest.mark.parametrize(
    ("action", "body", "says"),
    [
        ("fail", {"reason": {"nested": [1, 2]}}, "reason: must be of type string"),
        ("fail", {"reason": ["no"]}, "reason: must be of type string"),
        ("fail", {"reason": "x" * 257}, "reason: must be at most 256 characters (got 257)"),
        ("fail", {"reason": "x" * 100_000}, "reason: must be at most 256 characters"),
        ("pay", {"pay_mod": "WECHAT"}, "'pay_mod' was unexpected"),
        ("pay", {"pay_mode": "ALIPAY", "extra": 1}, "'extra' was unexpected"),
        ("pay", {"pay_mode": 7}, "pay_mode"),
        ("pay", {"notify": 5}, "notify"),
        ("close", {"pay_mode": "ALIPAY"}, "pay_mode: is for paying, pay, fail only, not close"),
        ("expire", {"pay_mode": "WECHAT"}, "pay_mode: is for paying, pay, fail only"),
        ("pay", {"amount": True}, "amount"),
    ],
)
def test_a_bad_action_body_is_refused_and_changes_nothing(
    http: httpx.Client, sb: Sandbox, waiting: str, action: str, body: dict[str, Any], says: str
) -> None:
    before = snapshot(sb)
    response = http.post(f"/sandbox/api/orders/{waiting}/{action}", json=body)
    assert response.status_code == 400, response.text
    out = response.json()
    assert (out["code"], out["error"]) == ("SBX10001", "INVALID_PARAM")
    assert says in out["msg"], out["msg"]
    assert snapshot(sb) == before
    assert sb.notifier.attempts(waiting) == []


@pytest.mark.parametrize(
    ("path", "method", "body", "says"),
    [
        ("/sandbox/api/clock/advance", "POST", {"seconds": 1, "second": 5}, "'second'"),
        ("/sandbox/api/clock/set", "POST", {"time": 20300101000000}, "time: must be of type"),
        ("/sandbox/api/clock/speed", "POST", {"speed": 2, "frozen": True}, "'frozen'"),
        ("/sandbox/api/scenarios/default", "PUT", {"name": "manual", "x": 1}, "'x'"),
        ("/sandbox/api/scenarios/default", "PUT", {"name": ["manual"]}, "name: must be of type"),
    ],
)
def test_a_bad_clock_or_scenario_body_is_refused(
    http: httpx.Client, sb: Sandbox, path: str, method: str, body: dict[str, Any], says: str
) -> None:
    clock_before = http.get("/sandbox/api/clock").json()["clock"]
    default_before = http.get("/sandbox/api/scenarios").json()["default"]
    response = http.request(method, path, json=body)
    assert (response.status_code, response.json()["code"]) == (400, "SBX10001")
    assert says in response.json()["msg"], response.json()["msg"]
    clock_after = http.get("/sandbox/api/clock").json()["clock"]
    assert (clock_after["advanced_seconds"], clock_after["speed"]) == (
        clock_before["advanced_seconds"],
        clock_before["speed"],
    )
    assert http.get("/sandbox/api/scenarios").json()["default"] == default_before


@pytest.mark.parametrize(
    ("path", "body", "says"),
    [
        ("advance", {"seconds": 60, "sec": 1}, "'sec'"),
        ("notify", {"notify": "now", "url": "http://127.0.0.1:1/"}, "'url'"),
        ("step", {"fail": {"reason": "x" * 257}}, "reason: must be at most 256"),
        ("step", {"close": {"pay_mode": "WECHAT"}}, "pay_mode: is for paying, pay, fail only"),
    ],
)
def test_a_bad_order_body_is_refused_and_changes_nothing(
    http: httpx.Client, sb: Sandbox, waiting: str, path: str, body: dict[str, Any], says: str
) -> None:
    before = snapshot(sb)
    response = http.post(f"/sandbox/api/orders/{waiting}/{path}", json=body)
    assert (response.status_code, response.json()["code"]) == (400, "SBX10001"), response.text
    assert says in response.json()["msg"], response.json()["msg"]
    assert snapshot(sb) == before


def test_the_documented_bodies_still_work(http: httpx.Client, sb: Sandbox, waiting: str) -> None:
    wechat = http.post(f"/sandbox/api/orders/{waiting}/pay", json={"pay_mode": "WECHAT"})
    assert wechat.status_code == 409  # the seed order allows ALIPAY only: refused, not ignored
    paid = http.post(
        f"/sandbox/api/orders/{waiting}/pay", json={"pay_mode": "ALIPAY", "notify": "never"}
    )
    assert paid.status_code == 200, paid.text
    assert paid.json()["order"]["trades"][0]["pay_mode"] == "ALIPAY"
    refund = http.post(f"/sandbox/api/orders/{waiting}/refund", json={"amount": "40"})
    assert refund.status_code == 200, refund.text
    assert refund.json()["order"]["trades"][0]["trade_amount"] == 40


def test_a_reason_travels_as_text_in_the_v3_notify(frozen: tuple[httpx.Client, Sandbox]) -> None:
    http, sb = frozen
    with Receiver(http.get("/sandbox/keys/platform.cer").content) as rx:
        data = v3_req_data(sb, "REASON-1", notify_url=rx.url())
        no = v3_post(http, sb, "special_create", data).json()["resp_data"]["pay_order_no"]
        refused = http.post(f"/sandbox/api/orders/{no}/fail", json={"reason": {"nested": [1]}})
        assert refused.status_code == 400
        failed = http.post(f"/sandbox/api/orders/{no}/fail", json={"reason": "余额不足"})
        assert failed.status_code == 200
        assert sb.notifier.drain(10)
        notified = rx.wait_for(1)[0].json()["order_trade_info"]
    assert notified["trade_remark"] == "余额不足"
