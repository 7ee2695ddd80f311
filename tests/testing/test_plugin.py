"""The pytest plugin: registered once through its entry point, fixtures that do what they say."""

from __future__ import annotations

import dataclasses
import importlib.metadata
import json
import re
import socket
import time
from pathlib import Path

import httpx
import pytest

import sandbox.testing.plugin as plugin
from sandbox.core.ids import Ids
from sandbox.core.settings import Settings
from sandbox.testing.plugin import LakalaSandbox
from sandbox.testing.receiver import NotifyReceiver, Received
from tests.paths import ROOT
from tests.servers import loopback
from tests.support import USER_RUN, V1, V3

pytest_plugins = ["pytester"]

EXAMPLE = ROOT / "tests" / "testing" / "test_plugin_example.py"
EXAMPLE_V1 = ROOT / "tests" / "testing" / "test_plugin_example_v1.py"


@pytest.mark.parametrize("example", [EXAMPLE, EXAMPLE_V1], ids=lambda p: p.name)
def test_readme_shows_the_example_file_as_it_is(example: Path) -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    name = example.relative_to(ROOT).as_posix()
    shown = re.search(
        rf"<!-- example: {re.escape(name)} -->\n```python\n(.*?)```", readme, flags=re.S
    )
    assert shown is not None, f"the README lost the pytest example {name}"
    assert shown.group(1) == example.read_text(encoding="utf-8")


def test_the_plugin_is_registered_once_through_its_entry_point(pytestconfig: pytest.Config) -> None:
    points = [
        e
        for e in importlib.metadata.entry_points(group="pytest11")
        if e.value == "sandbox.testing.plugin"
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
    # pytest-asyncio, if installed, warns about its own unset option: not this plugin's business.
    # In a subprocess, as a user runs it: in-process, pytester's module clean-up left httpx
    # half re-imported, and later tests' connection errors escaped as httpcore's own
    result = pytester.runpytest_subprocess(*USER_RUN, "-q")
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
    assert loopback.get(lakala_sandbox_server.base_url + "/healthz").json()["status"] == "ok"
    assert lakala_sandbox_server.sandbox is None
    created = lakala_sandbox_server.client.create(
        out_order_no="SRV-1", total_amount=1, order_info="served"
    )
    assert (
        lakala_sandbox_server.client.query(pay_order_no=created["pay_order_no"])["order_status"]
        == "0"
    )
    unsigned = loopback.post(lakala_sandbox_server.base_url + V3 + "query", json={})
    assert unsigned.json()["code"] == "SBX30001"


@pytest.mark.parametrize(
    ("marker", "problem"),
    [
        (
            "lakala_sandbox(bogus_option=1)",
            "@pytest.mark.lakala_sandbox(bogus_option=1): unknown option bogus_option. Its "
            "options are the sandbox's settings: host, port, data_dir, seed, signature,",
        ),
        (
            "lakala_sandbox(signatur='warn')",
            "unknown option signatur (did you mean signature?)",
        ),
        ("lakala_sandbox('warn')", 'takes settings as keywords only, such as signature="warn"'),
        (
            "lakala_sandbox(notify_timeout=0)",
            "@pytest.mark.lakala_sandbox(notify_timeout=0): notify_timeout "
            "(LAKALA_SANDBOX_NOTIFY_TIMEOUT) must be from 0.001 to 3600, not 0",
        ),
    ],
    ids=["unknown", "typo", "positional", "bad value"],
)
def test_a_bad_marker_option_is_a_usage_error_naming_it(
    marker: str, problem: str, pytester: pytest.Pytester
) -> None:
    pytester.makepyfile(
        test_shop=f"""
        import pytest

        @pytest.mark.{marker}
        def test_marked(lakala_sandbox):
            pass

        def test_other():
            pass
        """
    )
    result = pytester.runpytest(*USER_RUN, "-q")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    errors = [line for line in result.errlines if line.startswith("ERROR: ")]
    assert len(errors) == 1 and errors[0].startswith("ERROR: test_shop.py::test_marked: ")
    assert problem in errors[0]
    assert "TypeError" not in result.stdout.str() + result.stderr.str()
    result.assert_outcomes()  # nothing ran, not even the unmarked test


def test_every_marker_option_is_a_setting() -> None:
    names = [f.name for f in dataclasses.fields(Settings)]
    assert plugin.marker_options() == names


# -- wait_for_notifies: it fails at once when what it waits for can no longer happen ---------


def test_waiting_for_the_notify_of_an_order_without_notify_url_fails_at_once(
    lakala_sandbox: LakalaSandbox,
) -> None:
    order = lakala_sandbox.client.create(out_order_no="W-1", total_amount=1, order_info="w")
    lakala_sandbox.pay(order["pay_order_no"])
    started = time.monotonic()
    with pytest.raises(AssertionError) as raised:
        lakala_sandbox.wait_for_notifies(order["pay_order_no"], timeout=10)
    assert time.monotonic() - started < 2  # not the whole timeout
    assert str(raised.value) == (
        f"0 of 1 notifies of {order['pay_order_no']} delivered, and no more will be: "
        "notify 1 (pay) skipped: the order has no notify_url"
    )


@pytest.mark.lakala_sandbox(notify_ladder=(0.01,), notify_timeout=1)
def test_waiting_for_a_notify_that_was_given_up_fails_at_once_with_the_last_error(
    lakala_sandbox: LakalaSandbox,
) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{s.getsockname()[1]}/notify"  # nothing listens once closed
    order = lakala_sandbox.client.create(
        out_order_no="W-2", total_amount=1, order_info="w", notify_url=url
    )
    lakala_sandbox.pay(order["pay_order_no"])
    started = time.monotonic()
    with pytest.raises(AssertionError) as raised:
        lakala_sandbox.wait_for_notifies(order["pay_order_no"], timeout=10)
    assert time.monotonic() - started < 5
    message = str(raised.value)
    assert message.startswith(
        f"0 of 1 notifies of {order['pay_order_no']} delivered, and no more will be: "
        "notify 1 (pay) given_up after 2 attempts: "
    )
    assert "Connect" in message  # the journaled error of the last attempt


@pytest.mark.lakala_sandbox(clock_speed=0)
def test_a_skipped_notify_does_not_end_the_wait_while_the_scenario_has_steps_left(
    lakala_sandbox: LakalaSandbox,
) -> None:
    # repeat-pay (amount 911): fails after 2 s, pays 5 s later; each change notifies
    order = lakala_sandbox.client.create(
        out_order_no="W-3", total_amount=911, order_info="w", support_repeat_pay=1
    )
    no = order["pay_order_no"]
    lakala_sandbox.clock.advance(2)  # the failure: its notify skipped (no notify_url)
    with pytest.raises(TimeoutError) as raised:  # the scenario's pay is still to come
        lakala_sandbox.wait_for_notifies(no, timeout=0.3)
    assert str(raised.value) == (
        f"0 of 1 notifies of {no} delivered within 0.3s "
        "(notify 1 (fail) skipped: the order has no notify_url)"
    )
    lakala_sandbox.clock.advance(5)  # the payment: the scenario is over
    with pytest.raises(AssertionError, match=r"no more will be: notify 1 \(fail\) skipped: .*; "):
        lakala_sandbox.wait_for_notifies(no, timeout=10)
    # what a skipped notify is waited for as, it is
    assert len(lakala_sandbox.wait_for_notifies(no, 2, state="skipped", timeout=1)) == 2


def test_waiting_for_a_notify_still_to_be_sent_times_out_saying_when_it_is_due(
    lakala_sandbox: LakalaSandbox,
) -> None:
    order = lakala_sandbox.client.create(
        out_order_no="W-4", total_amount=1, order_info="w", notify_url="http://127.0.0.1:9/n"
    )
    lakala_sandbox.pay(order["pay_order_no"], notify={"after": 3600})
    with pytest.raises(TimeoutError, match=r"notify 1 \(pay\) pending, due at \d{14}\)$"):
        lakala_sandbox.wait_for_notifies(order["pay_order_no"], timeout=0.3)


def test_a_bad_marker_added_while_the_test_runs_fails_that_test_naming_it(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        test_shop="""
        import pytest

        @pytest.fixture(autouse=True)
        def mark(request):
            request.node.add_marker(pytest.mark.lakala_sandbox(sed=2))

        def test_marked_late(lakala_sandbox):
            pass
        """
    )
    result = pytester.runpytest(*USER_RUN, "-q")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        ["*@pytest.mark.lakala_sandbox(sed=2): unknown option sed (did you mean seed?)*"]
    )


# -- NotifyReceiver answers each dialect's ack; a timeout quotes why the last attempt failed ----


def test_the_receiver_acknowledges_a_v1_notify_in_the_v1_dialect(
    lakala_sandbox_server: LakalaSandbox,
) -> None:
    with NotifyReceiver() as merchant:
        answer = lakala_sandbox_server.http.post(
            "/api/v1/payment/lakala/counter/create",
            json={
                "out_order_no": "RX-V1",
                "total_amount": 100,
                "order_info": "v1 tea",
                "notify_url": merchant.url,
            },
        ).json()
        no = answer["resp_data"]["pay_order_no"]
        lakala_sandbox_server.pay(no)
        sent = lakala_sandbox_server.wait_for_notifies(no, timeout=10)
        notify = merchant.wait(1)[0]
    assert notify.json()["order_status"] == "SUCCESS"
    assert json.loads(notify.answer)["code"] == "000000"
    assert sent[0]["state"] == "delivered" and sent[0]["attempt"] == 1


def test_the_receiver_runs_its_handler_before_it_answers_and_answers_nothing_if_it_fails() -> None:
    steps: list[str] = []

    def handle(received: Received) -> None:
        steps.append(f"handled {received.json()['n']}")
        if received.json()["n"] == 2:
            raise RuntimeError("the merchant's handler failed")

    with NotifyReceiver(handle=handle) as merchant:
        first = loopback.post(merchant.url, json={"n": 1, "resp_time": "20261207000000"})
        steps.append("answered")
        with pytest.raises(httpx.RemoteProtocolError):
            loopback.post(merchant.url, json={"n": 2, "resp_time": "20261207000000"})
        assert len(merchant.wait(2)) == 2  # (both recorded, the failed one too)
    assert first.json()["code"] == "000000"  # (a v1 body: the v1 ack)
    assert steps == ["handled 1", "answered", "handled 2"]


def test_the_receiver_acknowledges_a_v3_notify_in_the_v3_dialect(
    lakala_sandbox: LakalaSandbox,
) -> None:
    with NotifyReceiver() as merchant:
        order = lakala_sandbox.client.create(
            out_order_no="RX-V3", total_amount=100, order_info="v3 tea", notify_url=merchant.url
        )
        lakala_sandbox.pay(order["pay_order_no"])
        lakala_sandbox.wait_for_notifies(order["pay_order_no"], timeout=10)
        notify = merchant.wait(1)[0]
    assert json.loads(notify.answer) == {"code": "SUCCESS", "message": "执行成功"}


def test_a_wait_that_times_out_quotes_why_the_last_attempt_failed(
    lakala_sandbox: LakalaSandbox,
) -> None:
    # a v1 order whose handler answers the v3 ack: the sandbox retries, and the wait says why
    with NotifyReceiver(answer={"code": "SUCCESS", "message": "执行成功"}) as merchant:
        answer = lakala_sandbox.http.post(
            "/api/v1/payment/lakala/counter/create",
            json={
                "out_order_no": "RX-WRONG",
                "total_amount": 100,
                "order_info": "w",
                "notify_url": merchant.url,
            },
        ).json()
        no = answer["resp_data"]["pay_order_no"]
        lakala_sandbox.pay(no)
        lakala_sandbox.wait_for_notifies(no, state="failed", timeout=10)
        with pytest.raises(TimeoutError) as raised:
            lakala_sandbox.wait_for_notifies(no, timeout=0.3)
    message = str(raised.value)
    assert message.startswith(f"0 of 1 notifies of {no} delivered within 0.3s (notify 1 (pay) ")
    assert 'attempt 1 failed: the answer is not the ack {"code":"000000",...}' in message
