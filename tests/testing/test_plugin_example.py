"""The README's pytest example, run as it is shown: the fixtures a merchant's own tests get."""

import httpx

from sandbox import LakalaSandbox, NotifyReceiver


def test_a_paid_order_reads_paid_and_is_notified(lakala_sandbox: LakalaSandbox) -> None:
    client = lakala_sandbox.client  # a LakalaClient wired to the in-process sandbox
    with NotifyReceiver() as merchant:  # stands in for your backend's notify endpoint
        order = client.create(
            out_order_no="SHOP-1001",
            total_amount=2990,
            order_info="Green tea",
            notify_url=merchant.url,
        )
        lakala_sandbox.pay(order["pay_order_no"], pay_mode="WECHAT")
        assert client.query(out_order_no="SHOP-1001")["order_status"] == "2"
        notify = merchant.wait(1)[0]
    # your handler would verify it exactly like this
    assert client.verify_notify(notify.headers, notify.body)["order_status"] == "2"
    sent = lakala_sandbox.wait_for_notifies(order["pay_order_no"])
    assert sent[0]["url"] == merchant.url


def test_an_unpaid_order_expires_when_the_clock_moves(lakala_sandbox: LakalaSandbox) -> None:
    lakala_sandbox.client.create(
        out_order_no="SHOP-1002", total_amount=100, order_info="Black tea"
    )  # valid for one hour
    lakala_sandbox.clock.advance(3601)  # no sleeping: the sandbox clock jumps
    assert lakala_sandbox.client.query(out_order_no="SHOP-1002")["order_status"] == "4"


def test_a_scenario_decides_the_outcome(lakala_sandbox: LakalaSandbox) -> None:
    lakala_sandbox.use_scenario("auto-fail")  # shipped: fails 3 seconds after the create
    order = lakala_sandbox.client.create(
        out_order_no="SHOP-1003", total_amount=100, order_info="Oolong"
    )
    lakala_sandbox.clock.advance(3)
    assert lakala_sandbox.order(order["pay_order_no"])["order_status"] == "3"


def test_other_processes_get_a_real_url(lakala_sandbox_server: LakalaSandbox) -> None:
    # e.g. your frontend or a non-Python service, calling the seed's v1 API
    answer = httpx.post(
        lakala_sandbox_server.base_url + "/api/v1/payment/lakala/counter/create",
        json={"out_order_no": "SHOP-1004", "total_amount": 100, "order_info": "Jasmine tea"},
    ).json()
    assert answer["code"] == "000000"
    assert answer["resp_data"]["counter_url"].startswith(lakala_sandbox_server.base_url)
    assert [o["out_order_no"] for o in lakala_sandbox_server.orders()] == ["SHOP-1004"]
