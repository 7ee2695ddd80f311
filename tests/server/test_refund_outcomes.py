"""Refund outcomes: a scenario step, the admin API (its /step) or the dashboard make an order's
next refund fail, or stay PROCESSING until the order's clock moves on, then succeed or fail; the
refund APIs' answers, every refund query, the order query and the notify follow."""

from __future__ import annotations

from typing import Any

import httpx

from sandbox.runtime import Sandbox
from tests.notify_receiver import Receiver
from tests.server.test_dashboard import flash, post
from tests.server.test_refund_apis import WHERE, call, paid_on
from tests.server.test_v3_refunds import RFD, paid_order, query
from tests.support import snapshot, v3_post, v3_req_data


def arm(http: httpx.Client, no: str, **outcome: Any) -> httpx.Response:
    return http.post(f"/sandbox/api/orders/{no}/step", json={"refund_outcome": outcome})


def states(http: httpx.Client, sb: Sandbox, out_trade_no: str) -> set[str]:
    """The refund's trade_state as each query API reports it."""
    front = v3_post(
        http,
        sb,
        "refund_query",
        {"merchant_no": "82229007392000A", "term_no": "D9296400", "out_trade_no": out_trade_no},
        prefix=RFD,
    ).json()["resp_data"]["trade_state"]
    idm = call(http, sb, "idmrefundquery", out_refund_order_no=out_trade_no)
    return {front, idm["resp_data"]["trade_state"]}


def test_a_refund_made_to_fail_fails_at_once_and_leaves_the_payment_refundable(
    frozen: tuple[httpx.Client, Sandbox],
) -> None:
    http, sb = frozen
    with Receiver(http.get("/sandbox/keys/platform.cer").content) as rx:
        order = paid_order(http, sb, "OUT-F", notify_url=rx.url())
        assert arm(http, order["pay_order_no"], result="fail", reason="BAL01 余额不足").is_success
        failed = call(
            http,
            sb,
            "relation_refund",
            out_trade_no="OF-1",
            refund_amount=1000,
            origin_out_trade_no="OUT-F",
            **WHERE,
        )
        assert failed["code"] == "000000" and failed["resp_data"]["trade_state"] == "FAIL"
        assert states(http, sb, "OF-1") == {"FAIL"}
        front = v3_post(
            http,
            sb,
            "refund_query",
            {"merchant_no": "82229007392000A", "term_no": "D9296400", "out_trade_no": "OF-1"},
            prefix=RFD,
        ).json()["resp_data"]
        assert front["channel_ret_desc"] == "RFD10001#失败"
        after = query(http, sb, "OUT-F")
        assert after["order_status"] == "2"  # still paid: nothing was refunded
        assert after["order_trade_info_list"][0]["trade_status"] == "F"
        # the outcome was used up: the whole amount is still refundable, and is refunded
        again = call(
            http,
            sb,
            "idmrefund",
            out_refund_order_no="OF-2",
            refund_amount=1000,
            origin_out_trade_no="OUT-F",
            **WHERE,
        )
        assert again["resp_data"]["trade_state"] == "SUCCESS"
        assert query(http, sb, "OUT-F")["order_status"] == "6"
        assert sb.notifier.drain(10)
        notifies = [d.json() for d in rx.wait_for(3)]
    trades = [n["order_trade_info"] for n in notifies[1:]]
    assert [(t["trade_type"], t["trade_status"]) for t in trades] == [
        ("REFUND", "F"),
        ("REFUND", "S"),
    ]
    assert trades[0]["trade_remark"] == "BAL01 余额不足"
    assert [n["order_status"] for n in notifies[1:]] == ["2", "6"]


def test_a_processing_refund_holds_its_amount_until_the_clock_moves_then_succeeds(
    frozen: tuple[httpx.Client, Sandbox],
) -> None:
    http, sb = frozen
    with Receiver(http.get("/sandbox/keys/platform.cer").content) as rx:
        order = paid_order(http, sb, "OUT-P", notify_url=rx.url())
        paid = order["order_trade_info_list"][0]
        assert arm(http, order["pay_order_no"], result="success", after=60).is_success
        made = call(
            http,
            sb,
            "trade_refund",
            out_trade_no="OP-1",
            refund_amount=600,
            origin_biz_type="3",
            origin_trade_date=paid_on(order),
            origin_trade_no=paid["trade_no"],
            **WHERE,
        )
        assert made["resp_data"]["trade_state"] == "PROCESSING"
        assert states(http, sb, "OP-1") == {"PROCESSING"}
        assert query(http, sb, "OUT-P")["order_status"] == "2"
        # what the processing refund holds cannot be refunded twice
        before = snapshot(sb)
        more = call(
            http,
            sb,
            "relation_refund",
            out_trade_no="OP-2",
            refund_amount=401,
            origin_out_trade_no="OUT-P",
            **WHERE,
        )
        assert more["code"] == "SBX10001" and "from 1 to 400 fen" in more["msg"]
        assert snapshot(sb) == before
        # half the wait: still processing, no refund notify
        assert http.post("/sandbox/api/clock/advance", json={"seconds": 30}).is_success
        assert sb.scheduler.drain(10) and sb.notifier.drain(10)
        assert states(http, sb, "OP-1") == {"PROCESSING"}
        assert len(rx.deliveries) == 1  # the payment's only
        assert http.post("/sandbox/api/clock/advance", json={"seconds": 31}).is_success
        assert sb.scheduler.drain(10) and sb.notifier.drain(10)
        assert states(http, sb, "OP-1") == {"SUCCESS"}
        listed = call(
            http,
            sb,
            "trade_refund_query",
            out_trade_no="OP-1",
            origin_biz_type="3",
            origin_trade_date=paid_on(order),
            origin_trade_no=paid["trade_no"],
        )["resp_data"]["refund_list"]
        assert listed[0]["trade_state"] == "SUCCESS"
        assert query(http, sb, "OUT-P")["order_status"] == "6"
        notifies = [d.json() for d in rx.wait_for(2)]
    refund = notifies[1]["order_trade_info"]
    assert (refund["trade_type"], refund["trade_status"], refund["trade_amount"]) == (
        "REFUND",
        "S",
        600,
    )
    assert notifies[1]["order_status"] == "6"


def test_the_shipped_scenario_keeps_a_refund_processing_then_fails_it(
    frozen: tuple[httpx.Client, Sandbox],
) -> None:
    http, sb = frozen
    with Receiver(http.get("/sandbox/keys/platform.cer").content) as rx:
        req = v3_req_data(
            sb, "REFUND-SLOW-1", total_amount=500, support_refund=1, notify_url=rx.url()
        )
        created = v3_post(http, sb, "special_create", req).json()
        assert created["code"] == "000000"
        assert sb.scheduler.drain(10)
        paid = query(http, sb, "REFUND-SLOW-1")
        assert paid["order_status"] == "2"  # the scenario paid it
        made = call(
            http,
            sb,
            "relation_refund",
            out_trade_no="SL-1",
            refund_amount=500,
            origin_out_trade_no="REFUND-SLOW-1",
            **WHERE,
        )
        assert made["resp_data"]["trade_state"] == "PROCESSING"
        no = created["resp_data"]["pay_order_no"]
        assert http.post(f"/sandbox/api/orders/{no}/advance", json={"seconds": 30}).is_success
        assert sb.scheduler.drain(10) and sb.notifier.drain(10)
        assert states(http, sb, "SL-1") == {"FAIL"}
        assert query(http, sb, "REFUND-SLOW-1")["order_status"] == "2"
        notifies = [d.json() for d in rx.wait_for(2)]
    assert notifies[1]["order_trade_info"]["trade_status"] == "F"
    assert "RFD10001" in notifies[1]["order_trade_info"]["trade_remark"]


def test_the_dashboard_form_sets_the_next_refund_s_outcome(
    frozen: tuple[httpx.Client, Sandbox],
) -> None:
    http, sb = frozen
    order = paid_order(http, sb, "OUT-D")
    no = order["pay_order_no"]
    page = http.get(f"/dashboard/orders/{no}").text
    assert f'action="/dashboard/orders/{no}/refund_outcome"' in page
    said = flash(
        post(
            http,
            f"/dashboard/orders/{no}/refund_outcome",
            result="fail",
            after="0",
            reason="",
            back=f"/dashboard/orders/{no}",
        ),
        http,
    )
    assert "the next refund will fail" in said
    made = call(
        http,
        sb,
        "relation_refund",
        out_trade_no="OD-1",
        refund_amount=10,
        origin_out_trade_no="OUT-D",
        **WHERE,
    )
    assert made["resp_data"]["trade_state"] == "FAIL"
    bad = flash(
        post(
            http,
            f"/dashboard/orders/{no}/refund_outcome",
            result="maybe",
            after="0",
            back=f"/dashboard/orders/{no}",
        ),
        http,
    )
    assert "result" in bad
    wrong = flash(
        post(
            http,
            f"/dashboard/orders/{no}/refund_outcome",
            result="fail",
            after="soon",
            back=f"/dashboard/orders/{no}",
        ),
        http,
    )
    assert "after" in wrong
    assert sb.refunds.armed(no) is None  # neither bad form armed anything


def test_a_bad_outcome_step_is_refused_naming_the_rule(
    frozen: tuple[httpx.Client, Sandbox],
) -> None:
    http, sb = frozen
    no = paid_order(http, sb, "OUT-B")["pay_order_no"]
    for outcome in ({"result": "later"}, {"result": "fail", "after": -1}, {"after": 5}):
        answer = arm(http, no, **outcome)
        assert answer.status_code == 400 and "refund_outcome" in answer.text, answer.text
    assert sb.refunds.armed(no) is None
