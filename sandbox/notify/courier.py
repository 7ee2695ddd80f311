"""Where notifies are sent from: one thread running an event loop, and a lean HTTP/1.1 POST.

Every delivery in flight is a task on the courier's loop, so a thousand notifies are a thousand
cheap tasks, not a thousand threads queueing for the interpreter lock and the store. Under a
server the courier uses the server's own event loop (``attach``): one loop then takes turns between
answering requests and delivering notifies, instead of two loops on two threads passing the
interpreter lock back and forth. Elsewhere (a sandbox in a test) it starts a loop thread of its own.
``post`` speaks just what a notify needs: one POST, the answer's status and at most
``max_answer`` bytes of its body, redirects reported and never followed, keep-alive connections
pooled per receiver, everything bounded by one deadline. The answer is parsed by httptools.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlsplit

import httptools

from sandbox.wire.tls import tls

log = logging.getLogger("lakala_sandbox.courier")

REDIRECTS = (301, 302, 303, 307, 308)
NO_ANSWER = "the receiver closed the connection without answering"
_PATH_SAFE = "/%:@!$&'()*+,;=-._~"
_QUERY_SAFE = _PATH_SAFE + "?"
Key = tuple[str, str, int]  # scheme, host, port


@dataclass
class Answer:
    status: int | None = None
    body: bytes = b""
    location: str | None = None
    error: str | None = None  # why there is no (complete) answer


@dataclass
class _Parsed:
    """httptools' callbacks for one answer."""

    limit: int
    status: int | None = None
    headers: dict[bytes, bytes] = field(default_factory=dict)
    body: bytearray = field(default_factory=bytearray)
    truncated: bool = False
    complete: bool = False
    head_done: bool = False

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers[name.lower()] = value

    def on_headers_complete(self) -> None:
        self.head_done = True

    def on_body(self, data: bytes) -> None:
        room = self.limit - len(self.body)
        if len(data) > room:
            self.truncated = True
        self.body += data[: max(room, 0)]

    def on_message_complete(self) -> None:
        self.complete = True


class _Connection:
    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        live: set[_Connection],
    ) -> None:
        self.reader, self.writer, self._live = reader, writer, live
        live.add(self)

    def close(self) -> None:
        self.writer.close()
        self._live.discard(self)


class Courier:
    """Runs coroutines on a loop: the server's (``attach``), or its own thread's, started on
    first use. ``stop`` cancels what is in flight and lets go of the loop."""

    def __init__(self, *, max_idle_per_receiver: int = 64) -> None:
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None  # None while on a borrowed loop
        self._tasks: set[asyncio.Task[None]] = set()  # the jobs, as seen from the loop
        self._idle: dict[Key, list[_Connection]] = {}
        self._live: set[_Connection] = set()  # every connection open, idle or in use
        self._max_idle = max_idle_per_receiver

    def attach(self, loop: asyncio.AbstractEventLoop) -> bool:
        """Send from ``loop`` (a running server's) from now on; False if already sending from
        a loop of its own, which then stays in use until ``stop``."""
        with self._lock:
            if self._loop is not None and self._loop is not loop:
                return False
            self._loop = loop
            return True

    def submit(self, job: Callable[[], Awaitable[Any]]) -> None:
        """Run ``job()`` on the courier's loop; it must handle its own errors."""
        with self._lock:
            if self._loop is not None and self._thread is None and self._loop.is_closed():
                self._loop = None  # the server went away without stopping the courier
            if self._loop is None:
                ready = threading.Event()
                self._thread = threading.Thread(
                    target=self._run, args=(ready,), name="lakala-sandbox-courier", daemon=True
                )
                self._thread.start()
                ready.wait()
            loop = self._loop
            assert loop is not None
            asyncio.run_coroutine_threadsafe(self._call(job), loop)

    def stop(self, timeout: float = 5.0) -> None:
        """Cancel what is still in flight, close pooled connections, and let go of the loop
        (ending its thread when it is the courier's own)."""
        with self._lock:
            loop, thread = self._loop, self._thread
            self._loop = self._thread = None
        if loop is None:
            return
        if thread is None and not loop.is_running():  # the server's, stopped: nothing runs on it
            self._idle.clear()
            self._live.clear()
            return
        try:
            on_loop = asyncio.get_running_loop() is loop
        except RuntimeError:
            on_loop = False
        if on_loop:  # (called from the loop itself: it cannot also wait for it)
            loop.create_task(self._wind_down())
            return
        try:
            asyncio.run_coroutine_threadsafe(self._wind_down(), loop).result(timeout)
        except Exception:  # a loop that cannot wind down in time is left to itself
            log.warning("the courier did not wind down within %ss", timeout)
        if thread is not None:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout)

    async def _wind_down(self) -> None:
        """Cancel the jobs and wait for them, then close every connection and wait until each
        is really closed: a loop closed with a transport still closing warns about it."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._idle.clear()
        writers = [conn.writer for conn in self._live]
        for conn in list(self._live):
            conn.close()
        if writers:
            await asyncio.wait([asyncio.ensure_future(w.wait_closed()) for w in writers], timeout=1)

    async def _call(self, job: Callable[[], Awaitable[Any]]) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            await job()
        except asyncio.CancelledError:
            raise
        except Exception:  # the job's own handler failed: say so, and keep the loop alive
            log.exception("a courier job failed")
        finally:
            self._tasks.discard(task)

    def _run(self, ready: threading.Event) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        ready.set()
        try:
            loop.run_forever()
        finally:
            loop.close()

    # -- one POST --------------------------------------------------------------------------
    async def post(
        self,
        url: str,
        body: bytes,
        headers: dict[str, str],
        *,
        timeout: float,
        max_answer: int,
    ) -> Answer:
        """POST on the courier's loop; never raises for what the receiver does."""
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        try:
            port = parts.port or (443 if scheme == "https" else 80)
        except ValueError as exc:
            return Answer(error=f"InvalidURL: {exc}")
        if scheme not in ("http", "https") or not parts.hostname:
            return Answer(error=f"InvalidURL: cannot send to {url!r}")
        try:  # a name in another script goes on the wire in its ASCII (IDNA) form
            hostname = parts.hostname.encode("idna").decode("ascii")
        except UnicodeError as exc:
            return Answer(error=f"InvalidURL: {exc}")
        key: Key = (scheme, hostname, port)
        default_port = 443 if scheme == "https" else 80
        host = hostname if ":" not in hostname else f"[{hostname}]"
        # characters a request line cannot carry are percent-encoded, as a browser would
        target = quote(parts.path or "/", safe=_PATH_SAFE) + (
            "?" + quote(parts.query, safe=_QUERY_SAFE) if parts.query else ""
        )
        head = (
            f"POST {target} HTTP/1.1\r\n"
            f"Host: {host}{'' if port == default_port else f':{port}'}\r\n"
            f"Content-Length: {len(body)}\r\n"
            + "".join(f"{k}: {v}\r\n" for k, v in headers.items())
            + "\r\n"
        )
        request = head.encode("latin-1") + body
        try:
            async with asyncio.timeout(timeout):
                pooled = self._take(key)
                if pooled is not None:
                    answer = await self._exchange(key, pooled, request, max_answer)
                    if answer is not None:
                        return answer
                    # closed without a byte of answer: nearly always a kept-alive connection
                    # the receiver had let go while idle. The notify goes once more on a fresh
                    # one (a merchant must accept a notify twice in any case: Lakala retries)
                conn = await self._open(key)
                answer = await self._exchange(key, conn, request, max_answer)
                return answer or Answer(error=f"ConnectionResetError: {NO_ANSWER}")
        except TimeoutError:
            return Answer(error=f"no answer within {timeout:g}s (timeout)")
        except (OSError, ssl.SSLError, httptools.HttpParserError, ValueError) as exc:
            return Answer(error=f"{type(exc).__name__}: {exc}")

    def _take(self, key: Key) -> _Connection | None:
        pool = self._idle.get(key)
        while pool:
            conn = pool.pop()
            if not conn.reader.at_eof() and not conn.writer.is_closing():
                return conn
            conn.close()
        return None

    async def _open(self, key: Key) -> _Connection:
        scheme, host, port = key
        context = tls() if scheme == "https" else None
        reader, writer = await asyncio.open_connection(
            host, port, ssl=context, server_hostname=host if context else None, limit=2**16
        )
        return _Connection(reader, writer, self._live)

    async def _exchange(
        self, key: Key, conn: _Connection, request: bytes, max_answer: int
    ) -> Answer | None:
        """The answer, or None when the connection closed before a single byte of one."""
        parsed = _Parsed(limit=max_answer)
        parser = httptools.HttpResponseParser(parsed)
        received = 0
        keep = False
        try:
            conn.writer.write(request)
            await conn.writer.drain()
            while not parsed.complete:
                data = await conn.reader.read(65536)
                if not data:
                    break
                received += len(data)
                parser.feed_data(data)
                if parsed.truncated:
                    break  # enough of it: the rest is not read, and the connection not reused
            else:
                keep = _keeps_alive(parser.get_http_version(), parsed.headers)
        except (ConnectionResetError, BrokenPipeError):
            if received == 0:
                conn.close()
                return None
            raise
        finally:
            if keep and len(self._idle.setdefault(key, [])) < self._max_idle:
                self._idle[key].append(conn)
            else:
                conn.close()
        if received == 0:
            return None
        if not parsed.head_done:
            raise ConnectionResetError("the receiver closed the connection mid-answer")
        length = parsed.headers.get(b"content-length")
        chunked = b"chunked" in parsed.headers.get(b"transfer-encoding", b"").lower()
        if not parsed.complete and not parsed.truncated and (length is not None or chunked):
            raise ConnectionResetError("the receiver closed the connection mid-answer")
        status = parser.get_status_code()
        location = parsed.headers.get(b"location")
        return Answer(
            status=status,
            body=bytes(parsed.body),
            location=location.decode("latin-1") if location is not None else None,
        )


def _keeps_alive(version: str, headers: dict[bytes, bytes]) -> bool:
    # (httptools' should_keep_alive() no longer knows once the answer is complete)
    connection = headers.get(b"connection", b"").lower()
    if version == "1.1":
        return b"close" not in connection
    return b"keep-alive" in connection
