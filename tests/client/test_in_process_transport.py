"""InProcessTransport calls an ASGI app as httpx's ASGITransport does, without its cost per call."""

from __future__ import annotations

import asyncio
import gc
import threading
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, StreamingResponse
from starlette.routing import Route

from sandbox.client.transport import InProcessTransport
from sandbox.testing.receiver import NotifyReceiver, Received
from tests.conftest import make_app
from tests.support import V1, import_searches

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


def test_a_call_runs_in_the_callers_thread_and_starts_none() -> None:
    """No thread waits for calls and none is handed each one: the app runs in the thread that
    called, and the transport starts no thread of its own."""
    ran_in: list[threading.Thread] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        ran_in.append(threading.current_thread())
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    before = threading.enumerate()
    with httpx.Client(transport=InProcessTransport(app), base_url="http://t") as client:
        assert [client.get("/").text for _ in range(3)] == ["ok"] * 3
        assert set(threading.enumerate()) <= set(before)  # (none new; others may have ended)
    assert ran_in == [threading.current_thread()] * 3


def test_calls_from_several_threads_at_once_each_get_their_own_answer(
    http: httpx.Client,
) -> None:
    """They share the one loop, side by side; none gets another's answer."""
    barrier = threading.Barrier(8, timeout=30)

    def calls(worker: int) -> list[str]:
        barrier.wait()
        return [http.post("/echo/t", content=f"{worker}-{i}").json()["body"] for i in range(25)]

    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(calls, range(8), timeout=60))
    assert answers == [[f"{worker}-{i}" for i in range(25)] for worker in range(8)]


def test_a_call_from_another_thread_runs_beside_one_in_progress() -> None:
    """One call waits for what only another thread's call does: that call joins the loop the
    first is running and is answered, and then the first ends too, as on a server."""
    waiting = threading.Event()
    released = asyncio.Event()

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["path"] == "/wait":
            waiting.set()
            await asyncio.wait_for(released.wait(), 10)
        else:
            released.set()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": scope["path"].encode()})

    answers: list[str] = []
    with httpx.Client(transport=InProcessTransport(app), base_url="http://t") as client:
        first = threading.Thread(target=lambda: answers.append(client.get("/wait").text))
        first.start()
        assert waiting.wait(10)
        answers.append(client.get("/release").text)
        first.join(10)
    assert sorted(answers) == ["/release", "/wait"]  # (in whichever order the threads took)


def test_a_notify_handler_can_query_the_sandbox_while_the_clock_move_waits_for_it() -> None:
    """A merchant's handler that queries the order before it acknowledges the notify, through
    the test's own in-process client, while the test's clock move waits (half a second at most)
    for that notify to be answered: the query is served, and the first attempt is delivered."""
    app = make_app()
    seen: list[str] = []
    with httpx.Client(transport=InProcessTransport(app), base_url="http://t") as http:

        def query_first(notify: Received) -> None:
            query = http.post(V1 + "query", json={"out_order_no": notify.json()["out_order_no"]})
            seen.append(query.json()["resp_data"]["order_status"])

        with NotifyReceiver(handle=query_first) as merchant:
            order = http.post(  # (¥9.01 pays itself after 3 s of the sandbox's clock)
                V1 + "create",
                json={
                    "out_order_no": "CALLBACK-1",
                    "total_amount": 901,
                    "order_info": "handler queries back",
                    "notify_url": merchant.url,
                },
            ).json()["resp_data"]
            assert http.post("/sandbox/api/clock/advance", json={"seconds": 5}).is_success
            assert app.state.sandbox.notifier.drain(30)  # (a bound, for a loaded machine)
            journal = http.get(f"/sandbox/api/orders/{order['pay_order_no']}/notifies").json()
    assert seen == ["SUCCESS"]
    assert [(a["sequence"], a["state"]) for a in journal["notifies"]] == [(1, "delivered")]


def test_a_call_from_inside_a_running_event_loop_is_answered(http: httpx.Client) -> None:
    """A synchronous client used inside async code, where a second loop may not run in the same
    thread: the call runs on a thread of its own and answers as any other."""

    async def inside() -> tuple[int, str]:
        answer = http.post("/echo/inside", content=b"from async code")
        return answer.status_code, answer.json()["body"]

    assert asyncio.run(inside()) == (200, "from async code")
    with pytest.raises(LookupError, match="the app broke"):  # (its exception reaches the caller)
        asyncio.run(_get(http, "/broken"))
    assert http.get("/echo/after").status_code == 200


async def _get(http: httpx.Client, path: str) -> httpx.Response:
    return http.get(path)


def test_work_the_app_leaves_running_goes_on_at_the_next_call_and_ends_at_close() -> None:
    steps: list[str] = []
    left: list[asyncio.Task[None]] = []

    async def background() -> None:
        try:
            steps.append("started")
            await asyncio.sleep(0)
            steps.append("went on")
            await asyncio.Event().wait()  # (never set)
        finally:
            steps.append("cancelled")

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["path"] == "/leave":
            left.append(asyncio.get_running_loop().create_task(background()))
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    transport = InProcessTransport(app)
    with httpx.Client(transport=transport, base_url="http://t") as client:
        client.get("/leave")
        client.get("/other")
        assert steps == ["started", "went on"]
    assert steps == ["started", "went on", "cancelled"] and left[0].cancelled()


def test_a_closed_transport_says_so_and_closes_again_quietly() -> None:
    transport = InProcessTransport(APP)
    client = httpx.Client(transport=transport, base_url="http://t")
    assert client.get("/echo/x").status_code == 200
    client.close()
    transport.close()  # (a second close does nothing)
    with pytest.raises(RuntimeError, match="InProcessTransport is closed"):
        transport.handle_request(httpx.Request("GET", "http://t/echo/x"))


def test_a_transport_dropped_without_closing_lets_its_loop_go_quietly() -> None:
    """Without ``close`` (a client never closed): when it is collected its loop is closed, so
    no warning of an unclosed loop reaches whatever runs then (warnings are errors here)."""
    transport = InProcessTransport(APP)
    loop = transport.loop
    assert httpx.Client(transport=transport).get("http://t/echo/x").status_code == 200
    del transport
    gc.collect()
    assert loop.is_closed()
