"""HTTP plumbing the client and the tools share.

``InProcessTransport``: a synchronous httpx transport that calls an ASGI app in-process (no
sockets). httpx's own ``ASGITransport`` is async-only; this one runs the app on a private event
loop, in the calling thread, so that ``httpx.Client(transport=InProcessTransport(app))`` works in
plain synchronous tests.

``send_bounded`` / ``asend_bounded``: read a whole answer within a time and a size limit.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
import weakref
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

import httpx

from sandbox.wire.envelopes import whole_number
from sandbox.wire.errors import ConnectionDropped


class InProcessTransport(httpx.BaseTransport):
    """``httpx.Client(transport=InProcessTransport(app), base_url="http://sandbox")``.

    ``client`` is the (host, port) the app sees as the caller: loopback by default, so the admin
    API answers.

    The app is called as httpx's ``ASGITransport`` calls it (the same scope, the body, then a
    disconnect once the answer is complete; an exception the app raises reaches the caller), on
    this transport's own asyncio loop, without the work ``ASGITransport`` adds to each call: a
    second request, an answer stream, and an import of ``sniffio`` to tell asyncio from trio
    (a search of the whole import path, where it is not installed).

    The loop runs in the calling thread for the length of a call, so no thread waits for calls
    and none hands each one over: that hand-over, twice a call between two threads, cost more
    than a v1 query does in the app. A call another thread makes meanwhile joins the running
    loop, as it would a server's: the two run side by side (a merchant's notify handler may
    query the sandbox while the test's clock move waits for that notify's answer), and the
    thread that runs the loop goes on running it until the last such call has its answer. A call
    made where an event loop already runs (a synchronous client inside async code, which may not
    run a second loop) runs on a thread of its own. An app that leaves work running once it has
    answered has it carried on at the next call, and cancelled at ``close``; the sandbox's app
    leaves none (its notifies have a loop of their own)."""

    def __init__(self, app: Any, *, client: tuple[str, int] = ("127.0.0.1", 50000)) -> None:
        self._app = app
        self._client = client
        self._loop = asyncio.new_event_loop()
        self._state = threading.Condition()
        self._host: int | None = None  # the thread running the loop for a call, if one is
        self._guests = 0  # calls other threads gave that loop meanwhile, not yet answered
        self._guests_gone = asyncio.Event()
        # a transport dropped without close() lets its loop go without a warning
        self._closer = weakref.finalize(self, self._loop.close)

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        return self._loop

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        body = request.read()
        url = request.url
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": request.method,
            "headers": [(k.lower(), v) for (k, v) in request.headers.raw],
            "scheme": url.scheme,
            "path": url.path,
            "raw_path": url.raw_path.split(b"?")[0],
            "query_string": url.query,
            "server": (url.host, url.port),
            "client": self._client,
            "root_path": "",
        }
        status: list[int] = []
        headers: list[tuple[bytes, bytes]] = []
        parts: list[bytes] = []

        async def call() -> None:
            complete = asyncio.Event()
            sent = False

            async def receive() -> dict[str, Any]:
                nonlocal sent
                if sent:
                    await complete.wait()
                    return {"type": "http.disconnect"}
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}

            async def send(message: dict[str, Any]) -> None:
                if message["type"] == "http.response.start":
                    assert not status, "the answer was started twice"
                    status.append(message["status"])
                    headers.extend(message.get("headers", []))
                elif message["type"] == "http.response.body":
                    assert not complete.is_set(), "a body was sent after the answer ended"
                    if message.get("body") and request.method != "HEAD":
                        parts.append(message["body"])
                    if not message.get("more_body", False):
                        complete.set()

            await self._app(scope, receive, send)
            assert complete.is_set() and status, "the app ended without a whole answer"

        try:
            self._run(call())
        except ConnectionDropped as exc:
            # what a client on a socket sees when a scenario drops the connection
            raise httpx.RemoteProtocolError(str(exc), request=request) from exc
        # a stream, not content=: httpx sets .elapsed when the client closes the stream
        return httpx.Response(
            status[0], headers=headers, stream=httpx.ByteStream(b"".join(parts)), request=request
        )

    def _run(self, work: Coroutine[Any, Any, None], *, last: bool = False) -> None:
        """Run ``work`` on the loop, from this thread unless a loop already runs here."""
        try:
            asyncio.get_running_loop()
        except RuntimeError:  # (none here: the usual case)
            self._run_here(work, last=last)
            return
        failed: list[BaseException] = []

        def run() -> None:
            try:
                self._run_here(work, last=last)
            except BaseException as exc:  # (raised again in the caller's thread)
                failed.append(exc)

        helper = threading.Thread(target=run, name="in-process-asgi", daemon=True)
        helper.start()
        helper.join()
        if failed:
            raise failed[0]

    def _run_here(self, work: Coroutine[Any, Any, None], *, last: bool) -> None:
        """Host ``work`` on the loop, or join the thread hosting it now. ``last``: wait until no
        thread runs the loop, host ``work`` alone, then close the loop."""
        with self._state:
            while last and self._host is not None:
                self._state.wait()
            if self._loop.is_closed():
                work.close()
                if last:  # (closed meanwhile, by another thread)
                    return
                raise RuntimeError("this InProcessTransport is closed")
            if self._host is None:
                self._host = threading.get_ident()
                joined = None
            else:
                self._guests += 1
                joined = asyncio.run_coroutine_threadsafe(work, self._loop)
                joined.add_done_callback(self._guest_answered)
        if joined is not None:
            joined.result()
            return
        try:
            self._loop.run_until_complete(work)
        finally:
            self._host_until_guests_answered(last)

    def _guest_answered(self, _done: object) -> None:
        with self._state:
            self._guests -= 1
            if not self._guests:  # (the host may be waiting for this, on the loop)
                self._loop.call_soon_threadsafe(self._guests_gone.set)

    def _host_until_guests_answered(self, last: bool) -> None:
        while True:
            with self._state:
                if not self._guests:
                    if last:
                        self._closer()
                    self._host = None
                    self._state.notify_all()
                    return
                self._guests_gone = gone = asyncio.Event()
            self._loop.run_until_complete(gone.wait())

    def close(self) -> None:
        """As ``asyncio.run`` ends: what the app left running is cancelled, and an async
        generator it began and left open (a body read in part, say) is closed on its loop now,
        not found by the collector once the loop is gone (which Python 3.13 reports as an error
        in whatever code runs then). Waits for calls in progress. Closing again does nothing."""
        if not self._loop.is_closed():
            self._run(self._wind_down(), last=True)

    async def _wind_down(self) -> None:
        left = asyncio.all_tasks() - {asyncio.current_task()}
        for task in left:
            task.cancel()
        with contextlib.suppress(TimeoutError):  # (what will not end in 5 s is left)
            async with asyncio.timeout(5):
                await asyncio.gather(*left, return_exceptions=True)
                await self._loop.shutdown_asyncgens()


# -- bounded answers -------------------------------------------------------------------------
#
# httpx's timeout applies to each read, not to the whole answer: a server that sends one byte a
# second, or an endless chunked body, keeps a plain ``client.post`` busy (and growing) forever.
# Every answer the client, the proxy, notify-check and contract read goes through
# ``send_bounded`` / ``asend_bounded`` instead: the body is streamed into a capped buffer, and
# the timeout given applies to the whole exchange, from sending the request to the last byte.

MAX_ANSWER_BYTES = 1024 * 1024
"""The largest answer read: Lakala's API answers, its keys and notify acks are a few KiB."""

# A connection kept alive for the next request hides its socket from the sync watchdog below
# (httpx shows a socket only when it opens one, or once an answer's headers are in), so the
# sync clients that read through ``send_bounded`` open one connection per exchange.
NO_KEEPALIVE = httpx.Limits(max_keepalive_connections=0)


class AnswerTooLarge(httpx.TransportError):
    """The answer passed its byte cap: reading stopped and the connection was closed."""


class AnswerTooSlow(httpx.TimeoutException):
    """The whole answer did not arrive in time: reading stopped and the connection was closed."""


@dataclass(frozen=True)
class Answer:
    """A whole answer, read within its limits."""

    status_code: int
    headers: httpx.Headers
    content: bytes
    url: httpx.URL

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", "replace")


class _Budget:
    """What one exchange may still spend: seconds until its deadline, bytes up to its cap."""

    def __init__(self, request: httpx.Request, timeout: float, max_bytes: int) -> None:
        self.request = request
        self.timeout = timeout
        self.max_bytes = max_bytes
        self.deadline = time.monotonic() + timeout
        self.chunks: list[bytes] = []
        self.size = 0

    def remaining(self) -> float:
        return self.deadline - time.monotonic()

    def too_slow(self) -> AnswerTooSlow:
        return AnswerTooSlow(
            f"the whole answer did not arrive within {self.timeout:g}s", request=self.request
        )

    def too_large(self, size: int) -> AnswerTooLarge:
        return AnswerTooLarge(
            f"the answer is larger than {self.max_bytes} bytes (at least {size})",
            request=self.request,
        )

    def start(self, response: httpx.Response) -> None:
        """The headers are in: refuse at once a body announced too large."""
        # (whole_number, not isdigit: "²" is a digit to Python, and int() refuses it)
        declared = whole_number(response.headers.get("content-length", ""), 2**62)
        if declared is not None and declared > self.max_bytes:
            raise self.too_large(declared)
        self.check_time()

    def take(self, chunk: bytes) -> None:
        self.size += len(chunk)
        if self.size > self.max_bytes:
            raise self.too_large(self.size)
        self.chunks.append(chunk)
        self.check_time()

    def check_time(self) -> None:
        if self.remaining() <= 0:
            raise self.too_slow()

    def answer(self, response: httpx.Response) -> Answer:
        return Answer(response.status_code, response.headers, b"".join(self.chunks), response.url)


class _Watchdog:
    """Shuts the exchange's socket down at the deadline, waking a read blocked on it.

    A sync read cannot be cancelled, and it only times out when the peer stays silent for a
    whole read timeout; ``shutdown`` makes it return at once. The sockets come from httpx's
    ``trace`` extension as connections open, and from the answer's ``network_stream``.
    """

    def __init__(self, budget: _Budget) -> None:
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self._done = False
        self.fired = False
        self._budget = budget
        self._timer: threading.Timer | None = None  # started with the first socket to watch

    def __enter__(self) -> _Watchdog:
        return self

    def __exit__(self, *exc: object) -> None:
        with self._lock:
            self._done = True
            timer = self._timer
        if timer is not None:
            timer.cancel()

    def expired(self) -> bool:
        """Whether the deadline has passed (fired, or passed with no socket to shut)."""
        return self.fired or self._budget.remaining() <= 0

    def trace(self, name: str, info: dict[str, Any]) -> None:
        if name.endswith(".complete"):
            self.watch(info.get("return_value"))

    def watch(self, stream: Any) -> None:
        sock = stream.get_extra_info("socket") if hasattr(stream, "get_extra_info") else None
        if isinstance(sock, socket.socket):
            with self._lock:
                self._sockets.append(sock)
                late = self.fired  # the deadline passed while this connection was opening
                if self._timer is None and not self._done:
                    # a thread only for a real socket: an in-process exchange has none to shut
                    self._timer = threading.Timer(max(self._budget.remaining(), 0.0), self._fire)
                    self._timer.daemon = True
                    self._timer.start()
            if late:
                _shut(sock)

    def _fire(self) -> None:
        with self._lock:
            if self._done:
                return
            self.fired = True
            for sock in self._sockets:
                _shut(sock)


def _shut(sock: socket.socket) -> None:
    try:
        # the plain socket's shutdown, also for TLS: SSLSocket.shutdown would drop its SSL state
        # under the reading thread's feet
        socket.socket.shutdown(sock, socket.SHUT_RDWR)
    except OSError:
        pass  # already closed: nothing left to wake


def send_bounded(
    client: httpx.Client,
    request: httpx.Request,
    *,
    timeout: float,
    max_bytes: int = MAX_ANSWER_BYTES,
) -> Answer:
    """Send ``request`` and read the whole answer within ``timeout`` seconds and ``max_bytes``.

    Raises ``AnswerTooSlow`` / ``AnswerTooLarge`` (or httpx's own transport errors); the
    connection is closed whenever the answer was not read to its end.
    """
    budget = _Budget(request, timeout, max_bytes)
    with _Watchdog(budget) as watchdog:
        request.extensions["trace"] = _chain(request.extensions.get("trace"), watchdog.trace)
        try:
            response = client.send(request, stream=True)
            try:
                watchdog.watch(response.extensions.get("network_stream"))
                budget.start(response)
                for chunk in response.iter_bytes():
                    budget.take(chunk)
            finally:
                response.close()  # before the whole body: httpx drops the connection
        except httpx.TransportError as exc:
            if watchdog.expired() and not isinstance(exc, AnswerTooLarge):
                raise budget.too_slow() from None
            raise
    return budget.answer(response)


async def asend_bounded(
    client: httpx.AsyncClient,
    request: httpx.Request,
    *,
    timeout: float,
    max_bytes: int = MAX_ANSWER_BYTES,
) -> Answer:
    """``send_bounded`` for an ``httpx.AsyncClient``: the deadline cancels whatever is pending."""
    budget = _Budget(request, timeout, max_bytes)
    try:
        async with asyncio.timeout(timeout):
            response = await client.send(request, stream=True)
            try:
                budget.start(response)
                async for chunk in response.aiter_bytes():
                    budget.take(chunk)
            finally:
                await response.aclose()
    except TimeoutError:
        raise budget.too_slow() from None
    return budget.answer(response)


Trace = Callable[[str, dict[str, Any]], None]


def _chain(first: Trace | None, second: Trace) -> Trace:
    if first is None:
        return second

    def both(name: str, info: dict[str, Any]) -> None:
        first(name, info)
        second(name, info)

    return both


def http_url_problem(url: str) -> str | None:
    """Why ``url`` is not an http(s) URL with a host, or None when it is one."""
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL as exc:
        return f"is not a URL ({exc})"
    if parsed.scheme not in ("http", "https"):
        return "must start with http:// or https://"
    if not parsed.host:
        return "has no host"
    return None
