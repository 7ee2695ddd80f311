"""The one clock over HTTP: read, advance, set, reset, speed, one order's own clock, and the
time a restarted sandbox keeps."""

from __future__ import annotations

import json
import re
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from sandbox.client.transport import InProcessTransport
from sandbox.core.clock import Clock
from sandbox.runtime import Sandbox
from tests.conftest import make_app
from tests.support import V1, seed_create, v3_post, v3_req_data


def clock(http: httpx.Client) -> dict[str, Any]:
    response = http.get("/sandbox/api/clock")
    assert response.status_code == 200
    return dict(response.json()["clock"])


def test_clock_reports_time_speed_and_offset(http: httpx.Client) -> None:
    now = clock(http)
    assert len(now["now"]) == 14 and now["timezone"] == "Asia/Shanghai"
    assert now["speed"] == 1.0 and now["frozen"] is False
    assert abs(now["offset_seconds"]) < 5 and now["next_due_at"] is None


def test_advance_moves_the_clock_and_business_times(http: httpx.Client) -> None:
    before = clock(http)["timestamp"]
    after = http.post("/sandbox/api/clock/advance", json={"seconds": 7200}).json()["clock"]
    assert after["timestamp"] - before == pytest.approx(7200, abs=2)
    assert after["advanced_seconds"] == 7200
    created = http.post(
        V1 + "create", json={"out_order_no": "CLK-1", "total_amount": 100, "order_info": "clock"}
    ).json()
    # answered on the advanced clock: at or just after the advance, never before it
    answered = Clock().parse(created["resp_time"]) - Clock().parse(after["now"])
    assert 0 <= answered < 3
    assert created["resp_data"]["order_create_time"][:10] == after["now"][:10]


def test_set_jumps_and_reset_returns_to_wall_time(http: httpx.Client) -> None:
    target = "20300101120000"
    assert (
        http.post("/sandbox/api/clock/set", json={"time": target}).json()["clock"]["now"][:12]
        == target[:12]
    )
    back = http.post("/sandbox/api/clock/reset").json()["clock"]
    assert abs(back["offset_seconds"]) < 5 and back["advanced_seconds"] == 0


def test_speed_zero_freezes_the_clock() -> None:
    ticks = iter(range(0, 10_000, 100))
    frozen = Clock(start=1_800_000_000, speed=0, wall=lambda: float(next(ticks)))
    assert frozen.timestamp() == frozen.timestamp() == 1_800_000_000
    frozen.advance(5)
    assert frozen.timestamp() == 1_800_000_005


def test_clock_speed_setting_runs_time_faster() -> None:
    wall = [1000.0]
    fast = Clock(start=2_000_000_000, speed=10, wall=lambda: wall[0])
    wall[0] += 3
    assert fast.timestamp() == 2_000_000_030


def test_speed_can_be_changed_at_run_time(http: httpx.Client) -> None:
    assert http.post("/sandbox/api/clock/speed", json={"speed": 0}).json()["clock"]["frozen"]
    assert http.post("/sandbox/api/clock/speed", json={"speed": 60}).json()["clock"]["speed"] == 60


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/sandbox/api/clock/advance", {}, "seconds"),
        ("/sandbox/api/clock/advance", {"seconds": -1}, "seconds"),
        ("/sandbox/api/clock/advance", {"seconds": "60"}, "seconds"),
        ("/sandbox/api/clock/advance", {"seconds": True}, "seconds"),
        ("/sandbox/api/clock/advance", {"seconds": 1e12}, "seconds"),
        ("/sandbox/api/clock/set", {"time": "2030-01-01"}, "time"),
        ("/sandbox/api/clock/set", {"time": "20301301000000"}, "time"),
        ("/sandbox/api/clock/set", {}, "time"),
        ("/sandbox/api/clock/speed", {"speed": -2}, "speed"),
    ],
)
def test_bad_clock_calls_are_refused_and_change_nothing(
    http: httpx.Client, path: str, body: dict[str, Any], field: str
) -> None:
    before = clock(http)["advanced_seconds"]
    response = http.post(path, json=body)
    assert response.status_code == 400
    assert response.json()["code"] == "SBX10001" and field in response.json()["msg"]
    assert clock(http)["advanced_seconds"] == before


def test_advance_needs_a_json_body(http: httpx.Client) -> None:
    response = http.post("/sandbox/api/clock/advance", content=b"soon")
    assert response.status_code == 400 and response.json()["code"] == "SBX40001"


def test_advancing_one_order_expires_it_and_no_other(http: httpx.Client, sb: Sandbox) -> None:
    def create(out: str) -> str:
        body = seed_create(sb, out, total_amount=100)
        return str(http.post(V1 + "create", json=body).json()["resp_data"]["pay_order_no"])

    first, second = create("ONE-1"), create("ONE-2")
    moved = http.post(f"/sandbox/api/orders/{first}/advance", json={"seconds": 3600})
    assert moved.status_code == 200
    assert moved.json()["order"]["clock_offset_seconds"] == 3600
    assert moved.json()["order"]["order_status"] == "4"
    assert (
        http.post(V1 + "query", json={"out_order_no": "ONE-1"}).json()["resp_data"]["order_status"]
        == "EXPIRED"
    )
    assert (
        http.post(V1 + "query", json={"out_order_no": "ONE-2"}).json()["resp_data"]["order_status"]
        == "WAIT_PAY"
    )
    assert http.get(f"/sandbox/api/orders/{second}").json()["order"]["clock_offset_seconds"] == 0


def test_advancing_an_unknown_order_says_so(http: httpx.Client) -> None:
    response = http.post("/sandbox/api/orders/123/advance", json={"seconds": 5})
    assert response.status_code == 404 and response.json()["code"] == "SBX20002"


def test_create_before_an_advanced_clock_is_refused_saying_why(
    http: httpx.Client, sb: Sandbox
) -> None:
    http.post("/sandbox/api/clock/advance", json={"seconds": 7200})
    wall_hour_ahead = Clock().format(Clock().timestamp() + 3600)
    response = v3_post(
        http, sb, "special_create", v3_req_data(sb, "EARLY-1", order_efficient_time=wall_hour_ahead)
    )
    out = response.json()
    assert out["code"] == "SBX10002"
    assert "sandbox clock is 2:00:00 ahead of wall time" in out["msg"]
    assert "/sandbox/api/clock/reset" in out["msg"]
    assert http.get("/sandbox/api/orders").json()["total"] == 0


def test_restarted_sandbox_keeps_its_clock(tmp_path: Path) -> None:
    first = make_app(data_dir=str(tmp_path))
    with httpx.Client(transport=InProcessTransport(first), base_url="http://t") as http:
        ahead = http.post("/sandbox/api/clock/advance", json={"seconds": 86400}).json()["clock"]
    first.state.sandbox.close()
    second = make_app(data_dir=str(tmp_path))
    with httpx.Client(transport=InProcessTransport(second), base_url="http://t") as http:
        again = clock(http)
    second.state.sandbox.close()
    assert again["offset_seconds"] == pytest.approx(ahead["offset_seconds"], abs=5)
    assert again["advanced_seconds"] == 86400


def test_a_new_clock_start_wins_over_the_saved_time(tmp_path: Path) -> None:
    first = make_app(data_dir=str(tmp_path))
    first.state.sandbox.clock.advance(86400)
    first.state.sandbox.close()
    second = make_app(data_dir=str(tmp_path), clock_start="20300101000000")
    assert second.state.sandbox.clock.now14()[:10] == "2030010100"
    second.state.sandbox.close()


def test_a_fast_clock_keeps_running_across_a_restart(tmp_path: Path) -> None:
    app = make_app(data_dir=str(tmp_path), clock_speed=1000)
    saved = json.loads(app.state.sandbox.store.get_meta("clock"))  # saved at start, not on a jump
    app.state.sandbox.close()
    wall = [saved["anchor_wall"] + 0.05]
    restarted = Clock(speed=1000, wall=lambda: wall[0])
    assert restarted.restore(saved)
    assert restarted.timestamp() - saved["anchor_virtual"] == pytest.approx(50)


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("20261301000000", "month must be in 1..12"),
        ("20260230000000", "day is out of range for month"),
        ("20261126235960", "second must be in 0..59"),
        ("2026112610300\uff10", "is not yyyyMMddHHmmss"),
        ("2026", "'2026' is not yyyyMMddHHmmss"),
    ],
)
def test_parse_refuses_what_is_not_a_real_yyyymmddhhmmss(text: str, why: str) -> None:
    with pytest.raises(ValueError, match=re.escape(why)):
        Clock(tz="Asia/Shanghai").parse(text)


def test_parse_agrees_with_strptime_on_real_times() -> None:
    clock = Clock(tz="Asia/Shanghai")
    for text in ("20240229120000", "20261126103000", "20261231235959", "19700101080000"):
        expected = datetime.strptime(text, "%Y%m%d%H%M%S").replace(tzinfo=clock.tz).timestamp()
        assert clock.parse(text) == expected
        assert clock.format(clock.parse(text)) == text


def test_runs_found_due_together_are_played_in_due_order() -> None:
    """More runs are due at once than the runner reads at a time: each is played, earliest
    first, and none twice."""
    app = make_app(clock_speed=0)
    sb: Sandbox = app.state.sandbox
    with httpx.Client(transport=InProcessTransport(app), base_url="http://sandbox.test") as http:
        numbers = []
        for i in range(250):
            out = http.post(
                V1 + "create",
                json={"out_order_no": f"AUTOPAY-{i}", "total_amount": 100, "order_info": "x"},
            ).json()
            numbers.append(out["resp_data"]["pay_order_no"])
            assert sb.scheduler.drain(10)  # its run has started waiting its 3 s
            sb.clock.advance(0.001)  # so each pays a little after the one before
        # the clock jumps (no walk from step to step), so the runner finds all 250 due at once
        sb.clock.advance(3)
        assert sb.scheduler.drain(30)
        orders = [sb.engine.get(no) for no in numbers]
        paid_in_turn = [
            r["pay_order_no"]
            for r in sb.store.execute("SELECT pay_order_no FROM trades ORDER BY seq")
        ]
    app.state.sandbox.close()
    assert {order.status for order in orders} == {2}
    assert all(len(order.trades) == 1 for order in orders)
    assert paid_in_turn == numbers


def test_next_due_after_an_advance_is_never_in_the_past(
    frozen: tuple[httpx.Client, Sandbox],
) -> None:
    # an order that pays itself 3 s in (auto-success) and notifies a handler that is not there:
    # the advance passes its whole retry ladder, whose attempts go out once it is done
    http, _sb = frozen
    created = http.post(
        V1 + "create",
        json={
            "out_order_no": "DUE-1",
            "total_amount": 901,
            "order_info": "due",
            "notify_url": "http://127.0.0.1:9/notify",
        },
    ).json()
    assert created["code"] == "000000"
    after = http.post("/sandbox/api/clock/advance", json={"seconds": 3600}).json()["clock"]
    assert after["next_due_at"] is None or after["next_due_at"] >= after["now"]
    # and what it names is due then: reading the clock later agrees
    later = clock(http)
    assert later["next_due_at"] is None or later["next_due_at"] >= later["now"]
