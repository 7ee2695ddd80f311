"""The retry ladder step by step, judged by what the receiver gets and when: no attempt before its
place on the ladder, one at it, for every step (not only the first few or the last); and an
answer with an HTTP error status is no ack, whatever its body says, judged by the attempts'
states. The clock is frozen: only the tests move it."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx

from sandbox.runtime import Sandbox
from sandbox.testing.receiver import V3_ACK
from tests.notify.test_notifier import LADDER, act, advance, attempts, offsets, v3_order
from tests.notify_receiver import Receiver


def test_every_step_of_the_ladder_comes_at_its_place_and_not_before(
    frozen: tuple[httpx.Client, Sandbox],
) -> None:
    http, sb = frozen
    with Receiver(http.get("/sandbox/keys/platform.cer").content) as rx:
        rx.fail_next(1000)
        no = v3_order(http, sb, "STEPS-1", rx.url())
        act(http, no, "pay")
        assert sb.notifier.drain(10)
        assert len(rx.deliveries) == 1
        for step, delay in enumerate(LADDER, start=2):
            advance(http, sb, delay - 0.5)
            assert len(rx.deliveries) == step - 1, f"attempt {step} came before {delay}s"
            advance(http, sb, 0.5)
            assert len(rx.deliveries) == step, f"attempt {step} did not come {delay}s after"
        advance(http, sb, 86400)
        assert len(rx.deliveries) == 1 + len(LADDER)  # and nothing after the last
    tried = attempts(http, no)
    assert [a["attempt"] for a in tried] == list(range(1, len(LADDER) + 2))
    gaps = [b - a for a, b in zip(offsets(sb, tried), offsets(sb, tried)[1:], strict=False)]
    assert gaps == list(LADDER)
    assert [a["state"] for a in tried] == ["failed"] * len(LADDER) + ["given_up"]


class StatusReceiver:
    """Answers each notify with the next status of ``statuses`` (then 200), always with the v3
    ack as its body: only the status says whether it was taken."""

    def __init__(self, statuses: list[int]) -> None:
        self.statuses = list(statuses)
        self.answered: list[int] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - the http.server hook name
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                status = receiver.statuses.pop(0) if receiver.statuses else 200
                receiver.answered.append(status)
                raw = json.dumps(V3_ACK, ensure_ascii=False).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,))

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/notify"

    def __enter__(self) -> StatusReceiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


def test_an_error_status_with_the_ack_body_is_not_an_ack(
    frozen: tuple[httpx.Client, Sandbox],
) -> None:
    http, sb = frozen
    statuses = [400, 404, 409, 499]
    with StatusReceiver(statuses) as rx:
        no = v3_order(http, sb, "STATUS-1", rx.url)
        act(http, no, "pay")
        assert sb.notifier.drain(10)
        for delay in LADDER[: len(statuses)]:
            advance(http, sb, delay)
        answered = list(rx.answered)
    tried = attempts(http, no)
    assert answered == [*statuses, 200]
    assert [a["response_status"] for a in tried] == answered
    # each refusal is a failed attempt followed by the next; only the 200 delivers
    assert [a["state"] for a in tried] == ["failed"] * len(statuses) + ["delivered"]
    assert all(json.loads(a["response_body"]) == V3_ACK for a in tried)


def test_a_notify_answered_only_with_errors_is_never_delivered(
    frozen: tuple[httpx.Client, Sandbox],
) -> None:
    http, sb = frozen
    with StatusReceiver([403] * 20) as rx:
        no = v3_order(http, sb, "STATUS-2", rx.url)
        act(http, no, "pay")
        advance(http, sb, 5 * 3600)  # the whole ladder
    tried = attempts(http, no)
    assert len(tried) == 1 + len(LADDER)
    assert {a["response_status"] for a in tried} == {403}
    assert [a["state"] for a in tried] == ["failed"] * len(LADDER) + ["given_up"]
    assert not any(a["state"] == "delivered" for a in tried)
