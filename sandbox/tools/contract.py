"""``lakala-sandbox contract``: does a v3 counter API still say what ``schemas/`` says?

Runs create → query → close (and, against a sandbox, a paid order with its notify), checks every
request, response, signature header and notify with ``sandbox.wire.messages`` (the client's checks),
prints a table, optionally writes JUnit XML, and exits 1 on any drift, naming the field and the
rule. ``--record DIR`` stores the messages (request signatures redacted) with the public
certificates that verify them; ``--replay DIR`` checks such a recording again, offline.

Targets: ``sandbox`` (an in-process sandbox, the default), ``lakala-test`` (Lakala's test host,
credentials from the ``LAKALA_*`` variables) or a URL (credentials from ``LAKALA_*``; a sandbox
hands out its own keys).
"""

from __future__ import annotations

import argparse
import json
import math
import re
import secrets
import sys
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from sandbox.client.clients import (
    ENVIRONMENTS,
    PATHS,
    REFUND_PATHS,
    SANDBOX_KEY_PATHS,
    Exchange,
    LakalaClient,
)
from sandbox.client.errors import LakalaConfigError, LakalaError
from sandbox.client.transport import NO_KEEPALIVE, Answer, http_url_problem, send_bounded
from sandbox.core.clock import Clock
from sandbox.testing.receiver import NotifyReceiver
from sandbox.wire import messages as checks
from sandbox.wire import signing
from sandbox.wire.resources import schemas_dir
from sandbox.wire.schemas import Schemas
from sandbox.wire.tls import tls
from sandbox.wire.vocabulary import SUCCESS

RECORDING = "recording.json"
REDACTED = "<redacted>"
NOTIFY_WAIT = 15.0


# a step name that keeps the table's first column as wide as before
STEP_NAMES = {"trade_refund_query": "trade_rfd_query"}
# the refund flow's steps, in the order it calls them
REFUND_STEPS = ("relation_refund", "trade_refund", "idmrefund", "idmrefundquery", "trade_rfd_query")

# The checks of a live run that compare one call's answer with another's (or with what the admin
# API did) rather than check one message: a replay checks message by message and leaves them out.
# (step of the recorded message that shows the check was made, the row's step, the row's check)
FLOW_CHECKS = (
    ("query", "query", "same order"),
    ("close", "close", "order closed"),
    ("create (to pay)", "pay", "admin pay"),
    ("notify", "notify", "reports the payment"),
    ("query (paid)", "query (paid)", "order paid"),
    ("create (refund)", "pay (refund)", "admin pay"),
    *((step, step, "answered") for step in REFUND_STEPS),
    ("query (refunds)", "query (refunds)", "order refunded"),
)
FLOW_SKIP_REASON = "compares live calls with each other; a replay checks each message alone"


@dataclass
class Row:
    step: str
    check: str
    findings: list[checks.Finding]
    skipped: str | None = None  # why the check did not run

    @property
    def ok(self) -> bool:
        return not self.findings


@dataclass
class Report:
    target: str
    rows: list[Row] = field(default_factory=list)
    messages: list[dict[str, Any]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return bool(self.rows) and all(r.ok for r in self.rows)

    @property
    def failures(self) -> list[Row]:
        return [r for r in self.rows if not r.ok]

    @property
    def skipped(self) -> list[Row]:
        return [r for r in self.rows if r.skipped is not None]

    def add(self, step: str, audit: checks.Audit) -> None:
        self.rows.extend(Row(step, c.name, c.findings) for c in audit.checks)

    def fail(self, step: str, check: str, rule: str, field_name: str = "call") -> None:
        self.rows.append(Row(step, check, [checks.Finding("flow", field_name, rule)]))

    def table(self) -> str:
        width = max([len(r.step) for r in self.rows] + [4])
        cwidth = max([len(r.check) for r in self.rows] + [5])
        lines = [f"{'step':<{width}}  {'check':<{cwidth}}  result", "-" * (width + cwidth + 30)]
        for r in self.rows:
            if r.skipped is not None:
                result = f"skipped: {r.skipped}"
            else:
                result = "ok" if r.ok else "FAIL  " + "; ".join(map(str, r.findings))
            lines.append(f"{r.step:<{width}}  {r.check:<{cwidth}}  {result}")
        verdict = "no drift" if self.ok else f"{len(self.failures)} check(s) failed"
        skipped = self.skipped
        if skipped:
            ran = len(self.rows) - len(skipped)
            names = ", ".join(f"{r.step} / {r.check}" for r in skipped)
            lines.append(
                f"\n{self.target}: {ran} checks, {verdict}; {len(skipped)} left out ({names}): "
                f"{FLOW_SKIP_REASON}"
            )
        else:
            lines.append(f"\n{self.target}: {len(self.rows)} checks, {verdict}")
        return "\n".join(lines)

    def junit(self) -> bytes:
        suite = ET.Element(
            "testsuite",
            name=f"lakala-contract {self.target}",
            tests=str(len(self.rows)),
            failures=str(len(self.failures)),
            errors="0",
            skipped=str(len(self.skipped)),
        )
        for r in self.rows:
            case = ET.SubElement(suite, "testcase", classname=f"contract.{r.step}", name=r.check)
            if r.skipped is not None:
                ET.SubElement(case, "skipped", message=r.skipped)
            elif r.findings:
                failure = ET.SubElement(
                    case, "failure", message=str(r.findings[0]), type=r.findings[0].kind
                )
                failure.text = "\n".join(str(f) for f in r.findings)
        root = ET.Element("testsuites")
        root.append(suite)
        ET.indent(root)
        return ET.tostring(root, encoding="utf-8", xml_declaration=True)


@dataclass
class Target:
    """What the checks talk to: a client, and for a sandbox an admin client to pay an order."""

    label: str
    client: LakalaClient
    admin: httpx.Client | None = None
    closers: list[Callable[[], None]] = field(default_factory=list)

    def close(self) -> None:
        self.client.shutdown()
        for closer in self.closers:
            closer()


def sandbox_target(wrap: Callable[[Any], Any] | None = None) -> Target:
    """A fresh in-process sandbox; ``wrap`` may put a test double in front of its app."""
    from sandbox.client.transport import InProcessTransport
    from sandbox.core.settings import Settings
    from sandbox.server.app import create_app

    app = create_app(Settings(data_dir=":memory:"))
    sb = app.state.sandbox
    transport = InProcessTransport(wrap(app) if wrap else app)
    client = LakalaClient(
        base_url="http://sandbox.contract",
        transport=transport,
        private_key=sb.keys.merchant_key,
        certificate=sb.keys.platform_cert,
    )
    admin = httpx.Client(base_url="http://sandbox.contract", transport=transport)
    return Target("sandbox", client, admin, [admin.close, transport.close, sb.close])


def url_target(url: str, *, with_notify: bool = False) -> Target:
    client = LakalaClient.from_env(base_url=url)
    keys = preflight(client, f"the target {url}", URL_ADVICE, with_notify=with_notify)
    if keys:  # the keys the client would fetch on its first call, fetched once already
        client.shutdown()
        client = LakalaClient.from_env(base_url=url, **keys)
    admin = (
        httpx.Client(
            base_url=client.base_url,
            timeout=client.settings.timeout,
            limits=NO_KEEPALIVE,
            verify=tls(),
        )
        if with_notify
        else None
    )
    return Target(url, client, admin, [admin.close] if admin else [])


def lakala_test_target() -> Target:
    client = LakalaClient.from_env(environment="lakala-test", base_url=ENVIRONMENTS["lakala-test"])
    preflight(client, f"lakala-test at {client.base_url}", LAKALA_ADVICE)
    return Target("lakala-test", client)


# -- before the first check: can the target be checked at all? ------------------------------

URL_ADVICE = "is it running, and is the --target URL right (host, port, http or https)?"
LAKALA_ADVICE = "is this machine online, and does it need a proxy (HTTPS_PROXY) to reach it?"
NOT_A_SANDBOX = (
    "if it is not a lakala-sandbox, give its credentials instead: LAKALA_PRIVATE_KEY_FILE and "
    "LAKALA_CERTIFICATE_FILE (and LAKALA_APPID and LAKALA_SERIAL_NO, unless they are Lakala's "
    "test ones)"
)


class TargetError(Exception):
    """The target cannot be checked: nothing answers there, or it lacks what the checks need."""


def preflight(
    client: LakalaClient, label: str, advice: str, *, with_notify: bool = False
) -> dict[str, Any]:
    """That ``label`` answers at all, hands out the keys the client would fetch from it (a
    sandbox's ``/sandbox/keys/…``) and, ``with_notify``, lets us pay through its admin API;
    TargetError naming what is wrong otherwise. Returns the keys it fetched.

    A target that answers too slowly or too much passes: the checks report that, step by step.
    """
    settings = client.settings
    wanted = {
        name: path
        for name, path in SANDBOX_KEY_PATHS.items()
        if settings.fetches_keys and getattr(settings, name) is None
    }
    fetched: dict[str, Any] = {}
    with httpx.Client(
        base_url=settings.base_url, timeout=settings.timeout, limits=NO_KEEPALIVE, verify=tls()
    ) as http:
        probe = _Probe(http, label, advice, settings.timeout)
        if not wanted and probe.get("/") is None:
            return fetched
        for name, path in wanted.items():
            answer = probe.get(path)
            if answer is None:
                return fetched  # it answers, badly: the first check will say how
            fetched[name] = _key_from(answer, name, path, label)
        if with_notify:
            _check_admin(probe, label)
    return fetched


class _Probe:
    """GET within the timeout: the whole answer; None when the target answered too slowly, too
    much or garbled; TargetError when no connection could be made at all."""

    def __init__(self, http: httpx.Client, label: str, advice: str, timeout: float) -> None:
        self.http, self.label, self.advice, self.timeout = http, label, advice, timeout

    def get(self, path: str) -> Answer | None:
        connected: list[str] = []
        answered: list[str] = []

        def trace(name: str, info: Mapping[str, Any]) -> None:
            if name == "connection.connect_tcp.complete":
                connected.append(name)
            elif name == "http11.receive_response_headers.complete":
                answered.append(name)

        request = self.http.build_request("GET", path, extensions={"trace": trace})
        try:
            return send_bounded(self.http, request, timeout=self.timeout)
        except httpx.HTTPError as exc:
            refused = isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout)
            if refused or (isinstance(exc, httpx.TimeoutException) and not connected):
                raise TargetError(
                    f"cannot reach {self.label} ({_reason(exc, self.timeout)}): {self.advice}"
                ) from None
            if not answered and _hung_up(exc):  # it takes the connection, and says nothing
                raise TargetError(
                    f"cannot reach {self.label} (it closes the connection without answering): "
                    f"{self.advice}"
                ) from None
            return None


def _hung_up(exc: httpx.HTTPError) -> bool:
    """Whether the connection was closed (or reset) before a single byte of an answer: not a
    wrong answer (that is drift), no answer at all."""
    if isinstance(exc, httpx.ReadError):
        return True
    return isinstance(exc, httpx.RemoteProtocolError) and "without sending a response" in str(exc)


def _reason(exc: httpx.HTTPError, timeout: float) -> str:
    if isinstance(exc, httpx.TimeoutException):
        return f"no connection within {timeout:g}s"
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return re.sub(r"^\[Errno -?\d+\] ", "", text) or type(exc).__name__


def _key_from(answer: Answer, name: str, path: str, label: str) -> bytes:
    """The key file ``answer`` holds, or TargetError: the target is no sandbox that hands
    out its keys."""
    what = "merchant private key" if name == "private_key" else "platform certificate"
    if answer.status_code != 200:
        raise TargetError(
            f"{label} answers, but does not hand out a sandbox's {what}: GET {path} answered "
            f"HTTP {answer.status_code}; {NOT_A_SANDBOX}"
        )
    try:
        if name == "private_key":
            signing.load_private_key(answer.content)
        else:
            signing.load_certificate(answer.content)
    except (ValueError, TypeError):
        raise TargetError(
            f"{label} answers, but not with a sandbox's {what}: GET {path} answered something "
            f"else ({_sniff(answer)}); {NOT_A_SANDBOX}"
        ) from None
    return answer.content


def _sniff(answer: Answer) -> str:
    kind = answer.headers.get("content-type", "").split(";")[0].strip() or "no content type"
    return f"{kind}, {len(answer.content)} bytes"


def _check_admin(probe: _Probe, label: str) -> None:
    """--with-notify pays an order through ``/sandbox/api``: the target must let us."""
    path = "/sandbox/api/orders?limit=1"
    answer = probe.get(path)
    if answer is None or answer.status_code == 200:
        return
    if answer.status_code in (401, 403):
        try:
            why = str(json.loads(answer.content).get("msg") or "")
        except (ValueError, AttributeError):
            why = ""
        raise TargetError(
            f"--with-notify pays an order through the admin API of {label}, and it refused us "
            f"(GET {path} answered HTTP {answer.status_code}" + (f": {why}" if why else "") + ")"
        )
    raise TargetError(
        f"--with-notify pays an order through a sandbox's admin API, and {label} has none "
        f"(GET {path} answered HTTP {answer.status_code}): is it a lakala-sandbox?"
    )


# -- the flow --------------------------------------------------------------------------------


class _Flow:
    def __init__(self, target: Target, report: Report, receiver: NotifyReceiver | None) -> None:
        self.target = target
        self.client = target.client
        self.report = report
        self.receiver = receiver
        self.schemas = checks.default_schemas()

    def exchange(self, step: str, path: str, req_data: dict[str, Any]) -> dict[str, Any] | None:
        """Send, record, check; the response body when it parsed, else None."""
        try:
            ex = self.client.send(path, req_data)
        except LakalaError as exc:
            self.report.fail(step, "call", str(exc))
            return None
        message = record_exchange(step, ex)
        self.report.messages.append(message)
        audit = audit_message(self.schemas, message, self.certificate(), self.certificate())
        self.report.add(step, audit)
        return audit.message if isinstance(audit.message, dict) else None

    def certificate(self) -> x509.Certificate:
        cert = self.client.certificate
        assert cert is not None  # a send has fetched it, or it was given
        return cert

    def expect(self, step: str, what: str, ok: bool, rule: str, field_name: str) -> None:
        self.report.rows.append(
            Row(step, what, [] if ok else [checks.Finding("flow", field_name, rule)])
        )

    def run(self) -> None:
        out_order_no = "CT" + time.strftime("%Y%m%d%H%M%S") + secrets.token_hex(4).upper()
        created = self.exchange("create", PATHS["special_create"], self._create(out_order_no))
        data = (created or {}).get("resp_data") or {}
        queried = self.exchange("query", PATHS["query"], self._lookup(out_order_no))
        qdata = (queried or {}).get("resp_data") or {}
        if data.get("pay_order_no") and qdata:
            self.expect(
                "query",
                "same order",
                qdata.get("pay_order_no") == data["pay_order_no"],
                f"is {qdata.get('pay_order_no')!r}, create said {data['pay_order_no']!r}",
                "resp_data.pay_order_no",
            )
        closed = self.exchange("close", PATHS["close"], self._lookup(out_order_no))
        cdata = (closed or {}).get("resp_data") or {}
        if cdata:
            self.expect(
                "close",
                "order closed",
                str(cdata.get("order_status")) == "7",
                f"is {cdata.get('order_status')!r}, expected '7'",
                "resp_data.order_status",
            )
        if self.target.admin is not None and self.receiver is not None:
            self.paid_order()
        if self.target.admin is not None:
            self.refunds()

    def paid_order(self) -> None:
        assert self.target.admin is not None and self.receiver is not None
        out_order_no = "CP" + time.strftime("%Y%m%d%H%M%S") + secrets.token_hex(4).upper()
        created = self.exchange(
            "create (to pay)",
            PATHS["special_create"],
            self._create(out_order_no, notify_url=self.receiver.url),
        )
        pay_order_no = ((created or {}).get("resp_data") or {}).get("pay_order_no")
        if not pay_order_no:
            self.report.fail("pay", "call", "no pay_order_no to pay")
            return
        if self._admin_pay("pay", pay_order_no) is None:
            return
        try:
            received = self.receiver.wait(1, timeout=NOTIFY_WAIT)[0]
        except TimeoutError as exc:
            self.report.fail("notify", "arrived", str(exc), "notify_url")
        else:
            message = {
                "kind": "notify",
                "step": "notify",
                "request": {
                    "headers": dict(received.headers),
                    "body": received.body.decode("utf-8", "replace"),
                },
                "answer": {"status": 200, "body": received.answer.decode()},
            }
            self.report.messages.append(message)
            audit = audit_message(self.schemas, message, self.certificate(), self.notify_cert())
            self.report.add("notify", audit)
            notify = audit.message if isinstance(audit.message, dict) else {}
            self.expect(
                "notify",
                "reports the payment",
                (notify.get("pay_order_no"), str(notify.get("order_status")))
                == (pay_order_no, "2"),
                f"is {notify.get('pay_order_no')!r}/{notify.get('order_status')!r}, "
                f"expected {pay_order_no!r}/'2'",
                "order_status",
            )
        queried = self.exchange("query (paid)", PATHS["query"], self._lookup(out_order_no))
        qdata = (queried or {}).get("resp_data") or {}
        if qdata:
            self.expect(
                "query (paid)",
                "order paid",
                str(qdata.get("order_status")) == "2",
                f"is {qdata.get('order_status')!r}, expected '2'",
                "resp_data.order_status",
            )

    def notify_cert(self) -> x509.Certificate:
        return self.client.notify_certificate or self.certificate()

    def refunds(self) -> None:
        """A paid order refunded in three parts through the three typed-SDK refund APIs, each
        refund then found by another API's query: every answer checked against its schema."""
        assert self.target.admin is not None
        out_order_no = "CR" + time.strftime("%Y%m%d%H%M%S") + secrets.token_hex(4).upper()
        created = self.exchange(
            "create (refund)",
            PATHS["special_create"],
            self._create(out_order_no, total_amount=3, support_refund=1),
        )
        pay_order_no = ((created or {}).get("resp_data") or {}).get("pay_order_no")
        if not pay_order_no or self._admin_pay("pay (refund)", pay_order_no) != 200:
            return
        queried = self.exchange("query (refund)", PATHS["query"], self._lookup(out_order_no))
        trades = ((queried or {}).get("resp_data") or {}).get("order_trade_info_list") or []
        if not trades:
            self.report.fail("query (refund)", "call", "no payment to refund")
            return
        paid = trades[0]
        date = str(paid.get("trade_time", ""))[:8]
        tag = secrets.token_hex(4).upper()
        calls = [
            ("relation_refund", {"out_trade_no": "CRA" + tag, "origin_out_trade_no": out_order_no}),
            (
                "trade_refund",
                {
                    "out_trade_no": "CRT" + tag,
                    "origin_trade_date": date,
                    "origin_biz_type": "3",
                    "origin_trade_no": paid.get("trade_no"),
                },
            ),
            (
                "idmrefund",
                {"out_refund_order_no": "CRI" + tag, "origin_log_no": paid.get("log_No")},
            ),
            ("idmrefundquery", {"out_refund_order_no": "CRA" + tag}),
            (
                "trade_refund_query",
                {
                    "out_trade_no": "CRI" + tag,
                    "origin_trade_date": date,
                    "origin_biz_type": "3",
                    "origin_trade_no": paid.get("trade_no"),
                },
            ),
        ]
        for op, fields in calls:
            if not op.endswith("query"):
                fields = {**fields, "refund_amount": 1}
            step = STEP_NAMES.get(op, op)
            answer = self.exchange(step, REFUND_PATHS[op], self.client.request_data(op, **fields))
            code = (answer or {}).get("code")
            self.expect(step, "answered", code == SUCCESS, f"code is {code!r}", "code")
        after = self.exchange("query (refunds)", PATHS["query"], self._lookup(out_order_no))
        status = ((after or {}).get("resp_data") or {}).get("order_status")
        self.expect(
            "query (refunds)",
            "order refunded",
            str(status) == "6",
            f"is {status!r}, expected '6'",
            "resp_data.order_status",
        )

    def _admin_pay(self, step: str, pay_order_no: str) -> int | None:
        """Pay through the admin API, checked as ``step``: the answer's status, or None when
        there was none."""
        assert self.target.admin is not None
        pay_path = f"/sandbox/api/orders/{pay_order_no}/pay"
        request = self.target.admin.build_request("POST", pay_path, json={"pay_mode": "ALIPAY"})
        try:
            paid = send_bounded(
                self.target.admin, request, timeout=self.client.settings.timeout
            ).status_code
        except httpx.HTTPError as exc:
            self.report.fail(step, "admin pay", f"POST {pay_path}: {type(exc).__name__}: {exc}")
            return None
        self.expect(step, "admin pay", paid == 200, f"POST {pay_path} answered {paid}", "status")
        return paid

    def _create(self, out_order_no: str, **extra: Any) -> dict[str, Any]:
        return self.client.request_data(
            "create",
            out_order_no=out_order_no,
            order_info="contract check",
            **{"total_amount": 1, **extra},
        )

    def _lookup(self, out_order_no: str) -> dict[str, Any]:
        return self.client.request_data("query", out_order_no=out_order_no)


def check(target: Target, *, record: Path | None = None) -> Report:
    """Run the flow against ``target``; ``record`` writes the messages there."""
    report = Report(target.label)
    with _receiver(target.admin is not None) as receiver:
        _Flow(target, report, receiver).run()
    if record is not None:
        write_recording(record, report, target.client.certificate, target.client.notify_certificate)
    return report


@contextmanager
def _receiver(wanted: bool) -> Iterator[NotifyReceiver | None]:
    if not wanted:
        yield None
        return
    with NotifyReceiver() as receiver:
        yield receiver


# -- messages: recording, redaction, replay -----------------------------------------------


def record_exchange(step: str, ex: Exchange) -> dict[str, Any]:
    return {
        "kind": "exchange",
        "step": step,
        "path": ex.path,
        "request": {"headers": redact(ex.request_headers), "body": ex.request_body.decode("utf-8")},
        "response": {
            "status": ex.status,
            "headers": dict(ex.response_headers),
            "body": ex.response_body.decode("utf-8", "surrogateescape"),
        },
    }


def redact(headers: dict[str, str]) -> dict[str, str]:
    """The request's signature could be replayed within minutes: keep its shape, not its value."""
    out = {}
    for name, value in headers.items():
        if name.lower() == "authorization":
            value = re.sub(r'signature="[^"]*"', f'signature="{REDACTED}"', value)
        elif name.lower() in ("cookie", "x-sandbox-admin-token"):
            value = REDACTED
        out[name] = value
    return out


def _bytes(text: str) -> bytes:
    return text.encode("utf-8", "surrogateescape")


def audit_message(
    schemas: Schemas,
    message: dict[str, Any],
    certificate: x509.Certificate,
    notify_certificate: x509.Certificate,
) -> checks.Audit:
    if message["kind"] == "notify":
        audit = checks.audit_notify(
            schemas,
            message["request"]["headers"],
            _bytes(message["request"]["body"]),
            notify_certificate,
        )
        ack = checks.audit_ack(schemas, _bytes(message["answer"]["body"]))
        audit.checks.extend(ack.checks)
        return audit
    request, response = message["request"], message["response"]
    headers = checks.lower_headers(request["headers"])
    audit = checks.audit_request(
        schemas, message["path"], _bytes(request["body"]), headers.get("authorization")
    )
    answer = checks.audit_response(
        schemas,
        message["path"],
        response["status"],
        response["headers"],
        _bytes(response["body"]),
        certificate,
    )
    _name_missing_signature_headers(answer, response["headers"])
    audit.checks.extend(answer.checks)
    audit.message = answer.message
    return audit


def _name_missing_signature_headers(audit: checks.Audit, headers: Mapping[str, str]) -> None:
    """Each missing ``Lklapi-*`` header named once, one finding for a response without any,
    and no "response signature" row when a header it needs is missing: nothing was verified,
    so it must not read "ok"."""
    lowered = checks.lower_headers(headers)
    present = [name for name in lowered if name.startswith("lklapi-")]
    needed = [name.lower() for name in signing.RESPONSE_HEADERS]
    for check in audit.checks:
        if check.name != "response signature headers":
            continue
        if not present:
            check.findings = [
                checks.Finding(
                    "signature",
                    "lklapi-*",
                    "missing: the response carries no Lklapi-* signature headers, so it is "
                    f"not signed (expected {', '.join(signing.RESPONSE_HEADERS)})",
                )
            ]
        else:
            # the schema check names only the first missing header, once per missing one
            others = [f for f in check.findings if f.rule != "is required"]
            check.findings = [
                checks.Finding("signature", name, "is required")
                for name in needed
                if name not in lowered
            ] + list(dict.fromkeys(others))
    if any(not lowered.get(name) for name in needed):
        audit.checks = [c for c in audit.checks if c.name != "response signature"]


def _pem(cert: x509.Certificate | None) -> str | None:
    return None if cert is None else cert.public_bytes(serialization.Encoding.PEM).decode()


def write_recording(
    folder: Path,
    report: Report,
    certificate: x509.Certificate | None,
    notify_certificate: x509.Certificate | None,
) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / RECORDING
    path.write_text(
        json.dumps(
            {
                "target": report.target,
                "recorded_at": int(time.time()),
                "certificates": {"platform": _pem(certificate), "notify": _pem(notify_certificate)},
                "messages": report.messages,
            },
            ensure_ascii=False,
            indent=2,
        )
        + "\n",
        encoding="utf-8",
    )
    return path


def replay(folder: Path) -> Report:
    """Check a recording again, offline, with the schemas judged at the recording's time."""
    path = folder / RECORDING if folder.is_dir() else folder
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        certificate = signing.load_certificate(doc["certificates"]["platform"].encode())
        notify_pem = doc["certificates"].get("notify")
        notify_cert = signing.load_certificate(notify_pem.encode()) if notify_pem else certificate
        messages = doc["messages"]
        recorded_at = float(doc["recorded_at"])
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise LakalaConfigError(f"{path}: not a contract recording ({exc})") from None
    problem = _recording_problem(messages, recorded_at)
    if problem:
        raise LakalaConfigError(f"{path}: not a contract recording ({problem})")
    schemas = Schemas(schemas_dir(), Clock(start=recorded_at))
    report = Report(f"replay of {doc.get('target', path)}", messages=messages)
    for message in messages:
        report.add(
            message.get("step", "?"), audit_message(schemas, message, certificate, notify_cert)
        )
    recorded_steps = {message.get("step") for message in messages}
    for shown_by, step, name in FLOW_CHECKS:
        if shown_by in recorded_steps:
            report.rows.append(Row(step, name, [], skipped=FLOW_SKIP_REASON))
    return report


# What each recorded message must hold to be checked: (field, type); a field is checked only
# once the object holding it has passed.
MESSAGE_FIELDS = {
    "exchange": (
        ("path", "text"),
        ("request", "an object"),
        ("request.headers", "headers"),
        ("request.body", "text"),
        ("response", "an object"),
        ("response.status", "an integer"),
        ("response.headers", "headers"),
        ("response.body", "text"),
    ),
    "notify": (
        ("request", "an object"),
        ("request.headers", "headers"),
        ("request.body", "text"),
        ("answer", "an object"),
        ("answer.body", "text"),
    ),
}


def _recording_problem(messages: Any, recorded_at: float) -> str | None:
    """What makes a recording unreadable, naming the message and its field, or None."""
    if not math.isfinite(recorded_at):
        return f"recorded_at must be a time in Unix seconds, not {recorded_at}"
    if not isinstance(messages, list):
        return f"messages must be an array, not {_json_type(messages)}"
    for index, message in enumerate(messages):
        problem = _message_problem(message)
        if problem:
            return f"message {index}: {problem}"
    return None


def _message_problem(message: Any) -> str | None:
    if not isinstance(message, dict):
        return f"must be an object, not {_json_type(message)}"
    kind = message.get("kind")
    if kind not in MESSAGE_FIELDS:
        return f"kind must be 'exchange' or 'notify', not {kind!r}"
    if not isinstance(message.get("step", ""), str):
        return f"step must be text, not {_json_type(message['step'])}"
    for name, wanted in MESSAGE_FIELDS[kind]:
        holder, _, last = name.rpartition(".")
        parent = message[holder] if holder else message
        if last not in parent:
            return f"{name} is missing"
        problem = _value_problem(name, parent[last], wanted)
        if problem:
            return problem
    return None


def _value_problem(name: str, value: Any, wanted: str) -> str | None:
    if wanted == "headers":
        if not isinstance(value, dict):
            return f"{name} must be an object, not {_json_type(value)}"
        for header, text in value.items():
            if not isinstance(text, str):
                return f"{name}.{header} must be text, not {_json_type(text)}"
        return None
    if wanted == "an integer":
        ok = isinstance(value, int) and not isinstance(value, bool)
    else:
        ok = isinstance(value, str if wanted == "text" else dict)
    return None if ok else f"{name} must be {wanted}, not {_json_type(value)}"


def _json_type(value: Any) -> str:
    names = {
        bool: "a boolean",
        int: "an integer",
        float: "a number",
        str: "text",
        list: "an array",
        dict: "an object",
    }
    return "null" if value is None else names.get(type(value), type(value).__name__)


# -- the command -------------------------------------------------------------------------------


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--target",
        help="sandbox (in-process, default), lakala-test (credentials from LAKALA_*), "
        "or a base URL",
    )
    p.add_argument("--junit", metavar="FILE", help="also write the results as JUnit XML")
    p.add_argument(
        "--record",
        metavar="DIR",
        help="store the exchanged messages (signatures of requests redacted) in DIR",
    )
    p.add_argument(
        "--replay",
        metavar="DIR",
        help="check a recording offline instead of calling (no --target, --record or "
        "--with-notify with it)",
    )
    p.add_argument(
        "--with-notify",
        action="store_true",
        help="URL targets: also pay an order through the target's admin API and check "
        "its notify (the target must be a sandbox that can reach this machine)",
    )


def contradiction(args: argparse.Namespace) -> str | None:
    """Options that cannot be honoured together, said before anything runs; None when fine."""
    if args.replay:
        with_replay = [
            ("--record", args.record, "it calls nothing, so there is nothing new to record"),
            ("--target", args.target, "it checks the recording, and calls no target"),
            ("--with-notify", args.with_notify, "it calls no target, so pays no order"),
        ]
        for option, given, why in with_replay:
            if given:
                return f"{option} cannot be used with --replay: {why}"
    if args.with_notify and args.target == "lakala-test":
        return (
            "--with-notify needs a sandbox target: Lakala's test host has no admin API to pay "
            "an order with"
        )
    return None


def run(args: argparse.Namespace) -> int:
    junit = Path(args.junit) if args.junit else None
    record = Path(args.record) if args.record else None
    try:
        problem = contradiction(args)
        if problem:
            raise OutputError(problem)
        # what would fail only after every check ran is found before the first one
        if junit is not None:
            check_writable(junit, "--junit")
        if args.replay:
            report = replay(Path(args.replay))
        else:
            target = make_target(args.target or "sandbox", with_notify=args.with_notify)
            try:
                if record is not None:
                    prepare_record_folder(record)
                report = check(target, record=record)
            finally:
                target.close()
    except (LakalaConfigError, OutputError, TargetError) as exc:
        print(f"lakala-sandbox contract: {exc}", file=sys.stderr)
        return 2
    print(report.table())
    if junit is not None:
        try:
            junit.write_bytes(report.junit())
        except OSError as exc:
            print(f"lakala-sandbox contract: --junit {junit}: {exc.strerror}", file=sys.stderr)
            return 2
    return 0 if report.ok else 1


class OutputError(Exception):
    """The options cannot be honoured: a file to write cannot be written, or two of them
    contradict each other."""


def check_writable(path: Path, option: str) -> None:
    """That ``path`` can be written, without leaving a file behind when it was not there."""
    if path.is_dir():
        raise OutputError(f"{option} {path}: is a folder; give a file name")
    existed = path.exists()
    try:
        with path.open("ab"):
            pass
    except OSError as exc:
        raise OutputError(f"{option} {path}: cannot be written ({exc.strerror})") from None
    if not existed:
        path.unlink(missing_ok=True)


def prepare_record_folder(folder: Path) -> None:
    if folder.exists() and not folder.is_dir():
        raise OutputError(f"--record {folder}: is a file; give a folder to write {RECORDING} in")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"--record {folder}: cannot make the folder ({exc.strerror})") from None
    check_writable(folder / RECORDING, "--record")


def make_target(name: str, *, with_notify: bool = False) -> Target:
    if name == "sandbox":
        return sandbox_target()
    if name == "lakala-test":
        return lakala_test_target()
    if re.match(r"^https?://", name):
        problem = http_url_problem(name)
        if problem:
            raise LakalaConfigError(f"--target {name!r} {problem}")
        return url_target(name, with_notify=with_notify)
    raise LakalaConfigError(
        f"--target must be sandbox, lakala-test or an http(s) URL, not {name!r}"
    )
