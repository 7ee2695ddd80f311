"""Receivers that misbehave (hang, reset the connection, answer 503 or garbage) never hold up
another order's notify; each failure is journaled with its reason and retried on the ladder."""

from __future__ import annotations

import socket
import struct
import threading
import time
from pathlib import Path

import httpx
import pytest

from sandbox.client.transport import InProcessTransport
from sandbox.notify.notifier import MAX_PER_RECEIVER
from sandbox.runtime import DB_FILE, Sandbox
from sandbox.testing.receiver import NotifyReceiver
from tests.conftest import make_app
from tests.support import V1, database, seed_create

V1_ACK = {"code": "000000", "msg": "ok", "resp_time": "20261126000000"}


class BadReceiver:
    """A loopback TCP server that misbehaves in one way for every connection."""

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.stop = threading.Event()
        self.held: list[socket.socket] = []
        self.thread = threading.Thread(target=self._serve, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.sock.getsockname()[1]}/notify"

    def _serve(self) -> None:
        while not self.stop.is_set():  # bounded by the test's stop()
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            conn.settimeout(2)
            try:
                conn.recv(65536)
            except OSError:
                pass
            if self.mode == "hang":
                self.held.append(conn)  # never answers
                continue
            if self.mode == "reset":
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            elif self.mode == "503":
                conn.sendall(
                    b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 4\r\n"
                    b"Connection: close\r\n\r\nbusy"
                )
            elif self.mode == "garbage":
                conn.sendall(b"\x00\x01this is not http at all\r\n\r\n")
            conn.close()

    def __enter__(self) -> BadReceiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(timeout=5)
        for conn in self.held:
            conn.close()
        self.sock.close()


def paid_order(http: httpx.Client, sb: Sandbox, name: str, url: str) -> str:
    created = http.post(V1 + "create", json=seed_create(sb, name, notify_url=url)).json()
    no = str(created["resp_data"]["pay_order_no"])
    assert http.post(f"/sandbox/api/orders/{no}/pay").status_code == 200
    return no


EXPECTED = {"hang": "timeout", "reset": "Error", "503": "HTTP 503", "garbage": "Error"}


def test_misbehaving_receivers_hold_up_no_one(frozen: tuple[httpx.Client, Sandbox]) -> None:
    http, sb = frozen
    with (
        NotifyReceiver(answer=V1_ACK) as good,
        BadReceiver("hang") as hang,
        BadReceiver("reset") as reset,
        BadReceiver("503") as busy,
        BadReceiver("garbage") as garbage,
    ):
        started = time.monotonic()
        bad = {
            mode: paid_order(http, sb, f"BAD-{mode}", rx.url)
            for mode, rx in (("hang", hang), ("reset", reset), ("503", busy), ("garbage", garbage))
        }
        fine = paid_order(http, sb, "GOOD-1", good.url)
        good.wait(1, timeout=0.9)  # before the hanging receiver's 1 s timeout runs out
        assert time.monotonic() - started < 1.5
        assert sb.notifier.drain(10)

        for mode, no in bad.items():
            tried = http.get(f"/sandbox/api/orders/{no}/notifies").json()["notifies"]
            first, retry = tried[0], tried[-1]
            assert first["state"] == "failed", (mode, first)
            assert EXPECTED[mode] in (first["error"] or ""), (mode, first["error"])
            assert retry["attempt"] == 2 and retry["state"] == "pending"  # 1 s later on the ladder
        delivered = http.get(f"/sandbox/api/orders/{fine}/notifies").json()["notifies"]
        assert [a["state"] for a in delivered] == ["delivered"]


def test_a_hung_receiver_holds_only_its_share_of_the_delivery_slots() -> None:
    """Hundreds of notifies pending to a receiver that never answers (each attempt held for the
    whole 30 s timeout) leave a healthy receiver's notify going out at once."""
    app = make_app(clock_speed=0, notify_timeout=30)
    sb: Sandbox = app.state.sandbox
    try:
        with (
            httpx.Client(transport=InProcessTransport(app), base_url="http://t") as http,
            NotifyReceiver(answer=V1_ACK) as good,
            BadReceiver("hang") as hang,
        ):
            for i in range(200):
                paid_order(http, sb, f"HUNG-{i}", hang.url)
            deadline = time.monotonic() + 10
            while len(hang.held) < MAX_PER_RECEIVER and time.monotonic() < deadline:
                time.sleep(0.02)
            assert len(hang.held) == MAX_PER_RECEIVER  # it holds its share...
            pending = [
                attempt
                for no in _orders(sb, "HUNG-")
                for attempt in sb.notifier.attempts(no)
                if attempt["state"] == "pending"
            ]
            assert len(pending) == 200  # ...of hundreds waiting for it
            started = time.monotonic()
            fine = paid_order(http, sb, "HEALTHY-1", good.url)
            heard = good.wait(1, timeout=1.0)[0].json()
            assert time.monotonic() - started < 1.0
            assert heard["pay_order_no"] == fine
            time.sleep(0.2)
            assert len(hang.held) == MAX_PER_RECEIVER  # and never more
    finally:
        sb.close()


def _orders(sb: Sandbox, prefix: str) -> list[str]:
    rows = sb.store.execute(
        "SELECT pay_order_no FROM orders WHERE out_order_no LIKE ?", (prefix + "%",)
    )
    return [r["pay_order_no"] for r in rows]


def test_an_outbox_from_before_receivers_were_counted_is_still_sent(tmp_path: Path) -> None:
    options = {"clock_speed": 0, "notify_timeout": 1, "data_dir": str(tmp_path)}
    with BadReceiver("503") as busy:
        app = make_app(**options)
        sb: Sandbox = app.state.sandbox
        with httpx.Client(transport=InProcessTransport(app), base_url="http://t") as http:
            no = paid_order(http, sb, "OLD-OUTBOX-1", busy.url)
            assert sb.notifier.drain(10)
        sb.close()
        with database(tmp_path / DB_FILE) as db:  # the outbox as an older version left it
            db.execute("ALTER TABLE notifies DROP COLUMN receiver")
            db.execute("PRAGMA user_version = 1")
        app = make_app(**options)
        sb = app.state.sandbox
        try:
            port = busy.sock.getsockname()[1]
            assert [r["receiver"] for r in sb.store.execute("SELECT receiver FROM notifies")] == [
                f"http://127.0.0.1:{port}"
            ]
            sb.clock.advance(1)
            assert sb.notifier.drain(10)
            states = [a["state"] for a in sb.notifier.attempts(no)]
            assert states == ["failed", "failed", "pending"]  # the retry went out, and failed
        finally:
            sb.close()


@pytest.mark.parametrize("flag", ["--notify-allow", "--notify-hosts"])
def test_notify_allow_limits_where_notifies_may_go(flag: str) -> None:
    import argparse

    from sandbox.tools.cli import COMMANDS, settings_from

    parser = argparse.ArgumentParser()
    COMMANDS["serve"][0](parser)
    settings = settings_from(parser.parse_args([flag, "127.0.0.1,merchant.test"]))
    assert settings.notify_hosts == ("127.0.0.1", "merchant.test")
