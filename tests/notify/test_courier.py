"""The courier's HTTP POST against a scripted loopback receiver: what it reads of an answer, and
when it reuses a connection."""

from __future__ import annotations

import asyncio
import gc
import socket
import threading
import time
import warnings
from collections.abc import Callable, Iterator

import pytest

from sandbox.notify.courier import Answer, Courier
from sandbox.testing.receiver import NotifyReceiver
from tests.notify_receiver import LiveSandbox
from tests.support import V1

# One request's worth of bytes in, one answer's out: (request bytes) -> (answer bytes, keep open)
Script = Callable[[bytes], tuple[bytes, bool]]


class ScriptedReceiver:
    """Answers each request on a connection with ``script``; counts connections and requests."""

    def __init__(self, script: Script) -> None:
        self.script = script
        self.connections = 0
        self.requests: list[bytes] = []
        self.open: list[socket.socket] = []
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.2)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._listener.getsockname()[1]}/notify"

    def __enter__(self) -> ScriptedReceiver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)
        for conn in self.open:
            conn.close()
        self._listener.close()

    def close_idle(self) -> None:
        """Close every kept-alive connection, as a receiver's idle timeout does."""
        for conn in self.open:
            conn.close()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            self.connections += 1
            self.open.append(conn)
            threading.Thread(target=self._talk, args=(conn,), daemon=True).start()

    def _talk(self, conn: socket.socket) -> None:
        buffer = b""
        with conn:
            conn.settimeout(10)
            for _ in range(100):
                while b"\r\n\r\n" not in buffer:
                    try:
                        chunk = conn.recv(65536)
                    except OSError:
                        return
                    if not chunk:
                        return
                    buffer += chunk
                head, _, rest = buffer.partition(b"\r\n\r\n")
                length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
                while len(rest) < length:
                    rest += conn.recv(65536)
                self.requests.append(head + b"\r\n\r\n" + rest[:length])
                buffer = rest[length:]
                answer, keep = self.script(self.requests[-1])
                try:
                    conn.sendall(answer)
                except OSError:
                    return
                if not keep:
                    return


@pytest.fixture
def courier() -> Iterator[Courier]:
    c = Courier()
    yield c
    c.stop()


def post(courier: Courier, url: str, *, max_answer: int = 65536, timeout: float = 5) -> Answer:
    done = threading.Event()
    out: list[Answer] = []

    async def job() -> None:
        out.append(
            await courier.post(
                url,
                b'{"n":1}',
                {"Content-Type": "application/json"},
                timeout=timeout,
                max_answer=max_answer,
            )
        )
        done.set()

    courier.submit(job)
    assert done.wait(timeout + 5)
    return out[0]


def ok(body: bytes = b'{"code":"SUCCESS"}', extra: bytes = b"") -> bytes:
    return b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n%s\r\n%s" % (len(body), extra, body)


def test_kept_alive_connections_are_reused(courier: Courier) -> None:
    with ScriptedReceiver(lambda req: (ok(), True)) as rx:
        answers = [post(courier, rx.url) for _ in range(5)]
    assert [a.status for a in answers] == [200] * 5
    assert answers[0].body == b'{"code":"SUCCESS"}'
    assert rx.connections == 1 and len(rx.requests) == 5
    first = rx.requests[0]
    assert first.startswith(b"POST /notify HTTP/1.1\r\n")
    assert b"\r\nContent-Length: 7\r\n" in first and first.endswith(b'{"n":1}')


def test_connection_close_is_honoured(courier: Courier) -> None:
    with ScriptedReceiver(lambda req: (ok(extra=b"Connection: close\r\n"), False)) as rx:
        assert [post(courier, rx.url).status for _ in range(3)] == [200] * 3
    assert rx.connections == 3


def test_a_pooled_connection_closed_by_the_receiver_is_replaced_and_sent_once(
    courier: Courier,
) -> None:
    with ScriptedReceiver(lambda req: (ok(), True)) as rx:
        assert post(courier, rx.url).status == 200
        rx.close_idle()
        answer = post(courier, rx.url)
    assert answer.status == 200 and answer.error is None
    assert rx.connections == 2 and len(rx.requests) == 2


def test_chunked_and_close_delimited_answers_are_read_whole(courier: Courier) -> None:
    chunked = (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        b'7\r\n{"code"\r\n0b\r\n:"SUCCESS"}\r\n0\r\n\r\n'
    )
    with ScriptedReceiver(lambda req: (chunked, True)) as rx:
        assert post(courier, rx.url).body == b'{"code":"SUCCESS"}'
    until_close = b'HTTP/1.0 200 OK\r\n\r\n{"code":"SUCCESS"}'
    with ScriptedReceiver(lambda req: (until_close, False)) as rx:
        answer = post(courier, rx.url)
    assert answer.status == 200 and answer.body == b'{"code":"SUCCESS"}'


def test_a_huge_answer_is_cut_at_the_limit_and_its_connection_dropped(courier: Courier) -> None:
    big = b"x" * 200_000
    with ScriptedReceiver(lambda req: (ok(big), True)) as rx:
        first = post(courier, rx.url, max_answer=1000)
        second = post(courier, rx.url, max_answer=1000)
    assert first.status == 200 and first.body == b"x" * 1000
    assert second.status == 200
    assert rx.connections == 2  # the unread rest made the first connection unusable


def test_an_answer_cut_off_mid_body_is_an_error(courier: Courier) -> None:
    cut = b'HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{"code":'
    with ScriptedReceiver(lambda req: (cut, False)) as rx:
        answer = post(courier, rx.url)
    assert answer.status is None
    assert answer.error is not None and "mid-answer" in answer.error


def test_redirects_are_reported_not_followed(courier: Courier) -> None:
    moved = (
        b"HTTP/1.1 302 Found\r\nLocation: http://127.0.0.1:9/elsewhere\r\nContent-Length: 0\r\n\r\n"
    )
    with ScriptedReceiver(lambda req: (moved, True)) as rx:
        answer = post(courier, rx.url)
    assert answer.status == 302 and answer.location == "http://127.0.0.1:9/elsewhere"
    assert len(rx.requests) == 1


@pytest.mark.parametrize(
    ("url", "error"),
    [
        ("ftp://127.0.0.1/notify", "InvalidURL"),
        ("http://127.0.0.1:99999/notify", "InvalidURL"),
        ("http:///notify", "InvalidURL"),
    ],
)
def test_urls_it_cannot_send_to_are_errors(courier: Courier, url: str, error: str) -> None:
    answer = post(courier, url)
    assert answer.status is None and answer.error is not None and error in answer.error


def test_nobody_listening_is_an_error(courier: Courier) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    answer = post(courier, f"http://127.0.0.1:{port}/notify")
    assert answer.status is None and answer.error is not None
    assert "ConnectionRefusedError" in answer.error or "OSError" in answer.error


def test_a_courier_whose_servers_loop_has_gone_starts_its_own(courier: Courier) -> None:
    gone = asyncio.new_event_loop()
    assert courier.attach(gone)
    gone.close()
    with ScriptedReceiver(lambda req: (ok(), True)) as rx:
        assert post(courier, rx.url).status == 200


def test_an_attached_courier_sends_from_that_loop(courier: Courier) -> None:
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        assert courier.attach(loop)
        seen: list[asyncio.AbstractEventLoop] = []

        async def where() -> None:
            seen.append(asyncio.get_running_loop())

        courier.submit(where)
        with ScriptedReceiver(lambda req: (ok(), True)) as rx:
            assert post(courier, rx.url).status == 200
        assert seen == [loop]
        courier.stop()
        assert loop.is_running()  # a borrowed loop is left running
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
        loop.close()
    with warnings.catch_warnings():  # the pooled connection was closed before stop() returned
        warnings.simplefilter("error", ResourceWarning)
        gc.collect()


def test_stopping_mid_delivery_closes_every_connection_cleanly() -> None:
    """A delivery cut off by stop() and the idle pool both end with their transports closed:
    nothing is left for the garbage collector to warn about."""
    courier = Courier()
    release = threading.Event()

    def slow(req: bytes) -> tuple[bytes, bool]:
        release.wait(10)
        return ok(), True

    with ScriptedReceiver(lambda req: (ok(), True)) as quick, ScriptedReceiver(slow) as hanging:
        assert post(courier, quick.url).status == 200  # leaves a pooled connection

        async def stuck() -> None:
            await courier.post(hanging.url, b"{}", {}, timeout=30, max_answer=1024)

        courier.submit(stuck)
        deadline = time.monotonic() + 5
        while not hanging.requests and time.monotonic() < deadline:
            time.sleep(0.01)
        assert hanging.requests, "the delivery never reached the receiver"
        with warnings.catch_warnings():
            warnings.simplefilter("error", ResourceWarning)
            courier.stop(timeout=5)
            gc.collect()
        release.set()


def test_a_served_sandbox_shuts_down_with_its_notify_connections_closed() -> None:
    """Under a server the courier sends from the server's loop; shutting the server down closes
    the kept-alive connection to the merchant before that loop ends."""
    ack = {"code": "000000", "msg": "ok", "resp_time": "20261126000000"}
    with NotifyReceiver(answer=ack) as merchant:
        with LiveSandbox(notify_hosts=("127.0.0.1",)) as live:
            out = live.http.post(
                V1 + "create",
                json={
                    "out_order_no": "SHUTDOWN-1",
                    "total_amount": 100,
                    "order_info": "x",
                    "notify_url": merchant.url,
                },
            ).json()
            no = out["resp_data"]["pay_order_no"]
            assert live.http.post(f"/sandbox/api/orders/{no}/pay").status_code == 200
            assert merchant.wait(1, timeout=10)[0].json()["pay_order_no"] == no
            assert live.sb.notifier.drain(10)
        with warnings.catch_warnings():
            warnings.simplefilter("error", ResourceWarning)
            gc.collect()


def test_a_path_beyond_ascii_goes_percent_encoded(courier: Courier) -> None:
    with ScriptedReceiver(lambda req: (ok(), True)) as rx:
        answer = post(courier, rx.url.replace("/notify", "/通知/回调?订单=1&a=b c"))
    assert answer.status == 200
    line = rx.requests[0].split(b"\r\n")[0]
    assert line == (
        b"POST /%E9%80%9A%E7%9F%A5/%E5%9B%9E%E8%B0%83?%E8%AE%A2%E5%8D%95=1&a=b%20c HTTP/1.1"
    )
