"""The notifier: signed notifies through the durable outbox to a real handler on 127.0.0.1, the
retry ladder on the clock, give-up, deliberately broken notifies, the admin calls, and isolation
of a slow handler. The clock is frozen: only the tests move it."""

from __future__ import annotations

import itertools
import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from sandbox.client.transport import InProcessTransport
from sandbox.runtime import Sandbox
from sandbox.wire import signing
from tests.conftest import make_app
from tests.notify_receiver import Receiver
from tests.support import V1, seed_create, v3_post, v3_req_data

LADDER = (1, 5, 5, 10, 180, 600, 1200, 1800, 3600, 7200)
ATTEMPT_FIELDS = {
    "id",
    "pay_order_no",
    "sequence",
    "attempt",
    "url",
    "state",
    "scheduled_at",
    "request_headers",
    "request_body",
    "signed_string",
    "response_status",
    "response_body",
    "latency_ms",
    "error",
}


@pytest.fixture
def rx(frozen: tuple[httpx.Client, Sandbox]) -> Iterator[Receiver]:
    http, _ = frozen
    with Receiver(http.get("/sandbox/keys/platform.cer").content) as receiver:
        yield receiver


def v1_order(http: httpx.Client, sb: Sandbox, out: str, url: str | None, **changes: Any) -> str:
    body = seed_create(sb, out, **changes)
    if url is None:
        body.pop("notify_url")
    else:
        body["notify_url"] = url
    return str(http.post(V1 + "create", json=body).json()["resp_data"]["pay_order_no"])


def v3_order(http: httpx.Client, sb: Sandbox, out: str, url: str) -> str:
    created = v3_post(http, sb, "special_create", v3_req_data(sb, out, notify_url=url)).json()
    return str(created["resp_data"]["pay_order_no"])


def act(http: httpx.Client, no: str, action: str, **body: Any) -> None:
    response = http.post(f"/sandbox/api/orders/{no}/{action}", json=body)
    assert response.status_code == 200, response.text


def attempts(http: httpx.Client, no: str) -> list[dict[str, Any]]:
    response = http.get(f"/sandbox/api/orders/{no}/notifies")
    assert response.status_code == 200
    return list(response.json()["notifies"])


def advance(http: httpx.Client, sb: Sandbox, seconds: float) -> None:
    assert http.post("/sandbox/api/clock/advance", json={"seconds": seconds}).status_code == 200
    assert sb.notifier.drain(10)


def offsets(sb: Sandbox, tried: list[dict[str, Any]]) -> list[int]:
    first = sb.clock.parse(tried[0]["scheduled_at"])
    return [int(sb.clock.parse(a["scheduled_at"]) - first) for a in tried]


# -- the ladder ----------------------------------------------------------------------------------
def test_failed_attempts_are_retried_at_the_ladders_offsets(
    frozen: tuple[httpx.Client, Sandbox], rx: Receiver
) -> None:
    http, sb = frozen
    rx.fail_next(3)
    no = v3_order(http, sb, "LADDER-1", rx.url())
    act(http, no, "pay")
    assert sb.notifier.drain(10)
    assert len(rx.deliveries) == 1
    for delay in (1, 5, 5):
        advance(http, sb, delay - 0.5)
        before = len(rx.deliveries)
        advance(http, sb, 0.5)
        assert len(rx.deliveries) == before + 1, f"no attempt {delay}s after the previous one"
    tried = attempts(http, no)
    assert [a["state"] for a in tried] == ["failed", "failed", "failed", "delivered"]
    assert [a["attempt"] for a in tried] == [1, 2, 3, 4]
    assert offsets(sb, tried) == [0, 1, 6, 11]
    assert "the answer is not the ack" in tried[0]["error"] and "FAIL" in tried[0]["error"]
    assert [d.answer["code"] for d in rx.deliveries] == ["FAIL", "FAIL", "FAIL", "SUCCESS"]
    advance(http, sb, 86400)
    assert len(rx.deliveries) == 4  # delivered: the ladder stops


def test_after_the_last_attempt_the_notify_is_given_up(
    frozen: tuple[httpx.Client, Sandbox], rx: Receiver
) -> None:
    http, sb = frozen
    rx.fail_next(1000)
    no = v1_order(http, sb, "GIVEUP-1", rx.url())
    act(http, no, "pay")
    advance(http, sb, 5 * 3600)  # one jump: the whole ladder runs, each attempt in its place
    tried = attempts(http, no)
    assert len(tried) == 11 and len(rx.deliveries) == 11
    assert offsets(sb, tried) == [0, *itertools.accumulate(LADDER)]
    assert [a["state"] for a in tried] == ["failed"] * 10 + ["given_up"]
    advance(http, sb, 86400)
    assert len(rx.deliveries) == 11


def test_the_ladder_is_a_setting(rx: Receiver) -> None:
    app = make_app(clock_speed=0, notify_ladder=(2, 4))
    sb: Sandbox = app.state.sandbox
    rx.fail_next(1000)
    with httpx.Client(transport=InProcessTransport(app), base_url="http://t") as http:
        no = v1_order(http, sb, "SHORT-1", rx.url())
        act(http, no, "pay")
        advance(http, sb, 60)
        tried = attempts(http, no)
    app.state.sandbox.close()
    assert offsets(sb, tried) == [0, 2, 6]
    assert tried[-1]["state"] == "given_up"


# -- what is sent --------------------------------------------------------------------------------
def test_a_v3_notify_is_lakalas_body_signed_as_recorded(
    frozen: tuple[httpx.Client, Sandbox], rx: Receiver
) -> None:
    http, sb = frozen
    no = v3_order(http, sb, "BODY-3", rx.url())
    act(http, no, "pay", pay_mode="WECHAT")
    assert sb.notifier.drain(10)
    delivery = rx.wait_for(1)[0]
    body = delivery.json()
    assert delivery.verified and delivery.acked
    assert sb.schemas.problems("v3/notify", body) == []
    assert body["order_status"] == "2" and body["total_amount"] == 1
    trade = body["order_trade_info"]
    assert isinstance(trade, dict) and trade["log_no"] and "log_No" not in trade
    assert trade["pay_mode"] == "WECHAT" and trade["trade_status"] == "S"
    assert sb.schemas.problems("v3/notify_headers", delivery.headers) == []
    (attempt,) = attempts(http, no)
    assert ATTEMPT_FIELDS <= set(attempt)
    assert attempt["request_body"].encode() == delivery.body
    assert attempt["request_headers"]["Authorization"] == delivery.headers["authorization"]
    fields = signing.parse_authorization(delivery.headers["authorization"])
    assert attempt["signed_string"].encode() == signing.notify_string(
        fields["timestamp"], fields["nonce_str"], delivery.body
    )
    assert attempt["response_status"] == 200 and json.loads(attempt["response_body"]) == {
        "code": "SUCCESS",
        "message": "执行成功",
    }
    assert attempt["latency_ms"] is not None and attempt["error"] is None


def test_a_paid_alipay_notify_reads_like_one_from_lakala(
    frozen: tuple[httpx.Client, Sandbox], rx: Receiver
) -> None:
    """The shape of a notify captured from Lakala's test environment: keys in alphabetical
    order, no field without a value, order amounts as numbers, acc_* amounts as strings."""
    http, sb = frozen
    no = v3_order(http, sb, "BODY-ALI", rx.url())
    act(http, no, "pay", pay_mode="ALIPAY")
    assert sb.notifier.drain(10)
    body = rx.wait_for(1)[0].json()
    trade = body["order_trade_info"]
    for fields in (body, trade):
        assert list(fields) == sorted(fields)
        assert None not in fields.values()
    assert body["trans_merchant_no"] == body["merchant_no"] == "82229007392000A"
    assert body["trans_term_no"] == body["term_no"] == trade["settle_term_no"]
    assert (body["order_status"], body["total_amount"]) == ("2", 1)
    assert (trade["trade_amount"], trade["payer_amount"]) == (1, 1)
    assert trade["acc_settle_amount"] == "1"
    assert trade["acc_discount_amount"] == trade["acc_mdiscount_amount"] == ""
    assert trade["acc_other_discount_amount"] == trade["trade_remark"] == ""
    assert trade["trade_no"] == trade["trade_time"][:8] + trade["log_no"]
    assert re.fullmatch(r"66\d{12}", trade["log_no"])
    assert re.fullmatch(r"\w{3}\*\*\*@[\w.]+", trade["user_id1"])  # the masked Alipay logon
    assert re.fullmatch(r"2088\d{12}", trade["user_id2"])  # the Alipay user id
    assert (trade["acc_type"], trade["busi_type"]) == ("04", "SCPAY")
    assert sb.schemas.problems("v3/notify", body) == []


def test_a_v1_notify_is_the_seeds_body(frozen: tuple[httpx.Client, Sandbox], rx: Receiver) -> None:
    http, sb = frozen
    no = v1_order(http, sb, "BODY-1", rx.url())
    act(http, no, "fail")
    assert sb.notifier.drain(10)
    delivery = rx.wait_for(1)[0]
    body = delivery.json()
    assert delivery.verified and delivery.answer["code"] == "000000"
    assert sb.schemas.problems("v1/notify", body) == []
    assert (body["order_status"], body["total_amount"], body["out_order_no"]) == (
        "FAILED",
        "100",
        "BODY-1",
    )
    assert body["resp_time"] == sb.clock.now14()


@pytest.mark.parametrize(
    ("policy", "verified", "fresh", "amount"),
    [
        ("bad_signature", False, True, 100),
        ("stale_timestamp", True, False, 100),
        ("tampered_amount", False, True, 1),
        ({"signature": "stale", "after": 0}, True, False, 100),
    ],
)
def test_broken_notifies_are_refused_by_a_careful_handler(
    frozen: tuple[httpx.Client, Sandbox],
    rx: Receiver,
    policy: Any,
    verified: bool,
    fresh: bool,
    amount: int,
) -> None:
    http, sb = frozen
    no = v1_order(http, sb, "BROKEN-1", rx.url())
    act(http, no, "pay", notify=policy)
    assert sb.notifier.drain(10)
    delivery = rx.wait_for(1)[0]
    assert (delivery.verified, delivery.fresh, delivery.status) == (verified, fresh, 401)
    assert int(delivery.json()["total_amount"]) == amount
    attempt, retry = attempts(http, no)
    assert attempt["state"] == "failed" and "HTTP 401" in attempt["error"]
    assert retry["state"] == "pending" and retry["attempt"] == 2
    assert '"total_amount":"100"' in attempt["signed_string"]  # what was signed, untampered


def test_twice_sends_two_notifies_each_with_its_ladder(
    frozen: tuple[httpx.Client, Sandbox], rx: Receiver
) -> None:
    http, sb = frozen
    no = v1_order(http, sb, "TWICE-1", rx.url())
    act(http, no, "pay", notify="twice")
    assert sb.notifier.drain(10)
    assert [(a["sequence"], a["attempt"], a["state"]) for a in attempts(http, no)] == [
        (1, 1, "delivered"),
        (2, 1, "delivered"),
    ]
    assert rx.deliveries[0].body == rx.deliveries[1].body


def test_after_holds_the_notify_on_the_orders_clock(
    frozen: tuple[httpx.Client, Sandbox], rx: Receiver
) -> None:
    http, sb = frozen
    no = v1_order(http, sb, "AFTER-1", rx.url())
    act(http, no, "pay", notify={"after": 45})
    advance(http, sb, 44)
    assert rx.deliveries == []
    moved = http.post(f"/sandbox/api/orders/{no}/advance", json={"seconds": 1})
    assert moved.status_code == 200
    assert sb.notifier.drain(10)
    assert len(rx.wait_for(1)) == 1


# -- what is not sent -----------------------------------------------------------------------------
def test_changes_lakala_does_not_notify_send_nothing(
    frozen: tuple[httpx.Client, Sandbox], rx: Receiver
) -> None:
    http, sb = frozen
    closed = v1_order(http, sb, "QUIET-1", rx.url())
    act(http, closed, "paying")
    act(http, closed, "close")
    expired = v1_order(http, sb, "QUIET-2", rx.url())
    act(http, expired, "expire")
    assert sb.notifier.drain(10)
    assert attempts(http, closed) == [] and attempts(http, expired) == []
    assert rx.deliveries == []


def test_a_v3_cancel_without_a_trade_is_journaled_as_skipped(
    frozen: tuple[httpx.Client, Sandbox], rx: Receiver
) -> None:
    http, sb = frozen
    untouched = v3_order(http, sb, "CANCEL-3A", rx.url())
    act(http, untouched, "cancel")
    (skipped,) = attempts(http, untouched)
    assert skipped["state"] == "skipped" and "order_trade_info" in skipped["error"]
    paying = v3_order(http, sb, "CANCEL-3B", rx.url())
    act(http, paying, "paying")
    act(http, paying, "cancel")
    assert sb.notifier.drain(10)
    body = rx.wait_for(1)[0].json()
    assert body["order_status"] == "5" and body["order_trade_info"]["trade_status"] == "C"


@pytest.mark.parametrize(
    ("url", "policy", "why"),
    [
        (None, "now", "the order has no notify_url"),
        ("http://localhost:9/notify", "now", "notify_url host 'localhost' is not in notify_hosts"),
        ("http://127.0.0.1:9/notify", "never", "the notify policy is never"),
        ("http://127.0.0.1:9/notify", "sometimes", "notify: must be one of"),
    ],
)
def test_notifies_that_cannot_or_must_not_go_are_journaled(
    url: str | None, policy: str, why: str
) -> None:
    app = make_app(clock_speed=0, notify_hosts=("127.0.0.1",))
    sb: Sandbox = app.state.sandbox
    with httpx.Client(transport=InProcessTransport(app), base_url="http://t") as http:
        no = v1_order(http, sb, "SKIP-1", url)
        sb.engine.apply(no, "pay", source="page", options={"notify": policy})
        (skipped,) = attempts(http, no)
    app.state.sandbox.close()
    assert skipped["state"] == "skipped" and why in skipped["error"]


def test_a_redirect_is_not_followed(frozen: tuple[httpx.Client, Sandbox], rx: Receiver) -> None:
    http, sb = frozen
    rx.redirects["/moved"] = rx.url("/notify")
    no = v1_order(http, sb, "MOVED-1", rx.url("/moved"))
    act(http, no, "pay")
    assert sb.notifier.drain(10)
    (attempt, retry) = attempts(http, no)
    assert attempt["response_status"] == 302 and "redirect" in attempt["error"]
    assert "not followed" in attempt["error"] and retry["state"] == "pending"
    assert rx.arrived == 1 and rx.deliveries == []


# -- admin calls ---------------------------------------------------------------------------
def test_send_now_and_replay(frozen: tuple[httpx.Client, Sandbox], rx: Receiver) -> None:
    http, sb = frozen
    no = v1_order(http, sb, "ADMIN-1", rx.url())
    act(http, no, "pay", notify="never")
    fired = http.post(f"/sandbox/api/orders/{no}/notify")
    assert fired.status_code == 202 and fired.json()["notify"]["state"] == "pending"
    assert sb.notifier.drain(10)
    first = attempts(http, no)[-1]
    assert (first["sequence"], first["state"], first["kind"]) == (2, "delivered", "manual")
    replayed = http.post(f"/sandbox/api/notifies/{first['id']}/replay")
    assert replayed.status_code == 202
    assert sb.notifier.drain(10)
    again = attempts(http, no)[-1]
    assert (again["sequence"], again["state"], again["kind"]) == (3, "delivered", "replay")
    assert again["request_body"] == first["request_body"]
    assert again["request_headers"]["Authorization"] != first["request_headers"]["Authorization"]
    assert [d.json()["order_status"] for d in rx.deliveries] == ["SUCCESS", "SUCCESS"]


@pytest.mark.parametrize(
    ("call", "status", "code"),
    [
        ("POST /sandbox/api/orders/{no_url}/notify", 409, "SBX60003"),
        ("POST /sandbox/api/orders/{v3_unpaid}/notify", 409, "SBX60004"),
        ("POST /sandbox/api/notifies/999999/replay", 404, "SBX60005"),
        ("POST /sandbox/api/notifies/abc/replay", 404, "SBX40004"),
        ("GET /sandbox/api/orders/123/notifies", 404, "SBX20002"),
        ("POST /sandbox/api/orders/123/notify", 404, "SBX20002"),
    ],
)
def test_admin_notify_calls_refuse_what_cannot_be_done(
    frozen: tuple[httpx.Client, Sandbox], call: str, status: int, code: str
) -> None:
    http, sb = frozen
    names = {
        "no_url": v1_order(http, sb, "NOURL-1", None),
        "v3_unpaid": v3_order(http, sb, "UNPAID-3", "http://127.0.0.1:9/notify"),
    }
    method, path = call.split(" ")
    response = http.request(method, path.format(**names))
    assert (response.status_code, response.json()["code"]) == (status, code)


# -- isolation and durability ----------------------------------------------------------------
def test_a_slow_handler_delays_no_other_order(
    frozen: tuple[httpx.Client, Sandbox], rx: Receiver
) -> None:
    http, sb = frozen
    rx.hold["/slow"] = 5
    slow = v1_order(http, sb, "SLOW-1", rx.url("/slow"))
    fast = v1_order(http, sb, "FAST-1", rx.url("/fast"))
    started = time.monotonic()
    act(http, slow, "pay")
    act(http, fast, "pay")
    assert time.monotonic() - started < 0.5, "the API waited for a delivery"
    delivered = rx.wait_for(1, timeout=0.9)
    assert delivered[0].path == "/fast"
    assert sb.notifier.drain(10)
    timed_out = attempts(http, slow)[0]
    assert timed_out["state"] == "failed" and "timeout" in timed_out["error"]
    assert timed_out["latency_ms"] >= 1000
    assert attempts(http, fast)[0]["state"] == "delivered"


def test_the_outbox_survives_a_restart(tmp_path: Path) -> None:
    first = make_app(data_dir=str(tmp_path), clock_speed=0)
    with in_process(first) as http, Receiver(http.get("/sandbox/keys/platform.cer").content) as rx:
        rx.fail_next(1000)
        no = v1_order(http, first.state.sandbox, "KEEP-1", rx.url())
        act(http, no, "pay")
        assert first.state.sandbox.notifier.drain(10)
        first.state.sandbox.close()
        second = make_app(data_dir=str(tmp_path), clock_speed=0)
        with in_process(second) as again:
            assert [a["state"] for a in attempts(again, no)] == ["failed", "pending"]
            rx.fail_next(0)
            advance(again, second.state.sandbox, 1)
            tried = attempts(again, no)
        second.state.sandbox.close()
    assert [(a["attempt"], a["state"]) for a in tried] == [(1, "failed"), (2, "delivered")]
    assert len(rx.deliveries) == 2


def in_process(app: Any) -> httpx.Client:
    return httpx.Client(transport=InProcessTransport(app), base_url="http://t")


def test_a_bad_policy_on_an_admin_action_changes_nothing(
    frozen: tuple[httpx.Client, Sandbox], rx: Receiver
) -> None:
    http, sb = frozen
    no = v1_order(http, sb, "POLICY-1", rx.url())
    response = http.post(f"/sandbox/api/orders/{no}/pay", json={"notify": {"after": -5}})
    assert response.status_code == 400 and "notify" in response.json()["msg"]
    assert http.get(f"/sandbox/api/orders/{no}").json()["order"]["order_status"] == "0"
    assert attempts(http, no) == []


def test_reset_forgets_the_outbox_and_runs(
    frozen: tuple[httpx.Client, Sandbox], rx: Receiver
) -> None:
    http, sb = frozen
    rx.fail_next(1000)
    no = v1_order(http, sb, "RESET-1", rx.url(), total_amount=905)
    advance(http, sb, 7)
    assert len(attempts(http, no)) == 2
    assert http.post("/sandbox/api/reset").status_code == 200
    for table in ("notifies", "notify_attempts", "scenario_runs", "scenario_faults"):
        assert sb.store.execute(f"SELECT COUNT(*) AS n FROM {table}")[0]["n"] == 0
    assert sb.notifier.next_due() is None and sb.runner.next_due() is None


@pytest.mark.parametrize(
    ("settings", "text"),
    [
        ({"notify_ladder": (1, -5)}, "notify_ladder .* each from 0 to 2592000"),
        ({"notify_ladder": (1, float("inf"))}, "notify_ladder .*not 1,inf"),
        ({"notify_ladder": (float("nan"),)}, "notify_ladder .*not nan"),
        ({"notify_ladder": ()}, "notify_ladder .*not none"),
        ({"notify_timeout": 0}, "notify_timeout .* must be from 0.001 to 3600, not 0"),
        ({"v1_validity_seconds": 999999999999}, "v1_validity_seconds .* from 1 to 604800"),
        ({"v1_validity_seconds": -10}, "v1_validity_seconds"),
        ({"max_body_bytes": -1}, "max_body_bytes"),
        ({"signature_max_skew": -1}, "signature_max_skew"),
        ({"port": 99999}, "port .* from 0 to 65535"),
        ({"timezone": "Mars/Olympus"}, "timezone .* IANA zone"),
        ({"serial_no": "xyz"}, "serial_no .* hex number"),
    ],
)
def test_impossible_settings_are_refused_naming_the_setting(
    settings: dict[str, Any], text: str
) -> None:
    with pytest.raises(ValueError, match=text):
        make_app(**settings)


def test_a_notify_sent_again_later_still_says_why_the_payment_failed(
    frozen: tuple[httpx.Client, Sandbox], rx: Receiver
) -> None:
    http, sb = frozen
    no = v3_order(http, sb, "BODY-WHY", rx.url())
    act(http, no, "fail", pay_mode="WECHAT", reason="BBS16111 sub_mch_id与sub_appid不匹配")
    assert http.post(f"/sandbox/api/orders/{no}/notify").status_code == 202  # the state now
    assert sb.notifier.drain(10)
    remarks = [d.json()["order_trade_info"]["trade_remark"] for d in rx.wait_for(2)]
    assert remarks == ["BBS16111 sub_mch_id与sub_appid不匹配"] * 2
