"""A served sandbox killed (SIGKILL) in the middle of a retry ladder, with an attempt in flight,
and started again on the same data directory: delivery resumes where it was, nothing is lost."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from sandbox.core.clock import Clock
from sandbox.core.keys import PLATFORM_CERT
from tests.notify_receiver import Receiver
from tests.servers import SandboxProcess, loopback

pytestmark = pytest.mark.slow
ARGS = ("--clock-speed", "0", "--notify-timeout", "20")


def attempts(url: str, no: str) -> list[dict[str, Any]]:
    return list(loopback.get(f"{url}/sandbox/api/orders/{no}/notifies").json()["notifies"])


def settle(url: str, no: str, states: list[str], timeout: float = 15) -> list[dict[str, Any]]:
    """Poll the journal (real I/O, bounded) until the attempts' states are ``states``."""
    deadline = time.monotonic() + timeout
    while True:
        tried = attempts(url, no)
        if [a["state"] for a in tried] == states:
            return tried
        if time.monotonic() > deadline:
            raise AssertionError(f"attempts are {[a['state'] for a in tried]}, wanted {states}")
        time.sleep(0.05)


def advance(url: str, seconds: float) -> None:
    assert (
        loopback.post(f"{url}/sandbox/api/clock/advance", json={"seconds": seconds}).status_code
        == 200
    )


def test_a_killed_sandbox_resumes_its_retry_ladder(tmp_path: Path) -> None:
    data = tmp_path / "data"
    server = SandboxProcess(data, *ARGS).start()
    try:
        with Receiver((data / PLATFORM_CERT).read_bytes()) as rx:
            rx.fail_next(1000)
            created = loopback.post(
                server.url + "/api/v1/payment/lakala/counter/create",
                json={
                    "out_order_no": "RESTART-1",
                    "total_amount": 100,
                    "order_info": "restart",
                    "notify_url": rx.url(),
                },
            ).json()["resp_data"]
            no = created["pay_order_no"]
            assert loopback.post(f"{server.url}/sandbox/api/orders/{no}/pay").status_code == 200
            settle(server.url, no, ["failed", "pending"])
            advance(server.url, 1)
            settle(server.url, no, ["failed", "failed", "pending"])
            advance(server.url, 5)
            settle(server.url, no, ["failed", "failed", "failed", "pending"])

            rx.hold["/notify"] = 60  # the 4th attempt is still waiting for its answer ...
            advance(server.url, 5)
            rx.wait_arrived(4)
            in_flight = attempts(server.url, no)[-1]
            assert (in_flight["attempt"], in_flight["state"]) == (4, "pending")
            assert in_flight["sent_at"] is not None
            server.kill()  # ... when the sandbox dies
            rx.release()
            rx.wait_for(4)  # the handler answered into a closed connection

            rx.fail_next(1)
            server = SandboxProcess(data, *ARGS).start()
            # the cut-off attempt goes out again by itself, and fails once more
            tried = settle(server.url, no, ["failed"] * 4 + ["pending"])
            clock = loopback.get(server.url + "/sandbox/api/clock").json()["clock"]
            assert clock["advanced_seconds"] == 11  # the frozen clock kept its time
            advance(server.url, 10)
            tried = settle(server.url, no, ["failed"] * 4 + ["delivered"])
    finally:
        server.stop()
    assert [a["attempt"] for a in tried] == [1, 2, 3, 4, 5]
    first = Clock().parse(tried[0]["scheduled_at"])
    assert [Clock().parse(a["scheduled_at"]) - first for a in tried] == [0, 1, 6, 11, 21]
    bodies = [d.body for d in rx.deliveries]
    assert len(rx.deliveries) == 6 and len(set(bodies)) == 1  # attempt 4 was sent twice
    assert all(d.verified for d in rx.deliveries)
    assert rx.deliveries[-1].acked
