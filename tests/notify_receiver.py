"""A merchant's notify handler on 127.0.0.1 that checks signatures, and a sandbox served by uvicorn
in a thread: the two ends of a notify, for the notifier and scenario tests."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

import httpx

from sandbox.runtime import Sandbox
from sandbox.testing.plugin import ServerThread
from sandbox.wire import signing
from sandbox.wire.tls import tls
from tests.conftest import make_app

V3_ACK = {"code": "SUCCESS", "message": "执行成功"}
V1_ACK = {"code": "000000", "msg": "Notification received successfully"}
FAIL = {"code": "FAIL", "message": "失败"}
MAX_SKEW = 300


@dataclass
class Delivery:
    """One notify as the handler saw it, and how it answered."""

    path: str
    headers: dict[str, str]
    body: bytes
    verified: bool
    fresh: bool
    status: int
    answer: dict[str, Any]
    received: float = field(default_factory=time.monotonic)

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def acked(self) -> bool:
        return self.answer in (V3_ACK, V1_ACK)


class Receiver:
    """``with Receiver(platform_cer_pem) as rx: ... rx.url("/notify") ... rx.wait_for(2)``.

    Verifies every notify with the certificate the sandbox serves, refuses (HTTP 401) one that
    does not verify or whose timestamp is more than 5 minutes off, and otherwise answers the
    dialect's ack, or FAIL while ``fail_next(n)`` lasts. ``hold[path] = s`` delays the answer
    (``release()`` lets held ones go); ``redirects[path] = url`` answers 302 instead.
    ``checks=False`` makes the naive handler that acknowledges whatever it gets.
    """

    def __init__(self, certificate_pem: bytes, *, checks: bool = True) -> None:
        self.checks = checks
        self.public_key = signing.certificate_public_key(signing.load_certificate(certificate_pem))
        self.deliveries: list[Delivery] = []
        self.hold: dict[str, float] = {}
        self.redirects: dict[str, str] = {}
        self.arrived = 0
        self._fail = 0
        self._release = threading.Event()
        self._cond = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - the http.server hook name
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with receiver._cond:
                    receiver.arrived += 1
                    receiver._cond.notify_all()
                if self.path in receiver.redirects:
                    self.send_response(302)
                    self.send_header("Location", receiver.redirects[self.path])
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                receiver._release.wait(receiver.hold.get(self.path, 0))
                status, answer, delivery = receiver._answer(self.path, dict(self.headers), body)
                raw = json.dumps(answer, ensure_ascii=False).encode()
                # recorded before it is answered: once the sandbox has the answer (and a test's
                # drain returns), the delivery is in the list
                with receiver._cond:
                    receiver.deliveries.append(delivery)
                    receiver._cond.notify_all()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json; charset=utf-8")
                    self.send_header("Content-Length", str(len(raw)))
                    self.end_headers()
                    self.wfile.write(raw)
                except OSError:
                    pass  # the sandbox gave up waiting (its timeout); the delivery still counts

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), daemon=True
        )

    def url(self, path: str = "/notify") -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}{path}"

    def release(self) -> None:
        self.hold.clear()
        self._release.set()

    def wait_arrived(self, count: int, timeout: float = 10.0) -> None:
        """Until ``count`` requests have arrived, answered or not (AssertionError on timeout)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self.arrived < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"{self.arrived} requests arrived, wanted {count}")
                self._cond.wait(left)

    def fail_next(self, count: int) -> None:
        with self._cond:
            self._fail = count

    def _answer(
        self, path: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, dict[str, Any], Delivery]:
        lower = {k.lower(): v for k, v in headers.items()}
        verified, fresh = False, False
        try:
            fields = signing.parse_authorization(lower.get("authorization"))
            signed = signing.notify_string(fields["timestamp"], fields["nonce_str"], body)
            verified = signing.verify(self.public_key, signed, fields["signature"])
            fresh = abs(int(fields["timestamp"]) - time.time()) <= MAX_SKEW
        except (ValueError, KeyError):
            pass
        with self._cond:
            if self.checks and not (verified and fresh):
                status, answer = 401, FAIL
            elif self._fail > 0:
                self._fail -= 1
                status, answer = 200, FAIL
            else:
                status = 200
                answer = V3_ACK if b'"order_trade_info"' in body else V1_ACK
        return status, answer, Delivery(path, lower, body, verified, fresh, status, answer)

    def wait_for(self, count: int, timeout: float = 10.0) -> list[Delivery]:
        """At least ``count`` deliveries, within ``timeout`` seconds (AssertionError otherwise)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while len(self.deliveries) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"{len(self.deliveries)} notifies arrived, wanted {count}")
                self._cond.wait(left)
            return list(self.deliveries)

    def __enter__(self) -> Receiver:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._release.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)


class LiveSandbox:
    """``make_app(**settings)`` served by uvicorn on a free loopback port, lifespan included,
    the way the pytest plugin serves one (``ServerThread``)."""

    def __init__(self, **settings: Any) -> None:
        self.app = make_app(**settings)
        self.sb: Sandbox = self.app.state.sandbox
        self._server = ServerThread(self.app)
        self.url = self._server.url
        self.http = httpx.Client(
            base_url=self.url, trust_env=False, timeout=10, verify=tls(trust_env=False)
        )

    def __enter__(self) -> LiveSandbox:
        self._server.start(timeout=10)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.http.close()
        self._server.stop()
