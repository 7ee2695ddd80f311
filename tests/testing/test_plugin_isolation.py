"""The in-process fixture is one sandbox per session (per xdist worker), reset for every test:
nothing one test does is seen by the next, and each worker has a sandbox of its own."""

from __future__ import annotations

import json

import pytest

from tests.support import USER_RUN

pytest_plugins = ["pytester"]

ISOLATION = """
import time

import pytest

from sandbox.core.ids import Ids
from sandbox.testing.receiver import NotifyReceiver

FIRST = Ids(1).digits(18)  # seed 1: the number every fresh sandbox's first order gets
SEEN = {}
UNSIGNED = ('{"req_time":"20240101000000","version":"3.0","req_data":'
            '{"merchant_no":"M","out_order_no":"none"}}')
V3_QUERY = "/api/v3/ccss/counter/order/query"


@pytest.fixture(scope="module")
def receiver():
    with NotifyReceiver() as running:
        yield running


def dirty(sb, receiver):
    # an order with a notify still to come, the clock a day on and stopped, another default
    # scenario, a fault armed for the next create, a listener added by hand
    sb.clock.advance(86400)
    order = sb.client.create(out_order_no="DIRTY", total_amount=1, order_info="a",
                             notify_url=receiver.url)
    sb.pay(order["pay_order_no"], notify={"after": 60})
    assert [n["state"] for n in sb.notifies()] == ["pending"]
    sb.http.post("/sandbox/api/clock/speed", json={"speed": 0}).raise_for_status()
    sb.use_scenario("auto-fail")
    sb.sandbox.faults.arm(None, "create", {"error": {"code": "BBS11184", "msg": "armed"}})
    sb.sandbox.engine.listeners.append(lambda change: SEEN.setdefault("heard", change))


def assert_clean(sb, receiver, speed):
    assert sb.orders() == []
    assert sb.notifies() == []
    clock = sb.http.get("/sandbox/api/clock").json()["clock"]
    assert clock["advanced_seconds"] == 0 and clock["speed"] == speed
    assert abs(clock["offset_seconds"]) < 5  # back at wall time
    assert sb.http.get("/sandbox/api/scenarios").json()["default"] == SEEN["default"]
    # no armed fault, and the numbering starts over
    order = sb.client.create(out_order_no="LEAK", total_amount=1, order_info="b")
    assert order["pay_order_no"][-18:] == FIRST
    assert sb.order(order["pay_order_no"])["order_status"] == "0"
    assert "heard" not in SEEN
    # the last test's notify never comes, however far the clock goes
    sb.clock.advance(3600)
    time.sleep(0.3)
    assert receiver.received == []


@pytest.mark.lakala_sandbox(signature="off", clock_speed=0)
def test_1_marked_leaves_everything_behind(lakala_sandbox, receiver):
    SEEN["default"] = lakala_sandbox.http.get("/sandbox/api/scenarios").json()["default"]
    SEEN["marked"] = id(lakala_sandbox.sandbox)
    assert lakala_sandbox.http.post(V3_QUERY, content=UNSIGNED).json()["code"] == "SBX20002"
    dirty(lakala_sandbox, receiver)


def test_2_plain_sees_neither_its_state_nor_its_settings(lakala_sandbox, receiver):
    SEEN["plain"] = id(lakala_sandbox.sandbox)
    assert lakala_sandbox.http.post(V3_QUERY, content=UNSIGNED).json()["code"] == "SBX30001"
    assert_clean(lakala_sandbox, receiver, speed=1.0)
    dirty(lakala_sandbox, receiver)


@pytest.mark.lakala_sandbox(signature="off", clock_speed=0)
def test_3_marked_again_is_the_same_sandbox_as_new(lakala_sandbox, receiver):
    assert id(lakala_sandbox.sandbox) == SEEN["marked"]  # reset, not built again
    assert lakala_sandbox.http.post(V3_QUERY, content=UNSIGNED).json()["code"] == "SBX20002"
    assert_clean(lakala_sandbox, receiver, speed=0.0)


def test_4_plain_again_is_the_same_sandbox_as_new(lakala_sandbox, receiver):
    assert id(lakala_sandbox.sandbox) == SEEN["plain"]
    assert_clean(lakala_sandbox, receiver, speed=1.0)
"""

WORKERS = """
import json
import os

import pytest


@pytest.mark.parametrize("n", range(8))
def test_same_order_number_in_every_worker(lakala_sandbox, n, tmp_path_factory):
    # the same out_order_no at once in both workers: refused if they shared a sandbox
    lakala_sandbox.client.create(out_order_no="SAME", total_amount=1 + n, order_info="w")
    assert [o["out_order_no"] for o in lakala_sandbox.orders()] == ["SAME"]
    seen = {"worker": os.environ["PYTEST_XDIST_WORKER"], "pid": os.getpid(),
            "sandbox": id(lakala_sandbox.sandbox)}
    with open(os.environ["SEEN_FILE"], "a") as out:
        out.write(json.dumps(seen) + "\\n")
"""


def test_nothing_a_test_does_to_the_sandbox_reaches_the_next(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_isolation=ISOLATION)
    # in a subprocess, as a user runs it (see test_plugin.py); tests run in file order
    result = pytester.runpytest_subprocess(*USER_RUN, "-q")
    result.assert_outcomes(passed=4)


def test_each_xdist_worker_has_a_sandbox_of_its_own(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen_file = pytester.path / "seen.jsonl"
    monkeypatch.setenv("SEEN_FILE", str(seen_file))
    pytester.makepyfile(test_workers=WORKERS)
    result = pytester.runpytest_subprocess(*USER_RUN, "-q", "-n", "2", "--dist", "load")
    result.assert_outcomes(passed=8)
    seen = [json.loads(line) for line in seen_file.read_text().splitlines()]
    assert len(seen) == 8
    workers = {s["worker"] for s in seen}
    assert workers == {"gw0", "gw1"}
    for worker in workers:
        mine = [s for s in seen if s["worker"] == worker]
        assert len({s["pid"] for s in mine}) == 1  # a process of its own
        assert len({s["sandbox"] for s in mine}) == 1  # one sandbox, reset for each test
    assert len({s["pid"] for s in seen}) == 2
