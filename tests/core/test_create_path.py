"""What the create path skips for speed still happens when it must: a pay_order_no drawn twice
is drawn again, and a fault armed after a call found none is played on the next create."""

from __future__ import annotations

import sqlite3

import httpx
import pytest

from sandbox.runtime import Sandbox
from tests.support import V1, seed_create


def test_a_pay_order_no_drawn_twice_is_drawn_again(
    http: httpx.Client, sb: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = http.post(V1 + "create", json=seed_create(sb, "TWICE-1")).json()["resp_data"]
    taken = first["pay_order_no"]
    draws = iter([taken, taken, "26112611012000000000000000001"])
    monkeypatch.setattr(sb.ids, "pay_order_no", lambda now: next(draws))
    answer = http.post(V1 + "create", json=seed_create(sb, "TWICE-2")).json()
    assert answer["code"] == "000000", answer
    second = answer["resp_data"]
    assert second["pay_order_no"] == "26112611012000000000000000001"
    assert second["counter_url"].endswith("payOrderNo=26112611012000000000000000001")
    assert sb.engine.get(taken).out_order_no == "TWICE-1"
    assert sb.engine.count() == 2


def test_a_given_pay_order_no_already_taken_is_refused(http: httpx.Client, sb: Sandbox) -> None:
    taken = http.post(V1 + "create", json=seed_create(sb, "GIVEN-1")).json()["resp_data"]
    req = {**seed_create(sb, "GIVEN-2"), "merchant_no": sb.settings.merchant_no}
    with pytest.raises(sqlite3.IntegrityError):
        sb.engine.create(
            "v1", req, request_hash="x", base_url="http://t", pay_order_no=taken["pay_order_no"]
        )
    assert sb.engine.count() == 1


def test_a_fault_armed_after_a_call_found_none_is_played(http: httpx.Client, sb: Sandbox) -> None:
    assert http.post(V1 + "create", json=seed_create(sb, "FAULT-1")).json()["code"] == "000000"
    assert not sb.faults.any_armed()
    sb.faults.arm(None, "create", {"error": {"code": "BBS11184", "msg": "armed"}})
    assert http.post(V1 + "create", json=seed_create(sb, "FAULT-2")).json()["code"] == "BBS11184"
    assert http.post(V1 + "create", json=seed_create(sb, "FAULT-3")).json()["code"] == "000000"
