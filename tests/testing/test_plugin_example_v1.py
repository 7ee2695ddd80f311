"""The README's v1 example, run as it is shown: the seed's API, its notify and its ack."""

from sandbox import LakalaSandbox, NotifyReceiver

V1_CREATE = "/api/v1/payment/lakala/counter/create"


def test_a_v1_order_is_notified_and_acknowledged_in_v1(lakala_sandbox: LakalaSandbox) -> None:
    # NotifyReceiver answers each notify with its own dialect's ack: {"code":"000000",...} here
    with NotifyReceiver() as merchant:
        answer = lakala_sandbox.http.post(
            V1_CREATE,
            json={
                "out_order_no": "SHOP-2001",
                "total_amount": 100,
                "order_info": "Puer",
                "notify_url": merchant.url,
            },
        ).json()
        pay_order_no = answer["resp_data"]["pay_order_no"]
        lakala_sandbox.pay(pay_order_no)
        notify = merchant.wait(1)[0]
    assert notify.json()["order_status"] == "SUCCESS"
    assert lakala_sandbox.wait_for_notifies(pay_order_no)[0]["attempt"] == 1


def test_a_handler_that_refuses_is_retried_and_says_why(lakala_sandbox: LakalaSandbox) -> None:
    # answer=... makes the receiver answer every notify with that JSON: here, a refusal
    with NotifyReceiver(answer={"code": "FAIL", "msg": "busy"}) as merchant:
        answer = lakala_sandbox.http.post(
            V1_CREATE,
            json={
                "out_order_no": "SHOP-2002",
                "total_amount": 100,
                "order_info": "Puer",
                "notify_url": merchant.url,
            },
        ).json()
        pay_order_no = answer["resp_data"]["pay_order_no"]
        lakala_sandbox.pay(pay_order_no)
        failed = lakala_sandbox.wait_for_notifies(pay_order_no, state="failed")
    # the journal says why; a wait for "delivered" that timed out would quote the same reason
    assert failed[0]["error"].startswith('the answer is not the ack {"code":"000000",...}')
