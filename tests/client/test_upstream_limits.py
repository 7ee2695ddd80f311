"""Answers that never end, or come a byte at a time, are cut off by size and by total time.

httpx's timeout applies to each read, so an endless chunked body or a slow drip would keep a
plain ``post`` reading (and growing) forever. Each test points a tool at a real loopback server
that misbehaves in one way and checks what the user sees (the typed error, the envelope, the
exit code), how soon they see it, and that the connection was closed.
"""

from __future__ import annotations

import asyncio
import select
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from sandbox.client.clients import (
    AsyncLakalaClient,
    LakalaClient,
    LakalaResponseError,
    LakalaTimeout,
)
from sandbox.client.transport import MAX_ANSWER_BYTES, InProcessTransport
from sandbox.core.keys import PLATFORM_CERT, KeyStore
from sandbox.core.settings import Settings
from sandbox.runtime import Sandbox
from sandbox.server.app import create_app
from sandbox.tools.cli import main
from tests.support import V1, seed_create

TIMEOUT = 1.0
# scheduling, process start-up: what a bound may exceed the timeout by, on 2 cores shared with the
# suite's parallel workers (a drip no deadline stops goes on for SERVER_LIFE)
SLACK = 4.0
DRIP_EVERY = 0.2  # well inside any read timeout: only a whole-answer deadline stops a drip
ENDLESS_LIMIT = 256 * MAX_ANSWER_BYTES  # the endless body gives up here, or after SERVER_LIFE
SERVER_LIFE = 15.0
CHUNK = b" " * 65536
HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"


@dataclass
class Connection:
    sent: int = 0
    closed_by_peer: threading.Event = field(default_factory=threading.Event)


class Misbehaving:
    """A loopback HTTP server that answers every request in one bad way.

    ``endless``: a chunked body that never ends; ``drip``: a chunked body, one byte every
    ``DRIP_EVERY`` seconds; ``drip-headers``: the headers themselves, one byte at a time.
    Every loop stops when the client closes, after ``ENDLESS_LIMIT`` bytes or ``SERVER_LIFE``.
    """

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.connections: list[Connection] = []
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._listener.getsockname()[1]}"

    def __enter__(self) -> Misbehaving:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._listener.close()
        self._thread.join(timeout=5)

    def wait_closed(self, timeout: float) -> Connection:
        """The last connection, once its client has closed it (or AssertionError)."""
        assert self.connections, "nobody connected"
        last = self.connections[-1]
        assert last.closed_by_peer.wait(timeout), f"the client kept the connection {timeout}s"
        return last

    def _accept(self) -> None:
        self._listener.settimeout(0.1)
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            state = Connection()
            self.connections.append(state)
            threading.Thread(target=self._serve, args=(conn, state), daemon=True).start()

    def _serve(self, conn: socket.socket, state: Connection) -> None:
        with conn:
            conn.settimeout(2)
            try:
                _read_request(conn)
                if self.mode == "endless":
                    self._endless(conn, state)
                else:
                    payload = HEAD if self.mode == "drip-headers" else b"1\r\n \r\n" * 1000
                    if self.mode == "drip":
                        conn.sendall(HEAD)
                    self._drip(conn, state, payload)
            except OSError:
                state.closed_by_peer.set()  # reset or broken pipe: the client hung up

    def _endless(self, conn: socket.socket, state: Connection) -> None:
        conn.sendall(HEAD)
        frame = f"{len(CHUNK):x}\r\n".encode() + CHUNK + b"\r\n"
        deadline = time.monotonic() + SERVER_LIFE
        while state.sent < ENDLESS_LIMIT and time.monotonic() < deadline:
            if self._stop.is_set():
                return
            conn.sendall(frame)
            state.sent += len(frame)

    def _drip(self, conn: socket.socket, state: Connection, payload: bytes) -> None:
        deadline = time.monotonic() + SERVER_LIFE
        for byte in payload:
            if time.monotonic() > deadline or self._stop.is_set():
                return
            readable, _, _ = select.select([conn], [], [], DRIP_EVERY)
            if readable and not conn.recv(1024):
                state.closed_by_peer.set()  # EOF: the client closed its end
                return
            conn.sendall(bytes([byte]))
            state.sent += 1


def _read_request(conn: socket.socket) -> None:
    """The request head and its Content-Length body (bounded: a test client sends little)."""
    data = b""
    while b"\r\n\r\n" not in data and len(data) < 65536:
        chunk = conn.recv(65536)
        if not chunk:
            raise ConnectionResetError
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    while len(body) < length:
        chunk = conn.recv(65536)
        if not chunk:
            raise ConnectionResetError
        body += chunk


@pytest.fixture
def lakala_keys() -> Iterator[Sandbox]:
    """A sandbox whose keys the clients sign and verify with (it serves nothing here)."""
    app = create_app(Settings(data_dir=":memory:"))
    yield app.state.sandbox
    app.state.sandbox.close()


def _client(url: str, sb: Sandbox) -> LakalaClient:
    return LakalaClient(
        base_url=url,
        timeout=TIMEOUT,
        private_key=sb.keys.merchant_key,
        certificate=sb.keys.platform_cert,
    )


# -- the client ------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["drip", "drip-headers"])
def test_a_dripping_answer_is_a_timeout_after_the_timeout(mode: str, lakala_keys: Sandbox) -> None:
    with Misbehaving(mode) as server, _client(server.url, lakala_keys) as client:
        started = time.monotonic()
        with pytest.raises(LakalaTimeout, match=f"within {TIMEOUT:g}s"):
            client.query(out_order_no="DRIP-1")
        assert time.monotonic() - started < TIMEOUT + SLACK
        server.wait_closed(SLACK)


def test_an_endless_answer_stops_at_the_size_cap(lakala_keys: Sandbox) -> None:
    with Misbehaving("endless") as server, _client(server.url, lakala_keys) as client:
        started = time.monotonic()
        with pytest.raises(LakalaResponseError, match=f"larger than {MAX_ANSWER_BYTES} bytes"):
            client.query(out_order_no="ENDLESS-1")
        assert time.monotonic() - started < TIMEOUT + SLACK
        sent = server.wait_closed(SLACK).sent
    # what loopback buffers hold beyond the cap, not the 256 MiB the server would send
    assert sent < 32 * MAX_ANSWER_BYTES


@pytest.mark.parametrize(
    ("mode", "error", "text"),
    [
        ("drip", LakalaTimeout, f"within {TIMEOUT:g}s"),
        ("endless", LakalaResponseError, f"larger than {MAX_ANSWER_BYTES} bytes"),
    ],
)
def test_the_async_client_is_bounded_the_same_way(
    mode: str, error: type[Exception], text: str, lakala_keys: Sandbox
) -> None:
    async def call(url: str) -> None:
        async with AsyncLakalaClient(
            base_url=url,
            timeout=TIMEOUT,
            private_key=lakala_keys.keys.merchant_key,
            certificate=lakala_keys.keys.platform_cert,
        ) as client:
            await client.query(out_order_no="ASYNC-1")

    with Misbehaving(mode) as server:
        started = time.monotonic()
        with pytest.raises(error, match=text):
            asyncio.run(call(server.url))
        assert time.monotonic() - started < TIMEOUT + SLACK
        server.wait_closed(SLACK)


# -- real mode -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mode", "status", "code", "text"),
    [
        ("drip", 503, "SBX50001", f"within {TIMEOUT:g}s"),
        ("drip-headers", 503, "SBX50001", f"within {TIMEOUT:g}s"),
        ("endless", 502, "SBX50003", f"larger than {MAX_ANSWER_BYTES} bytes"),
    ],
)
def test_real_mode_answers_its_own_error_within_the_timeout(
    mode: str, status: int, code: str, text: str, lakala_keys: Sandbox
) -> None:
    with Misbehaving(mode) as lakala:
        client = AsyncLakalaClient(
            base_url=lakala.url,
            timeout=TIMEOUT,
            private_key=lakala_keys.keys.merchant_key,
            certificate=lakala_keys.keys.platform_cert,
            merchant_no="822290070111135",
        )
        proxy = create_app(
            Settings(data_dir=":memory:", mode="real", public_url="http://127.0.0.1:9"),
            lakala=client,
        )
        transport = InProcessTransport(proxy)
        try:
            with httpx.Client(transport=transport, base_url="http://proxy.test") as http:
                body = seed_create(proxy.state.sandbox, "SLOW-1")
                started = time.monotonic()
                answer = http.post(V1 + "create", json=body)
                elapsed = time.monotonic() - started
            lakala.wait_closed(SLACK)  # the proxy hung up on Lakala, too
            assert answer.status_code == status
            assert answer.json()["code"] == code and text in answer.json()["msg"]
            assert elapsed < TIMEOUT + SLACK
            assert proxy.state.sandbox.engine.count() == 0
        finally:
            transport.close()
            proxy.state.sandbox.close()


# -- notify-check and contract ---------------------------------------------------------------


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    KeyStore.load(tmp_path, appid="OP00000003", serial_no="00dfba8194c41b84cf")
    return tmp_path


@pytest.mark.parametrize(
    ("mode", "reason"),
    [
        ("drip", "AnswerTooSlow: the whole answer did not arrive within 0.5s"),
        ("endless", f"AnswerTooLarge: the answer is larger than {MAX_ANSWER_BYTES} bytes"),
    ],
)
def test_notify_check_fails_each_row_within_its_timeout(
    mode: str, reason: str, data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert (data_dir / PLATFORM_CERT).exists()
    with Misbehaving(mode) as handler:
        started = time.monotonic()
        code = main(
            ["notify-check", "--url", handler.url + "/notify", "--data-dir", str(data_dir)]
            + ["--timeout", "0.5"]
        )
        elapsed = time.monotonic() - started
        handler.wait_closed(SLACK)
    out = capsys.readouterr().out
    assert code == 1
    assert out.count(" FAIL ") == 5 and out.count(reason) == 5, out
    assert "0 of 5 checks passed." in out
    assert elapsed < 5 * 0.5 + SLACK


@pytest.mark.usefixtures("no_lakala_settings")
def test_contract_against_a_dripping_target_fails_within_its_timeout(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("LAKALA_TIMEOUT", "0.5")
    with Misbehaving("drip") as target:
        started = time.monotonic()
        code = main(["contract", "--target", target.url])
        elapsed = time.monotonic() - started
        target.wait_closed(SLACK)
    out = capsys.readouterr().out
    assert code == 1
    assert out.count("within 0.5s") == 3, out  # create, query and close each gave up
    # (and the key download tried first: four answers cut at 0.5 s each)
    assert elapsed < 4 * 0.5 + SLACK
