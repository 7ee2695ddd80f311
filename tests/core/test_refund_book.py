"""The refunds table: lookups through indexes (never a scan of every trade), and the move of an
earlier store's refund bookkeeping out of the trades' JSON."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from sandbox.client.transport import InProcessTransport
from sandbox.core.schema import LEGACY_REFUND_NOTES as LEGACY
from sandbox.core.schema import SCHEMA_VERSION
from sandbox.runtime import DB_FILE, Sandbox
from tests.conftest import make_app
from tests.server.test_v3_refunds import MERCHANT, RFD, paid_order, refund
from tests.support import database, v3_post


def _plan(sb: Sandbox, sql: str, params: tuple[str, ...]) -> str:
    rows = sb.store.execute("EXPLAIN QUERY PLAN " + sql, params)
    return " | ".join(str(r["detail"]) for r in rows)


@pytest.mark.parametrize(
    ("sql", "params"),
    [
        ("SELECT * FROM refunds WHERE merchant_no = ? AND out_trade_no = ?", ("M", "R")),
        ("SELECT * FROM refunds WHERE trade_no = ?", ("T",)),
        ("SELECT * FROM refunds WHERE pay_order_no = ?", ("P",)),
        (
            "SELECT pay_order_no, trade_no, data FROM trades "
            "WHERE json_extract(data, '$.log_no') = ?",
            ("66",),
        ),
        (
            "SELECT pay_order_no, trade_no, data FROM trades "
            "WHERE json_extract(data, '$.trade_ref_no') = ?",
            ("12",),
        ),
    ],
)
def test_every_refund_lookup_uses_an_index(
    frozen: tuple[httpx.Client, Sandbox], sql: str, params: tuple[str, ...]
) -> None:
    _, sb = frozen
    plan = _plan(sb, sql, params)
    assert "USING" in plan and "INDEX" in plan, plan
    assert not any(part.startswith("SCAN") for part in plan.split(" | ")), plan


def test_a_refund_is_booked_once_and_its_trade_keeps_no_notes(
    frozen: tuple[httpx.Client, Sandbox],
) -> None:
    http, sb = frozen
    paid_order(http, sb, "BOOK-1")
    made = refund(http, sb, "R-B1", refund_amount=10, origin_out_trade_no="BOOK-1").json()
    rows = [dict(r) for r in sb.store.execute("SELECT * FROM refunds")]
    assert [(r["out_trade_no"], r["trade_no"], r["api"]) for r in rows] == [
        ("R-B1", made["resp_data"]["trade_no"], "refund")
    ]
    trade = sb.store.execute(
        "SELECT data FROM trades WHERE trade_no = ?", (made["resp_data"]["trade_no"],)
    )[0]
    assert LEGACY not in json.loads(trade["data"])


def test_an_earlier_store_s_refunds_move_into_the_table(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    app = make_app(data_dir=str(data_dir), clock_speed=0)
    sb = app.state.sandbox
    with httpx.Client(transport=InProcessTransport(app), base_url="http://t") as http:
        paid_order(http, sb, "OLD-1")
        first = refund(http, sb, "R-OLD", refund_amount=100, origin_out_trade_no="OLD-1").json()
    trade_no = first["resp_data"]["trade_no"]
    # what a version-2 store held: the bookkeeping in the trade's JSON, no refunds tables
    row = sb.store.execute("SELECT * FROM refunds")[0]
    sb.close()  # (its scheduler reads the refunds table)
    with database(data_dir / DB_FILE) as conn:
        (stored,) = conn.execute(
            "SELECT data FROM trades WHERE trade_no = ?", (trade_no,)
        ).fetchone()
        data = json.loads(stored)
        data[LEGACY] = {"out_trade_no": "R-OLD", "request_hash": row["request_hash"]}
        conn.execute("UPDATE trades SET data = ? WHERE trade_no = ?", (json.dumps(data), trade_no))
        conn.execute("DROP TABLE refunds")
        conn.execute("DROP TABLE refund_outcomes")
        conn.execute("DROP INDEX trades_by_log_no")
        conn.execute("DROP INDEX trades_by_ref_no")
        conn.execute("PRAGMA user_version = 2")

    again = make_app(data_dir=str(data_dir), clock_speed=0)
    sb2 = again.state.sandbox
    try:
        with httpx.Client(transport=InProcessTransport(again), base_url="http://t") as http:
            found = v3_post(
                http,
                sb2,
                "refund_query",
                {"merchant_no": MERCHANT, "term_no": "D9296400", "out_trade_no": "R-OLD"},
                prefix=RFD,
            ).json()
            assert found["code"] == "000000" and found["resp_data"]["trade_no"] == trade_no
            # the identical repeat still returns the first refund; another body is refused
            repeat = refund(http, sb2, "R-OLD", refund_amount=100, origin_out_trade_no="OLD-1")
            assert repeat.json()["resp_data"] == first["resp_data"]
            clash = refund(http, sb2, "R-OLD", refund_amount=5, origin_out_trade_no="OLD-1")
            assert clash.json()["code"] == "SBX20005"
            shown = v3_post(
                http, sb2, "query", {"merchant_no": MERCHANT, "out_order_no": "OLD-1"}
            ).json()["resp_data"]["order_trade_info_list"]
        assert all(LEGACY not in t for t in shown)
        stored = sb2.store.execute("SELECT data FROM trades WHERE trade_no = ?", (trade_no,))[0]
        assert LEGACY not in json.loads(stored["data"])
        assert sb2.store.execute("PRAGMA user_version")[0][0] == SCHEMA_VERSION == 3
    finally:
        sb2.close()
