"""Every shipped scenario, end to end: a served sandbox (uvicorn, frozen clock advanced by the
admin API), orders created over HTTP with the scenario's magic amount, and a real notify handler
on 127.0.0.1 that verifies each notify with the served platform certificate. Each case asserts
what arrived, in what order and how often."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from sandbox.notify import bodies as notify_bodies
from sandbox.scenarios.files import scenario_files
from sandbox.wire.messages import REFUND_PATHS
from sandbox.wire.resources import scenarios_dir
from tests.notify_receiver import LiveSandbox, Receiver
from tests.support import V1, seed_create, v3_post, v3_req_data

SHIPPED = sorted(p.stem for p in scenario_files(scenarios_dir()))


@pytest.fixture
def live() -> Iterator[LiveSandbox]:
    with LiveSandbox(clock_speed=0, notify_timeout=2) as server:
        yield server


@pytest.fixture
def rx(live: LiveSandbox) -> Iterator[Receiver]:
    with Receiver(live.http.get("/sandbox/keys/platform.cer").content) as receiver:
        yield receiver


# -- driving the sandbox the way a user does ---------------------------------------------------
def create_v3(live: LiveSandbox, rx: Receiver, amount: int, **changes: Any) -> str:
    out = f"E2E-{amount}-V3"
    req = v3_req_data(live.sb, out, total_amount=amount, notify_url=rx.url(), **changes)
    body = v3_post(live.http, live.sb, "special_create", req).json()
    assert body["code"] == "000000", body
    return str(body["resp_data"]["pay_order_no"])


def create_v1(live: LiveSandbox, rx: Receiver, amount: int, **changes: Any) -> str:
    body = seed_create(
        live.sb, f"E2E-{amount}-V1", total_amount=amount, notify_url=rx.url(), **changes
    )
    body.pop("order_efficient_time")  # the v1 default: an hour on the sandbox clock
    out = live.http.post(V1 + "create", json=body).json()
    assert out["code"] == "000000", out
    return str(out["resp_data"]["pay_order_no"])


def advance(live: LiveSandbox, seconds: float) -> None:
    response = live.http.post("/sandbox/api/clock/advance", json={"seconds": seconds})
    assert response.status_code == 200, response.text
    assert live.sb.notifier.drain(15), "due work did not finish"


def status(live: LiveSandbox, pay_order_no: str) -> str:
    return str(live.http.get(f"/sandbox/api/orders/{pay_order_no}").json()["order"]["order_status"])


def attempts(live: LiveSandbox, pay_order_no: str) -> list[dict[str, Any]]:
    return list(live.http.get(f"/sandbox/api/orders/{pay_order_no}/notifies").json()["notifies"])


def statuses(rx: Receiver) -> list[str]:
    return [d.json()["order_status"] for d in rx.deliveries]


def assert_genuine(live: LiveSandbox, rx: Receiver) -> None:
    """Every notify verified, was fresh, validates against its dialect's schema, was acked."""
    for delivery in rx.deliveries:
        body = delivery.json()
        dialect = "v3" if "order_trade_info" in body else "v1"
        assert delivery.verified and delivery.fresh, delivery
        assert live.sb.schemas.problems(notify_bodies.schema_name(dialect), body) == []
        assert delivery.acked


# -- one driver per shipped scenario -------------------------------------------------------------
def manual(live: LiveSandbox, rx: Receiver) -> None:
    no = create_v1(live, rx, 100)
    advance(live, 600)
    assert status(live, no) == "0" and rx.deliveries == []
    assert live.http.post(f"/sandbox/api/orders/{no}/pay").status_code == 200
    assert live.sb.notifier.drain(10)
    assert statuses(rx) == ["SUCCESS"]
    assert_genuine(live, rx)


def auto_success(live: LiveSandbox, rx: Receiver) -> None:
    no = create_v3(live, rx, 901)
    advance(live, 2)
    assert status(live, no) == "0" and rx.deliveries == []
    advance(live, 1)
    assert status(live, no) == "2"
    assert statuses(rx) == ["2"]
    trade = rx.deliveries[0].json()["order_trade_info"]
    assert (trade["trade_type"], trade["trade_status"]) == ("PAY", "S") and trade["log_no"]
    assert_genuine(live, rx)
    assert [a["state"] for a in attempts(live, no)] == ["delivered"]


def auto_fail(live: LiveSandbox, rx: Receiver) -> None:
    no = create_v1(live, rx, 902)
    advance(live, 3)
    assert status(live, no) == "3"
    assert statuses(rx) == ["FAILED"]
    assert_genuine(live, rx)


def user_cancels(live: LiveSandbox, rx: Receiver) -> None:
    no = create_v1(live, rx, 903)
    advance(live, 4)
    assert status(live, no) == "0" and rx.deliveries == []
    advance(live, 1)
    assert status(live, no) == "5"
    assert statuses(rx) == ["CANCELLED"]
    assert_genuine(live, rx)


def never_pays(live: LiveSandbox, rx: Receiver) -> None:
    no = create_v3(live, rx, 904)
    advance(live, 3599)
    assert status(live, no) == "0"
    advance(live, 1)
    assert status(live, no) == "4"
    assert rx.deliveries == []
    run = live.http.get(f"/sandbox/api/orders/{no}/scenario").json()["run"]
    assert (run["scenario"], run["state"]) == ("never-pays", "done")


def paying_then_success(live: LiveSandbox, rx: Receiver) -> None:
    no = create_v3(live, rx, 905)
    advance(live, 2)
    assert status(live, no) == "1" and rx.deliveries == []
    advance(live, 4)
    assert status(live, no) == "1"
    advance(live, 1)
    assert status(live, no) == "2"
    assert statuses(rx) == ["2"]
    assert_genuine(live, rx)


def duplicate_notify(live: LiveSandbox, rx: Receiver) -> None:
    no = create_v1(live, rx, 906)
    advance(live, 3)
    assert statuses(rx) == ["SUCCESS", "SUCCESS"]
    assert rx.deliveries[0].json() == rx.deliveries[1].json()
    assert_genuine(live, rx)
    assert [(a["sequence"], a["state"]) for a in attempts(live, no)] == [
        (1, "delivered"),
        (2, "delivered"),
    ]


def out_of_order_notify(live: LiveSandbox, rx: Receiver) -> None:
    no = create_v3(live, rx, 907)
    advance(live, 3)
    assert statuses(rx) == ["2"]
    advance(live, 7)
    assert statuses(rx) == ["2"]
    advance(live, 1)
    assert statuses(rx) == ["2", "1"]  # the older status arrives after the newer one
    assert status(live, no) == "2"
    assert_genuine(live, rx)


def slow_notify(live: LiveSandbox, rx: Receiver) -> None:
    no = create_v1(live, rx, 908)
    advance(live, 3)
    assert status(live, no) == "2" and rx.deliveries == []
    advance(live, 29)
    assert rx.deliveries == []
    advance(live, 1)
    assert statuses(rx) == ["SUCCESS"]
    assert_genuine(live, rx)


def bad_signature_notify(live: LiveSandbox, rx: Receiver) -> None:
    no = create_v3(live, rx, 909)
    advance(live, 3)
    first = rx.deliveries
    assert len(first) == 1 and not first[0].verified and first[0].status == 401
    advance(live, 10)
    good = [d for d in rx.deliveries if d.verified]
    assert len(good) == 1 and good[0].acked and good[0].json()["order_status"] == "2"
    advance(live, 5 * 3600)  # the broken one runs its whole ladder, refused every time
    bad = [d for d in rx.deliveries if not d.verified]
    assert len(bad) == 1 + len(live.sb.settings.notify_ladder)
    assert all(d.status == 401 for d in bad)
    assert len([d for d in rx.deliveries if d.verified]) == 1
    broken = [a for a in attempts(live, no) if a["sequence"] == 1]
    assert [a["state"] for a in broken][-1] == "given_up"


def merchant_rejects_then_accepts(live: LiveSandbox, rx: Receiver) -> None:
    rx.fail_next(2)
    no = create_v3(live, rx, 910)
    created = live.sb.clock.timestamp()
    advance(live, 1)
    assert [d.answer["code"] for d in rx.deliveries] == ["FAIL"]
    advance(live, 1)
    assert [d.answer["code"] for d in rx.deliveries] == ["FAIL", "FAIL"]
    advance(live, 4)
    assert len(rx.deliveries) == 2
    advance(live, 1)
    assert [d.answer["code"] for d in rx.deliveries] == ["FAIL", "FAIL", "SUCCESS"]
    tried = attempts(live, no)
    assert [a["state"] for a in tried] == ["failed", "failed", "delivered"]
    offsets = [live.sb.clock.parse(a["scheduled_at"]) - int(created) for a in tried]
    assert offsets == [1, 2, 7]  # paid at 1 s, then Lakala's ladder: +1 s, +5 s


def repeat_pay(live: LiveSandbox, rx: Receiver) -> None:
    no = create_v1(live, rx, 911, support_repeat_pay=1)
    advance(live, 2)
    assert statuses(rx) == ["FAILED"]
    advance(live, 5)
    assert statuses(rx) == ["FAILED", "SUCCESS"]
    assert status(live, no) == "2"
    assert_genuine(live, rx)


def create_error(live: LiveSandbox, rx: Receiver) -> None:
    req = v3_req_data(live.sb, "E2E-912-V3", total_amount=912, notify_url=rx.url())
    v3 = v3_post(live.http, live.sb, "special_create", req)
    assert (v3.status_code, v3.json()["code"], v3.json()["msg"]) == (
        200,
        "BBS11184",
        "该商户已停用",
    )
    v1 = live.http.post(V1 + "create", json=seed_create(live.sb, "E2E-912-V1", total_amount=912))
    assert (v1.json()["code"], v1.json()["msg"]) == ("BBS11184", "该商户已停用")
    assert live.http.get("/sandbox/api/orders").json()["total"] == 0
    advance(live, 60)
    assert rx.deliveries == []


def query_timeout_once(live: LiveSandbox, rx: Receiver) -> None:
    create_v3(live, rx, 913)
    query = {"merchant_no": "82229007392000A", "out_order_no": "E2E-913-V3"}
    with httpx.Client(base_url=live.url, timeout=0.5, trust_env=False) as impatient:
        with pytest.raises(httpx.ReadTimeout):
            v3_post(impatient, live.sb, "query", query)
        again = v3_post(impatient, live.sb, "query", query)
    assert again.json()["resp_data"]["order_status"] == "0"
    advance(live, 3)
    assert statuses(rx) == ["2"]
    assert_genuine(live, rx)


def wechat_sub_appid_mismatch(live: LiveSandbox, rx: Receiver) -> None:
    no = create_v3(live, rx, 914)
    advance(live, 3)
    assert status(live, no) == "3"
    assert statuses(rx) == ["3"]
    trade = rx.deliveries[0].json()["order_trade_info"]
    assert (trade["pay_mode"], trade["trade_status"]) == ("WECHAT", "F")
    assert trade["trade_remark"] == "BBS16111 sub_mch_id与sub_appid不匹配"
    assert_genuine(live, rx)


def refund_processing_then_fails(live: LiveSandbox, rx: Receiver) -> None:
    out = "REFUND-SLOW-E2E"
    req = v3_req_data(live.sb, out, total_amount=800, support_refund=1, notify_url=rx.url())
    created = v3_post(live.http, live.sb, "special_create", req).json()
    assert created["code"] == "000000", created
    no = str(created["resp_data"]["pay_order_no"])
    advance(live, 0)  # the scenario pays at once
    assert status(live, no) == "2"
    refund = {
        "merchant_no": req["merchant_no"],
        "term_no": "D9296400",
        "out_trade_no": "E2E-SLOW-R",
        "refund_amount": "800",
        "origin_out_trade_no": out,
        "location_info": {"request_ip": "127.0.0.1"},
    }
    made = v3_post(live.http, live.sb, "", refund, prefix=REFUND_PATHS["relation_refund"])
    assert made.json()["resp_data"]["trade_state"] == "PROCESSING"
    advance(live, 29)
    assert statuses(rx) == ["2"] and status(live, no) == "2"
    advance(live, 2)
    assert statuses(rx) == ["2", "2"]  # the refund's notify: it failed, the order stays paid
    trade = rx.deliveries[1].json()["order_trade_info"]
    assert (trade["trade_type"], trade["trade_status"]) == ("REFUND", "F")
    asked = {"merchant_no": req["merchant_no"], "term_no": "D9296400"}
    query = v3_post(
        live.http,
        live.sb,
        "",
        {**asked, "out_refund_order_no": "E2E-SLOW-R"},
        prefix=REFUND_PATHS["idmrefundquery"],
    )
    assert query.json()["resp_data"]["trade_state"] == "FAIL"
    assert_genuine(live, rx)


DRIVERS: dict[str, Callable[[LiveSandbox, Receiver], None]] = {
    "manual": manual,
    "auto-success": auto_success,
    "auto-fail": auto_fail,
    "user-cancels": user_cancels,
    "never-pays": never_pays,
    "paying-then-success": paying_then_success,
    "duplicate-notify": duplicate_notify,
    "out-of-order-notify": out_of_order_notify,
    "slow-notify": slow_notify,
    "bad-signature-notify": bad_signature_notify,
    "merchant-rejects-then-accepts": merchant_rejects_then_accepts,
    "repeat-pay": repeat_pay,
    "create-error": create_error,
    "query-timeout-once": query_timeout_once,
    "wechat-sub-appid-mismatch": wechat_sub_appid_mismatch,
    "refund-processing-then-fails": refund_processing_then_fails,
}


def test_every_shipped_scenario_has_an_end_to_end_case() -> None:
    assert sorted(DRIVERS) == SHIPPED


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_scenario_end_to_end(name: str, live: LiveSandbox, rx: Receiver) -> None:
    DRIVERS[name](live, rx)


# -- the user's story, beyond one scenario ------------------------------------------------
def test_a_running_clock_pays_and_notifies_with_nothing_touched(tmp_path: Path) -> None:
    # --scenarios ./my-scenarios, a clock 100x faster: 3 s of scenario time pass in 30 ms
    folder = tmp_path / "my-scenarios"
    folder.mkdir()
    (folder / "mine.yaml").write_text(
        "description: my auto-success\nmatch: {out_order_no: '^MINE-'}\n"
        "steps:\n  - wait: 3\n  - pay: {}\n",
        encoding="utf-8",
    )
    with (
        LiveSandbox(clock_speed=100, scenarios_dir=str(folder)) as live,
        Receiver(live.http.get("/sandbox/keys/platform.cer").content) as rx,
    ):
        body = {
            "out_order_no": "MINE-1",
            "total_amount": 100,
            "order_info": "untouched",
            "notify_url": rx.url(),
        }
        assert live.http.post(V1 + "create", json=body).json()["code"] == "000000"
        (delivery,) = rx.wait_for(1, timeout=5)
        assert delivery.verified and delivery.json()["order_status"] == "SUCCESS"


def test_one_advance_of_an_hour_expires_orders_and_runs_ladders(
    live: LiveSandbox, rx: Receiver
) -> None:
    rx.fail_next(3)
    expiring = create_v3(live, rx, 904)
    paying = create_v1(live, rx, 901)
    created = live.sb.clock.timestamp()
    advance(live, 3600)
    assert status(live, expiring) == "4"
    tried = attempts(live, paying)
    assert [a["state"] for a in tried] == ["failed", "failed", "failed", "delivered"]
    assert [live.sb.clock.parse(a["scheduled_at"]) - int(created) for a in tried] == [3, 4, 9, 14]
    assert statuses(rx) == ["SUCCESS"] * 4


def test_calls_are_answered_while_an_advance_plays_its_steps(
    live: LiveSandbox, rx: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An advance past many due steps takes a while. It plays them off the event loop, so the
    server answers other calls meanwhile, and they see the orders it has paid so far."""

    def create(out_order_no: str) -> str:
        body = seed_create(live.sb, out_order_no, total_amount=901, notify_url=rx.url())
        out = live.http.post(V1 + "create", json=body).json()
        assert out["code"] == "000000", out
        return str(out["resp_data"]["pay_order_no"])

    first = create("WALK-1")  # auto-success: pays 3 s after it is made
    advance(live, 1)
    second = create("WALK-2")  # pays 1 s after the first

    # hold the advance at its second stop: the first order paid, the second not yet
    stops, holding, release = 0, threading.Event(), threading.Event()
    forward = live.sb.clock.advance

    def held(seconds: float) -> float:
        nonlocal stops
        stops += 1
        if stops == 2:
            holding.set()
            assert release.wait(15)
        return forward(seconds)

    monkeypatch.setattr(live.sb.clock, "advance", held)
    answers: list[httpx.Response] = []
    with httpx.Client(base_url=live.url, trust_env=False, timeout=20) as other:
        advancing = threading.Thread(
            target=lambda: answers.append(
                other.post("/sandbox/api/clock/advance", json={"seconds": 10})
            )
        )
        advancing.start()
        try:
            assert holding.wait(10), "the advance never reached its second stop"
            assert live.http.get("/healthz").status_code == 200
            assert status(live, first) == "2" and status(live, second) == "0"
            assert advancing.is_alive() and not answers
        finally:
            release.set()
            advancing.join(20)
    assert answers and answers[0].status_code == 200, answers
    assert live.sb.notifier.drain(15)
    assert status(live, second) == "2"
    # (sent side by side once it returns, so in either order)
    assert sorted(d.json()["pay_order_no"] for d in rx.wait_for(2)) == sorted([first, second])
    assert_genuine(live, rx)
