"""The seed document's examples: as written on a sandbox clock at the seed's moment, and with a
current expiry on today's clock."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from sandbox.client.transport import InProcessTransport
from sandbox.notify.bodies import ack_problem
from sandbox.runtime import Sandbox
from tests.conftest import make_app
from tests.paths import TESTS
from tests.support import SEED_CREATE, V1, seed_create

SEED_CREATE_FIELDS = [
    "merchant_no",
    "channel_id",
    "out_order_no",
    "order_create_time",
    "order_efficient_time",
    "pay_order_no",
    "total_amount",
    "counter_url",
]


def test_seed_create_example_answers_in_the_seeds_shape(http: httpx.Client, sb: Sandbox) -> None:
    body = seed_create(sb, "ORDER20261126000001")
    response = http.post(V1 + "create", json=body, headers={"Authorization": "Bearer any-token"})
    assert response.status_code == 200
    out = response.json()
    assert list(out)[:4] == ["code", "msg", "resp_time", "resp_data"]
    assert out["code"] == "000000"
    assert out["msg"] == "操作成功"
    assert re.fullmatch(r"\d{14}", out["resp_time"])
    data = out["resp_data"]
    assert sorted(data) == sorted(SEED_CREATE_FIELDS)
    assert data["merchant_no"] == "8222900701106PZ"
    assert data["channel_id"] == "2021052614391"
    assert data["out_order_no"] == "ORDER20261126000001"
    assert data["order_create_time"] == out["resp_time"]
    assert data["order_efficient_time"] == body["order_efficient_time"]
    assert re.fullmatch(r"\d{29}", data["pay_order_no"])
    assert data["total_amount"] == "100"
    url = urlsplit(data["counter_url"])
    assert (url.scheme, url.netloc, url.path) == ("http", "sandbox.test", "/b/pay")
    assert parse_qs(url.query) == {
        "merchantNo": ["8222900701106PZ"],
        "merchantOrderNo": ["ORDER20261126000001"],
        "payOrderNo": [data["pay_order_no"]],
    }
    # the seed's frontend reads result.data.counter_url: the same object again
    assert out["data"] == data


def test_seed_query_example_reports_a_status_string(http: httpx.Client, sb: Sandbox) -> None:
    created = http.post(V1 + "create", json=seed_create(sb, "ORDER-Q1")).json()["resp_data"]
    out = http.post(V1 + "query", json={"out_order_no": "ORDER-Q1"}).json()
    assert out["code"] == "000000" and out["msg"] == "操作成功"
    data = out["resp_data"]
    assert data["out_order_no"] == "ORDER-Q1"
    assert data["order_status"] == "WAIT_PAY"
    assert data["total_amount"] == "100"
    assert data["pay_order_no"] == created["pay_order_no"]
    assert out["data"] == data


def test_seed_query_sees_payment_with_trade_details(http: httpx.Client, sb: Sandbox) -> None:
    created = http.post(V1 + "create", json=seed_create(sb, "ORDER-Q2")).json()["resp_data"]
    paid = http.post(f"/sandbox/api/orders/{created['pay_order_no']}/pay")
    assert paid.status_code == 200
    data = http.post(V1 + "query", json={"out_order_no": "ORDER-Q2"}).json()["data"]
    assert data["order_status"] == "SUCCESS"
    assert data["pay_mode"] == "ALIPAY"
    assert re.fullmatch(r"\d{22}", data["trade_no"])


def test_seed_close_example_closes(http: httpx.Client, sb: Sandbox) -> None:
    created = http.post(V1 + "create", json=seed_create(sb, "ORDER-C1")).json()["resp_data"]
    out = http.post(V1 + "close", json={"out_order_no": "ORDER-C1"}).json()
    assert out["code"] == "000000" and out["msg"] == "操作成功"
    assert re.fullmatch(r"\d{14}", out["resp_time"])
    assert out["resp_data"] == {
        "out_order_no": "ORDER-C1",
        "pay_order_no": created["pay_order_no"],
        "order_status": "CLOSED",
    }
    status = http.post(V1 + "query", json={"pay_order_no": created["pay_order_no"]}).json()
    assert status["resp_data"]["order_status"] == "CLOSED"


def test_identical_create_returns_the_original_order(http: httpx.Client, sb: Sandbox) -> None:
    body = seed_create(sb, "ORDER-R1")
    first = http.post(V1 + "create", json=body).json()
    again = http.post(V1 + "create", json=body).json()
    assert again["code"] == "000000"
    assert again["resp_data"] == first["resp_data"]
    assert sb.engine.count() == 1


def test_create_defaults_follow_the_seed(http: httpx.Client, sb: Sandbox) -> None:
    minimal = {"out_order_no": "ORDER-D1", "total_amount": "250", "order_info": "默认值"}
    data = http.post(V1 + "create", json=minimal).json()["resp_data"]
    assert data["merchant_no"] == "8222900701106PZ"
    assert data["channel_id"] == "25"
    assert data["total_amount"] == "250"
    created = sb.clock.parse(data["order_create_time"])
    assert sb.clock.parse(data["order_efficient_time"]) - created == 3600
    order = sb.engine.get(data["pay_order_no"])
    assert sb.engine.allowed_pay_modes(order) == sb.engine.pay_modes  # all fourteen
    assert sb.engine.default_pay_mode(order) == "ALIPAY"


def test_data_alias_can_be_turned_off() -> None:
    from sandbox.client.transport import InProcessTransport
    from tests.conftest import make_app

    app = make_app(v1_data_alias=False)
    sb = app.state.sandbox
    with httpx.Client(transport=InProcessTransport(app), base_url="http://s") as http:
        out = http.post(V1 + "create", json=seed_create(sb, "ORDER-A1")).json()
    assert out["code"] == "000000" and "data" not in out


def test_configured_tokens_are_required(sb: Sandbox) -> None:
    from sandbox.client.transport import InProcessTransport
    from tests.conftest import make_app

    app = make_app(v1_tokens=("secret-1",))
    sb = app.state.sandbox
    with httpx.Client(transport=InProcessTransport(app), base_url="http://s") as http:
        missing = http.post(V1 + "create", json=seed_create(sb, "ORDER-T1"))
        wrong = http.post(
            V1 + "create",
            json=seed_create(sb, "ORDER-T1"),
            headers={"Authorization": "Bearer nope"},
        )
        right = http.post(
            V1 + "create",
            json=seed_create(sb, "ORDER-T1"),
            headers={"Authorization": "Bearer secret-1"},
        )
    for response in (missing, wrong):
        assert response.status_code == 401
        assert response.json()["code"] == "SBX30005"
        assert response.json()["resp_data"] is None
    assert right.json()["code"] == "000000"
    assert sb.engine.count() == 1


def test_undocumented_fields_are_not_kept_with_the_order(http: httpx.Client, sb: Sandbox) -> None:
    body = seed_create(sb, "ORDER-U1", token="abc", nested={"deep": [[[[1]]]]})
    data = http.post(V1 + "create", json=body).json()["resp_data"]
    kept = http.get(f"/sandbox/api/orders/{data['pay_order_no']}").json()["order"]["request"]
    assert "token" not in kept and "nested" not in kept
    assert kept["vpos_id"] == SEED_CREATE["vpos_id"]
    # the order remembers the whole request for safe retries all the same
    assert http.post(V1 + "create", json=body).json()["resp_data"] == data
    assert http.post(V1 + "create", json=dict(body, token="other")).json()["code"] == "SBX20001"


# The seed's answers were made at 2024-11-19 12:01:35 (their resp_time); its create asks for an
# expiry an hour after that. On a sandbox clock started then, its examples run as written.
SEED_MOMENT = "20241119120135"


def seed_examples() -> list[dict[str, Any]]:
    """The seed document's JSON blocks, in order: create, its answer, query, its answer, close,
    its answer, the notify and the merchant's answer to it."""
    text = (TESTS / "seed_document.txt").read_text(encoding="utf-8")
    return [json.loads(block) for block in re.findall(r"```json\n(.*?)```", text, re.S)]


@pytest.fixture
def at_seed_moment() -> Iterator[tuple[httpx.Client, Sandbox]]:
    app = make_app(clock_start=SEED_MOMENT, clock_speed=0)
    with httpx.Client(transport=InProcessTransport(app), base_url="http://s") as http:
        yield http, app.state.sandbox
    app.state.sandbox.close()


def _answers_as_documented(answer: dict[str, Any], documented: dict[str, Any]) -> None:
    assert (answer["code"], answer["msg"], answer["resp_time"]) == (
        documented["code"],
        documented["msg"],
        documented["resp_time"],
    )


def test_the_seeds_create_and_close_run_as_written(
    at_seed_moment: tuple[httpx.Client, Sandbox],
) -> None:
    http, _ = at_seed_moment
    create, create_answer, _, _, close, close_answer, _, _ = seed_examples()
    created = http.post(V1 + "create", json=create).json()
    _answers_as_documented(created, create_answer)
    data, documented = created["resp_data"], create_answer["resp_data"]
    assert set(data) == set(documented)
    for field in ("merchant_no", "out_order_no", "order_create_time", "order_efficient_time"):
        assert data[field] == documented[field], field
    assert data["total_amount"] == documented["total_amount"] == "100"
    # the seed's answer shows channel "25" for a request that asked for its own channel_id:
    # the sandbox answers with the channel asked for, as Lakala does
    assert data["channel_id"] == create["channel_id"]
    closed = http.post(V1 + "close", json=close).json()
    _answers_as_documented(closed, close_answer)
    assert closed["resp_data"]["order_status"] == "CLOSED"


def test_the_seeds_query_runs_as_written_and_reads_success_once_paid(
    at_seed_moment: tuple[httpx.Client, Sandbox],
) -> None:
    http, sb = at_seed_moment
    create, _, query, query_answer, _, _, notify, ack = seed_examples()
    no = http.post(V1 + "create", json=create).json()["resp_data"]["pay_order_no"]
    assert http.post(f"/sandbox/api/orders/{no}/pay", json={}).status_code == 200
    answer = http.post(V1 + "query", json=query).json()
    _answers_as_documented(answer, query_answer)
    documented = query_answer["resp_data"]
    assert {k: answer["resp_data"][k] for k in documented} == {**documented, "pay_order_no": no}
    # the notify made for the payment says what the seed's notify example says
    (made,) = http.get(f"/sandbox/api/orders/{no}/notifies").json()["notifies"]
    assert {k: made["body"][k] for k in notify} == {**notify, "pay_order_no": no}
    # and the seed's answer to a notify is one the sandbox takes as an acknowledgement
    assert ack_problem(sb.schemas, "v1", 200, json.dumps(ack, ensure_ascii=False)) is None
