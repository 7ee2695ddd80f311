"""Lakala's refund API for counter orders, signed both ways: refunds in full or in part, named by
the payment's trade_no, log_no or out_order_no; safe repeats; refund queries; the refund notify."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from sandbox.client.errors import LakalaSchemaError
from sandbox.runtime import Sandbox
from tests.client.test_client import in_process_client
from tests.conftest import make_app
from tests.notify_receiver import Receiver
from tests.support import V1, seed_create, snapshot, v3_post, v3_req_data, verify_v3_response

RFD = "/api/v3/rfd/refund_front/"
MERCHANT = "82229007392000A"
SEED_MERCHANT = "8222900701106PZ"  # v1 orders' default


def paid_order(
    http: httpx.Client, sb: Sandbox, out: str, amount: int = 1000, **changes: Any
) -> dict[str, Any]:
    """A v3 order paid by WeChat: its query answer's resp_data."""
    req = v3_req_data(sb, out, **{"total_amount": amount, "support_refund": 1, **changes})
    no = v3_post(http, sb, "special_create", req).json()["resp_data"]["pay_order_no"]
    assert http.post(f"/sandbox/api/orders/{no}/pay", json={"pay_mode": "WECHAT"}).is_success
    return dict(query(http, sb, out))


def query(http: httpx.Client, sb: Sandbox, out: str) -> dict[str, Any]:
    answer = v3_post(http, sb, "query", {"merchant_no": MERCHANT, "out_order_no": out}).json()
    return dict(answer["resp_data"])


def refund(http: httpx.Client, sb: Sandbox, out_trade_no: str, **fields: Any) -> httpx.Response:
    req = {
        "merchant_no": MERCHANT,
        "term_no": "D9296400",
        "out_trade_no": out_trade_no,
        "location_info": {"request_ip": "127.0.0.1"},
        **fields,
    }
    return v3_post(http, sb, "refund", req, prefix=RFD)


def test_a_refund_in_part_then_the_rest(frozen: tuple[httpx.Client, Sandbox]) -> None:
    http, sb = frozen
    order = paid_order(http, sb, "RFD-1")
    paid = order["order_trade_info_list"][0]
    first = refund(http, sb, "R-1", refund_amount="300", origin_trade_no=paid["trade_no"])
    verify_v3_response(first, sb.keys.platform_cert)
    data = first.json()["resp_data"]
    assert first.json()["code"] == "000000"
    assert (data["trade_state"], data["channel_ret_desc"]) == ("SUCCESS", "RFD00000#成功")
    assert (data["total_amount"], data["refund_amount"], data["payer_amount"]) == (
        "1000",
        "300",
        "300",
    )
    assert data["out_trade_no"] == "R-1" and data["origin_trade_no"] == paid["trade_no"]
    assert data["trade_no"].endswith(data["log_no"]) and data["account_type"] == "WECHAT"
    assert sb.schemas.problems("v3/refund.resp", data) == []
    after = query(http, sb, "RFD-1")
    assert after["order_status"] == "6"
    newest = after["order_trade_info_list"][0]
    assert (newest["trade_type"], newest["trade_amount"], newest["origin_trade_no"]) == (
        "REFUND",
        300,
        paid["trade_no"],
    )
    # the rest, naming the payment by its log_no this time
    rest = refund(http, sb, "R-2", refund_amount=700, origin_log_no=paid["log_No"]).json()
    assert rest["code"] == "000000" and rest["resp_data"]["refund_amount"] == "700"
    more = refund(http, sb, "R-3", refund_amount=1, origin_trade_no=paid["trade_no"]).json()
    assert more["code"] == "SBX20003" and "refunded in full" in more["msg"]
    refunds = [
        t for t in query(http, sb, "RFD-1")["order_trade_info_list"] if t["trade_type"] == "REFUND"
    ]
    assert sorted(t["trade_amount"] for t in refunds) == [300, 700]


def test_more_than_is_left_is_refused_and_changes_nothing(
    frozen: tuple[httpx.Client, Sandbox],
) -> None:
    http, sb = frozen
    paid_order(http, sb, "RFD-2", amount=500)
    refund(http, sb, "R-21", refund_amount=200, origin_out_trade_no="RFD-2")
    before = snapshot(sb)
    answer = refund(http, sb, "R-22", refund_amount=301, origin_out_trade_no="RFD-2").json()
    assert answer["code"] == "SBX10001"
    assert "refund_amount" in answer["msg"] and "from 1 to 300 fen" in answer["msg"]
    assert snapshot(sb) == before


def test_a_repeat_returns_the_same_refund_and_a_clash_is_refused(
    frozen: tuple[httpx.Client, Sandbox],
) -> None:
    http, sb = frozen
    paid_order(http, sb, "RFD-3")
    first = refund(http, sb, "R-31", refund_amount=100, origin_out_trade_no="RFD-3").json()
    again = refund(http, sb, "R-31", refund_amount="100", origin_out_trade_no="RFD-3").json()
    assert again["resp_data"] == first["resp_data"]
    before = snapshot(sb)
    clash = refund(http, sb, "R-31", refund_amount=200, origin_out_trade_no="RFD-3").json()
    assert clash["code"] == "SBX20005" and "R-31" in clash["msg"]
    assert snapshot(sb) == before


@pytest.mark.parametrize(
    ("fields", "code", "words"),
    [
        ({"refund_amount": 100, "origin_trade_no": "20260101660000000000"}, "SBX20002", "payment"),
        ({"refund_amount": 100, "origin_out_trade_no": "NO-SUCH"}, "SBX20002", "NO-SUCH"),
        ({"refund_amount": 100}, "SBX10001", "origin_"),
        ({"refund_amount": 0, "origin_out_trade_no": "RFD-4"}, "SBX10001", "refund_amount"),
        ({"refund_amount": 100, "origin_log_no": "66x"}, "SBX10001", "origin_log_no"),
    ],
)
def test_bad_refunds_are_refused_clearly(
    frozen: tuple[httpx.Client, Sandbox], fields: dict[str, Any], code: str, words: str
) -> None:
    http, sb = frozen
    paid_order(http, sb, "RFD-4")
    before = snapshot(sb)
    answer = refund(http, sb, "R-4", **fields)
    verify_v3_response(answer, sb.keys.platform_cert)
    assert answer.json()["code"] == code and words in answer.json()["msg"]
    assert snapshot(sb) == before


def test_an_order_without_support_refund_or_unpaid_is_not_refunded(
    frozen: tuple[httpx.Client, Sandbox],
) -> None:
    http, sb = frozen
    paid_order(http, sb, "RFD-5", support_refund=0)
    answer = refund(http, sb, "R-5", refund_amount=1, origin_out_trade_no="RFD-5").json()
    assert answer["code"] == "SBX20003" and "support_refund=1" in answer["msg"]
    v3_post(http, sb, "special_create", v3_req_data(sb, "RFD-6", support_refund=1))
    unpaid = refund(http, sb, "R-6", refund_amount=1, origin_out_trade_no="RFD-6").json()
    assert unpaid["code"] == "SBX20003"


def test_refund_query_by_either_number(frozen: tuple[httpx.Client, Sandbox]) -> None:
    http, sb = frozen
    paid_order(http, sb, "RFD-7")
    made = refund(http, sb, "R-7", refund_amount=250, origin_out_trade_no="RFD-7").json()
    base = {"merchant_no": MERCHANT, "term_no": "D9296400"}
    for key in ("out_trade_no", "trade_no"):
        answer = v3_post(
            http, sb, "refund_query", {**base, key: made["resp_data"][key]}, prefix=RFD
        )
        verify_v3_response(answer, sb.keys.platform_cert)
        data = answer.json()["resp_data"]
        assert (data["out_trade_no"], data["trade_no"], data["refund_amount"]) == (
            "R-7",
            made["resp_data"]["trade_no"],
            "250",
        )
        assert data["trade_state"] == "SUCCESS" and data["account_type"] == "WECHAT"
        assert sb.schemas.problems("v3/refund_query.resp", data) == []
    missing = v3_post(
        http, sb, "refund_query", {**base, "out_trade_no": "R-NONE"}, prefix=RFD
    ).json()
    assert missing["code"] == "SBX20002" and "R-NONE" in missing["msg"]
    other = v3_post(
        http,
        sb,
        "refund_query",
        {**base, "merchant_no": "OTHER", "out_trade_no": "R-7"},
        prefix=RFD,
    ).json()
    assert other["code"] == "SBX20002"


def test_each_refund_is_notified_to_the_order(frozen: tuple[httpx.Client, Sandbox]) -> None:
    http, sb = frozen
    with Receiver(http.get("/sandbox/keys/platform.cer").content) as rx:
        paid_order(http, sb, "RFD-8", notify_url=rx.url())
        refund(http, sb, "R-81", refund_amount=400, origin_out_trade_no="RFD-8")
        assert sb.notifier.drain(10)
        notifies = [d.json() for d in rx.wait_for(2)]
    assert notifies[1]["order_status"] == "6"
    trade = notifies[1]["order_trade_info"]
    assert (trade["trade_type"], trade["trade_amount"]) == ("REFUND", 400)
    assert all(d.verified for d in rx.deliveries)


def test_the_client_checks_a_refund_against_the_same_schemas() -> None:
    app = make_app(clock_speed=0)
    sb: Sandbox = app.state.sandbox
    with in_process_client(app, sb, merchant_no=MERCHANT) as client:
        created = client.create(
            out_order_no="RFD-C", total_amount=500, order_info="tea", support_refund=1
        )
        sb.engine.apply(created["pay_order_no"], "pay", pay_mode="ALIPAY")
        body = {
            "merchant_no": MERCHANT,
            "term_no": "D9296400",
            "out_trade_no": "R-C",
            "refund_amount": "500",
            "origin_out_trade_no": "RFD-C",
            "location_info": {"request_ip": "127.0.0.1"},
        }
        answer = client.call(RFD + "refund", body)
        assert answer.code == "000000" and answer.resp_data is not None
        assert answer.resp_data["account_type"] == "ALIPAY"
        with pytest.raises(LakalaSchemaError) as refused:  # never sent
            client.call(RFD + "refund", {**body, "out_trade_no": "R-D", "location_info": {}})
    assert "request_ip" in str(refused.value)
    assert sb.engine.get(created["pay_order_no"]).refundable == 0
    sb.close()


def test_a_refund_made_elsewhere_is_found_by_its_trade_no(
    frozen: tuple[httpx.Client, Sandbox],
) -> None:
    http, sb = frozen
    order = paid_order(http, sb, "RFD-9")
    # the admin API (as the dashboard and the plugin's act) refunds in part too
    no = order["pay_order_no"]
    assert http.post(f"/sandbox/api/orders/{no}/refund", json={"amount": 100}).is_success
    refused = http.post(f"/sandbox/api/orders/{no}/refund", json={"amount": "lots"})
    assert refused.status_code == 400 and "amount" in refused.json()["msg"]
    trade = query(http, sb, "RFD-9")["order_trade_info_list"][0]
    assert (trade["trade_type"], trade["trade_amount"]) == ("REFUND", 100)
    answer = v3_post(
        http,
        sb,
        "refund_query",
        {"merchant_no": MERCHANT, "term_no": "D9296400", "trade_no": trade["trade_no"]},
        prefix=RFD,
    ).json()
    assert answer["code"] == "000000" and "out_trade_no" not in answer["resp_data"]
    assert answer["resp_data"]["refund_amount"] == "100"


def test_a_failed_attempt_cannot_be_refunded(frozen: tuple[httpx.Client, Sandbox]) -> None:
    http, sb = frozen
    req = v3_req_data(sb, "RFD-10", total_amount=800, support_refund=1, support_repeat_pay=1)
    no = v3_post(http, sb, "special_create", req).json()["resp_data"]["pay_order_no"]
    http.post(f"/sandbox/api/orders/{no}/fail", json={})
    http.post(f"/sandbox/api/orders/{no}/pay", json={})
    failed = next(
        t for t in query(http, sb, "RFD-10")["order_trade_info_list"] if t["trade_status"] == "F"
    )
    before = snapshot(sb)
    for key, value in (
        ("origin_trade_no", failed["trade_no"]),
        ("origin_log_no", failed["log_No"]),
    ):
        answer = refund(http, sb, "R-10", refund_amount=100, **{key: value}).json()
        assert answer["code"] == "SBX20002" and value in answer["msg"]
    assert snapshot(sb) == before


def test_the_query_shows_lakalas_fields_and_the_notify_the_reason(
    frozen: tuple[httpx.Client, Sandbox],
) -> None:
    http, sb = frozen
    with Receiver(http.get("/sandbox/keys/platform.cer").content) as rx:
        paid_order(http, sb, "RFD-11", notify_url=rx.url())
        refund(
            http,
            sb,
            "R-11",
            refund_amount=50,
            origin_out_trade_no="RFD-11",
            refund_reason="坏了",
        )
        assert sb.notifier.drain(10)
        notified = rx.wait_for(2)[1].json()["order_trade_info"]
    assert notified["trade_remark"] == "坏了"
    listed = query(http, sb, "RFD-11")["order_trade_info_list"][0]
    assert not [k for k in listed if k.startswith("_") or "request_hash" in k]


def test_a_v1_order_partly_refunded_says_how_much(frozen: tuple[httpx.Client, Sandbox]) -> None:
    """The seed's v1 API has one status for any refund: its answers add the amount refunded."""
    http, sb = frozen
    with Receiver(http.get("/sandbox/keys/platform.cer").content) as rx:
        body = seed_create(sb, "RFD-V1", total_amount=500, notify_url=rx.url())
        no = http.post(V1 + "create", json=body).json()["resp_data"]["pay_order_no"]
        assert http.post(f"/sandbox/api/orders/{no}/pay", json={}).is_success
        before = http.post(V1 + "query", json={"out_order_no": "RFD-V1"}).json()["resp_data"]
        assert before["order_status"] == "SUCCESS" and before["refund_amount"] is None
        refund(
            http,
            sb,
            "R-V1",
            refund_amount=100,
            origin_out_trade_no="RFD-V1",
            merchant_no=SEED_MERCHANT,
        )
        assert sb.notifier.drain(10)
        notified = rx.wait_for(2)[1].json()
    after = http.post(V1 + "query", json={"out_order_no": "RFD-V1"}).json()["resp_data"]
    assert (after["order_status"], after["total_amount"], after["refund_amount"]) == (
        "REFUNDED",
        "500",
        "100",
    )
    assert (notified["order_status"], notified["refund_amount"]) == ("REFUNDED", "100")
    assert sb.schemas.problems("v1/notify", notified) == []
