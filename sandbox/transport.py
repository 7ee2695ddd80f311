"""A synchronous httpx transport that calls an ASGI app in-process (no sockets).

httpx's own ``ASGITransport`` is async-only; this one runs it on a private event-loop thread so
that ``httpx.Client(transport=InProcessTransport(app))`` works in plain synchronous tests.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import httpx

from sandbox.faults import ConnectionDropped


class InProcessTransport(httpx.BaseTransport):
    """``httpx.Client(transport=InProcessTransport(app), base_url="http://sandbox")``.

    ``client`` is the (host, port) the app sees as the caller: loopback by default, so the admin
    API answers.
    """

    def __init__(self, app: Any, *, client: tuple[str, int] = ("127.0.0.1", 50000)) -> None:
        self._transport = httpx.ASGITransport(app=app, client=client)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="in-process-asgi", daemon=True
        )
        self._thread.start()

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        return self._loop

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        body = request.read()

        async def call() -> httpx.Response:
            inner = httpx.Request(
                request.method,
                request.url,
                headers=request.headers,
                content=body,
                extensions=request.extensions,
            )
            response = await self._transport.handle_async_request(inner)
            content = await response.aread()
            return httpx.Response(
                response.status_code, headers=response.headers, content=content, request=request
            )

        try:
            return asyncio.run_coroutine_threadsafe(call(), self._loop).result()
        except ConnectionDropped as exc:
            # what a client on a socket sees when a scenario drops the connection
            raise httpx.RemoteProtocolError(str(exc), request=request) from exc

    def close(self) -> None:
        if self._loop.is_running():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=5)
        if not self._loop.is_running() and not self._loop.is_closed():
            self._loop.close()
