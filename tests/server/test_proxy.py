"""Real mode: sandbox B (``mode=real``) proxies the seed's v1 API to sandbox A acting as Lakala.

In-process pairs cover each rule; the end-to-end test runs both as real ``python -m sandbox
serve`` processes with the keys exchanged as a merchant would get them.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from sandbox.client.clients import AsyncLakalaClient
from sandbox.client.transport import InProcessTransport
from sandbox.core.engine import LATE_PAYMENT
from sandbox.core.settings import Settings
from sandbox.runtime import Sandbox
from sandbox.server.app import create_app
from sandbox.server.proxy import NOTIFY_PATH
from sandbox.testing.receiver import NotifyReceiver
from sandbox.tools.cli import main
from sandbox.wire import signing
from tests.conftest import make_app
from tests.doubles import Answer, DriftingApp, Mutate, drop_field, omit_header, resign
from tests.servers import PortTaken, SandboxProcess, free_port, loopback
from tests.support import V1, seed_create, snapshot, v3_post

PUBLIC = "http://127.0.0.1:9"


@dataclass
class Pair:
    lakala: Sandbox  # sandbox A, playing Lakala
    proxy: Sandbox  # sandbox B, in real mode
    http: httpx.Client  # talks to B
    calls: list[str]  # paths B sent to A


Around = Callable[[httpx.AsyncBaseTransport], httpx.AsyncBaseTransport]


def _pair(
    wrap: Callable[[Starlette], Any] | None = None,
    upstream: httpx.AsyncBaseTransport | None = None,
    around: Around | None = None,
) -> Iterator[Pair]:
    lakala = make_app(seed=11)
    a: Sandbox = lakala.state.sandbox
    calls: list[str] = []
    inner = upstream or httpx.ASGITransport(app=wrap(lakala) if wrap else lakala)
    if around is not None:
        inner = around(inner)

    class Counting(httpx.AsyncBaseTransport):
        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            calls.append(request.url.path)
            return await inner.handle_async_request(request)

    client = AsyncLakalaClient(
        base_url="http://lakala.test",
        transport=Counting(),
        private_key=a.keys.merchant_key,
        certificate=a.keys.platform_cert,
        merchant_no="822290070111135",
    )
    proxy = create_app(
        Settings(
            data_dir=":memory:", mode="real", public_url=PUBLIC, seed=12, strict_responses=True
        ),
        lakala=client,
    )
    transport = InProcessTransport(proxy)
    with httpx.Client(transport=transport, base_url="http://proxy.test") as http:
        yield Pair(a, proxy.state.sandbox, http, calls)
    transport.close()
    proxy.state.sandbox.close()
    a.close()


@pytest.fixture
def pair() -> Iterator[Pair]:
    yield from _pair()


def _create(pair: Pair, out_order_no: str, **changes: Any) -> dict[str, Any]:
    answer = pair.http.post(V1 + "create", json=seed_create(pair.proxy, out_order_no, **changes))
    body = answer.json()
    assert body["code"] == "000000", body
    return dict(body["resp_data"])


def test_create_makes_a_real_order_and_a_local_mirror(pair: Pair) -> None:
    data = _create(pair, "REAL-1", notify_url="http://127.0.0.1:9/shop/notify")
    lakala_order = pair.lakala.engine.get(data["pay_order_no"])
    assert lakala_order.out_order_no == "REAL-1"
    assert lakala_order.merchant_no == "822290070111135"  # the client's merchant
    assert lakala_order.data["notify_url"] == PUBLIC + NOTIFY_PATH
    assert json.loads(lakala_order.data["counter_param"]) == {"pay_mode": "ALIPAY"}
    mirror = pair.proxy.engine.get(data["pay_order_no"])
    assert mirror.data["notify_url"] == "http://127.0.0.1:9/shop/notify"
    assert mirror.dialect == "v1"
    # the caller is sent to Lakala's counter, with Lakala's numbers
    assert data["counter_url"] == lakala_order.counter_url
    assert data["order_create_time"] == lakala_order.data["order_create_time"]
    assert pair.calls == ["/api/v3/ccss/counter/order/special_create"]


def test_an_identical_repeat_does_not_ask_lakala_again(pair: Pair) -> None:
    body = seed_create(pair.proxy, "REAL-2")  # one body: a second later its expiry would differ
    first = pair.http.post(V1 + "create", json=body).json()
    again = pair.http.post(V1 + "create", json=body).json()
    assert first["code"] == again["code"] == "000000", (first, again)
    assert again["resp_data"] == first["resp_data"]
    assert pair.calls.count("/api/v3/ccss/counter/order/special_create") == 1
    changed = pair.http.post(V1 + "create", json={**body, "total_amount": 5}).json()
    assert changed["code"] == "SBX20001"


def test_query_follows_lakala_and_keeps_its_trade(pair: Pair) -> None:
    no = _create(pair, "REAL-3")["pay_order_no"]
    pair.lakala.engine.apply(no, "pay", pay_mode="ALIPAY")
    answer = pair.http.post(V1 + "query", json={"out_order_no": "REAL-3"}).json()
    assert answer["code"] == "000000"
    data = answer["resp_data"]
    paid = pair.lakala.engine.get(no).trades[0]
    assert (data["order_status"], data["pay_mode"], data["trade_no"]) == (
        "SUCCESS",
        "ALIPAY",
        paid["trade_no"],
    )
    mirror = pair.proxy.engine.get(no)
    assert mirror.status == 2
    assert mirror.trades[0]["trade_no"] == paid["trade_no"]
    assert mirror.trades[0]["log_no"] == paid["log_no"]


def test_close_closes_the_real_order_and_the_mirror(pair: Pair) -> None:
    no = _create(pair, "REAL-4")["pay_order_no"]
    answer = pair.http.post(V1 + "close", json={"pay_order_no": no}).json()
    assert answer["code"] == "000000"
    assert answer["resp_data"] == {
        "out_order_no": "REAL-4",
        "pay_order_no": no,
        "order_status": "CLOSED",
    }
    assert pair.lakala.engine.get(no).status == 7 and pair.proxy.engine.get(no).status == 7


def test_lakalas_refusal_comes_back_with_lakalas_code(pair: Pair) -> None:
    answer = pair.http.post(V1 + "query", json={"out_order_no": "NOBODY"}).json()
    assert answer["code"] == "SBX50002"
    assert "Lakala answered SBX20002" in answer["msg"]
    assert answer["resp_data"] is None and answer["data"] is None


def _down(request: httpx.Request) -> httpx.Response:
    raise httpx.ConnectError("connection refused")


@pytest.mark.parametrize(
    ("case", "wrap", "upstream", "status", "code", "text"),
    [
        (
            "Lakala unreachable",
            None,
            httpx.MockTransport(_down),
            503,
            "SBX50001",
            "Lakala is unavailable: cannot reach http://lakala.test",
        ),
        (
            "Lakala answers 502",
            None,
            httpx.MockTransport(lambda r: httpx.Response(502, text="bad")),
            503,
            "SBX50001",
            "HTTP 502",
        ),
        (
            "answer without Lklapi-Signature",
            lambda app: DriftingApp(app, omit_header("Lklapi-Signature")),
            None,
            502,
            "SBX50003",
            "lklapi-signature: is required",
        ),
        (
            "answer without pay_order_no",
            lambda app: DriftingApp(
                app, drop_field(app.state.sandbox, "special_create", "pay_order_no")
            ),
            None,
            502,
            "SBX50003",
            "resp_data.pay_order_no: is required",
        ),
    ],
)
def test_upstream_failures_are_the_sandboxs_own_errors(
    case: str,
    wrap: Callable[[Starlette], Any] | None,
    upstream: httpx.AsyncBaseTransport | None,
    status: int,
    code: str,
    text: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    for pair in _pair(wrap=wrap, upstream=upstream):
        answer = pair.http.post(V1 + "create", json=seed_create(pair.proxy, "UP-1"))
        assert answer.status_code == status
        assert answer.json()["code"] == code and text in answer.json()["msg"]
        assert pair.proxy.engine.count() == 0  # nothing mirrored
        leaked = [r.getMessage() for r in caplog.records if "PRIVATE KEY" in r.getMessage()]
        assert leaked == [] and "PRIVATE KEY" not in answer.text


class LoseFirstCreateAnswer(httpx.AsyncBaseTransport):
    """Lakala gets the first create and makes the order, but its answer never arrives."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.lost = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        if request.url.path.endswith("/special_create") and not self.lost:
            self.lost += 1
            await response.aread()
            raise httpx.ReadTimeout("the answer was lost on the way", request=request)
        return response


def test_a_create_retried_after_a_lost_answer_is_mirrored() -> None:
    for pair in _pair(around=LoseFirstCreateAnswer):
        body = seed_create(pair.proxy, "LOST-1")
        del body["order_efficient_time"]  # v1's default validity applies
        first = pair.http.post(V1 + "create", json=body)
        assert (first.status_code, first.json()["code"]) == (503, "SBX50001")
        upstream = pair.lakala.engine.find("822290070111135", out_order_no="LOST-1")
        pair.proxy.clock.advance(90)  # a default validity chosen now would end 90 s later
        again = pair.http.post(V1 + "create", json=body).json()
        assert again["code"] == "000000", again  # Lakala saw the identical request again
        assert again["resp_data"]["pay_order_no"] == upstream.pay_order_no
        assert again["resp_data"]["order_efficient_time"] == upstream.data["order_efficient_time"]
        assert pair.proxy.engine.get(upstream.pay_order_no).out_order_no == "LOST-1"
        assert pair.lakala.engine.count() == 1


def _about_another_order(operation: str, swap: dict[str, str]) -> Callable[[Sandbox], Mutate]:
    """Lakala's (validly signed) ``operation`` answers for ORDER-2 carry ``swap``'s numbers."""

    def make(lakala: Sandbox) -> Mutate:
        def mutate(path: str, answer: Answer) -> Answer:
            message = answer.json()
            data = message.get("resp_data") or {}
            if not path.endswith("/" + operation) or data.get("out_order_no") != "ORDER-2":
                return answer
            data.update(swap)
            return resign(lakala, answer, json.dumps(message, ensure_ascii=False).encode())

        return mutate

    return make


@pytest.mark.parametrize(
    ("operation", "ask_by", "swapped", "text"),
    [
        ("query", "out_order_no", "both", "is about out_order_no ORDER-1, not ORDER-2"),
        ("query", "pay_order_no", "both", "is about out_order_no ORDER-1, not ORDER-2"),
        ("query", "out_order_no", "pay_order_no", "is about pay_order_no"),
        ("close", "out_order_no", "both", "is about out_order_no ORDER-1, not ORDER-2"),
        ("close", "pay_order_no", "pay_order_no", "is about pay_order_no"),
    ],
)
def test_an_answer_about_another_order_changes_nothing(
    operation: str, ask_by: str, swapped: str, text: str
) -> None:
    swap: dict[str, str] = {}
    for pair in _pair(
        wrap=lambda app: DriftingApp(app, _about_another_order(operation, swap)(app.state.sandbox))
    ):
        first = _create(pair, "ORDER-1")["pay_order_no"]
        second = _create(pair, "ORDER-2")["pay_order_no"]
        swap["pay_order_no"] = first
        if swapped == "both":
            swap["out_order_no"] = "ORDER-1"
        if operation == "query":
            pair.lakala.engine.apply(second, "pay")  # what a trusted answer would mirror
        before = snapshot(pair.proxy)
        asked = (
            {"out_order_no": "ORDER-2"} if ask_by == "out_order_no" else {"pay_order_no": second}
        )
        answer = pair.http.post(V1 + operation, json=asked)
        assert answer.status_code == 502
        assert answer.json()["code"] == "SBX50003" and text in answer.json()["msg"]
        assert snapshot(pair.proxy) == before
        assert pair.proxy.engine.get(first).status == 0


def test_a_create_answered_with_another_orders_number_stores_nothing() -> None:
    swap: dict[str, str] = {}
    for pair in _pair(
        wrap=lambda app: DriftingApp(
            app, _about_another_order("special_create", swap)(app.state.sandbox)
        )
    ):
        swap["pay_order_no"] = _create(pair, "ORDER-1")["pay_order_no"]
        before = snapshot(pair.proxy)
        answer = pair.http.post(V1 + "create", json=seed_create(pair.proxy, "ORDER-2"))
        assert answer.status_code == 502
        body = answer.json()
        assert body["code"] == "SBX50003"
        assert f"gives pay_order_no {swap['pay_order_no']} to out_order_no ORDER-2" in body["msg"]
        assert "but here it is order ORDER-1" in body["msg"]
        assert snapshot(pair.proxy) == before


# -- Lakala's notifies -------------------------------------------------------------------------


def lakala_notify(
    lakala: Sandbox,
    pay_order_no: str,
    *,
    key: Any = None,
    change: Callable[[dict[str, Any]], None] = lambda b: None,
) -> tuple[dict[str, str], bytes]:
    """A v3 notify for A's order as Lakala sends it, signed with A's platform key."""
    order = lakala.engine.get(pay_order_no)
    trade = dict(order.trades[0])
    body: dict[str, Any] = {
        "pay_order_no": order.pay_order_no,
        "out_order_no": order.out_order_no,
        "channel_id": "25",
        "merchant_no": order.merchant_no,
        "term_no": "D9296400",
        "order_status": str(order.status),
        "order_info": order.data["order_info"],
        "total_amount": order.total_amount,
        "order_create_time": order.data["order_create_time"],
        "order_efficient_time": order.data["order_efficient_time"],
        "split_mark": None,
        "split_info": None,
        "counter_remark": None,
        "order_trade_info": trade,
    }
    change(body)
    raw = json.dumps(body, ensure_ascii=False).encode()
    header, _ = signing.notify_authorization(key or lakala.keys.platform_key, raw)
    return {"Authorization": header, "Content-Type": "application/json"}, raw


def test_a_verified_notify_moves_the_mirror_once(pair: Pair) -> None:
    no = _create(pair, "NOTE-1", notify_url="http://127.0.0.1:9/shop", payment_method="WECHAT")[
        "pay_order_no"
    ]
    pair.lakala.engine.apply(no, "pay", pay_mode="WECHAT")
    headers, body = lakala_notify(pair.lakala, no)
    answer = pair.http.post(NOTIFY_PATH, content=body, headers=headers)
    assert (answer.status_code, answer.json()) == (200, {"code": "SUCCESS", "message": "执行成功"})
    mirror = pair.proxy.engine.get(no)
    assert mirror.status == 2
    assert mirror.trades[0]["pay_mode"] == "WECHAT"
    assert mirror.trades[0]["trade_no"] == pair.lakala.engine.get(no).trades[0]["trade_no"]
    # the mirror's change is queued for the caller's notify_url, in the v1 dialect
    queued = _first_sent(pair.proxy, no)
    assert (queued["url"], json.loads(queued["request_body"])["order_status"]) == (
        "http://127.0.0.1:9/shop",
        "SUCCESS",
    )
    again = pair.http.post(NOTIFY_PATH, content=body, headers=headers)  # Lakala retries
    assert again.json()["code"] == "SUCCESS"
    assert len(pair.proxy.engine.get(no).trades) == 1
    # one notify for the caller (its own retries aside), not one per Lakala notify
    assert {a["sequence"] for a in pair.proxy.notifier.attempts(no)} == {queued["sequence"]}


def _first_sent(sb: Sandbox, pay_order_no: str, timeout: float = 10.0) -> dict[str, Any]:
    """The order's first notify attempt once it has been tried (bounded polling: real I/O)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        attempts = sb.notifier.attempts(pay_order_no)
        if attempts and attempts[0]["request_body"] is not None:
            return dict(attempts[0])
        time.sleep(0.02)
    raise AssertionError(f"no notify of {pay_order_no} was tried within {timeout}s")


Forge = Callable[[Sandbox, str], tuple[dict[str, str], bytes]]


def _unsigned(lakala: Sandbox, no: str) -> tuple[dict[str, str], bytes]:
    return {"Content-Type": "application/json"}, lakala_notify(lakala, no)[1]


def _edited(lakala: Sandbox, no: str) -> tuple[dict[str, str], bytes]:
    headers, body = lakala_notify(lakala, no)
    return headers, body.replace(b'"total_amount": 100', b'"total_amount": 1')


def _not_json(lakala: Sandbox, no: str) -> tuple[dict[str, str], bytes]:
    return {
        "Authorization": signing.notify_authorization(lakala.keys.platform_key, b"paid!")[0]
    }, b"paid!"


@pytest.mark.parametrize(
    ("case", "forge", "status", "text"),
    [
        ("no Authorization", _unsigned, 401, "authorization: is required"),
        (
            "signed by another key",
            lambda lakala, no: lakala_notify(lakala, no, key=_other_key()),
            401,
            "does not verify with the notify certificate",
        ),
        ("body changed after signing", _edited, 401, "does not verify"),
        ("signed, but not JSON", _not_json, 400, "notify body: is not JSON"),
    ],
)
def test_an_unverified_notify_is_refused_and_moves_nothing(
    pair: Pair, case: str, forge: Forge, status: int, text: str
) -> None:
    no = _create(pair, "FORGE-1", notify_url="http://127.0.0.1:9/shop")["pay_order_no"]
    pair.lakala.engine.apply(no, "pay")
    headers, body = forge(pair.lakala, no)
    answer = pair.http.post(NOTIFY_PATH, content=body, headers=headers)
    assert answer.status_code == status
    assert answer.json()["code"] == "FAIL" and text in answer.json()["message"]
    assert pair.proxy.engine.get(no).status == 0
    assert pair.proxy.notifier.attempts(no) == []


def _other_key() -> Any:
    from cryptography.hazmat.primitives.asymmetric import rsa

    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def test_a_notify_that_breaks_the_schema_is_refused(pair: Pair) -> None:
    no = _create(pair, "SCHEMA-1")["pay_order_no"]
    pair.lakala.engine.apply(no, "pay")
    headers, body = lakala_notify(pair.lakala, no, change=lambda b: b.pop("order_trade_info"))
    answer = pair.http.post(NOTIFY_PATH, content=body, headers=headers)
    assert answer.status_code == 400
    assert "order_trade_info: is required" in answer.json()["message"]
    assert pair.proxy.engine.get(no).status == 0


def test_a_notify_for_an_unknown_order_asks_lakala_to_retry(pair: Pair) -> None:
    created, _ = pair.lakala.engine.create(
        "v3",
        {
            "out_order_no": "ELSEWHERE",
            "merchant_no": "822290070111135",
            "total_amount": 1,
            "order_info": "not through the proxy",
            "order_efficient_time": pair.lakala.clock.format(pair.lakala.clock.timestamp() + 600),
        },
        request_hash="x",
        base_url="http://lakala.test",
    )
    pair.lakala.engine.apply(created.pay_order_no, "pay")
    headers, body = lakala_notify(pair.lakala, created.pay_order_no)
    answer = pair.http.post(NOTIFY_PATH, content=body, headers=headers)
    assert answer.status_code == 404 and answer.json()["code"] == "FAIL"


def test_a_refund_notify_after_a_missed_payment_is_followed_through(pair: Pair) -> None:
    no = _create(pair, "REFUND-1")["pay_order_no"]  # the seed body allows refunds
    pair.lakala.engine.apply(no, "pay")
    pair.lakala.engine.apply(no, "refund")
    headers, body = lakala_notify(pair.lakala, no)
    assert pair.http.post(NOTIFY_PATH, content=body, headers=headers).json()["code"] == "SUCCESS"
    mirror = pair.proxy.engine.get(no)
    assert mirror.status == 6
    assert [t["trade_type"] for t in mirror.trades] == ["REFUND", "PAY"]


def test_an_older_notify_arriving_late_changes_nothing(pair: Pair) -> None:
    no = _create(pair, "LATE-1")["pay_order_no"]
    pair.lakala.engine.apply(no, "pay")
    paid_headers, paid_body = lakala_notify(pair.lakala, no)
    pair.lakala.engine.apply(no, "refund")
    headers, body = lakala_notify(pair.lakala, no)
    assert pair.http.post(NOTIFY_PATH, content=body, headers=headers).json()["code"] == "SUCCESS"
    late = pair.http.post(NOTIFY_PATH, content=paid_body, headers=paid_headers)
    assert late.json()["code"] == "SUCCESS"  # received; Lakala need not send it again
    assert pair.proxy.engine.get(no).status == 6


def _expired_mirror_paid_upstream(pair: Pair, out_order_no: str, notify_url: str) -> str:
    """The issue's timeline on both clocks: expiry at 20 s, paid on Lakala at 15 s, the mirror's
    clock at 25 s when Lakala's notify (the bytes A sent) arrives. Returns the pay_order_no."""
    expiry = pair.proxy.clock.format(pair.proxy.clock.timestamp() + 20)
    no = _create(pair, out_order_no, notify_url=notify_url, order_efficient_time=expiry)[
        "pay_order_no"
    ]
    pair.lakala.clock.advance(15)
    pair.lakala.engine.apply(no, "pay", pay_mode="ALIPAY")
    assert pair.lakala.engine.get(no).status == 2
    pair.proxy.clock.advance(25)
    assert pair.proxy.engine.get(no).status == 4  # the mirror reads expired by now
    return no


def _lakalas_notify(pair: Pair, no: str) -> tuple[dict[str, str], bytes]:
    sent = _first_sent(pair.lakala, no)  # what A sent to the proxy's notify address
    headers = {k: v for k, v in sent["request_headers"].items() if k.lower() != "content-length"}
    return headers, sent["request_body"].encode()


def test_a_payment_lakala_reports_after_the_expiry_is_applied_late(
    pair: Pair, caplog: pytest.LogCaptureFixture
) -> None:
    with NotifyReceiver(answer=V1_ACK, path="/shop/notify") as shop:
        no = _expired_mirror_paid_upstream(pair, "LATE-PAY-1", shop.url)
        headers, body = _lakalas_notify(pair, no)
        with caplog.at_level(logging.WARNING, logger="lakala_sandbox.proxy"):
            answer = pair.http.post(NOTIFY_PATH, content=body, headers=headers)
        assert (answer.status_code, answer.json()["code"]) == (200, "SUCCESS")
        assert "paid late" in caplog.text
        # the merchant hears of the payment, in its own dialect
        heard = shop.wait(1, timeout=10)[0].json()
        assert (heard["pay_order_no"], heard["order_status"]) == (no, "SUCCESS")
    paid = pair.lakala.engine.get(no).trades[0]
    # every view of the mirror agrees: admin API, v1 query, v3 query, dashboard
    order = pair.http.get(f"/sandbox/api/orders/{no}").json()["order"]
    assert (order["order_status"], order["status_name"]) == ("2", "支付成功")
    assert order["trades"][0]["trade_no"] == paid["trade_no"]
    assert order["trades"][0]["trade_time"] == paid["trade_time"]  # when Lakala took it
    assert order["trades"][0][LATE_PAYMENT] == {
        "expired_at": order["request"]["order_efficient_time"]
    }
    queried = pair.http.post(V1 + "query", json={"out_order_no": "LATE-PAY-1"}).json()
    assert queried["resp_data"]["order_status"] == "SUCCESS"
    v3 = v3_post(
        pair.http, pair.proxy, "query", {"merchant_no": "822290070111135", "pay_order_no": no}
    ).json()
    assert v3["resp_data"]["order_status"] == "2", v3
    assert LATE_PAYMENT not in v3["resp_data"]["order_trade_info_list"][0]
    assert "支付成功" in pair.http.get(f"/dashboard/orders/{no}").text
    again = pair.http.post(NOTIFY_PATH, content=body, headers=headers)  # Lakala retries
    assert again.json()["code"] == "SUCCESS"
    assert len(pair.proxy.engine.get(no).trades) == 1


def test_a_query_that_finds_the_payment_after_the_expiry_applies_it_late(pair: Pair) -> None:
    """Lakala's notify lost for good: the merchant's query finds the payment instead."""
    no = _expired_mirror_paid_upstream(pair, "LATE-PAY-Q", "http://127.0.0.1:9/shop")
    queried = pair.http.post(V1 + "query", json={"out_order_no": "LATE-PAY-Q"}).json()
    assert queried["resp_data"]["order_status"] == "SUCCESS"
    mirror = pair.proxy.engine.get(no)
    assert mirror.status == 2 and LATE_PAYMENT in mirror.trades[0]
    assert mirror.trades[0]["trade_no"] == pair.lakala.engine.get(no).trades[0]["trade_no"]
    queued = _first_sent(pair.proxy, no)  # the merchant's notify_url hears of it too
    assert json.loads(queued["request_body"])["order_status"] == "SUCCESS"


def test_a_refund_lakala_reports_on_an_expired_mirror_brings_the_late_payment(
    pair: Pair,
) -> None:
    no = _expired_mirror_paid_upstream(pair, "LATE-PAY-2", "http://127.0.0.1:9/shop")
    pair.lakala.engine.apply(no, "refund")
    headers, body = lakala_notify(pair.lakala, no)
    assert pair.http.post(NOTIFY_PATH, content=body, headers=headers).json()["code"] == "SUCCESS"
    mirror = pair.proxy.engine.get(no)
    assert mirror.status == 6
    assert [t["trade_type"] for t in mirror.trades] == ["REFUND", "PAY"]


def test_a_payment_the_mirror_cannot_take_is_not_acknowledged(
    pair: Pair, caplog: pytest.LogCaptureFixture
) -> None:
    no = _create(pair, "LATE-PAY-3")["pay_order_no"]
    closed = pair.http.post(f"/sandbox/api/orders/{no}/close")  # here only, not on Lakala
    assert closed.status_code == 200 and pair.proxy.engine.get(no).status == 7
    pair.lakala.engine.apply(no, "pay")
    headers, body = lakala_notify(pair.lakala, no)
    before = snapshot(pair.proxy)
    with caplog.at_level(logging.ERROR, logger="lakala_sandbox.proxy"):
        answer = pair.http.post(NOTIFY_PATH, content=body, headers=headers)
    assert answer.status_code == 409
    assert answer.json()["code"] == "FAIL"  # Lakala sends it again
    why = f"Lakala reports order {no} paid (status 2), but its mirror here is 7 CLOSED"
    assert why in answer.json()["message"] and why in caplog.text
    assert snapshot(pair.proxy) == before
    # a query answers with Lakala's word, and says in the log why the mirror did not follow
    caplog.clear()
    with caplog.at_level(logging.ERROR, logger="lakala_sandbox.proxy"):
        queried = pair.http.post(V1 + "query", json={"pay_order_no": no}).json()
    assert queried["resp_data"]["order_status"] == "SUCCESS"
    assert why in caplog.text


# -- start-up --------------------------------------------------------------------------------


def test_real_mode_needs_a_public_url() -> None:
    client = AsyncLakalaClient(transport=httpx.MockTransport(_down))
    with pytest.raises(ValueError, match="real mode needs --public-url"):
        create_app(Settings(data_dir=":memory:", mode="real"), lakala=client)


@pytest.mark.parametrize(
    ("args", "env", "text"),
    [
        (["--mode", "real"], {}, "real mode needs --public-url"),
        (
            ["--mode", "real", "--public-url", "http://127.0.0.1:1"],
            {"LAKALA_ENV": "lakala-test"},
            "the lakala-test environment needs appid, serial_no, private_key, certificate",
        ),
    ],
)
@pytest.mark.usefixtures("no_lakala_settings")
def test_serve_in_real_mode_says_what_is_missing(
    args: list[str],
    env: dict[str, str],
    text: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.delenv("LAKALA_SANDBOX_PUBLIC_URL", raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert main(["serve", "--data-dir", ":memory:", *args]) == 2
    assert text in capsys.readouterr().err


# -- end to end: two real processes ------------------------------------------------------------

V1_ACK = {
    "code": "000000",
    "msg": "Notification received successfully",
    "resp_time": "20241119120135",
}


@contextmanager
def real_mode_proxy(data_dir: Path, env: dict[str, str]) -> Iterator[SandboxProcess]:
    """``serve --mode real`` whose ``--public-url`` names its own port: picked here, so another
    worker's server can take it before this one binds it; then another is picked (three tries)."""
    for attempt in range(3):
        port = free_port()
        proxy = SandboxProcess(
            data_dir, "--mode", "real", "--public-url", f"http://127.0.0.1:{port}",
            port=port, env=env,
        )  # fmt: skip
        try:
            proxy.start()
        except PortTaken:
            if attempt == 2:
                raise
            continue
        try:
            yield proxy
        finally:
            proxy.stop()
        return


@pytest.mark.slow
def test_real_mode_end_to_end_between_two_served_sandboxes(tmp_path: Path) -> None:
    with (
        SandboxProcess(tmp_path / "a") as lakala,
        NotifyReceiver(answer=V1_ACK, path="/shop/notify") as shop,
    ):
        # the merchant's keys, downloaded as a merchant gets them
        keys = tmp_path / "keys"
        keys.mkdir()
        for name in ("merchant_private_key.pem", "platform.cer"):
            (keys / name).write_bytes(loopback.get(f"{lakala.url}/sandbox/keys/{name}").content)
        env = {
            "LAKALA_BASE_URL": lakala.url,
            "LAKALA_APPID": "OP00000003",
            "LAKALA_SERIAL_NO": "00dfba8194c41b84cf",
            "LAKALA_MERCHANT_NO": "822290070111135",
            "LAKALA_PRIVATE_KEY_FILE": str(keys / "merchant_private_key.pem"),
            "LAKALA_CERTIFICATE_FILE": str(keys / "platform.cer"),
        }
        with real_mode_proxy(tmp_path / "b", env) as proxy:
            body = {
                "out_order_no": "E2E-1",
                "total_amount": 100,
                "order_info": "end to end",
                "notify_url": shop.url,
                "payment_method": "ALIPAY",
            }
            created = loopback.post(proxy.url + V1 + "create", json=body).json()
            assert created["code"] == "000000", created
            no = created["resp_data"]["pay_order_no"]
            in_a = loopback.get(f"{lakala.url}/sandbox/api/orders/{no}").json()["order"]
            assert in_a["out_order_no"] == "E2E-1"
            assert in_a["request"]["notify_url"] == f"{proxy.url}{NOTIFY_PATH}"
            assert created["resp_data"]["counter_url"] == in_a["counter_url"]

            paid = loopback.post(
                f"{lakala.url}/sandbox/api/orders/{no}/pay", json={"pay_mode": "ALIPAY"}
            )
            assert paid.status_code == 200
            forwarded = shop.wait(1, timeout=30)[0]

            notify = forwarded.json()
            assert (notify["pay_order_no"], notify["out_order_no"], notify["order_status"]) == (
                no,
                "E2E-1",
                "SUCCESS",
            )
            assert notify["trade_no"] == in_a_trade_no(lakala.url, no)
            proxy_cert = signing.load_certificate(
                loopback.get(f"{proxy.url}/sandbox/keys/platform.cer").content
            )
            fields = signing.parse_authorization(forwarded.headers["Authorization"])
            assert signing.verify(
                signing.certificate_public_key(proxy_cert),
                signing.notify_string(fields["timestamp"], fields["nonce_str"], forwarded.body),
                fields["signature"],
            )
            delivered = loopback.get(f"{lakala.url}/sandbox/api/orders/{no}/notifies").json()
            assert [a["state"] for a in delivered["notifies"]] == ["delivered"]

            queried = loopback.post(proxy.url + V1 + "query", json={"out_order_no": "E2E-1"})
            assert queried.json()["resp_data"]["order_status"] == "SUCCESS"
            assert len(shop.received) == 1
        secret_lines = [
            line
            for line in (keys / "merchant_private_key.pem").read_text().splitlines()
            if line and not line.startswith("-----")
        ]
        log = proxy.log() + lakala.log()
        assert not any(line in log for line in secret_lines)


def in_a_trade_no(base_url: str, pay_order_no: str) -> str:
    order = loopback.get(f"{base_url}/sandbox/api/orders/{pay_order_no}").json()["order"]
    return str(order["trades"][0]["trade_no"])
