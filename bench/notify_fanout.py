"""Benchmark 4: N orders paid at once; time until all N notifies are acknowledged by a loopback
receiver.

    python bench/notify_fanout.py [--orders 1000]

The sandbox is served as a user serves it; the orders are created first, then paid through the
admin API over 64 connections, and the clock starts at the first pay.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import Served, load, machine  # noqa: E402
from sandbox.receiver import NotifyReceiver  # noqa: E402

V1 = "/api/v1/payment/lakala/counter/"
V1_ACK = {"code": "000000", "msg": "ok", "resp_time": "20261126000000"}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--orders", type=int, default=1000)
    parser.add_argument("--timeout", type=float, default=120.0)
    args = parser.parse_args()
    n = args.orders
    print(f"machine: {machine()}")
    with NotifyReceiver(answer=V1_ACK) as receiver, Served() as server:
        run_id = str(int(time.time()))

        def create(i: int) -> tuple[str, bytes, dict[str, str]]:
            body = {
                "out_order_no": f"F{run_id}{i}",
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

        def pay(i: int) -> tuple[str, bytes, dict[str, str]]:
            return f"/sandbox/api/orders/{created[i]}/pay", b"", {}

        started = time.perf_counter()
        paid = load(
            "pay",
            server.url,
            pay,
            concurrency=64,
            requests=n,
            seconds=120,
            check=lambda status, body: status == 200,
        )
        pays_done = time.perf_counter() - started
        receiver.wait(n, timeout=args.timeout)
        all_acked = time.perf_counter() - started
        numbers = {json.loads(r.body)["pay_order_no"] for r in receiver.received}
        assert numbers == set(created), "some orders were notified twice or not at all"
        print(
            f"{n} orders paid over 64 connections in {pays_done:.2f}s "
            f"({paid.rps:,.0f} pays/s, {paid.errors} errors)"
        )
        print(
            f"all {n} notifies acknowledged {all_acked:.2f}s after the first pay "
            f"(goal: under 3 s); server RSS {server.rss_mb():.0f} MB"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
