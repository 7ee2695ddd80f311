"""The refund APIs of Lakala's SDKs' typed classes, through the signed wire as those SDKs send
them: labs/relation/refund, lams/trade/trade_refund (+ query), labs/relation/idmrefund (+ query).
One set of rules and one refunds table: each finds the others' refunds."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import pytest

from sandbox.client.clients import AsyncLakalaClient, LakalaClient
from sandbox.client.errors import LakalaAPIError, LakalaSchemaError
from sandbox.runtime import Sandbox
from sandbox.wire.messages import REFUND_PATHS
from tests.client.test_client import in_process_client
from tests.conftest import make_app
from tests.core.test_races import burst
from tests.notify_receiver import Receiver
from tests.server.test_v3_refunds import MERCHANT, RFD, paid_order, query
from tests.servers import SandboxProcess, loopback
from tests.support import snapshot, v3_post, verify_v3_response

BASE = {"merchant_no": MERCHANT, "term_no": "D9296400"}
WHERE = {"location_info": {"request_ip": "127.0.0.1"}}


def call(http: httpx.Client, sb: Sandbox, op: str, **fields: Any) -> dict[str, Any]:
    """A signed call to a refund API; its verified answer."""
    answer = v3_post(http, sb, "", {**BASE, **fields}, prefix=REFUND_PATHS[op])
    verify_v3_response(answer, sb.keys.platform_cert)
    assert answer.status_code < 500
    body = dict(answer.json())
    if body["code"] == "000000":
        assert sb.schemas.problems(f"v3/{op}.resp", body["resp_data"]) == []
    return body


def paid_on(order: dict[str, Any]) -> str:
    return str(order["order_trade_info_list"][0]["trade_time"])[:8]


def test_three_apis_refund_one_order_in_parts_and_each_finds_the_others(
    frozen: tuple[httpx.Client, Sandbox],
) -> None:
    http, sb = frozen
    order = paid_order(http, sb, "API-1")
    paid = order["order_trade_info_list"][0]
    first = call(
        http,
        sb,
        "relation_refund",
        out_trade_no="RA-1",
        refund_amount="200",
        origin_out_trade_no="API-1",
        refund_reason="size",
        **WHERE,
    )
    assert first["code"] == "000000", first
    data = first["resp_data"]
    assert (data["refund_amount"], data["total_amount"], data["trade_state"]) == (
        "200",
        "1000",
        "SUCCESS",
    )
    assert (data["origin_trade_no"], data["origin_out_trade_no"]) == (paid["trade_no"], "API-1")
    second = call(
        http,
        sb,
        "trade_refund",
        out_trade_no="RT-1",
        refund_amount=300,
        origin_biz_type="3",
        origin_trade_date=paid_on(order),
        origin_log_no=paid["log_No"],
        **WHERE,
    )
    assert second["code"] == "000000", second
    assert second["resp_data"]["origin_log_no"] == paid["log_No"]
    third = call(
        http,
        sb,
        "idmrefund",
        out_refund_order_no="RI-1",
        refund_amount="500",
        origin_trade_no=paid["trade_no"],
        **WHERE,
    )
    assert third["code"] == "000000", third
    assert third["resp_data"]["out_refund_order_no"] == "RI-1"
    # nothing is left: a fourth is refused by the shared rule
    more = call(
        http,
        sb,
        "relation_refund",
        out_trade_no="RA-2",
        refund_amount=1,
        origin_out_trade_no="API-1",
        **WHERE,
    )
    assert more["code"] == "SBX20003" and "refunded in full" in more["msg"]
    after = query(http, sb, "API-1")
    assert after["order_status"] == "6"
    refunds = [t for t in after["order_trade_info_list"] if t["trade_type"] == "REFUND"]
    assert sorted(t["trade_amount"] for t in refunds) == [200, 300, 500]
    # cross-API lookups: each query finds refunds made through the others
    by_idm = call(http, sb, "idmrefundquery", out_refund_order_no="RA-1")
    assert by_idm["resp_data"]["trade_no"] == data["trade_no"]
    assert by_idm["resp_data"]["trade_state"] == "SUCCESS"
    by_trade = call(
        http,
        sb,
        "trade_refund_query",
        out_trade_no="RI-1",
        origin_biz_type=4,
        origin_trade_date=paid_on(order),
        origin_trade_ref_no=paid["trade_ref_no"],
    )
    listed = by_trade["resp_data"]["refund_list"]
    assert [(r["out_trade_no"], r["refund_amount"], r["trade_state"]) for r in listed] == [
        ("RI-1", "500", "SUCCESS")
    ]
    by_front = v3_post(
        http, sb, "refund_query", {**BASE, "out_trade_no": "RT-1"}, prefix=RFD
    ).json()
    assert by_front["resp_data"]["trade_no"] == second["resp_data"]["trade_no"]


@pytest.mark.parametrize("op", ["relation_refund", "trade_refund", "idmrefund"])
def test_each_api_refunds_in_whole_and_repeats_safely(
    frozen: tuple[httpx.Client, Sandbox], op: str
) -> None:
    http, sb = frozen
    order = paid_order(http, sb, f"W-{op}", amount=700)
    paid = order["order_trade_info_list"][0]
    number = {"idmrefund": "out_refund_order_no"}.get(op, "out_trade_no")
    extra = (
        {"origin_biz_type": "4", "origin_trade_date": paid_on(order)}
        if op == "trade_refund"
        else {}
    )
    fields = {
        number: f"N-{op}",
        "refund_amount": "700",
        "origin_trade_no": paid["trade_no"],
        **extra,
        **WHERE,
    }
    first = call(http, sb, op, **fields)
    assert first["code"] == "000000" and first["resp_data"]["refund_amount"] == "700"
    assert query(http, sb, f"W-{op}")["order_status"] == "6"
    before = snapshot(sb)
    assert call(http, sb, op, **fields)["resp_data"] == first["resp_data"]
    clash = call(http, sb, op, **{**fields, "refund_amount": "1"})
    assert clash["code"] == "SBX20005" and f"N-{op}" in clash["msg"]
    assert snapshot(sb) == before


def test_the_php_sdk_s_nulls_and_empty_strings_count_as_absent(
    frozen: tuple[httpx.Client, Sandbox],
) -> None:
    http, sb = frozen
    paid_order(http, sb, "PHP-1")
    answer = call(
        http,
        sb,
        "relation_refund",
        out_trade_no="RP-1",
        refund_amount="10",
        origin_out_trade_no="PHP-1",
        origin_trade_no="",
        origin_log_no=None,
        refund_reason=None,
        location_info={"request_ip": "127.0.0.1", "location": None},
    )
    assert answer["code"] == "000000", answer


@pytest.mark.parametrize(
    ("op", "fields", "code", "words"),
    [
        ("trade_refund", {"origin_trade_date": "20000101"}, "SBX10001", "origin_trade_date"),
        ("trade_refund", {"origin_biz_type": "5"}, "SBX10001", "origin_biz_type"),
        ("trade_refund", {"origin_biz_type": 0}, "SBX10001", "origin_biz_type"),
        ("trade_refund", {"origin_trade_date": "2026-1-1"}, "SBX10001", "origin_trade_date"),
        (
            "trade_refund",
            {"origin_trade_no": None, "origin_card_no": "6222020000000000"},
            "SBX10001",
            "origin_card_no",
        ),
        ("trade_refund", {"refund_amount": "1001"}, "SBX10001", "refund_amount"),
        ("relation_refund", {"origin_trade_no": None}, "SBX10001", "origin_"),
        ("relation_refund", {"origin_log_no": "12"}, "SBX10001", "origin_log_no"),
        ("relation_refund", {"location_info": None}, "SBX10001", "location_info"),
        ("relation_refund", {"origin_out_trade_no": "NOPE"}, "SBX20002", "NOPE"),
        ("idmrefund", {"out_refund_order_no": None}, "SBX10001", "out_refund_order_no"),
        ("idmrefund", {"refund_amount": "-1"}, "SBX10001", "refund_amount"),
        ("idmrefund", {"out_refund_order_no": "R\u202eX"}, "SBX10001", "out_refund_order_no"),
        ("trade_refund", {"out_trade_no": "R\nX"}, "SBX10001", "out_trade_no"),
    ],
)
def test_each_bad_field_is_refused_naming_it_and_changes_nothing(
    frozen: tuple[httpx.Client, Sandbox], op: str, fields: dict[str, Any], code: str, words: str
) -> None:
    http, sb = frozen
    order = paid_order(http, sb, "BAD-1")
    paid = order["order_trade_info_list"][0]
    good: dict[str, Any] = {
        "refund_amount": "100",
        "origin_trade_no": paid["trade_no"],
        **WHERE,
        **({"out_refund_order_no": "RB-1"} if op == "idmrefund" else {"out_trade_no": "RB-1"}),
        **(
            {"origin_biz_type": "3", "origin_trade_date": paid_on(order)}
            if op == "trade_refund"
            else {}
        ),
    }
    sent = {k: v for k, v in {**good, **fields}.items() if v is not None}
    before = snapshot(sb)
    answer = call(http, sb, op, **sent)
    assert answer["code"] == code and words in answer["msg"], answer
    assert snapshot(sb) == before


@pytest.mark.parametrize(
    ("fields", "words"),
    [
        ({"origin_trade_date": "20000101"}, "origin_trade_date"),
        ({"origin_trade_no": "20260101660000000000"}, "origin_trade_no"),
        ({"origin_trade_ref_no": "000000000000", "origin_trade_no": None}, "origin_trade_ref_no"),
        ({"pay_order_no": "0"}, "pay_order_no"),
        ({"out_trade_no": "NEVER"}, "NEVER"),
    ],
)
def test_a_refund_query_that_names_another_payment_finds_nothing(
    frozen: tuple[httpx.Client, Sandbox], fields: dict[str, Any], words: str
) -> None:
    http, sb = frozen
    order = paid_order(http, sb, "QRY-1")
    paid = order["order_trade_info_list"][0]
    made = call(
        http,
        sb,
        "relation_refund",
        out_trade_no="RQ-1",
        refund_amount=5,
        origin_out_trade_no="QRY-1",
        **WHERE,
    )
    assert made["code"] == "000000"
    good = {
        "out_trade_no": "RQ-1",
        "origin_biz_type": "3",
        "origin_trade_date": paid_on(order),
        "origin_trade_no": paid["trade_no"],
    }
    assert call(http, sb, "trade_refund_query", **good)["code"] == "000000"
    sent = {k: v for k, v in {**good, **fields}.items() if v is not None}
    answer = call(http, sb, "trade_refund_query", **sent)
    assert answer["code"] in ("SBX20002", "SBX10001") and words in answer["msg"], answer
    missing = call(http, sb, "idmrefundquery", out_refund_order_no="NEVER")
    assert missing["code"] == "SBX20002" and "NEVER" in missing["msg"]


def test_twenty_simultaneous_refunds_never_exceed_what_was_paid(tmp_path: Path) -> None:
    with SandboxProcess(tmp_path / "data") as server:
        client = LakalaClient(base_url=server.url)
        with client:
            client.create(
                out_order_no="RACE-RFD", total_amount=1000, order_info="race", support_refund=1
            )
            pay_order_no = client.query(out_order_no="RACE-RFD")["pay_order_no"]
            paid = loopback.post(f"{server.url}/sandbox/api/orders/{pay_order_no}/pay")
            assert paid.status_code == 200
            trade = client.query(out_order_no="RACE-RFD")["order_trade_info_list"][0]
            date = trade["trade_time"][:8]

            def one(i: int) -> str:
                try:
                    if i % 3 == 0:
                        client.relation_refund(
                            out_trade_no=f"RR-{i}",
                            refund_amount=70,
                            origin_out_trade_no="RACE-RFD",
                        )
                    elif i % 3 == 1:
                        client.trade_refund(
                            out_trade_no=f"RR-{i}",
                            refund_amount=70,
                            origin_trade_date=date,
                            origin_trade_no=trade["trade_no"],
                        )
                    else:
                        client.idm_refund(
                            out_refund_order_no=f"RR-{i}",
                            refund_amount=70,
                            origin_log_no=trade["log_No"],
                        )
                except Exception as exc:  # noqa: BLE001 - the refused ones say why
                    return getattr(exc, "code", type(exc).__name__)
                return "ok"

            results = burst(20, one)
            after = client.query(out_order_no="RACE-RFD")
    refunded = [t for t in after["order_trade_info_list"] if t["trade_type"] == "REFUND"]
    assert results.count("ok") == 14 == len(refunded)  # 14 x 70 = 980 of 1000
    assert set(results) == {"ok", "SBX10001"}  # the rest: more than is left
    assert sum(t["trade_amount"] for t in refunded) == 980


def test_the_async_client_refunds_and_queries_through_each_api() -> None:
    app = make_app(clock_speed=0)
    sb = app.state.sandbox

    async def scenario() -> tuple[dict[str, Any], ...]:
        async with AsyncLakalaClient(
            base_url="http://sandbox.test", transport=httpx.ASGITransport(app=app)
        ) as client:
            await client.create(
                out_order_no="ASYNC-R", total_amount=300, order_info="a", support_refund=1
            )
            no = (await client.query(out_order_no="ASYNC-R"))["pay_order_no"]
            async with httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://sandbox.test"
            ) as admin:
                assert (await admin.post(f"/sandbox/api/orders/{no}/pay")).status_code == 200
            paid = (await client.query(out_order_no="ASYNC-R"))["order_trade_info_list"][0]
            date = paid["trade_time"][:8]
            a = await client.relation_refund(
                out_trade_no="AR-1", refund_amount=100, origin_out_trade_no="ASYNC-R"
            )
            b = await client.trade_refund(
                out_trade_no="AR-2",
                refund_amount=100,
                origin_trade_date=date,
                origin_biz_type=4,
                origin_log_no=paid["log_No"],
            )
            c = await client.idm_refund(
                out_refund_order_no="AR-3", refund_amount=100, origin_trade_no=paid["trade_no"]
            )
            d = await client.idm_refund_query(out_refund_order_no="AR-2")
            e = await client.trade_refund_query(
                out_trade_no="AR-3", origin_trade_date=date, origin_trade_no=paid["trade_no"]
            )
            with pytest.raises(LakalaAPIError, match="SBX20003"):  # nothing is left
                await client.idm_refund(
                    out_refund_order_no="AR-4", refund_amount=1, origin_log_no=paid["log_No"]
                )
            return a, b, c, d, e

    try:
        a, b, c, d, e = asyncio.run(scenario())
    finally:
        sb.close()
    assert [x["refund_amount"] for x in (a, b, c)] == ["100", "100", "100"]
    assert d["trade_no"] == b["trade_no"] and d["out_refund_order_no"] == "AR-2"
    assert e["refund_list"][0]["trade_no"] == c["trade_no"]


def test_the_client_refuses_a_refund_that_breaks_its_schema_before_sending() -> None:
    app = make_app()
    sb = app.state.sandbox
    before = snapshot(sb)
    with in_process_client(app, sb) as client, pytest.raises(LakalaSchemaError) as err:
        client.trade_refund(
            out_trade_no="X", refund_amount=1, origin_trade_date="2026", origin_trade_no="T"
        )
    assert "origin_trade_date" in str(err.value)
    assert snapshot(sb) == before
    sb.close()


def test_refunds_through_each_api_are_notified_like_any_refund(
    frozen: tuple[httpx.Client, Sandbox],
) -> None:
    http, sb = frozen
    with Receiver(http.get("/sandbox/keys/platform.cer").content) as rx:
        order = paid_order(http, sb, "NTF-1", notify_url=rx.url())
        paid = order["order_trade_info_list"][0]
        for op, fields in (
            ("relation_refund", {"out_trade_no": "NR-1", "origin_out_trade_no": "NTF-1"}),
            (
                "trade_refund",
                {
                    "out_trade_no": "NR-2",
                    "origin_trade_no": paid["trade_no"],
                    "origin_biz_type": "3",
                    "origin_trade_date": paid_on(order),
                },
            ),
            ("idmrefund", {"out_refund_order_no": "NR-3", "origin_log_no": paid["log_No"]}),
        ):
            assert call(http, sb, op, refund_amount=100, **fields, **WHERE)["code"] == "000000"
        assert sb.notifier.drain(10)
        notifies = [d.json() for d in rx.wait_for(4)]
    assert all(d.verified for d in rx.deliveries)
    refunds = [n["order_trade_info"] for n in notifies[1:]]
    assert [(t["trade_type"], t["trade_amount"]) for t in refunds] == [("REFUND", 100)] * 3
    assert {n["order_status"] for n in notifies[1:]} == {"6"}
