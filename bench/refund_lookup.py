"""Benchmark: a refund's cost with 1,000 vs 200,000 paid orders in the store.

    python bench/refund_lookup.py [--large 200000] [--calls 200]

The orders are copies of one paid order written straight into the store (the engine would take
minutes for 200,000); each refund then goes through the signed v3 wire in-process, naming its
payment by ``log_no`` (then by ``trade_no`` and by ``out_order_no``), and each missing-refund query
asks for a refund number nobody used. Both used to scan every trade's JSON.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx  # noqa: E402

from bench.common import machine  # noqa: E402
from sandbox.client.transport import InProcessTransport  # noqa: E402
from sandbox.core.settings import Settings  # noqa: E402
from sandbox.server.app import create_app  # noqa: E402
from sandbox.wire import signing  # noqa: E402

MERCHANT = "82229007392000A"
RFD = "/api/v3/rfd/refund_front/"


def fill(sb: Any, count: int) -> float:
    """``count`` paid orders: one made through the engine, the rest its copies."""
    started = time.perf_counter()
    expires = sb.clock.format(sb.clock.timestamp() + 6 * 86400)
    req = {
        "out_order_no": "B0",
        "merchant_no": MERCHANT,
        "total_amount": 1000,
        "order_info": "bench",
        "order_efficient_time": expires,
        "support_refund": 1,
    }
    order, _ = sb.engine.create("v3", req, request_hash="0", base_url="http://127.0.0.1")
    sb.engine.apply(order.pay_order_no, "pay", source="bench", pay_mode="WECHAT")
    o = sb.store.execute("SELECT * FROM orders WHERE pay_order_no = ?", (order.pay_order_no,))[0]
    t = json.loads(sb.store.execute("SELECT data FROM trades")[0]["data"])
    with sb.store.transaction() as conn:
        for start in range(1, count, 5000):
            orders, trades = [], []
            for n in range(start, min(count, start + 5000)):
                pay_order_no = f"9{n:019d}"
                data = json.loads(o["data"])
                data["out_order_no"] = f"B{n}"
                orders.append(
                    (
                        pay_order_no,
                        MERCHANT,
                        f"B{n}",
                        "v3",
                        2,
                        str(n),
                        o["created_ts"],
                        o["efficient_ts"],
                        o["updated_ts"],
                        json.dumps(data),
                    )
                )
                trade = {**t, "trade_no": f"66{n:018d}", "log_no": f"{n:014d}"}
                trades.append((pay_order_no, trade["trade_no"], json.dumps(trade)))
            conn.executemany(
                "INSERT INTO orders (pay_order_no, merchant_no, out_order_no, dialect, status, "
                "request_hash, created_ts, efficient_ts, updated_ts, data) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                orders,
            )
            conn.executemany(
                "INSERT INTO trades (pay_order_no, trade_no, data) VALUES (?, ?, ?)", trades
            )
    return time.perf_counter() - started


def post(http: httpx.Client, sb: Any, op: str, req: dict[str, Any]) -> dict[str, Any]:
    body = json.dumps({"req_time": sb.clock.now14(), "version": "3.0", "req_data": req}).encode()
    auth = signing.sign_request(
        sb.keys.merchant_key, sb.settings.appid, sb.settings.serial_no, body
    )
    answer = http.post(RFD + op, content=body, headers={"Authorization": auth})
    return dict(answer.json())


def measure(count: int, calls: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="lakala-refunds-") as tmp:
        app = create_app(Settings(data_dir=str(Path(tmp) / "data"), seed=1, clock_speed=0))
        sb = app.state.sandbox
        filled = fill(sb, count)
        base = {
            "merchant_no": MERCHANT,
            "term_no": "D9296400",
            "location_info": {"request_ip": "127.0.0.1"},
        }
        times: dict[str, list[float]] = {
            "refund by log_no": [],
            "refund by trade_no": [],
            "refund by out_order_no": [],
            "missing refund query": [],
        }
        step = max(count // (3 * calls + 1), 1)
        with httpx.Client(transport=InProcessTransport(app), base_url="http://b") as http:
            deadline = time.monotonic() + 120
            for i in range(calls):
                if time.monotonic() > deadline:
                    break
                for k, (name, origin) in enumerate(
                    (
                        ("refund by log_no", lambda n: {"origin_log_no": f"{n:014d}"}),
                        ("refund by trade_no", lambda n: {"origin_trade_no": f"66{n:018d}"}),
                        ("refund by out_order_no", lambda n: {"origin_out_trade_no": f"B{n}"}),
                    )
                ):
                    n = 1 + (3 * i + k) * step
                    started = time.perf_counter()
                    answer = post(
                        http,
                        sb,
                        "refund",
                        {**base, "out_trade_no": f"R{n}", "refund_amount": 1, **origin(n)},
                    )
                    times[name].append((time.perf_counter() - started) * 1000)
                    assert answer["code"] == "000000", answer
                started = time.perf_counter()
                answer = post(
                    http,
                    sb,
                    "refund_query",
                    {"merchant_no": MERCHANT, "term_no": "D9296400", "out_trade_no": f"NONE{i}"},
                )
                times["missing refund query"].append((time.perf_counter() - started) * 1000)
                assert answer["code"] != "000000", answer
        sb.close()
        result = {"filled in s": filled}
        result.update({name: statistics.median(v) for name, v in times.items()})
        return result


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--small", type=int, default=1_000)
    parser.add_argument("--large", type=int, default=200_000)
    parser.add_argument("--calls", type=int, default=100)
    args = parser.parse_args()
    print(f"machine: {machine()}")
    rows = {}
    for count in (args.small, args.large):
        rows[count] = measure(count, args.calls)
        figures = ", ".join(
            f"{k} {v:.1f}" + ("" if k.endswith(" s") else " ms") for k, v in rows[count].items()
        )
        print(f"{count:>8,} orders: {figures} (medians)", flush=True)
    small, large = rows[args.small], rows[args.large]
    for name in small:
        if name != "filled in s":
            print(f"{name}: large/small {large[name] / small[name]:.2f} (goal: at most 1.2)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
