"""A loopback HTTP server that records every POST it gets: a merchant's notify endpoint in a box.

    with NotifyReceiver() as rx:  # acknowledges each notify in its own dialect
        ...  # give rx.url as notify_url
        first = rx.wait(1, timeout=10)[0]

``NotifyReceiver(answer={...})`` answers every request with that JSON instead (say a ``FAIL``, to
watch the retry ladder). ``NotifyReceiver(handle=fn)`` calls ``fn(received)`` before it answers,
as a merchant's handler does its own work first (querying the order, say).

Used by the contract command (to catch the sandbox's notify) and by tests.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

V3_ACK = {"code": "SUCCESS", "message": "执行成功"}
V1_ACK = {"code": "000000", "msg": "Notification received successfully"}


def dialect_of_notify(body: bytes) -> str:
    """``v1`` for the seed's notify body (flat, with ``resp_time``), else ``v3`` (Lakala's, with
    ``order_trade_info``)."""
    try:
        data = json.loads(body)
    except ValueError:
        return "v3"
    if isinstance(data, dict) and "resp_time" in data and "order_trade_info" not in data:
        return "v1"
    return "v3"


def ack_for(body: bytes) -> dict[str, str]:
    """The success ack of the notify's dialect: what a merchant's handler answers."""
    return V1_ACK if dialect_of_notify(body) == "v1" else V3_ACK


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    answer: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class NotifyReceiver:
    """``answer``: the JSON the receiver replies with (HTTP 200). By default each notify gets the
    success ack of its own dialect: ``{"code":"SUCCESS",...}`` for a v3 notify, ``{"code":"000000",
    ...}`` for a v1 one. ``handle``: called with each request, once recorded, on the receiver's
    thread, before the answer goes; should it raise, no answer goes (the sender sees the
    connection close, as from a merchant's handler that failed)."""

    def __init__(
        self,
        *,
        answer: dict[str, Any] | None = None,
        path: str = "/notify",
        handle: Callable[[Received], object] | None = None,
    ) -> None:
        self.answer: bytes | None = (
            None if answer is None else json.dumps(answer, ensure_ascii=False).encode()
        )
        self.path = path
        self.handle = handle
        self.received: list[Received] = []
        self._lock = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keeps connections open, as merchants' servers do
            # the head and the body go out as two writes: without this the body waits for the
            # sender's delayed acknowledgement, 40 ms per notify on a kept-alive connection
            disable_nagle_algorithm = True

            def do_POST(self) -> None:  # noqa: N802 - the http.server hook name
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                answer = receiver.answer
                if answer is None:
                    answer = json.dumps(ack_for(body), ensure_ascii=False).encode()
                # recorded before it is answered: once the sender has the answer, it is here
                received = Received(self.path, dict(self.headers.items()), body, answer)
                with receiver._lock:
                    receiver.received.append(received)
                    receiver._lock.notify_all()
                if receiver.handle is not None:
                    receiver.handle(received)
                self.send_response(200)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, format: str, *args: Any) -> None:
                pass  # quiet: the contract table and the tests report what matters

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="notify-receiver", daemon=True
        )

    @property
    def url(self) -> str:
        port = self._server.server_address[1]
        return f"http://127.0.0.1:{port}{self.path}"

    def start(self) -> NotifyReceiver:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> NotifyReceiver:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def wait(self, count: int = 1, *, timeout: float = 10.0) -> list[Received]:
        """The first ``count`` requests, waiting at most ``timeout`` seconds (else TimeoutError)."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while len(self.received) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(
                        f"{len(self.received)} of {count} requests reached "
                        f"{self.url} within {timeout:g}s"
                    )
                self._lock.wait(left)
            return list(self.received[:count])
