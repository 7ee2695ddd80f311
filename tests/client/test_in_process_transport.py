"""InProcessTransport calls an ASGI app as httpx's ASGITransport does, without its cost per call."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, StreamingResponse
from starlette.routing import Route

from sandbox.client.transport import InProcessTransport
from tests.support import import_searches

SEEN: list[dict[str, Any]] = []


async def echo(request: Request) -> JSONResponse:
    scope = {k: v for k, v in request.scope.items() if isinstance(v, str | int | bytes | tuple)}
    scope["headers"] = [list(pair) for pair in request.scope["headers"]]
    SEEN.append(scope)
    body = await request.body()
    return JSONResponse({"body": body.decode(), "method": request.method})


async def streamed(request: Request) -> StreamingResponse:
    async def parts() -> AsyncIterator[bytes]:
        for part in (b"one ", b"two ", b"three"):
            await asyncio.sleep(0.01)
            yield part

    return StreamingResponse(parts(), media_type="text/plain")


async def broken(request: Request) -> JSONResponse:
    raise LookupError("the app broke")


APP = Starlette(
    routes=[
        Route("/echo/{rest:path}", echo, methods=["GET", "POST", "HEAD"]),
        Route("/streamed", streamed),
        Route("/broken", broken),
    ]
)


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with httpx.Client(transport=InProcessTransport(APP), base_url="http://t.test:8090") as client:
        yield client


def test_the_app_sees_the_scope_httpx_asgi_transport_gives(http: httpx.Client) -> None:
    SEEN.clear()
    url = "/echo/a%20b/c?x=1&y=%C3%A9"
    headers = {"X-Case": "Mixed", "Content-Type": "text/plain"}
    answer = http.post(url, content=b"hello", headers=headers)
    assert answer.json() == {"body": "hello", "method": "POST"}

    async def through_httpx() -> httpx.Response:
        transport = httpx.ASGITransport(app=APP, client=("127.0.0.1", 50000))
        async with httpx.AsyncClient(transport=transport, base_url="http://t.test:8090") as c:
            return await c.post(url, content=b"hello", headers=headers)

    theirs = asyncio.run(through_httpx())
    assert len(SEEN) == 2 and SEEN[0] == SEEN[1]
    assert SEEN[0]["path"] == "/echo/a b/c" and SEEN[0]["query_string"] == b"x=1&y=%C3%A9"
    assert SEEN[0]["client"] == ("127.0.0.1", 50000)
    assert (answer.status_code, answer.headers.multi_items(), answer.content) == (
        theirs.status_code,
        theirs.headers.multi_items(),
        theirs.content,
    )


def test_a_head_answer_has_its_headers_and_no_body(http: httpx.Client) -> None:
    got = http.head("/echo/x")
    assert got.status_code == 200 and got.content == b""
    assert int(got.headers["content-length"]) > 0


def test_a_streamed_answer_arrives_whole(http: httpx.Client) -> None:
    """Starlette's StreamingResponse listens for a disconnect while it streams: it must come only
    once the answer is complete."""
    got = http.get("/streamed")
    assert (got.status_code, got.text) == (200, "one two three")


def test_an_exception_in_the_app_reaches_the_caller(http: httpx.Client) -> None:
    with pytest.raises(LookupError, match="the app broke"):
        http.get("/broken")
    assert http.get("/echo/after").status_code == 200  # and the transport goes on


def test_a_call_imports_nothing(http: httpx.Client) -> None:
    """httpx's ASGITransport tries ``import sniffio`` on every call (to see whether trio runs),
    and where it is missing that search of the whole path is a tenth of a millisecond a call."""
    http.get("/echo/warm")
    with import_searches() as searched:
        for _ in range(5):
            assert http.post("/echo/x", content=b"y").status_code == 200
    assert searched == []


def test_closing_the_transport_closes_what_the_app_left_open() -> None:
    """As ``asyncio.run`` ends: an async generator the app began and did not finish (a body read
    in part, say) is closed on its loop when the transport closes, not left for the collector to
    find after the loop is gone (which Python 3.13 reports, in whatever code runs then)."""
    closed: list[bool] = []
    kept: list[Any] = []

    async def numbers() -> AsyncIterator[int]:
        try:
            yield 1
            yield 2
        finally:
            closed.append(True)

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        begun = numbers()
        await begun.__anext__()
        kept.append(begun)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    with httpx.Client(transport=InProcessTransport(app), base_url="http://t") as client:
        assert client.get("/").text == "ok"
        assert closed == []  # (open while the transport is)
    assert closed == [True]  # (the client closed its transport)
