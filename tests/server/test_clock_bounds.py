"""The sandbox clock plus an order's own offset stays within the years a yyyyMMddHHmmss shows:
a move that would push an order's clock past 9999 is refused, and nothing answers 500."""

from __future__ import annotations

import httpx
import pytest

from sandbox.core.clock import LATEST
from sandbox.runtime import Sandbox
from tests.support import V1, seed_create

YEAR = 366 * 86400


def order_two_years_ahead(http: httpx.Client, sb: Sandbox, out_order_no: str = "AHEAD-1") -> str:
    created = http.post(V1 + "create", json=seed_create(sb, out_order_no)).json()["resp_data"]
    no = str(created["pay_order_no"])
    moved = http.post(f"/sandbox/api/orders/{no}/advance", json={"seconds": 2 * YEAR})
    assert moved.status_code == 200
    return no


def assert_everything_answers(http: httpx.Client, no: str) -> None:
    listed = http.get("/sandbox/api/orders")
    assert listed.status_code == 200, listed.text
    assert len(listed.json()["orders"][0]["order_time"]) == 14
    assert http.get(f"/sandbox/api/orders/{no}").status_code == 200
    assert http.get("/").status_code == 200
    page = http.get(f"/dashboard/orders/{no}")
    assert page.status_code == 200, page.text[:300]
    assert http.get("/healthz").status_code == 200


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("set", {"time": "99981231000000"}),
        ("advance", {"seconds": 7 * YEAR}),  # from the year 9990, set below
    ],
)
def test_a_clock_move_that_pushes_an_order_past_9999_is_refused(
    http: httpx.Client, sb: Sandbox, path: str, body: dict[str, object]
) -> None:
    assert http.post("/sandbox/api/clock/set", json={"time": "99900101000000"}).status_code == 200
    no = order_two_years_ahead(http, sb)
    before = http.get("/sandbox/api/clock").json()["clock"]["now"]
    response = http.post(f"/sandbox/api/clock/{path}", json=body)
    assert (response.status_code, response.json()["code"]) == (400, "SBX10001"), response.text
    msg = response.json()["msg"]
    assert f"would put order {no}'s own clock" in msg and "past 99990101080000" in msg
    assert http.get("/sandbox/api/clock").json()["clock"]["now"][:8] == before[:8]
    assert_everything_answers(http, no)


def test_the_clock_may_still_go_as_far_as_the_furthest_order_allows(
    http: httpx.Client, sb: Sandbox
) -> None:
    no = order_two_years_ahead(http, sb)
    order = http.get(f"/sandbox/api/orders/{no}").json()["order"]
    limit = LATEST - order["clock_offset_seconds"]
    fits = sb.clock.format(limit - 86400)
    assert http.post("/sandbox/api/clock/set", json={"time": fits}).status_code == 200
    assert http.post("/sandbox/api/clock/set", json={"time": "20300101000000"}).status_code == 200
    assert_everything_answers(http, no)


def test_a_clock_running_on_past_the_limit_still_answers(http: httpx.Client, sb: Sandbox) -> None:
    no = order_two_years_ahead(http, sb)
    offset = http.get(f"/sandbox/api/orders/{no}").json()["order"]["clock_offset_seconds"]
    near = sb.clock.format(LATEST - offset - 2)
    assert http.post("/sandbox/api/clock/set", json={"time": near}).status_code == 200
    assert http.post("/sandbox/api/clock/speed", json={"speed": 1_000_000}).status_code == 200
    assert_everything_answers(http, no)  # a millisecond is 1,000 s at this speed
    order = http.get(f"/sandbox/api/orders/{no}").json()["order"]
    assert order["order_time"] == sb.clock.format(LATEST)
