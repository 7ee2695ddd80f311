"""Which scenario an order gets, the admin calls around scenarios, faults on API calls, and runs
that survive a restart and keep their own times when the clock jumps."""

from __future__ import annotations

import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from sandbox.client.transport import InProcessTransport
from sandbox.runtime import Sandbox
from tests.conftest import make_app
from tests.notify_receiver import LiveSandbox, Receiver
from tests.paths import ROOT
from tests.support import V1, seed_create, v3_post, v3_req_data

README = ROOT / "docs" / "scenarios.md"  # where the README sends scenario readers
MINE = {
    "big.yaml": "description: big orders\nmatch:\n  amount: {min: 100000}\nsteps: []\n",
    "gift.yaml": "description: gift cards\nmatch:\n  order_info: 礼品卡\nsteps: []\n",
    "wechat-late.yaml": "description: wechat, late\nmatch:\n  pay_mode: [WECHAT]\n  dialect: v3\n"
    "steps:\n  - wait: 60\n  - pay: {}\n",
    "auto-success.yaml": "description: my slower auto-success\nmatch:\n  amount: 901\n"
    "steps:\n  - wait: 10\n  - pay: {}\n",
}


@pytest.fixture
def mine(tmp_path: Path) -> Iterator[tuple[httpx.Client, Sandbox]]:
    folder = tmp_path / "my-scenarios"
    folder.mkdir()
    for name, text in MINE.items():
        (folder / name).write_text(text, encoding="utf-8")
    app = make_app(scenarios_dir=str(folder), clock_speed=0)
    with httpx.Client(transport=InProcessTransport(app), base_url="http://t") as http:
        yield http, app.state.sandbox
    app.state.sandbox.close()


def create_v1(
    http: httpx.Client, sb: Sandbox, out: str, headers: dict[str, str] | None = None, **changes: Any
) -> httpx.Response:
    body = seed_create(sb, out, **changes)
    body.pop("notify_url")
    return http.post(V1 + "create", json=body, headers=headers or {})


def scenario_of(http: httpx.Client, out: str, dialect: str = "v1") -> str:
    orders = http.get("/sandbox/api/orders").json()["orders"]
    no = next(o["pay_order_no"] for o in orders if o["out_order_no"] == out)
    run = http.get(f"/sandbox/api/orders/{no}/scenario").json()["run"]
    return str(run["scenario"])


CHOICES = [
    ("exact amount", {"total_amount": 902}, None, "auto-fail"),
    ("amount range", {"total_amount": 250000}, None, "big"),
    ("replaced file's pattern is gone", {"out_order_no": "AUTOPAY-77"}, None, "manual"),
    ("order_info text", {"order_info": "一张礼品卡"}, None, "gift"),
    ("header", {}, {"X-Sandbox-Scenario": "slow-notify"}, "slow-notify"),
    (
        "order_info tag",
        {"order_info": "测试 [scenario:duplicate-notify]"},
        None,
        "duplicate-notify",
    ),
    ("header wins over amount", {"total_amount": 902}, {"X-Sandbox-Scenario": "manual"}, "manual"),
    ("user file replaces shipped", {"total_amount": 901}, None, "auto-success"),
    ("nothing matches", {"total_amount": 100}, None, "manual"),
    ("pay_mode needs v3", {"payment_method": "WECHAT"}, None, "manual"),
]


@pytest.mark.parametrize(
    ("how", "changes", "headers", "expected"), CHOICES, ids=[c[0] for c in CHOICES]
)
def test_v1_create_gets_its_scenario(
    mine: tuple[httpx.Client, Sandbox],
    how: str,
    changes: dict[str, Any],
    headers: dict[str, str] | None,
    expected: str,
) -> None:
    http, sb = mine
    out = changes.pop("out_order_no", "PICK-1")
    assert create_v1(http, sb, out, headers, **changes).json()["code"] == "000000"
    assert scenario_of(http, out) == expected


def test_out_order_no_pattern_picks_a_shipped_scenario(http: httpx.Client, sb: Sandbox) -> None:
    create_v1(http, sb, "AUTOPAY-1")
    create_v1(http, sb, "X-AUTOPAY-1")
    assert scenario_of(http, "AUTOPAY-1") == "auto-success"
    assert scenario_of(http, "X-AUTOPAY-1") == "manual"


def test_v3_counter_remark_tag_and_pay_mode_pick_scenarios(
    mine: tuple[httpx.Client, Sandbox],
) -> None:
    http, sb = mine
    tagged = v3_req_data(sb, "TAG-1", counter_remark="[scenario:auto-fail] 备注")
    assert v3_post(http, sb, "special_create", tagged).json()["code"] == "000000"
    assert scenario_of(http, "TAG-1") == "auto-fail"
    wechat = v3_req_data(sb, "WX-1", counter_param='{"pay_mode":"WECHAT"}')
    assert v3_post(http, sb, "special_create", wechat).json()["code"] == "000000"
    assert scenario_of(http, "WX-1") == "wechat-late"


def test_the_users_version_of_a_shipped_scenario_runs(mine: tuple[httpx.Client, Sandbox]) -> None:
    http, sb = mine
    create_v1(http, sb, "MINE-901", total_amount=901)
    http.post("/sandbox/api/clock/advance", json={"seconds": 9})
    query = http.post(V1 + "query", json={"out_order_no": "MINE-901"}).json()["resp_data"]
    assert query["order_status"] == "WAIT_PAY"
    http.post("/sandbox/api/clock/advance", json={"seconds": 1})
    query = http.post(V1 + "query", json={"out_order_no": "MINE-901"}).json()["resp_data"]
    assert query["order_status"] == "SUCCESS"


def test_scenarios_list_shows_the_users_first_and_the_default(
    mine: tuple[httpx.Client, Sandbox],
) -> None:
    http, _ = mine
    listed = http.get("/sandbox/api/scenarios").json()
    assert listed["default"] == "manual"
    names = [s["name"] for s in listed["scenarios"]]
    assert names[:4] == ["auto-success", "big", "gift", "wechat-late"]
    assert listed["scenarios"][0]["source"] == "user"
    assert names.count("auto-success") == 1 and "repeat-pay" in names
    assert next(s for s in listed["scenarios"] if s["name"] == "auto-fail")["magic_amounts"] == [
        902
    ]


@pytest.mark.parametrize(
    ("headers", "changes", "where"),
    [
        ({"X-Sandbox-Scenario": "sometimes"}, {}, "X-Sandbox-Scenario"),
        ({}, {"order_info": "[scenario:nope]"}, "order_info"),
    ],
)
def test_an_unknown_named_scenario_is_refused_and_creates_nothing(
    http: httpx.Client, sb: Sandbox, headers: dict[str, str], changes: dict[str, Any], where: str
) -> None:
    out = create_v1(http, sb, "NAMED-1", headers, **changes).json()
    assert out["code"] == "SBX10001"
    assert where in out["msg"] and "which is not loaded" in out["msg"]
    assert http.get("/sandbox/api/orders").json()["total"] == 0


def test_the_default_scenario_can_be_switched_at_run_time(http: httpx.Client, sb: Sandbox) -> None:
    switched = http.put("/sandbox/api/scenarios/default", json={"name": "auto-fail"})
    assert switched.status_code == 200 and switched.json()["default"] == "auto-fail"
    create_v1(http, sb, "DEFAULT-1", total_amount=100)
    assert scenario_of(http, "DEFAULT-1") == "auto-fail"
    unknown = http.put("/sandbox/api/scenarios/default", json={"name": "sometimes"})
    assert unknown.status_code == 404 and unknown.json()["code"] == "SBX60002"
    assert http.put("/sandbox/api/scenarios/default", json={"name": 7}).status_code == 400
    assert http.get("/sandbox/api/scenarios").json()["default"] == "auto-fail"


# -- faults --------------------------------------------------------------------------------------
def order(http: httpx.Client, sb: Sandbox, out: str) -> str:
    return str(create_v1(http, sb, out).json()["resp_data"]["pay_order_no"])


def step(http: httpx.Client, pay_order_no: str, body: dict[str, Any]) -> httpx.Response:
    return http.post(f"/sandbox/api/orders/{pay_order_no}/step", json=body)


def test_next_create_answers_the_armed_error_once(http: httpx.Client, sb: Sandbox) -> None:
    no = order(http, sb, "ARM-1")
    armed = step(
        http,
        no,
        {"fault": {"call": "create", "error": {"code": "BBS10000", "msg": "业务处理失败"}}},
    )
    assert armed.status_code == 200
    refused = create_v1(http, sb, "ARM-2").json()
    assert (refused["code"], refused["msg"]) == ("BBS10000", "业务处理失败")
    assert create_v1(http, sb, "ARM-2").json()["code"] == "000000"
    assert http.get("/sandbox/api/orders").json()["total"] == 2


def test_v3_query_answers_an_armed_5xx_signed_then_recovers(
    http: httpx.Client, sb: Sandbox
) -> None:
    created = v3_post(http, sb, "special_create", v3_req_data(sb, "F5-1")).json()["resp_data"]
    step(
        http, created["pay_order_no"], {"fault": {"call": "query", "http_status": 503, "times": 2}}
    )
    query = {"merchant_no": "82229007392000A", "out_order_no": "F5-1"}
    for _ in range(2):
        failed = v3_post(http, sb, "query", query)
        assert failed.status_code == 503 and failed.json()["code"] == "SBX50001"
        assert "Lklapi-Signature" in failed.headers
    assert v3_post(http, sb, "query", query).json()["resp_data"]["order_status"] == "0"


def test_an_armed_close_error_changes_nothing(http: httpx.Client, sb: Sandbox) -> None:
    no = order(http, sb, "FC-1")
    step(
        http, no, {"fault": {"call": "close", "error": {"code": "BBS10000", "msg": "业务处理失败"}}}
    )
    assert http.post(V1 + "close", json={"out_order_no": "FC-1"}).json()["code"] == "BBS10000"
    assert http.get(f"/sandbox/api/orders/{no}").json()["order"]["order_status"] == "0"
    closed = http.post(V1 + "close", json={"out_order_no": "FC-1"}).json()
    assert closed["resp_data"]["order_status"] == "CLOSED"


def test_an_armed_latency_holds_the_answer(http: httpx.Client, sb: Sandbox) -> None:
    no = order(http, sb, "FL-1")
    step(http, no, {"fault": {"call": "any", "latency": 0.3}})
    started = time.monotonic()
    assert http.post(V1 + "query", json={"out_order_no": "FL-1"}).json()["code"] == "000000"
    assert time.monotonic() - started >= 0.3


def test_a_dropped_connection_reaches_an_in_process_client(http: httpx.Client, sb: Sandbox) -> None:
    no = order(http, sb, "FD-1")
    step(http, no, {"fault": {"drop": True}})
    with pytest.raises(httpx.RemoteProtocolError):
        http.post(V1 + "query", json={"out_order_no": "FD-1"})
    assert http.post(V1 + "query", json={"out_order_no": "FD-1"}).json()["code"] == "000000"


def test_a_served_sandbox_drops_the_connection_and_keeps_serving() -> None:
    with LiveSandbox() as live:
        created = live.http.post(
            V1 + "create", json={"out_order_no": "FD-2", "total_amount": 100, "order_info": "drop"}
        ).json()["resp_data"]
        step(live.http, created["pay_order_no"], {"fault": {"call": "query", "drop": True}})
        with pytest.raises(httpx.RemoteProtocolError):
            live.http.post(V1 + "query", json={"out_order_no": "FD-2"})
        again = live.http.post(V1 + "query", json={"out_order_no": "FD-2"}).json()
        assert again["resp_data"]["order_status"] == "WAIT_PAY"


@pytest.mark.parametrize(
    ("body", "text"),
    [
        ({"wait": 3}, "wait only makes sense in a scenario file"),
        ({"pay": {"notify": "sometimes"}}, "notify: must be one of"),
        ({"pya": {}}, "pya"),
        ({}, "must not be empty"),
    ],
)
def test_a_bad_step_is_refused_and_changes_nothing(
    http: httpx.Client, sb: Sandbox, body: dict[str, Any], text: str
) -> None:
    no = order(http, sb, "STEP-1")
    response = step(http, no, body)
    assert response.status_code == 400 and text in response.json()["msg"]
    assert http.get(f"/sandbox/api/orders/{no}").json()["order"]["order_status"] == "0"


def test_a_step_runs_like_a_click(http: httpx.Client, sb: Sandbox) -> None:
    no = order(http, sb, "STEP-2")
    paid = step(http, no, {"pay": {"pay_mode": "ALIPAY", "notify": "never"}})
    assert paid.status_code == 200 and paid.json()["order"]["order_status"] == "2"
    illegal = step(http, no, {"pay": {}})
    assert illegal.status_code == 409 and illegal.json()["code"] == "SBX20003"


# -- runs -----------------------------------------------------------------------------------------
def test_a_forbidden_step_stops_the_run_with_the_engines_reason(
    http: httpx.Client, sb: Sandbox
) -> None:
    no = str(
        create_v1(http, sb, "RP-0", total_amount=911, support_repeat_pay=0).json()["resp_data"][
            "pay_order_no"
        ]
    )
    http.post("/sandbox/api/clock/advance", json={"seconds": 7})
    assert sb.notifier.drain(5)
    run = http.get(f"/sandbox/api/orders/{no}/scenario").json()["run"]
    assert run["state"] == "failed"
    assert "step 4 (pay)" in run["error"] and "support_repeat_pay=1" in run["error"]
    assert [entry["ok"] for entry in run["log"]] == [True, False]
    assert http.get(f"/sandbox/api/orders/{no}").json()["order"]["order_status"] == "3"


def test_steps_keep_their_own_times_when_the_clock_jumps(http: httpx.Client, sb: Sandbox) -> None:
    created = v3_post(
        http, sb, "special_create", v3_req_data(sb, "JUMP-1", total_amount=905)
    ).json()["resp_data"]
    start = sb.clock.parse(created["order_create_time"])
    http.post("/sandbox/api/clock/advance", json={"seconds": 7200})
    order = http.get(f"/sandbox/api/orders/{created['pay_order_no']}").json()["order"]
    assert order["order_status"] == "2"  # paid at 7 s, before the order's expiry at 1 h
    paid = next(t for t in order["trades"] if t["trade_type"] == "PAY")
    assert sb.clock.parse(paid["trade_time"]) - start == pytest.approx(7, abs=1)


def test_a_pending_wait_survives_a_restart(tmp_path: Path) -> None:
    first = make_app(data_dir=str(tmp_path), clock_speed=0)
    with httpx.Client(transport=InProcessTransport(first), base_url="http://t") as http:
        create_v1(http, first.state.sandbox, "DURABLE-1", total_amount=901)
        http.post("/sandbox/api/clock/advance", json={"seconds": 2})
    first.state.sandbox.close()
    second = make_app(data_dir=str(tmp_path), clock_speed=0)
    with httpx.Client(transport=InProcessTransport(second), base_url="http://t") as http:
        assert (
            http.post(V1 + "query", json={"out_order_no": "DURABLE-1"}).json()["resp_data"][
                "order_status"
            ]
            == "WAIT_PAY"
        )
        http.post("/sandbox/api/clock/advance", json={"seconds": 1})
        assert (
            http.post(V1 + "query", json={"out_order_no": "DURABLE-1"}).json()["resp_data"][
                "order_status"
            ]
            == "SUCCESS"
        )
    second.state.sandbox.close()


def test_readme_magic_amount_example_pays_and_notifies() -> None:
    section = README.read_text(encoding="utf-8").split("## Scenarios, the clock and notifies")[1]
    example = re.findall(r"```bash\n(.*?)```", section, flags=re.S)[0]
    with (
        LiveSandbox(clock_speed=0) as live,
        Receiver(live.http.get("/sandbox/keys/platform.cer").content) as rx,
    ):
        script = example.replace("http://127.0.0.1:8090", live.url).replace(
            "http://127.0.0.1:9000/notify", rx.url()
        )
        result = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", script], capture_output=True, text=True, timeout=30
        )
        assert result.returncode == 0 and '"code":"000000"' in result.stdout, result.stderr
        live.http.post("/sandbox/api/clock/advance", json={"seconds": 3})
        notify = rx.wait_for(1)[0]
        assert notify.verified and notify.json()["order_status"] == "SUCCESS"


def test_a_query_of_an_unknown_order_is_answered_as_usual(http: httpx.Client, sb: Sandbox) -> None:
    query = {"merchant_no": "82229007392000A", "out_order_no": "NOPE"}
    assert v3_post(http, sb, "query", query).json()["code"] == "SBX20002"


# -- names from file names ------------------------------------------------------------------------
@pytest.fixture
def capitalised(tmp_path: Path) -> Iterator[tuple[httpx.Client, Sandbox]]:
    # no name: key, so the name comes from the file name: in lower case, as names are looked up
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "BigOrders.yaml").write_text(
        "description: big orders\nmatch:\n  amount: {min: 100000}\nsteps: []\n", encoding="utf-8"
    )
    app = make_app(scenarios_dir=str(folder), clock_speed=0)
    with httpx.Client(transport=InProcessTransport(app), base_url="http://t") as http:
        yield http, app.state.sandbox
    app.state.sandbox.close()


@pytest.mark.parametrize(
    ("headers", "changes"),
    [
        ({"X-Sandbox-Scenario": "BigOrders"}, {}),
        ({"X-Sandbox-Scenario": "bigorders"}, {}),
        ({}, {"order_info": "[scenario:BigOrders]"}),
        ({}, {"total_amount": 100000}),
    ],
    ids=["header-as-file", "header-lower", "tag-as-file", "matched"],
)
def test_a_file_named_in_capitals_is_found_by_its_name(
    capitalised: tuple[httpx.Client, Sandbox], headers: dict[str, str], changes: dict[str, Any]
) -> None:
    http, sb = capitalised
    assert create_v1(http, sb, "CAPS-1", headers, **changes).json()["code"] == "000000"
    assert scenario_of(http, "CAPS-1") == "bigorders"
    names = [s["name"] for s in http.get("/sandbox/api/scenarios").json()["scenarios"]]
    assert "bigorders" in names and "BigOrders" not in names
