"""Every legal transition and a sample of illegal ones, seen through both dialects."""

from __future__ import annotations

import httpx
import pytest

from sandbox.runtime import Sandbox
from sandbox.wire.vocabulary import STATUS_V1
from tests.support import V1, seed_create, snapshot, v3_post

FLAGS = {"support_cancel": 1, "support_refund": 1, "support_repeat_pay": 1}
NO_FLAGS = {"support_cancel": 0, "support_refund": 0, "support_repeat_pay": 0}

# (steps before, action, expected v3 status, trade types newest first, flags)
LEGAL = [
    ([], "paying", 1, ["PAY:P"], NO_FLAGS),
    ([], "pay", 2, ["PAY:S"], NO_FLAGS),
    ([], "fail", 3, ["PAY:F"], NO_FLAGS),
    ([], "cancel", 5, [], NO_FLAGS),
    ([], "close", 7, [], NO_FLAGS),
    ([], "expire", 4, [], NO_FLAGS),
    (["paying"], "pay", 2, ["PAY:S"], NO_FLAGS),
    (["paying"], "fail", 3, ["PAY:F"], NO_FLAGS),
    (["paying"], "cancel", 5, ["PAY:C"], NO_FLAGS),
    (["paying"], "close", 7, ["PAY:C"], NO_FLAGS),
    (["paying"], "expire", 4, ["PAY:C"], NO_FLAGS),
    (["fail"], "close", 7, ["PAY:F"], NO_FLAGS),
    (["fail"], "pay", 2, ["PAY:S", "PAY:F"], FLAGS),
    (["fail"], "paying", 1, ["PAY:P", "PAY:F"], FLAGS),
    (["pay"], "cancel", 5, ["CANCEL:S", "PAY:S"], FLAGS),
    (["pay"], "refund", 6, ["REFUND:S", "PAY:S"], FLAGS),
    (["close"], "close", 7, [], NO_FLAGS),
]

ILLEGAL = [
    (["pay"], "close", "cannot close", NO_FLAGS),
    (["pay"], "pay", "already paid", FLAGS),
    (["pay"], "fail", "cannot fail", FLAGS),
    (["pay"], "cancel", "support_cancel=1", NO_FLAGS),
    (["pay"], "refund", "support_refund=1", NO_FLAGS),
    (["fail"], "pay", "support_repeat_pay=1", NO_FLAGS),
    (["expire"], "pay", "expired at", FLAGS),
    (["cancel"], "pay", "cannot pay", FLAGS),
    (["close"], "pay", "cannot pay", FLAGS),
    (["close"], "paying", "cannot paying", FLAGS),
    (["pay", "refund"], "refund", "cannot refund", FLAGS),
    ([], "refund", "cannot refund", FLAGS),
]


def create_both_ways(
    http: httpx.Client, sb: Sandbox, name: str, flags: dict[str, int], dialect: str
) -> str:
    if dialect == "v1":
        out = http.post(V1 + "create", json=seed_create(sb, name, **flags)).json()
    else:
        req = {
            "out_order_no": name,
            "merchant_no": sb.settings.merchant_no,
            "total_amount": 100,
            "order_efficient_time": sb.clock.format(sb.clock.timestamp() + 3600),
            "order_info": "lifecycle",
            **flags,
        }
        out = v3_post(http, sb, "special_create", req).json()
    assert out["code"] == "000000", out
    return str(out["resp_data"]["pay_order_no"])


def seen(http: httpx.Client, sb: Sandbox, pay_order_no: str) -> tuple[str, str, list[str]]:
    v1 = http.post(V1 + "query", json={"pay_order_no": pay_order_no}).json()["resp_data"]
    v3 = v3_post(
        http, sb, "query", {"merchant_no": sb.settings.merchant_no, "pay_order_no": pay_order_no}
    ).json()["resp_data"]
    trades = [f"{t['trade_type']}:{t['trade_status']}" for t in v3["order_trade_info_list"]]
    return v1["order_status"], v3["order_status"], trades


def act(http: httpx.Client, pay_order_no: str, action: str) -> httpx.Response:
    return http.post(f"/sandbox/api/orders/{pay_order_no}/{action}")


@pytest.mark.parametrize("dialect", ["v1", "v3"])
@pytest.mark.parametrize(
    ("before", "action", "status", "trades", "flags"),
    LEGAL,
    ids=[f"{'-'.join(b) or 'new'}-then-{a}" for b, a, *_ in LEGAL],
)
def test_legal_transition_shows_in_both_dialects(
    http: httpx.Client,
    sb: Sandbox,
    dialect: str,
    before: list[str],
    action: str,
    status: int,
    trades: list[str],
    flags: dict[str, int],
) -> None:
    no = create_both_ways(http, sb, "LIFE-1", flags, dialect)
    for step in before:
        assert act(http, no, step).status_code == 200
    response = act(http, no, action)
    assert response.status_code == 200, response.text
    assert response.json()["order"]["order_status"] == str(status)
    assert seen(http, sb, no) == (STATUS_V1[status], str(status), trades)


@pytest.mark.parametrize(
    ("before", "action", "says", "flags"),
    ILLEGAL,
    ids=[f"{'-'.join(b) or 'new'}-then-{a}" for b, a, *_ in ILLEGAL],
)
def test_illegal_transition_is_refused_and_changes_nothing(
    http: httpx.Client,
    sb: Sandbox,
    before: list[str],
    action: str,
    says: str,
    flags: dict[str, int],
) -> None:
    no = create_both_ways(http, sb, "LIFE-2", flags, "v1")
    for step in before:
        assert act(http, no, step).status_code == 200
    state = snapshot(sb)
    response = act(http, no, action)
    assert response.status_code == 409
    assert response.json()["code"] == "SBX20003"
    assert says in response.json()["msg"]
    assert snapshot(sb) == state


def test_closing_a_paid_order_through_both_apis_is_refused(http: httpx.Client, sb: Sandbox) -> None:
    no = create_both_ways(http, sb, "LIFE-3", NO_FLAGS, "v3")
    act(http, no, "pay")
    v1 = http.post(V1 + "close", json={"pay_order_no": no}).json()
    v3 = v3_post(
        http, sb, "close", {"merchant_no": sb.settings.merchant_no, "pay_order_no": no}
    ).json()
    assert v1["code"] == v3["code"] == "SBX20003"
    assert seen(http, sb, no)[:2] == ("SUCCESS", "2")


def test_an_unpaid_order_reads_expired_once_its_time_passes(
    http: httpx.Client, sb: Sandbox
) -> None:
    no = create_both_ways(http, sb, "LIFE-4", NO_FLAGS, "v1")
    other = create_both_ways(http, sb, "LIFE-5", NO_FLAGS, "v3")
    sb.engine.advance_order(no, 3601)  # only this order's time moves
    assert seen(http, sb, no)[:2] == ("EXPIRED", "4")
    assert seen(http, sb, other)[:2] == ("WAIT_PAY", "0")
    refused = act(http, no, "pay")
    assert refused.json()["code"] == "SBX20003"
    sb.clock.advance(3601)  # now every order's time moves
    assert seen(http, sb, other)[:2] == ("EXPIRED", "4")


def test_pay_mode_is_recorded_on_the_trade(http: httpx.Client, sb: Sandbox) -> None:
    no = create_both_ways(http, sb, "LIFE-6", NO_FLAGS, "v3")
    response = http.post(f"/sandbox/api/orders/{no}/pay", json={"pay_mode": "CARD"})
    assert response.status_code == 200
    [trade] = response.json()["order"]["trades"]
    assert (trade["pay_mode"], trade["busi_type"]) == ("CARD", "UPCARD")
    assert trade["payer_account_no"].count("*") == 6
    assert trade["settle_merchant_no"] == sb.settings.merchant_no


def test_seeded_sandboxes_number_orders_alike() -> None:
    from sandbox.client.transport import InProcessTransport
    from tests.conftest import make_app

    numbers = []
    for _ in range(2):
        app = make_app(seed=42, clock_start="20261126120000")
        sb = app.state.sandbox
        with httpx.Client(transport=InProcessTransport(app), base_url="http://s") as http:
            no = create_both_ways(http, sb, "SEED-1", NO_FLAGS, "v1")
            trade = act(http, no, "pay").json()["order"]["trades"][0]
        numbers.append((no, trade["trade_no"], trade["payer_name"], trade["acc_trade_no"]))
    assert numbers[0] == numbers[1]
