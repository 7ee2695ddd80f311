"""The contract command: passes against the sandbox, names the field and rule of any drift."""

from __future__ import annotations

import copy
import json
import socket
import struct
import subprocess
import sys
import threading
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from sandbox.core.settings import Settings
from sandbox.server.app import create_app
from sandbox.testing.plugin import ServerThread
from sandbox.tools import contract
from sandbox.tools.cli import main
from sandbox.wire.messages import REFUND_PATHS
from tests.doubles import Answer, DriftingApp, Mutate, drop_field, omit_header, retype_field


def _wrapped(make: Callable[[Any], Mutate]) -> Callable[[Any], Any]:
    return lambda app: DriftingApp(app, make(app.state.sandbox))


def test_contract_passes_against_the_sandbox() -> None:
    target = contract.sandbox_target()
    try:
        report = contract.check(target)
    finally:
        target.close()
    assert report.ok, report.table()
    steps = {r.step for r in report.rows}
    assert steps == {
        "create",
        "query",
        "close",
        "create (to pay)",
        "pay",
        "notify",
        "query (paid)",
    } | {
        "create (refund)",
        "pay (refund)",
        "query (refund)",
        *(contract.STEP_NAMES.get(op, op) for op in REFUND_PATHS),
        "query (refunds)",
    }
    checks = {(r.step, r.check) for r in report.rows}
    for expected in [
        ("create", "response signature headers"),
        ("create", "response signature"),
        ("query", "response data"),
        ("notify", "notify signature header"),
        ("notify", "notify signature"),
        ("notify", "notify body"),
        ("notify", "notify answer"),
    ]:
        assert expected in checks
    for op in REFUND_PATHS:  # each refund API's answer checked against its schema
        step = contract.STEP_NAMES.get(op, op)
        assert (step, "response data") in checks and (step, "answered") in checks
    kinds = [m["kind"] for m in report.messages]
    assert kinds == ["exchange"] * 4 + ["notify", "exchange"] + ["exchange"] * 8


def test_contract_command_prints_a_table_and_writes_junit(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    junit = tmp_path / "contract.xml"
    assert main(["contract", "--junit", str(junit)]) == 0
    out = capsys.readouterr().out
    assert "create           response signature          ok" in out
    assert out.rstrip().endswith("checks, no drift")
    suite = ET.parse(junit).getroot().find("testsuite")
    assert suite is not None and suite.get("failures") == "0"
    assert int(suite.get("tests", "0")) == len(suite.findall("testcase")) >= 40
    assert suite.find("testcase[@name='notify signature']") is not None


DRIFTS: list[tuple[str, Callable[[Any], Mutate], str, str, str]] = [
    (
        "create drops counter_url",
        lambda sb: drop_field(sb, "special_create", "counter_url"),
        "create",
        "response data",
        "resp_data.counter_url: is required",
    ),
    (
        "query sends total_amount as text",
        lambda sb: retype_field(sb, "query", "total_amount", "1"),
        "query",
        "response data",
        "resp_data.total_amount: must be of type integer (got str)",
    ),
    (
        "close reports an unknown status",
        lambda sb: retype_field(sb, "close", "order_status", 7),
        "close",
        "response data",
        "resp_data.order_status",
    ),
    (
        "idmrefund drops out_refund_order_no",
        lambda sb: drop_field(sb, "idmrefund", "out_refund_order_no"),
        "idmrefund",
        "response data",
        "resp_data.out_refund_order_no: is required",
    ),
    (
        "trade_refund_query answers a refund_list that is not a list",
        lambda sb: retype_field(sb, "trade_refund_query", "refund_list", {}),
        "trade_rfd_query",
        "response data",
        "resp_data.refund_list",
    ),
    (
        "no Lklapi-Signature",
        lambda sb: omit_header("Lklapi-Signature"),
        "create",
        "response signature headers",
        "lklapi-signature: is required",
    ),
    (
        "no Lklapi-Serial",
        lambda sb: omit_header("Lklapi-Serial"),
        "query",
        "response signature headers",
        "lklapi-serial: is required",
    ),
]


def _report_for(make: Callable[[Any], Mutate]) -> contract.Report:
    """The contract run against a sandbox whose answers ``make`` changes."""
    target = contract.sandbox_target(wrap=_wrapped(make))
    try:
        return contract.check(target)
    finally:
        target.close()


@pytest.mark.parametrize(
    ("case", "make", "step", "check", "finding"), DRIFTS, ids=[d[0] for d in DRIFTS]
)
def test_contract_fails_naming_the_field_on_drift(
    case: str, make: Callable[[Any], Mutate], step: str, check: str, finding: str
) -> None:
    report = _report_for(make)
    assert not report.ok
    failed = {(r.step, r.check): "; ".join(map(str, r.findings)) for r in report.failures}
    assert (step, check) in failed, report.table()
    assert finding in failed[(step, check)]
    assert finding in report.table()
    junit = ET.fromstring(report.junit())
    messages = [f.get("message", "") for f in junit.iter("failure")]
    assert any(finding in m for m in messages)


@pytest.fixture
def drifting_server() -> Iterator[str]:
    app = create_app(Settings(data_dir=":memory:"))
    double = DriftingApp(app, drop_field(app.state.sandbox, "query", "order_trade_info_list"))
    server = ServerThread(double).start()
    yield server.url
    server.stop()
    app.state.sandbox.close()


def test_contract_command_exits_non_zero_against_a_drifting_url(
    drifting_server: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    junit = tmp_path / "drift.xml"
    code = main(["contract", "--target", drifting_server, "--junit", str(junit)])
    out = capsys.readouterr().out
    assert code == 1
    assert "resp_data.order_trade_info_list: is required" in out
    assert "FAIL" in out and "check(s) failed" in out
    suite = ET.parse(junit).getroot().find("testsuite")
    assert suite is not None and suite.get("failures") == "1"


def test_contract_against_a_served_sandbox_url_with_its_notify(
    capsys: pytest.CaptureFixture[str],
) -> None:
    app = create_app(Settings(data_dir=":memory:"))
    server = ServerThread(app).start()
    try:
        assert main(["contract", "--target", server.url, "--with-notify"]) == 0
    finally:
        server.stop()
        app.state.sandbox.close()
    out = capsys.readouterr().out
    assert "notify           notify signature" in out and "no drift" in out


def _recorded(folder: Path) -> dict[str, Any]:
    target = contract.sandbox_target()
    try:
        assert contract.check(target, record=folder).ok
    finally:
        target.close()
    return dict(json.loads((folder / contract.RECORDING).read_text(encoding="utf-8")))


def test_record_then_replay_round_trip(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    doc = _recorded(tmp_path / "rec")
    assert [m["step"] for m in doc["messages"]] == [
        "create",
        "query",
        "close",
        "create (to pay)",
        "notify",
        "query (paid)",
        "create (refund)",
        "query (refund)",
        "relation_refund",
        "trade_refund",
        "idmrefund",
        "idmrefundquery",
        "trade_rfd_query",
        "query (refunds)",
    ]
    text = (tmp_path / "rec" / contract.RECORDING).read_text(encoding="utf-8")
    assert "PRIVATE KEY" not in text
    for message in doc["messages"]:
        if message["kind"] == "exchange":
            assert 'signature="<redacted>"' in message["request"]["headers"]["Authorization"]
    assert doc["certificates"]["platform"].startswith("-----BEGIN CERTIFICATE-----")
    report = contract.replay(tmp_path / "rec")
    assert report.ok, report.table()
    assert {r.check for r in report.rows} >= {
        "response signature",
        "notify signature",
        "request body",
        "response data",
    }
    assert main(["contract", "--replay", str(tmp_path / "rec")]) == 0
    assert "replay of sandbox" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("case", "tamper", "step", "finding"),
    [
        (
            "a notify field removed",
            lambda m: m[4]["request"].update(
                body=json.dumps(
                    {
                        k: v
                        for k, v in json.loads(m[4]["request"]["body"]).items()
                        if k != "order_trade_info"
                    },
                    ensure_ascii=False,
                )
            ),
            "notify",
            "order_trade_info: is required",
        ),
        (
            "a response body edited",
            lambda m: m[1]["response"].update(
                body=m[1]["response"]["body"].replace('"order_status":"0"', '"order_status":"1"')
            ),
            "query",
            "lklapi-signature: does not verify",
        ),
        (
            "a response header lost",
            lambda m: m[2]["response"]["headers"].pop("lklapi-nonce"),
            "close",
            "lklapi-nonce: is required",
        ),
        (
            "a request field too long",
            lambda m: m[0]["request"].update(
                body=m[0]["request"]["body"].replace(
                    '"order_info":"contract check"', '"order_info":"' + "x" * 65 + '"'
                )
            ),
            "create",
            "req_data.order_info: must be at most 64 characters (got 65)",
        ),
    ],
)
def test_replay_names_what_a_recording_breaks(
    tmp_path: Path,
    case: str,
    tamper: Callable[[list[dict[str, Any]]], None],
    step: str,
    finding: str,
) -> None:
    doc = _recorded(tmp_path / "rec")
    tamper(doc["messages"])
    (tmp_path / "rec" / contract.RECORDING).write_text(
        json.dumps(doc, ensure_ascii=False), encoding="utf-8"
    )
    report = contract.replay(tmp_path / "rec")
    assert not report.ok
    found = [str(f) for r in report.failures if r.step == step for f in r.findings]
    assert any(finding in f for f in found), report.table()
    assert main(["contract", "--replay", str(tmp_path / "rec")]) == 1


def test_replay_of_something_else_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / contract.RECORDING).write_text('{"messages": []}', encoding="utf-8")
    assert main(["contract", "--replay", str(tmp_path)]) == 2
    assert "not a contract recording" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--target", "lakala-test"],
            "the lakala-test environment needs appid, serial_no, private_key, certificate",
        ),
        (["--target", "staging"], "--target must be sandbox, lakala-test or an http(s) URL"),
        (["--target", "http://"], "--target 'http://' has no host"),
        (["--target", "https://:443/"], "--target 'https://:443/' has no host"),
    ],
)
@pytest.mark.usefixtures("no_lakala_settings")
def test_contract_usage_errors_exit_2(
    args: list[str],
    message: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["contract", *args]) == 2
    out, err = capsys.readouterr()
    assert message in err and len(err.strip().splitlines()) == 1
    assert out == ""  # nothing was run


@pytest.mark.parametrize(
    ("option", "where", "message"),
    [
        ("--junit", ".", "is a folder; give a file name"),
        ("--junit", "no-such-folder/contract.xml", "cannot be written (No such file or directory)"),
        ("--record", "a-file", "is a file; give a folder to write recording.json in"),
    ],
)
def test_an_output_that_cannot_be_written_stops_the_command_before_any_check(
    option: str, where: str, message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "a-file").write_text("not a folder", encoding="utf-8")
    target = tmp_path / where
    assert main(["contract", option, str(target)]) == 2
    out, err = capsys.readouterr()
    assert err.strip() == f"lakala-sandbox contract: {option} {target}: {message}"
    assert out == ""  # no check ran
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file"]  # nothing was written


def _unsigned(sb: Any) -> Mutate:
    def mutate(path: str, answer: Answer) -> Answer:
        headers = {k: v for k, v in answer.headers.items() if not k.lower().startswith("lklapi-")}
        return replace(answer, headers=headers)

    return mutate


def _without(*names: str) -> Callable[[Any], Mutate]:
    def make(sb: Any) -> Mutate:
        def mutate(path: str, answer: Answer) -> Answer:
            kept = {k: v for k, v in answer.headers.items() if k.lower() not in names}
            return replace(answer, headers=kept)

        return mutate

    return make


@pytest.mark.parametrize(
    ("make", "findings"),
    [
        (
            _unsigned,
            [
                "lklapi-*: missing: the response carries no Lklapi-* signature headers, so it "
                "is not signed (expected Lklapi-Appid, Lklapi-Serial, Lklapi-Timestamp, "
                "Lklapi-Nonce, Lklapi-Signature)"
            ],
        ),
        (
            _without("lklapi-appid", "lklapi-nonce"),
            ["lklapi-appid: is required", "lklapi-nonce: is required"],
        ),
    ],
    ids=["no Lklapi-* header", "two missing"],
)
def test_missing_signature_headers_are_named_once_and_nothing_reads_signature_ok(
    make: Callable[[Any], Mutate], findings: list[str]
) -> None:
    report = _report_for(make)
    rows = {(r.step, r.check): [str(f) for f in r.findings] for r in report.rows}
    for step in ("create", "query", "close"):
        assert rows[(step, "response signature headers")] == findings
        assert (step, "response signature") not in rows  # not verified, so no verdict
    assert " response signature  " not in report.table()


@pytest.fixture(scope="module")
def recording(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return _recorded(tmp_path_factory.mktemp("recording"))


def _set(path: str, value: Any) -> Callable[[list[Any]], None]:
    """Set ``messages[i].a.b`` to ``value``; ``...`` deletes it."""

    def tamper(messages: list[Any]) -> None:
        index, *keys = path.split(".")
        holder = messages
        for key in [int(index), *keys[:-1]]:
            holder = holder[key]
        if value is ...:
            del holder[keys[-1]]
        else:
            holder[keys[-1]] = value

    return tamper


@pytest.mark.parametrize(
    ("tamper", "problem"),
    [
        (_set("0.kind", ...), "message 0: kind must be 'exchange' or 'notify', not None"),
        (_set("1.path", ...), "message 1: path is missing"),
        (_set("2.request", ...), "message 2: request is missing"),
        (_set("0.response", ...), "message 0: response is missing"),
        (
            _set("1.response.headers", None),
            "message 1: response.headers must be an object, not null",
        ),
        (_set("1.response.body", None), "message 1: response.body must be text, not null"),
        (
            _set("2.response.status", "200"),
            "message 2: response.status must be an integer, not text",
        ),
        (
            _set("0.request.headers", {"Authorization": 7}),
            "message 0: request.headers.Authorization must be text, not an integer",
        ),
        (_set("4.answer", ...), "message 4: answer is missing"),
        (_set("4.request.body", ["x"]), "message 4: request.body must be text, not an array"),
        (lambda m: m.__setitem__(3, None), "message 3: must be an object, not null"),
        (_set("5.step", None), "message 5: step must be text, not null"),
    ],
)
def test_replay_of_a_damaged_recording_names_the_message_and_field(
    recording: dict[str, Any],
    tamper: Callable[[list[Any]], None],
    problem: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    doc = copy.deepcopy(recording)
    tamper(doc["messages"])
    (tmp_path / contract.RECORDING).write_text(json.dumps(doc), encoding="utf-8")
    assert main(["contract", "--replay", str(tmp_path)]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.strip() == (
        f"lakala-sandbox contract: {tmp_path / contract.RECORDING}: "
        f"not a contract recording ({problem})"
    )


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # closed again before the command runs: nothing listens


@pytest.mark.usefixtures("no_lakala_settings")
def test_an_unreachable_target_exits_2_naming_it_before_any_check(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"http://127.0.0.1:{_closed_port()}"
    junit, record = tmp_path / "contract.xml", tmp_path / "rec"
    code = main(["contract", "--target", url, "--junit", str(junit), "--record", str(record)])
    out, err = capsys.readouterr()
    assert code == 2
    assert err.strip() == (
        f"lakala-sandbox contract: cannot reach the target {url} (Connection refused): "
        "is it running, and is the --target URL right (host, port, http or https)?"
    )
    assert out == ""  # no table: no check ran
    assert list(tmp_path.iterdir()) == []  # nothing written, no recording folder made


@pytest.mark.usefixtures("no_lakala_settings")
def test_the_command_run_by_a_user_against_nothing_exits_2() -> None:
    url = f"http://127.0.0.1:{_closed_port()}"
    result = subprocess.run(
        [sys.executable, "-m", "sandbox", "contract", "--target", url],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        f"lakala-sandbox contract: cannot reach the target {url} (Connection refused): "
        "is it running, and is the --target URL right (host, port, http or https)?"
    ]


@contextmanager
def _hanging_up(reset: bool) -> Iterator[str]:
    """A loopback server that takes every connection and closes it (or resets it) unanswered."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    listener.settimeout(0.1)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():  # bounded by the test's stop
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            conn.settimeout(2)
            try:
                conn.recv(65536)
            except OSError:
                pass
            if reset:
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        stop.set()
        thread.join(5)
        listener.close()


@pytest.mark.parametrize("reset", [False, True], ids=["closes", "resets"])
@pytest.mark.usefixtures("no_lakala_settings")
def test_a_target_that_hangs_up_without_answering_exits_2_in_one_line(
    reset: bool, capsys: pytest.CaptureFixture[str]
) -> None:
    with _hanging_up(reset) as url:
        code = main(["contract", "--target", url])
    out, err = capsys.readouterr()
    assert (code, out) == (2, "")  # no table: no check ran
    assert err.splitlines() == [
        f"lakala-sandbox contract: cannot reach the target {url} (it closes the connection "
        "without answering): is it running, and is the --target URL right (host, port, http "
        "or https)?"
    ]


@contextmanager
def _web_server(status: int, body: bytes, content_type: str) -> Iterator[str]:
    """A loopback server that is not a sandbox: every GET gets the same answer."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the http.server hook name
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@pytest.mark.parametrize(
    ("status", "body", "content_type", "answered"),
    [
        (404, b"not found", "text/plain", "answered HTTP 404"),
        (200, b"<html>shop</html>", "text/html", "answered something else (text/html, 17 bytes)"),
    ],
    ids=["404 for everything", "a page for everything"],
)
@pytest.mark.usefixtures("no_lakala_settings")
def test_a_target_that_hands_out_no_keys_exits_2_saying_what_to_give(
    status: int,
    body: bytes,
    content_type: str,
    answered: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    with _web_server(status, body, content_type) as url:
        code = main(["contract", "--target", url])
    out, err = capsys.readouterr()
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1
    assert f"the target {url} answers, but " in err
    assert "sandbox's merchant private key: GET /sandbox/keys/merchant_private_key.pem" in err
    assert answered in err
    assert (
        "give its credentials instead: LAKALA_PRIVATE_KEY_FILE and LAKALA_CERTIFICATE_FILE" in err
    )


@pytest.mark.usefixtures("no_lakala_settings")
def test_with_notify_against_a_sandbox_whose_admin_api_refuses_us_exits_2(
    capsys: pytest.CaptureFixture[str],
) -> None:
    app = create_app(Settings(data_dir=":memory:", admin_token="secret"))
    server = ServerThread(app).start()
    try:
        code = main(["contract", "--target", server.url, "--with-notify"])
        orders = app.state.sandbox.store.execute("SELECT 1 FROM orders")
    finally:
        server.stop()
        app.state.sandbox.close()
    out, err = capsys.readouterr()
    assert code == 2 and out == ""
    assert orders == []  # no check ran: nothing was created
    assert err.strip().startswith(
        f"lakala-sandbox contract: --with-notify pays an order through the admin API of the "
        f"target {server.url}, and it refused us (GET /sandbox/api/orders?limit=1 answered "
        "HTTP 403: forbidden: this sandbox's admin API needs its admin token"
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--record", "rec", "--replay", "rec"],
            "--record cannot be used with --replay: it calls nothing, so there is nothing new "
            "to record",
        ),
        (
            ["--target", "sandbox", "--replay", "rec"],
            "--target cannot be used with --replay: it checks the recording, and calls no target",
        ),
        (
            ["--with-notify", "--replay", "rec"],
            "--with-notify cannot be used with --replay: it calls no target, so pays no order",
        ),
        (
            ["--target", "lakala-test", "--with-notify"],
            "--with-notify needs a sandbox target: Lakala's test host has no admin API to pay "
            "an order with",
        ),
    ],
    ids=["record+replay", "target+replay", "with-notify+replay", "lakala-test+with-notify"],
)
@pytest.mark.usefixtures("no_lakala_settings")
def test_contradictory_options_exit_2_before_anything_runs(
    args: list[str],
    message: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["contract", *args]) == 2
    out, err = capsys.readouterr()
    assert err.strip() == f"lakala-sandbox contract: {message}"
    assert out == ""
    assert list(tmp_path.iterdir()) == []  # no recording made or read


def test_replay_says_which_checks_it_leaves_out_and_junit_counts_them_skipped(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    junit = tmp_path / "live.xml"
    assert main(["contract", "--record", str(tmp_path / "rec"), "--junit", str(junit)]) == 0
    live = ET.parse(junit).getroot().find("testsuite")
    assert live is not None and live.get("skipped") == "0"
    capsys.readouterr()
    replayed_xml = tmp_path / "replay.xml"
    assert main(["contract", "--replay", str(tmp_path / "rec"), "--junit", str(replayed_xml)]) == 0
    out = capsys.readouterr().out
    suite = ET.parse(replayed_xml).getroot().find("testsuite")
    assert suite is not None
    # every check of the live run is in the replay: run again, or skipped and said so
    cases = {(c.get("classname"), c.get("name")) for c in suite.findall("testcase")}
    assert {(c.get("classname"), c.get("name")) for c in live.findall("testcase")} == cases
    skipped = [c for c in suite.findall("testcase") if c.find("skipped") is not None]
    assert int(suite.get("skipped", "0")) == len(skipped) == 5 + 7  # + the refund flow's
    assert suite.get("tests") == live.get("tests")
    names = ", ".join(f"{c.get('classname', '')[9:]} / {c.get('name')}" for c in skipped)
    ran = int(suite.get("tests", "0")) - len(skipped)
    assert out.rstrip().endswith(
        f"{ran} checks, no drift; 12 left out ({names}): compares live calls with each other; "
        "a replay checks each message alone"
    )
    rows = [line.split() for line in out.splitlines()]
    assert ["query", "same", "order", "skipped:", "compares"] in [r[:5] for r in rows]
