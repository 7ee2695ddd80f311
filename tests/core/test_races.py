"""Simultaneous calls on one order: one winner, a documented answer for the rest, nothing torn."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from sandbox.runtime import Sandbox
from sandbox.testing.receiver import NotifyReceiver
from sandbox.wire.errors import SandboxError
from tests.servers import SandboxProcess, loopback
from tests.support import V1, seed_create

TIMEOUT = 60  # seconds any one burst may take
V1_ACK = {"code": "000000", "msg": "ok", "resp_time": "20261126000000"}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxProcess]:
    with SandboxProcess(tmp_path_factory.mktemp("races") / "data") as process:
        yield process


def burst(n: int, call: Callable[[int], Any]) -> list[Any]:
    """Run ``call(i)`` n times at once, released together by a barrier."""
    barrier = threading.Barrier(n, timeout=TIMEOUT)

    def run(i: int) -> Any:
        barrier.wait()
        return call(i)

    with ThreadPoolExecutor(max_workers=n) as pool:
        return [f.result(timeout=TIMEOUT) for f in [pool.submit(run, i) for i in range(n)]]


def beijing_future(server: SandboxProcess) -> str:
    now = loopback.get(server.url + "/healthz").json()["now"]
    return str(int(now) + 10000)  # one hour on in yyyyMMddHHmmss terms (HH + 1)


def create(server: SandboxProcess, out_order_no: str, **changes: Any) -> dict[str, Any]:
    body = {"out_order_no": out_order_no, "total_amount": 100, "order_info": "race", **changes}
    out = loopback.post(server.url + V1 + "create", json=body).json()
    assert out["code"] == "000000", out
    return out["resp_data"]  # type: ignore[no-any-return]


def test_fifty_simultaneous_pays_make_one_trade_and_one_notify(server: SandboxProcess) -> None:
    with NotifyReceiver(answer=V1_ACK) as merchant:
        no = create(server, "RACE-PAY", notify_url=merchant.url)["pay_order_no"]
        with httpx.Client(base_url=server.url, limits=httpx.Limits(max_connections=50)) as http:
            results = burst(50, lambda i: http.post(f"/sandbox/api/orders/{no}/pay").status_code)
            order = http.get(f"/sandbox/api/orders/{no}").json()["order"]
            merchant.wait(1, timeout=10)
            time.sleep(0.5)  # room for a wrongly doubled notify to arrive (real I/O, bounded)
            journal = http.get(f"/sandbox/api/orders/{no}/notifies").json()["notifies"]
    assert Counter(results) == {200: 1, 409: 49}
    assert order["order_status"] == "2"
    assert [(t["trade_type"], t["trade_status"]) for t in order["trades"]] == [("PAY", "S")]
    assert [r.json()["order_status"] for r in merchant.received] == ["SUCCESS"]
    assert [(a["sequence"], a["state"]) for a in journal] == [(1, "delivered")]


def test_twenty_identical_creates_make_one_order(server: SandboxProcess) -> None:
    body = {"out_order_no": "RACE-CREATE", "total_amount": 100, "order_info": "race"}
    with httpx.Client(base_url=server.url, limits=httpx.Limits(max_connections=20)) as http:
        answers = burst(20, lambda i: http.post(V1 + "create", json=body).json())
        listed = http.get("/sandbox/api/orders", params={"limit": 1000}).json()["orders"]
    assert {a["code"] for a in answers} == {"000000"}
    assert len({a["resp_data"]["pay_order_no"] for a in answers}) == 1
    assert [o["out_order_no"] for o in listed].count("RACE-CREATE") == 1


def test_twenty_different_creates_with_one_order_number_keep_the_first(
    server: SandboxProcess,
) -> None:
    with httpx.Client(base_url=server.url, limits=httpx.Limits(max_connections=20)) as http:
        answers = burst(
            20,
            lambda i: http.post(
                V1 + "create",
                json={"out_order_no": "RACE-DIFF", "total_amount": 100 + i, "order_info": "race"},
            ).json(),
        )
        winner = [a for a in answers if a["code"] == "000000"]
        assert len(winner) == 1
        assert Counter(a["code"] for a in answers) == {"000000": 1, "SBX20001": 19}
        query = http.post(V1 + "query", json={"out_order_no": "RACE-DIFF"}).json()
    assert query["resp_data"]["total_amount"] == winner[0]["resp_data"]["total_amount"]


def test_close_racing_pay_ends_in_one_consistent_state(server: SandboxProcess) -> None:
    finals = []
    with httpx.Client(base_url=server.url, limits=httpx.Limits(max_connections=2)) as http:
        for round_ in range(15):
            no = create(server, f"RACE-CP-{round_}")["pay_order_no"]

            def pay_or_close(i: int, no: str = no) -> dict[str, Any]:
                if i == 0:
                    return http.post(f"/sandbox/api/orders/{no}/pay").json()  # type: ignore[no-any-return]
                return http.post(V1 + "close", json={"pay_order_no": no}).json()  # type: ignore[no-any-return]

            codes = burst(2, pay_or_close)
            order = http.get(f"/sandbox/api/orders/{no}").json()["order"]
            paid = [t for t in order["trades"] if t["trade_status"] == "S"]
            if order["order_status"] == "2":
                assert codes[1]["code"] == "SBX20003" and len(paid) == 1
            else:
                assert order["order_status"] == "7"
                assert codes[0]["code"] == "SBX20003" and paid == []
            finals.append(order["order_status"])
    assert set(finals) <= {"2", "7"}


def test_threads_on_one_engine_serialise(sb: Sandbox, http: httpx.Client) -> None:
    """The same rule holds in-process, with real threads on the shared SQLite connection."""
    no = http.post(
        V1 + "create", json=seed_create(sb, "RACE-THREADS", support_repeat_pay=0)
    ).json()["resp_data"]["pay_order_no"]
    actions = ["pay", "fail", "close", "cancel", "paying"] * 8
    changes: list[tuple[int | None, int]] = []
    sb.engine.listeners.append(
        lambda change: changes.append((change.old_status, change.new_status))
    )

    def act(i: int) -> str:
        try:
            sb.engine.apply(no, actions[i], source="test")
            return "ok"
        except SandboxError as error:
            return error.code

    results = burst(len(actions), act)
    order = sb.engine.get(no)
    # at most paying, then one of pay/fail/close/cancel, then close after a failure;
    # the changes heard form one chain (a repeated close is a no-op retry, not a change)
    assert 1 <= len(changes) <= 3
    assert all(prev[1] == nxt[0] for prev, nxt in zip(changes, changes[1:], strict=False))
    assert changes[-1][1] == order.status
    assert results.count("ok") >= len(changes)
    succeeded = sum(t["trade_status"] == "S" for t in order.trades)
    failed = sum(t["trade_status"] == "F" for t in order.trades)
    if order.status == 2:
        assert (succeeded, failed) == (1, 0)
    elif order.status == 3:
        assert (succeeded, failed) == (0, 1)
    else:
        assert order.status in (1, 5, 7) and succeeded == 0 and failed <= 1
