"""Benchmark 4: N orders paid at once; time until all N notifies are acknowledged by a loopback
receiver (HTTP/1.1 keep-alive, as a merchant's server).

    python bench/notify_fanout.py [--orders 1000]

The sandbox is served as a user serves it, and the orders are created before the clock starts.
Two ways of paying them, each timed from the first payment to the last acknowledgement:

- by a scenario: the orders match ``auto-success`` (pay 3 s after creation) on a frozen sandbox
  clock, and one ``POST /sandbox/api/clock/advance`` pays all N at the same moment;
- through the admin API: N ``POST /sandbox/api/orders/{no}/pay`` calls over 64 connections, so
  the server takes the payments and sends the notifies at the same time.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import Served, load, machine  # noqa: E402
from sandbox.testing.receiver import NotifyReceiver  # noqa: E402

V1 = "/api/v1/payment/lakala/counter/"
V1_ACK = {"code": "000000", "msg": "ok", "resp_time": "20261126000000"}


def fan_out(n: int, timeout: float, *, via: str) -> None:
    with NotifyReceiver(answer=V1_ACK) as receiver, Served("--clock-speed", "0") as server:
        run_id = str(int(time.time()))
        prefix = "AUTOPAY" if via == "scenario" else "F"

        def create(i: int) -> tuple[str, bytes, dict[str, str]]:
            body = {
                "out_order_no": f"{prefix}{run_id}{i}",
                "total_amount": 100,
                "order_info": "fan-out",
                "notify_url": receiver.url,
            }
            return V1 + "create", json.dumps(body).encode(), {}

        created: list[str] = []

        def remember(status: int, body: bytes) -> bool:
            out = json.loads(body)
            if out.get("code") == "000000":
                created.append(out["resp_data"]["pay_order_no"])
                return True
            return False

        made = load(
            "create", server.url, create, concurrency=16, requests=n, seconds=120, check=remember
        )
        assert made.errors == 0 and len(created) == n, made.row()
        assert not receiver.received, "an order was paid before the clock moved"

        started = time.perf_counter()
        if via == "scenario":
            answer = httpx.post(
                server.url + "/sandbox/api/clock/advance", json={"seconds": 3}, timeout=60
            )
            assert answer.status_code == 200, answer.text
            how = (
                f"paid by the auto-success scenario on one clock step "
                f"(the step took {time.perf_counter() - started:.2f}s)"
            )
        else:

            def pay(i: int) -> tuple[str, bytes, dict[str, str]]:
                return f"/sandbox/api/orders/{created[i]}/pay", b"", {}

            paid = load(
                "pay",
                server.url,
                pay,
                concurrency=64,
                requests=n,
                seconds=120,
                check=lambda status, body: status == 200,
            )
            assert paid.errors == 0, paid.row()
            how = (
                f"paid through the admin API over 64 connections in "
                f"{time.perf_counter() - started:.2f}s ({paid.rps:,.0f} pays/s)"
            )
        receiver.wait(n, timeout=timeout)
        all_acked = time.perf_counter() - started
        numbers = [json.loads(r.body)["pay_order_no"] for r in receiver.received]
        assert sorted(numbers) == sorted(created), "some orders were notified twice or not at all"
        print(f"{n} orders {how}")
        print(
            f"  all {n} notifies acknowledged {all_acked:.2f}s after the first payment "
            f"(goal: under 3 s); server RSS {server.rss_mb():.0f} MB"
        )


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--orders", type=int, default=1000)
    parser.add_argument("--timeout", type=float, default=120.0)
    args = parser.parse_args()
    print(f"machine: {machine()}")
    for via in ("scenario", "admin"):
        fan_out(args.orders, args.timeout, via=via)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
