"""Hostile clients against a served sandbox: a clear 4xx or a closed connection, and everyone
else keeps being served. Every loop is bounded in count and time; loopback only."""

from __future__ import annotations

import json
import selectors
import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from sandbox.runtime import DB_FILE
from sandbox.server.serving import HEAD_TIMEOUT
from tests.servers import SandboxProcess, loopback
from tests.support import V1, database

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxProcess]:
    with SandboxProcess(tmp_path_factory.mktemp("hostile") / "data") as process:
        yield process


def healthy(server: SandboxProcess) -> bool:
    return loopback.get(server.url + "/healthz", timeout=5).status_code == 200


def raw_exchange(server: SandboxProcess, payload: bytes, timeout: float = 10) -> bytes:
    """Send bytes on a fresh connection; return what came back before the server closed it."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=timeout) as sock:
        try:
            sock.sendall(payload)
        except (BrokenPipeError, ConnectionResetError):
            pass
        chunks = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                chunk = sock.recv(65536)
            except (ConnectionResetError, TimeoutError):
                break
            if not chunk:
                break
            chunks.append(chunk)
            if b"\r\n\r\n" in b"".join(chunks) and b"content-length" in b"".join(chunks).lower():
                head, _, body = b"".join(chunks).partition(b"\r\n\r\n")
                length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
                if len(body) >= length:
                    break
        return b"".join(chunks)


def test_ten_megabyte_body_is_refused_with_413(server: SandboxProcess) -> None:
    body = b'{"out_order_no":"' + b"x" * (10 * 1024 * 1024) + b'"}'
    response = loopback.post(
        server.url + V1 + "create",
        content=body,
        headers={"Content-Type": "application/json"},
        timeout=30,
    )
    assert response.status_code == 413
    assert response.json()["code"] == "SBX40002"
    assert healthy(server)


def test_chunked_body_without_length_is_cut_off_at_the_limit(server: SandboxProcess) -> None:
    def chunks() -> Iterator[bytes]:
        for _ in range(10):  # 10 MiB in 1 MiB chunks, no Content-Length
            yield b"x" * (1024 * 1024)

    response = loopback.post(server.url + V1 + "create", content=chunks(), timeout=30)
    assert response.status_code == 413
    assert healthy(server)


def test_header_flood_is_refused_and_others_are_served(server: SandboxProcess) -> None:
    flood = b"".join(b"X-Flood-%d: %s\r\n" % (i, b"y" * 100) for i in range(5000))
    for _ in range(5):  # every time: the answer is never lost to a reset connection
        answer = raw_exchange(
            server, b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n" + flood + b"\r\n"
        )
        assert answer.startswith(b"HTTP/1.1 431 "), answer
    assert b"exceed 16384 bytes" in answer
    assert healthy(server)


def test_one_endless_header_is_refused_before_it_ends(server: SandboxProcess) -> None:
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Endless: ")
        for _ in range(64):  # 4 MiB of one header value, never finished: read and dropped
            sock.sendall(b"z" * 65536)
        answer = b""
        while chunk := sock.recv(65536):  # the answer, then the end (bounded by the timeout)
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 431 Request Header Fields Too Large\r\n"), answer
    assert answer.endswith(b"the request line and headers exceed 16384 bytes")
    assert healthy(server)


def test_large_heads_within_the_limit_and_large_bodies_are_served(server: SandboxProcess) -> None:
    """The head limit counts the request line and headers only, afresh for each request on a
    kept-alive connection, never the body."""
    with httpx.Client(base_url=server.url, timeout=10) as client:
        for i in range(3):
            response = client.post(
                V1 + "create",
                json={
                    "out_order_no": f"BIG-HEAD-{i}",
                    "total_amount": 1,
                    "order_info": "x" * 200_000,  # read whole, then refused by the schema
                },
                headers={"X-Padding": "p" * 12_000},
            )
            assert response.json()["code"] == "SBX10001"
            assert "order_info: must be at most 64 characters" in response.json()["msg"]
            response = client.post(
                V1 + "create",
                json={"out_order_no": f"BIG-HEAD-{i}", "total_amount": 1, "order_info": "ok"},
                headers={"X-Padding": "p" * 12_000},
            )
            assert response.json()["code"] == "000000"


def test_garbage_instead_of_http_is_dropped(server: SandboxProcess) -> None:
    answer = raw_exchange(server, b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" * 20)
    assert answer == b"" or answer.split(b" ", 2)[1].startswith(b"4")
    assert healthy(server)


def test_slow_clients_do_not_stall_others(server: SandboxProcess) -> None:
    stop = threading.Event()
    socks: list[socket.socket] = []
    for _ in range(40):  # slowloris: headers that never finish
        sock = socket.create_connection(("127.0.0.1", server.port), timeout=5)
        sock.sendall(b"POST " + V1.encode() + b"create HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        socks.append(sock)

    def trickle() -> None:
        for _ in range(20):
            if stop.wait(0.2):
                return
            for sock in socks:
                try:
                    sock.sendall(b"X-Slow: 1\r\n")
                except OSError:
                    pass

    thread = threading.Thread(target=trickle, daemon=True)
    thread.start()
    try:
        started = time.monotonic()
        for i in range(10):
            response = loopback.post(
                server.url + V1 + "create",
                json={"out_order_no": f"SLOW-{i}", "total_amount": 1, "order_info": "slow"},
                timeout=5,
            )
            assert response.json()["code"] == "000000"
        # a stalled server never answers (each call would time out): the bound is loose, since
        # the suite's parallel workers share the cores with this server
        assert time.monotonic() - started < 15
    finally:
        stop.set()
        thread.join(timeout=5)
        for sock in socks:
            sock.close()
    assert healthy(server)


def test_heads_that_never_complete_are_answered_408_and_closed(server: SandboxProcess) -> None:
    """Slowloris: 200 heads trickled a header line a second, and 20 connections that send
    nothing, are all closed once HEAD_TIMEOUT has passed (the heads answered 408), while
    everyone else is served meanwhile."""
    slow: list[socket.socket] = []
    silent: list[socket.socket] = []
    opened = time.monotonic()
    for i in range(220):
        sock = socket.create_connection(("127.0.0.1", server.port), timeout=5)
        sock.setblocking(False)
        if i < 200:
            sock.sendall(b"POST " + V1.encode() + b"create HTTP/1.1\r\nHost: 127.0.0.1\r\n")
            slow.append(sock)
        else:
            silent.append(sock)
    answers: dict[socket.socket, bytes] = {sock: b"" for sock in slow + silent}
    closed_at: dict[socket.socket, float] = {}
    trickled = time.monotonic()
    try:
        with selectors.DefaultSelector() as ready:
            for sock in answers:
                ready.register(sock, selectors.EVENT_READ)
            deadline = opened + HEAD_TIMEOUT + 10
            while len(closed_at) < len(answers) and time.monotonic() < deadline:
                if time.monotonic() - trickled >= 1:  # a header line a second, never the end
                    trickled = time.monotonic()
                    for sock in slow:
                        if sock not in closed_at:
                            try:
                                sock.send(b"X-Slow: 1\r\n")
                            except OSError:
                                pass
                    assert healthy(server)  # served meanwhile
                for key, _ in ready.select(timeout=0.2):
                    sock = key.fileobj
                    assert isinstance(sock, socket.socket)
                    try:
                        chunk = sock.recv(65536)
                    except (BlockingIOError, ConnectionResetError):
                        chunk = b""
                    answers[sock] += chunk
                    if not chunk:
                        closed_at[sock] = time.monotonic()
                        ready.unregister(sock)
        assert len(closed_at) == len(answers), f"{len(answers) - len(closed_at)} still open"
        assert min(closed_at.values()) - opened >= HEAD_TIMEOUT - 0.5  # not cut off early
        for sock in slow:
            assert answers[sock].startswith(b"HTTP/1.1 408 Request Timeout\r\n"), answers[sock]
            assert answers[sock].endswith(
                b"the request line and headers did not arrive within 10 s"
            )
        assert all(answers[sock] == b"" for sock in silent)
    finally:
        for sock in answers:
            sock.close()
    assert healthy(server)


def test_a_head_waiting_behind_a_slow_answer_is_not_cut_off(tmp_path: Path) -> None:
    """A pipelined head that began while the answer before it took longer than HEAD_TIMEOUT
    does not cut that answer off: it goes out whole, and then the connection is closed."""
    scenarios = tmp_path / "scenarios"
    scenarios.mkdir()
    (scenarios / "slow-query.yaml").write_text(
        "description: the first query takes 11 s\n"
        "match:\n  amount: 917\n"
        "steps:\n  - fault: {call: query, latency: 11}\n",
        encoding="utf-8",
    )
    with SandboxProcess(tmp_path / "data", "--scenarios", str(scenarios)) as slow:
        created = loopback.post(
            slow.url + V1 + "create",
            json={"out_order_no": "SLOW-Q-1", "total_amount": 917, "order_info": "slow"},
        ).json()
        assert created["code"] == "000000", created
        query = json.dumps({"out_order_no": "SLOW-Q-1"}).encode()
        with socket.create_connection(("127.0.0.1", slow.port), timeout=HEAD_TIMEOUT + 15) as sock:
            started = time.monotonic()
            sock.sendall(
                b"POST " + V1.encode() + b"query HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                b"Content-Type: application/json\r\nContent-Length: "
                + str(len(query)).encode()
                + b"\r\n\r\n"
                + query
                + b"POST /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n"  # never finished
            )
            answer = b""
            while chunk := sock.recv(65536):
                answer += chunk
            ended = time.monotonic() - started
    first, _, rest = answer.partition(b"\r\n\r\n")
    assert first.startswith(b"HTTP/1.1 200 "), answer[:300]
    assert b'"order_status":"WAIT_PAY"' in rest.replace(b" ", b"")
    # then the unfinished head is let go: uvicorn's keep-alive timeout (5 s) closes it, if the
    # head timeout (a 408) does not first
    assert ended < 11 + HEAD_TIMEOUT + 2


def test_many_bad_requests_at_once_leave_the_server_serving(server: SandboxProcess) -> None:
    bodies = [
        b"",
        b"[]",
        b"{",
        b'{"total_amount": NaN}',
        b"\xff" * 100,
        json.dumps({"out_order_no": "B" * 40}).encode(),
    ]
    with httpx.Client(base_url=server.url, timeout=10) as http, ThreadPoolExecutor(8) as pool:
        statuses = list(
            pool.map(
                lambda i: http.post(V1 + "create", content=bodies[i % len(bodies)]).status_code,
                range(120),
            )
        )
    assert set(statuses) <= {200, 400}
    assert 500 not in statuses
    assert healthy(server)


def test_kill_9_under_load_loses_no_acknowledged_order(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    acknowledged: list[str] = []
    lock = threading.Lock()
    server = SandboxProcess(data_dir).start()
    stop = threading.Event()

    def writer(worker: int) -> None:
        with httpx.Client(base_url=server.url, timeout=5) as http:
            for n in range(500):  # bounded; the kill ends it sooner
                if stop.is_set():
                    return
                try:
                    out = http.post(
                        V1 + "create",
                        json={
                            "out_order_no": f"K{worker}-{n}",
                            "total_amount": 1,
                            "order_info": "kill -9",
                        },
                    ).json()
                except (httpx.TransportError, ValueError):
                    return
                if out.get("code") == "000000":
                    with lock:
                        acknowledged.append(out["resp_data"]["pay_order_no"])

    threads = [threading.Thread(target=writer, args=(w,), daemon=True) for w in range(4)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 20
    while len(acknowledged) < 60 and time.monotonic() < deadline:
        time.sleep(0.02)
    server.kill()
    stop.set()
    for thread in threads:
        thread.join(timeout=10)
    assert len(acknowledged) >= 60

    with database(data_dir / DB_FILE) as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    with SandboxProcess(data_dir) as again, httpx.Client(base_url=again.url) as http:
        for pay_order_no in acknowledged:
            out = http.post(V1 + "query", json={"pay_order_no": pay_order_no}).json()
            assert out["code"] == "000000", pay_order_no
