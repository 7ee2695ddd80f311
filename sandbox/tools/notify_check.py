"""``lakala-sandbox notify-check --url URL``: does a merchant's notify handler check what it gets?

It sends, signed with the platform key of a sandbox data directory (the certificate the handler
must trust is printed first): a correct notify (the success ack is expected), then one with a
signature that does not verify, one with a timestamp an hour old, one whose amount was changed
after signing (each must be refused) and the first one again (it must be acknowledged again,
idempotently). It prints a table with the reason for each verdict; the exit code is 1 if any
check failed, 2 if it could not run (a bad option, no platform key, nothing answering at the URL).

A refusal means something only from a handler that acknowledges the correct notify: when that one
is not acknowledged, the broken notifies' rows are "not judged" rather than passed.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, cast

import httpx

from sandbox.client.transport import NO_KEEPALIVE, Answer, http_url_problem, send_bounded
from sandbox.core.clock import Clock
from sandbox.core.engine import Order, Trade
from sandbox.core.ids import Ids
from sandbox.core.keys import PLATFORM_CERT, PLATFORM_KEY
from sandbox.core.settings import Settings
from sandbox.notify import bodies as notify_bodies
from sandbox.wire import signing
from sandbox.wire.resources import schemas_dir
from sandbox.wire.schemas import Schemas
from sandbox.wire.tls import tls


@dataclass(frozen=True)
class Check:
    name: str
    expect: str  # "ack" or "refuse"
    signature: str = "valid"
    tamper: str | None = None
    refused_for: str = ""


CHECKS = (
    Check("signed", "ack"),
    Check(
        "bad signature",
        "refuse",
        signature="bad",
        refused_for="its signature does not verify with the platform certificate",
    ),
    Check(
        "stale timestamp",
        "refuse",
        signature="stale",
        refused_for="its timestamp is an hour old (a replayed notify)",
    ),
    Check(
        "tampered amount",
        "refuse",
        tamper="amount",
        refused_for="its total_amount was changed after signing",
    ),
    Check("duplicate", "ack"),
)


PASS, FAIL, NOT_JUDGED = "PASS", "FAIL", "NOT JUDGED"


@dataclass(frozen=True)
class Outcome:
    check: Check
    status: int | None
    answer: str
    result: str  # PASS, FAIL or NOT_JUDGED
    reason: str
    hint: str = ""  # the answer is the other dialect's ack: say so, and what to run

    @property
    def passed(self) -> bool:
        return self.result == PASS


class Unreachable(Exception):
    """Nothing answers at the handler's URL: no check can run."""


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--url", required=True, help="your notify handler, e.g. http://127.0.0.1:8000/notify"
    )
    p.add_argument(
        "--dialect",
        choices=["v3", "v1"],
        default="v3",
        help="v3: Lakala's notify and SUCCESS ack (default); v1: the seed's and 000000",
    )
    p.add_argument(
        "--data-dir",
        help="sandbox data directory whose platform key signs "
        "(default: the sandbox's, ./.lakala-sandbox)",
    )
    p.add_argument(
        "--out-order-no", help="out_order_no to report (default: a new NOTIFY-CHECK-… one)"
    )
    p.add_argument("--pay-order-no", help="pay_order_no to report (default: a new one)")
    p.add_argument("--amount", type=int, default=100, help="total_amount in fen (default 100)")
    p.add_argument("--timeout", type=float, default=10.0, help="seconds to wait for each answer")


def run(args: argparse.Namespace) -> int:
    problem = http_url_problem(args.url)
    if problem:
        print(f"lakala-sandbox notify-check: --url {args.url!r} {problem}", file=sys.stderr)
        return 2
    if not args.timeout > 0:
        print("lakala-sandbox notify-check: --timeout must be positive seconds", file=sys.stderr)
        return 2
    settings = Settings.from_env().replace(data_dir=args.data_dir)
    folder = settings.data_path
    try:
        key = signing.load_private_key((folder / PLATFORM_KEY).read_bytes())
        cert = signing.load_certificate((folder / PLATFORM_CERT).read_bytes())
    except (OSError, ValueError) as exc:
        print(
            f"lakala-sandbox notify-check: no platform key in {folder} ({exc}).\n"
            "Start the sandbox once with that --data-dir (it makes its keys there), or pass "
            "the --data-dir of the sandbox your handler trusts.",
            file=sys.stderr,
        )
        return 2
    if args.amount < 1:
        print("lakala-sandbox notify-check: --amount must be at least 1 fen", file=sys.stderr)
        return 2
    order = sample_order(
        settings,
        args.dialect,
        args.url,
        out_order_no=args.out_order_no,
        pay_order_no=args.pay_order_no,
        amount=args.amount,
    )
    clock = Clock(tz=settings.timezone)
    body = notify_bodies.build(settings, order, order.trades[0], clock.now14())
    outcomes = check_handler(
        args.url, key, args.dialect, body, Schemas(schemas_dir(), clock), timeout=args.timeout
    )
    try:
        first = next(outcomes)  # an unreachable handler is said alone, before any table
    except Unreachable as exc:
        print(f"lakala-sandbox notify-check: {exc}", file=sys.stderr)
        return 2
    print(
        f"Signing with the platform key in {folder}. Your handler must verify notifies with\n"
        f"  {folder / PLATFORM_CERT} (serial {signing.serial_hex(cert)}, "
        f"{cert.subject.rfc4514_string()}),\n"
        f"  the file a running sandbox serves at /sandbox/keys/platform.cer.\n"
        f"Dialect {args.dialect}: the success ack is {notify_bodies.ack_text(args.dialect)}. "
        f"Notifies report out_order_no {order.out_order_no}, pay_order_no {order.pay_order_no}, "
        f"total_amount {order.total_amount}.\n"
    )
    results = [first, *outcomes]
    print(render(results))
    print("\n" + summary(results))
    return 1 if any(o.result == FAIL for o in results) else 0


def summary(outcomes: list[Outcome]) -> str:
    passed = sum(o.passed for o in outcomes)
    line = f"{passed} of {len(outcomes)} checks passed"
    unjudged = sum(o.result == NOT_JUDGED for o in outcomes)
    if unjudged:
        line += (
            f"; {unjudged} not judged, because the handler did not acknowledge the correctly "
            "signed notify"
        )
    hint = outcomes[0].hint if outcomes else ""
    return line + "." + (f"\n{hint[0].upper()}{hint[1:]}." if hint else "")


def sample_order(
    settings: Settings,
    dialect: str,
    notify_url: str,
    *,
    out_order_no: str | None,
    pay_order_no: str | None,
    amount: int,
) -> Order:
    """A paid order as the sandbox would hold it, to build a realistic notify body from."""
    ids = Ids()
    clock = Clock(tz=settings.timezone)
    now, now_dt = clock.timestamp(), clock.now()
    trade = cast(
        Trade,
        {
            **ids.trade_numbers(now_dt),
            "trade_type": "PAY",
            "trade_status": "S",
            "trade_amount": amount,
            "payer_amount": amount,
            "trade_time": clock.format(now),
            "pay_mode": "ALIPAY",
            "busi_type": "SCPAY",
            "acc_trade_no": ids.acc_trade_no("ALIPAY", now_dt),
            "settle_merchant_no": settings.merchant_no,
            "settle_term_no": settings.term_no,
            "origin_trade_no": None,
            **ids.payer("ALIPAY"),
        },
    )
    data: dict[str, Any] = {
        "merchant_no": settings.merchant_no,
        "out_order_no": out_order_no or f"NOTIFY-CHECK-{int(time.time())}",
        "total_amount": amount,
        "order_info": "notify-check",
        "order_create_time": clock.format(now - 60),
        "order_efficient_time": clock.format(now + 3600),
        "notify_url": notify_url,
        "channel_id": settings.channel_id,
        "term_no": settings.term_no,
    }
    return Order(
        seq=0,
        pay_order_no=pay_order_no or ids.pay_order_no(now_dt),
        merchant_no=data["merchant_no"],
        out_order_no=data["out_order_no"],
        dialect=dialect,
        stored_status=2,
        request_hash="",
        created_ts=now - 60,
        efficient_ts=now + 3600,
        clock_offset=0.0,
        updated_ts=now,
        data=data,
        trades=[trade],
        status=2,
    )


def check_handler(
    url: str, key: Any, dialect: str, body: dict[str, Any], schemas: Schemas, *, timeout: float
) -> Iterator[Outcome]:
    """Each check's outcome, in order; Unreachable, at the first, when no connection can be
    made to ``url`` at all."""
    signed: Outcome | None = None  # the first check's: the correctly signed notify
    with httpx.Client(
        timeout=timeout,
        follow_redirects=False,
        trust_env=False,
        limits=NO_KEEPALIVE,
        verify=tls(trust_env=False),
    ) as client:
        for check in CHECKS:
            headers, sent, _ = notify_bodies.prepare(
                key, body, signature=check.signature, tamper=check.tamper
            )
            try:
                response = _post(client, url, sent, headers, timeout, first=signed is None)
            except httpx.HTTPError as exc:
                outcome = Outcome(
                    check, None, "", FAIL, f"no answer from {url}: {type(exc).__name__}: {exc}"
                )
            else:
                outcome = _verdict(check, response, dialect, schemas, signed)
            signed = signed or outcome
            yield outcome


def _post(
    client: httpx.Client,
    url: str,
    body: bytes,
    headers: dict[str, str],
    timeout: float,
    *,
    first: bool,
) -> Answer:
    """The handler's whole answer within ``timeout`` seconds (an ack is a few bytes; the cap is
    ``MAX_ANSWER_BYTES``). For the ``first`` notify, Unreachable when no connection was made."""
    connected: list[str] = []

    def trace(name: str, info: Mapping[str, Any]) -> None:
        if name == "connection.connect_tcp.complete":
            connected.append(name)

    request = client.build_request(
        "POST", url, content=body, headers=headers, extensions={"trace": trace}
    )
    try:
        return send_bounded(client, request, timeout=timeout)
    except httpx.HTTPError as exc:
        if first and (
            isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout)
            or (isinstance(exc, httpx.TimeoutException) and not connected)
        ):
            raise Unreachable(
                f"cannot reach {url} ({_reason(exc, timeout)}): is your handler running, "
                "and is --url right (host, port, path, http or https)?"
            ) from None
        raise


def _reason(exc: httpx.HTTPError, timeout: float) -> str:
    if isinstance(exc, httpx.TimeoutException):
        return f"no connection within {timeout:g}s"
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return re.sub(r"^\[Errno -?\d+\] ", "", text) or type(exc).__name__


def _verdict(
    check: Check, response: Answer, dialect: str, schemas: Schemas, signed: Outcome | None
) -> Outcome:
    """``check``'s outcome from the handler's answer; ``signed`` is the correctly signed
    notify's outcome (None while judging that one)."""
    status, text = response.status_code, response.text
    answer = text[:200]
    problem = notify_bodies.ack_problem(schemas, dialect, status, text)
    if check.expect == "ack":
        if problem is None:
            why = (
                "acknowledged again: duplicates are answered idempotently"
                if check.name == "duplicate"
                else "acknowledged"
            )
            return Outcome(check, status, answer, PASS, why)
        what = "the same notify again" if check.name == "duplicate" else "a correctly signed notify"
        hint = _dialect_hint(schemas, dialect, status, text) if signed is None else ""
        return Outcome(
            check,
            status,
            answer,
            FAIL,
            f"{what} must be acknowledged with {notify_bodies.ack_text(dialect)}; {problem}"
            + (f"; {hint}" if hint else ""),
            hint,
        )
    if problem is None:
        return Outcome(
            check,
            status,
            answer,
            FAIL,
            f"acknowledged although {check.refused_for}: the handler must refuse it",
        )
    if signed is None or not signed.passed:
        # a handler that acknowledges nothing "refuses" these too: that tells nothing
        hint = _dialect_hint(schemas, dialect, status, text)
        return Outcome(
            check,
            status,
            answer,
            NOT_JUDGED,
            "the handler did not acknowledge the correctly signed notify either, so not "
            "acknowledging this one says nothing about its checks" + (f"; {hint}" if hint else ""),
        )
    return Outcome(check, status, answer, PASS, f"refused ({check.refused_for})")


def _dialect_hint(schemas: Schemas, dialect: str, status: int, text: str) -> str:
    """When ``text`` is the other dialect's ack, say so: the handler may be right, and the
    command asked in the wrong dialect."""
    other = "v1" if dialect == "v3" else "v3"
    if notify_bodies.ack_problem(schemas, other, status, text) is not None:
        return ""
    return (
        f"its answer is the {other} ack {notify_bodies.ack_text(other)}: for a {other} handler, "
        f"run with --dialect {other}"
    )


def render(outcomes: list[Outcome]) -> str:
    rows = [("check", "expected", "answer", "result", "why")]
    for o in outcomes:
        answer = f"{o.status} {o.answer}".strip() if o.status is not None else "-"
        rows.append(
            (
                o.check.name,
                o.check.expect,
                _short(answer, 40),
                o.result,
                o.reason,
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    lines = []
    for index, row in enumerate(rows):
        cells = [row[i].ljust(widths[i]) for i in range(4)] + [row[4]]
        lines.append("  ".join(cells).rstrip())
        if index == 0:
            lines.append("  ".join("-" * w for w in widths) + "  " + "-" * 3)
    return "\n".join(lines)


def _short(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
