"""A v1 POST without ``Origin`` goes straight to its endpoint (``V1Cors.direct``), past the router:
its answers must be the routed way's, byte for byte, refusals and all."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from sandbox.client.transport import InProcessTransport
from sandbox.server.cors import V1Cors, vary_origin
from sandbox.testing.plugin import ServerThread
from tests.conftest import make_app
from tests.support import V1

SETTINGS: dict[str, Any] = {"clock_start": "20261206120000", "clock_speed": 0, "seed": 11}
BODY = {"out_order_no": "DIRECT-1", "total_amount": 100, "order_info": "direct"}
JSON = {"Content-Type": "application/json"}

# (method, path, headers, body): every way a v1 call is answered or refused
CALLS: list[tuple[str, str, dict[str, str], bytes]] = [
    ("POST", V1 + "create", JSON, json.dumps(BODY).encode()),
    ("POST", V1 + "create", JSON, json.dumps(BODY).encode()),  # the same again
    ("POST", V1 + "create", JSON, json.dumps({**BODY, "total_amount": 200}).encode()),
    ("POST", V1 + "create", JSON, b'{"out_order_no": '),
    ("POST", V1 + "create", JSON, b"[1, 2]"),
    ("POST", V1 + "create", JSON, json.dumps({**BODY, "total_amount": 0}).encode()),
    ("POST", V1 + "create", {**JSON, "Content-Length": str(10**9)}, b"{}"),
    ("POST", V1 + "create", {**JSON, "X-Sandbox-Scenario": "no-such"}, b"{}"),
    ("POST", V1 + "query", JSON, b'{"out_order_no": "DIRECT-1"}'),
    ("POST", V1 + "query", JSON, b'{"out_order_no": "NOT-THERE"}'),
    ("POST", V1 + "close", JSON, b'{"out_order_no": "DIRECT-1"}'),
    ("POST", V1 + "query", JSON, b'{"out_order_no": "DIRECT-1"}'),
    ("GET", V1 + "create", {}, b""),
    ("POST", V1 + "create/", JSON, b"{}"),
    ("POST", V1 + "nothing", JSON, b"{}"),
    ("POST", V1 + "create", {**JSON, "Origin": "http://localhost:3000"}, b"{}"),
    ("POST", V1 + "create", {**JSON, "Origin": "https://elsewhere.example"}, b"{}"),
]


def routed_only(app: Starlette) -> None:
    """The app with its V1Cors sending every call the routed way."""
    app.middleware_stack = app.build_middleware_stack()
    layer: Any = app.middleware_stack
    while not isinstance(layer, V1Cors):
        layer = layer.app
    layer.direct = {}


@pytest.fixture
def two_ways() -> Iterator[tuple[httpx.Client, httpx.Client, list[str]]]:
    direct, routed = make_app(**SETTINGS), make_app(**SETTINGS)
    routed_only(routed)
    reached: list[str] = []  # the paths that reached the direct app's router
    router = direct.router.middleware_stack

    async def counting(scope: Any, receive: Any, send: Any) -> None:
        reached.append(scope["path"])
        await router(scope, receive, send)

    direct.router.middleware_stack = counting
    with (
        httpx.Client(transport=InProcessTransport(direct), base_url="http://t") as one,
        httpx.Client(transport=InProcessTransport(routed), base_url="http://t") as other,
    ):
        yield one, other, reached
    direct.state.sandbox.close()
    routed.state.sandbox.close()


def test_direct_answers_are_the_routed_ones_byte_for_byte(
    two_ways: tuple[httpx.Client, httpx.Client, list[str]],
) -> None:
    direct, routed, reached = two_ways
    seen = set()
    for method, path, headers, content in CALLS:
        answers = [
            client.request(method, path, headers=headers, content=content)
            for client in (direct, routed)
        ]
        a, b = ((r.status_code, r.headers.multi_items(), r.content) for r in answers)
        assert a == b, (method, path, headers, content)
        seen.add(a[0])
    assert {200, 400, 404, 405, 413} <= seen  # (answered, refused, no such route or method)
    # only what the direct table does not hold reached the router: the GET, the two unknown
    # paths and the call from an allowed Origin (the other Origin is refused before it)
    assert reached == [V1 + "create", V1 + "create/", V1 + "nothing", V1 + "create"]


def test_a_direct_answer_carries_vary_origin_as_starlettes_cors_adds_it() -> None:
    app = make_app(**SETTINGS)
    with httpx.Client(transport=InProcessTransport(app), base_url="http://t") as http:
        response = http.post(V1 + "create", json=BODY)
    app.state.sandbox.close()
    assert response.status_code == 200
    assert [name for name, _ in response.headers.multi_items()] == [
        "content-length",
        "content-type",
        "vary",
    ]
    assert response.headers["vary"] == "Origin"


def test_vary_origin_joins_an_existing_vary_as_starlette_does() -> None:
    assert vary_origin([(b"a", b"1")]) == [(b"a", b"1"), (b"vary", b"Origin")]
    assert vary_origin([(b"vary", b"Accept"), (b"a", b"1"), (b"vary", b"Cookie")]) == [
        (b"vary", b"Accept, Cookie, Origin"),
        (b"a", b"1"),
    ]


def test_served_the_answer_head_is_as_before() -> None:
    """On a socket, under the HTTP protocol ``serve`` uses: uvicorn's date and server, then the
    answer's own headers and Starlette's ``Vary``, in that order."""
    app = make_app(**SETTINGS)
    served = ServerThread(app).start()
    body = json.dumps(BODY).encode()
    try:
        with socket.create_connection(("127.0.0.1", served.port), timeout=10) as conn:
            conn.sendall(
                f"POST {V1}create HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n".encode()
                + body
            )
            answer = b""
            while b"\r\n\r\n" not in answer:
                chunk = conn.recv(65536)
                assert chunk, f"the connection closed before the head was complete: {answer!r}"
                answer += chunk
    finally:
        served.stop()
    head = answer.split(b"\r\n\r\n")[0].decode().split("\r\n")
    assert head[0] == "HTTP/1.1 200 OK"
    names = [line.split(":")[0] for line in head[1:]]
    assert names == ["date", "server", "content-length", "content-type", "vary"]
    assert "content-type: application/json; charset=utf-8" in head
    assert "vary: Origin" in head
