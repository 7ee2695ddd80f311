"""How the sandbox is put on a port: uvicorn, with its C HTTP parser when installed, bounded.

uvicorn's httptools protocol is several times cheaper per request than its h11 one, but unlike h11
(which stops at 16 KiB) it sets no limit on a request's line and headers: a client could make the
server buffer megabytes of headers. ``BoundedHttpToolsProtocol`` keeps h11's bound and answers 431.
Without httptools (a platform with no wheel for it) uvicorn's h11 protocol serves, as before.

Nor does uvicorn bound the time a head may take: a client sending a header line now and then (or
nothing at all) would hold its connection for good, and a thousand of them a shared sandbox. A
head not complete ``HEAD_TIMEOUT`` seconds after its connection opened or its first byte came
(after the previous answer on a kept-alive connection) is answered 408 and its connection closed;
a connection that sent nothing is closed. (This bound, like the 431, is the httptools protocol's:
under the h11 fallback only uvicorn's own keep-alive timeout applies.)

A refused head's answer (431, 408) is followed by end-of-stream and the client's remaining bytes
are read and dropped for ``LINGER`` seconds before the connection closes: closed at once with
bytes unread, the kernel would reset it, and a client still sending would lose the answer.

The httptools protocol also writes every header name in lower case, where h11 keeps the case the
app gave. Lakala spells its signature headers ``Lklapi-Appid`` and so on, and a client that looks
them up in a plain map finds only that spelling, so ``_LakalaCase`` restores it on the way out.
"""

from __future__ import annotations

import asyncio
import functools
from typing import Any, cast

from sandbox.wire.signing import RESPONSE_HEADERS

# h11's own default: a request line plus headers beyond this are refused
MAX_HEAD_BYTES = 16 * 1024
TOO_LARGE = (
    f"431 Request Header Fields Too Large: the request line and headers exceed {MAX_HEAD_BYTES} "
    "bytes"
).encode()
# seconds a request line and headers may take to arrive
HEAD_TIMEOUT = 10.0
TOO_SLOW = (
    f"408 Request Timeout: the request line and headers did not arrive within {HEAD_TIMEOUT:g} s"
).encode()
# seconds a refused client's remaining bytes are read (and dropped) before its connection closes
LINGER = 2.0
# (as httptools writes them, as Lakala spells them): the signed response headers
_SPELLED = [
    (f"\r\n{name.lower()}: ".encode(), f"\r\n{name}: ".encode())
    for name in (*RESPONSE_HEADERS, "Lklapi-Traceid")
]


class _LakalaCase:
    """A transport that writes a response head with the ``Lklapi-*`` names in Lakala's case.
    uvicorn writes a response's status line and headers in one call, its body in others."""

    def __init__(self, transport: Any) -> None:
        self._transport = transport

    def write(self, data: bytes) -> None:
        if data.startswith(b"HTTP/1.1 ") and b"\r\nlklapi-" in data:
            head, end, body = data.partition(b"\r\n\r\n")
            for written, spelled in _SPELLED:
                head = head.replace(written, spelled)
            data = head + end + body
        self._transport.write(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


@functools.cache  # one class, however many servers a process starts
def http_protocol() -> Any:
    """The ``http`` argument for uvicorn: the bounded httptools protocol, or "h11"."""
    try:
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
    except ImportError:  # httptools is not installed
        return "h11"

    class BoundedHttpToolsProtocol(HttpToolsProtocol):
        """Refuses, with 431, a request whose line and headers exceed ``MAX_HEAD_BYTES``: counted
        exactly as the parser reports them, and as raw bytes while a head is still arriving (a
        single endless header is never reported, only buffered)."""

        _head_bytes = 0  # of the request line and headers parsed so far
        _arriving = 0  # bytes received since the current head began
        _in_head = True
        _too_large = False
        _head_timer: asyncio.TimerHandle | None = None
        _head_begun = False  # a byte of the current head has come
        _lingering = False  # refused: what still comes is dropped until the connection closes

        def connection_made(self, transport: Any) -> None:
            super().connection_made(cast(asyncio.Transport, _LakalaCase(transport)))
            self._start_head_timer()

        def connection_lost(self, exc: Exception | None) -> None:
            self._stop_head_timer()
            super().connection_lost(exc)

        def data_received(self, data: bytes) -> None:
            if self._lingering:
                return
            if self._in_head:
                self._arriving += len(data)
            super().data_received(data)
            if self._in_head and self._arriving > MAX_HEAD_BYTES and not self._too_large:
                self._too_large = True
                self.send_400_response("")

        def on_message_begin(self) -> None:
            self._head_bytes, self._too_large = 0, False
            self._head_begun = True
            if self._head_timer is None:  # (the first head's runs from the connection)
                self._start_head_timer()
            super().on_message_begin()

        def on_url(self, url: bytes) -> None:
            self._count(len(url))
            super().on_url(url)

        def on_header(self, name: bytes, value: bytes) -> None:
            self._count(len(name) + len(value) + 4)
            super().on_header(name, value)

        def on_headers_complete(self) -> None:
            self._in_head, self._arriving = False, 0
            self._head_begun = False
            self._stop_head_timer()
            super().on_headers_complete()

        def on_message_complete(self) -> None:
            self._in_head = True
            super().on_message_complete()

        def _count(self, size: int) -> None:
            self._head_bytes += size
            if self._head_bytes > MAX_HEAD_BYTES:
                self._too_large = True
                # the parser turns this into an HttpParserError: uvicorn answers through
                # send_400_response, which says 431 for this case
                raise ValueError("request head too large")

        def _start_head_timer(self) -> None:
            self._head_timer = self.loop.call_later(HEAD_TIMEOUT, self._head_too_slow)

        def _stop_head_timer(self) -> None:
            if self._head_timer is not None:
                self._head_timer.cancel()
                self._head_timer = None

        def _head_too_slow(self) -> None:
            self._head_timer = None
            if self.transport.is_closing():
                return
            if self.cycle is not None and not self.cycle.response_complete:
                self._start_head_timer()  # a head behind an answer still being made waits on us
                return
            if self._head_begun:
                self.logger.warning("Request head not complete in %gs: closed.", HEAD_TIMEOUT)
                self._refuse(b"408 Request Timeout", TOO_SLOW)
            elif self.cycle is None:  # nothing sent since it connected
                self.transport.close()

        def send_400_response(self, msg: str) -> None:
            if not self._too_large:
                super().send_400_response(msg)
                return
            self.logger.warning("Request head over %d bytes refused.", MAX_HEAD_BYTES)
            self._refuse(b"431 Request Header Fields Too Large", TOO_LARGE)

        def _refuse(self, status: bytes, text: bytes) -> None:
            """Answer ``status`` and close, lingering so that the client gets to read it."""
            self._stop_head_timer()
            self.transport.write(
                b"HTTP/1.1 " + status + b"\r\n"
                b"content-type: text/plain; charset=utf-8\r\n"
                b"content-length: " + str(len(text)).encode() + b"\r\n"
                b"connection: close\r\n\r\n" + text
            )
            if not self.transport.can_write_eof():  # (TLS): closed at once, as before
                self.transport.close()
                return
            self._lingering = True
            self.transport.write_eof()
            self.flow.resume_reading()
            self.loop.call_later(LINGER, self.transport.close)

    return BoundedHttpToolsProtocol


def config(app: Any, **options: Any) -> Any:
    """A ``uvicorn.Config`` for ``app`` with the sandbox's HTTP protocol."""
    import uvicorn

    return uvicorn.Config(app, http=http_protocol(), **options)
