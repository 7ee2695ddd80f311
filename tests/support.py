"""Helpers the tests share: building signed v3 calls, verifying responses, seed bodies."""

from __future__ import annotations

import contextlib
import datetime as dt
import importlib.abc
import json
import sqlite3
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.x509.oid import NameOID

from sandbox.runtime import Sandbox
from sandbox.wire import signing

V1 = "/api/v1/payment/lakala/counter/"
V3 = "/api/v3/ccss/counter/order/"

# The seed's create example, verbatim but for out_order_no and order_efficient_time.
SEED_CREATE = {
    "out_order_no": "ORDER20241119120135",
    "total_amount": 100,
    "order_info": "测试商品购买",
    "notify_url": "https://your-domain.com/api/payment/notify",
    "callback_url": "https://your-domain.com/payment/success",
    "payment_method": "ALIPAY",
    "vpos_id": "587305941625155584",
    "channel_id": "2021052614391",
    "order_efficient_time": "20241119130135",
    "support_cancel": 0,
    "support_refund": 1,
    "support_repeat_pay": 1,
}


# the other pytest plugins this project's test extra installs: not a user's business in the pytest
# runs the plugin and package tests start as a user would, and each costs start-up in every one
# (Schemathesis' alone a second)
USER_RUN = ["-p", "no:cacheprovider", "-p", "no:asyncio", "-p", "no:faker", "-p", "no:schemathesis"]
USER_RUN += ["-p", "no:hypothesispytest", "-p", "no:anyio"]


def future14(sb: Sandbox, seconds: float = 3600) -> str:
    return sb.clock.format(sb.clock.timestamp() + seconds)


def seed_create(sb: Sandbox, out_order_no: str, **changes: Any) -> dict[str, Any]:
    body = dict(SEED_CREATE, out_order_no=out_order_no, order_efficient_time=future14(sb))
    body.update(changes)
    return body


def v3_req_data(sb: Sandbox, out_order_no: str, **changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "out_order_no": out_order_no,
        "merchant_no": "82229007392000A",
        "total_amount": 1,
        "order_efficient_time": future14(sb),
        "order_info": "v3 test order",
        "notify_url": "http://127.0.0.1:9/notify",
        "callback_url": "http://127.0.0.1:9/back",
    }
    data.update(changes)
    return data


def v3_body(req_data: dict[str, Any]) -> bytes:
    return json.dumps(
        {"req_time": time.strftime("%Y%m%d%H%M%S"), "version": "3.0", "req_data": req_data},
        ensure_ascii=False,
    ).encode()


def v3_post(
    http: httpx.Client,
    sb: Sandbox,
    op: str,
    req_data: dict[str, Any] | None = None,
    *,
    body: bytes | None = None,
    authorization: str | None = None,
    sign: bool = True,
    prefix: str = V3,
) -> httpx.Response:
    raw = body if body is not None else v3_body(req_data or {})
    headers = {"Content-Type": "application/json"}
    if authorization is not None:
        headers["Authorization"] = authorization
    elif sign:
        headers["Authorization"] = signing.sign_request(
            sb.keys.merchant_key, sb.settings.appid, sb.settings.serial_no, raw
        )
    return http.post(prefix + op, content=raw, headers=headers)


def verify_v3_response(response: httpx.Response, cert: x509.Certificate) -> None:
    """Check the Lklapi-* headers the way Lakala's SDKs do; AssertionError if they do not verify."""
    h = response.headers
    for name in signing.RESPONSE_HEADERS:
        assert name in h, f"missing {name}"
    assert int(h["Lklapi-Serial"], 16) == cert.serial_number
    signed = signing.request_string(
        h["Lklapi-Appid"],
        h["Lklapi-Serial"],
        h["Lklapi-Timestamp"],
        h["Lklapi-Nonce"],
        response.content,
    )
    assert signing.verify(signing.certificate_public_key(cert), signed, h["Lklapi-Signature"])


def snapshot(sb: Sandbox) -> list[tuple[Any, ...]]:
    """Everything an engine call could change: orders, trades and refunds, row by row."""
    orders = [tuple(r) for r in sb.store.execute("SELECT * FROM orders ORDER BY seq")]
    trades = [tuple(r) for r in sb.store.execute("SELECT * FROM trades ORDER BY seq")]
    refunds = [tuple(r) for r in sb.store.execute("SELECT * FROM refunds ORDER BY trade_no")]
    return orders + trades + refunds


def self_signed(key: Any, common_name: str, *extensions: x509.ExtensionType) -> x509.Certificate:
    """A certificate for ``key``, signed by itself, valid from a day ago to a day from now; each
    extension added critical when it is ``BasicConstraints``."""
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=1))
    )
    for extension in extensions:
        builder = builder.add_extension(extension, isinstance(extension, x509.BasicConstraints))
    return builder.sign(key, hashes.SHA256())


class _SearchRecorder(importlib.abc.MetaPathFinder):
    def __init__(self) -> None:
        self.searched: list[str] = []

    def find_spec(self, name: str, path: Any, target: Any = None) -> None:
        self.searched.append(name)  # (and lets the next finder look)


@contextlib.contextmanager
def import_searches() -> Iterator[list[str]]:
    """``with import_searches() as searched:`` the modules Python went looking for meanwhile: an
    import of one already loaded looks for nothing, a failed one searches the path every time."""
    recorder = _SearchRecorder()
    sys.meta_path.insert(0, recorder)
    try:
        yield recorder.searched
    finally:
        sys.meta_path.remove(recorder)


@contextlib.contextmanager
def database(path: Path) -> Iterator[sqlite3.Connection]:
    """The SQLite file at ``path``, committed at the end of the block and closed (``with
    sqlite3.connect(path)`` only commits: the connection is left for the garbage collector, which
    Python 3.13 warns of)."""
    with contextlib.closing(sqlite3.connect(path)) as conn, conn:
        yield conn
