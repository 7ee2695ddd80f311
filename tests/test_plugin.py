"""The pytest plugin: registered once through its entry point, fixtures that do what they say."""

from __future__ import annotations

import importlib.metadata
import re
import socket
from pathlib import Path

import httpx
import pytest

import sandbox.pytest_plugin as plugin
from sandbox.ids import Ids
from sandbox.pytest_plugin import LakalaSandbox
from tests.support import V1, V3

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "tests" / "test_plugin_example.py"


def test_readme_shows_the_example_file_as_it_is() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    shown = re.search(
        r"<!-- example: tests/test_plugin_example.py -->\n```python\n(.*?)```", readme, flags=re.S
    )
    assert shown is not None, "the README lost the pytest example"
    assert shown.group(1) == EXAMPLE.read_text(encoding="utf-8")


def test_the_plugin_is_registered_once_through_its_entry_point(pytestconfig: pytest.Config) -> None:
    points = [
        e
        for e in importlib.metadata.entry_points(group="pytest11")
        if e.value == "sandbox.pytest_plugin"
    ]
    assert [e.name for e in points] == ["lakala_sandbox"]
    manager = pytestconfig.pluginmanager
    assert manager.get_plugin("lakala_sandbox") is plugin
    assert [p for p in manager.get_plugins() if p is plugin] == [plugin]


def test_a_users_test_file_gets_the_fixtures(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_shop="""
        import pytest

        def test_in_process(lakala_sandbox):
            order = lakala_sandbox.client.create(out_order_no="U1", total_amount=1,
                                                 order_info="u")
            assert lakala_sandbox.order(order["pay_order_no"])["order_status"] == "0"

        @pytest.mark.lakala_sandbox(signature="off")
        def test_marker_settings(lakala_sandbox):
            raw = ('{"req_time":"20240101000000","version":"3.0","req_data":'
                   '{"merchant_no":"M","out_order_no":"none"}}')
            answer = lakala_sandbox.http.post("/api/v3/ccss/counter/order/query", content=raw)
            assert answer.json()["code"] == "SBX20002"  # looked up, not refused unsigned

        @pytest.mark.parametrize("amount", [1, 2])
        def test_served_sandbox_is_cleared_between_tests(lakala_sandbox_server, amount):
            # the same out_order_no with another amount would be refused if the order stayed
            lakala_sandbox_server.client.create(out_order_no="SAME", total_amount=amount,
                                                order_info="again")
            assert len(lakala_sandbox_server.orders()) == 1
    """
    )
    # pytest-asyncio, if installed, warns about its own unset option: not this plugin's business
    result = pytester.runpytest("-p", "no:cacheprovider", "-p", "no:asyncio", "-q")
    result.assert_outcomes(passed=4)


def test_in_process_sandbox_uses_no_socket(
    lakala_sandbox: LakalaSandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(*args: object) -> None:
        raise AssertionError("the in-process sandbox opened a connection")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    assert lakala_sandbox.base_url == "http://lakala-sandbox.test"
    assert lakala_sandbox.sandbox is lakala_sandbox.app.state.sandbox
    answer = lakala_sandbox.http.post(
        V1 + "create",
        json={"out_order_no": "P-1", "total_amount": 100, "order_info": "v1 in process"},
    )
    assert answer.json()["code"] == "000000"
    assert (
        lakala_sandbox.client.query(out_order_no="P-1", merchant_no="8222900701106PZ")[
            "order_status"
        ]
        == "0"
    )


def test_in_process_orders_are_reproducible(lakala_sandbox: LakalaSandbox) -> None:
    first = lakala_sandbox.client.create(out_order_no="SEED-1", total_amount=1, order_info="s")
    # seed 1 by default: the first order number is the seeded sequence's first, every run
    assert first["pay_order_no"][-18:] == Ids(1).digits(18)


def test_clock_advance_moves_the_sandbox_and_the_client_together(
    lakala_sandbox: LakalaSandbox,
) -> None:
    before = lakala_sandbox.clock.now()
    after = lakala_sandbox.clock.advance(86400)
    assert after[:8] > before[:8]
    # the client's default expiry follows the sandbox clock, so creating still works
    created = lakala_sandbox.client.create(
        out_order_no="LATER-1", total_amount=1, order_info="a day later"
    )
    assert created["order_create_time"][:8] == after[:8]


def test_act_and_notifies_of_every_order(lakala_sandbox: LakalaSandbox) -> None:
    a = lakala_sandbox.client.create(
        out_order_no="N-A", total_amount=1, order_info="a", notify_url="http://127.0.0.1:9/none"
    )
    b = lakala_sandbox.client.create(
        out_order_no="N-B", total_amount=1, order_info="b", notify_url="http://127.0.0.1:9/none"
    )
    assert lakala_sandbox.act(a["pay_order_no"], "fail")["order_status"] == "3"
    assert lakala_sandbox.pay(b["pay_order_no"], pay_mode="UNION")["order_status"] == "2"
    sent = lakala_sandbox.notifies()
    assert {n["pay_order_no"] for n in sent} == {a["pay_order_no"], b["pay_order_no"]}
    assert all(n["url"] == "http://127.0.0.1:9/none" for n in sent)
    with pytest.raises(AssertionError, match="answered 404"):
        lakala_sandbox.order("0" * 29)


def test_served_sandbox_is_a_real_url(lakala_sandbox_server: LakalaSandbox) -> None:
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+", lakala_sandbox_server.base_url)
    assert httpx.get(lakala_sandbox_server.base_url + "/healthz").json()["status"] == "ok"
    assert lakala_sandbox_server.sandbox is None
    created = lakala_sandbox_server.client.create(
        out_order_no="SRV-1", total_amount=1, order_info="served"
    )
    assert (
        lakala_sandbox_server.client.query(pay_order_no=created["pay_order_no"])["order_status"]
        == "0"
    )
    unsigned = httpx.post(lakala_sandbox_server.base_url + V3 + "query", json={})
    assert unsigned.json()["code"] == "SBX30001"
