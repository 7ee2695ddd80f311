"""Benchmark 5: query latency and resident memory with 1,000 vs 100,000 orders in the store.

    python bench/scale.py [--large 100000] [--queries 2000]

Each store is filled through the engine itself (in batches, one transaction each), then served
with ``lakala-sandbox serve`` and queried at concurrency 1 over loopback.
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import Served, load, machine  # noqa: E402
from sandbox.core.settings import Settings  # noqa: E402
from sandbox.runtime import Sandbox  # noqa: E402

V1 = "/api/v1/payment/lakala/counter/"


def fill(data_dir: Path, count: int) -> float:
    """Fill in a child process, so that nothing of the filling sandbox outlives it."""
    started = time.perf_counter()
    subprocess.run([sys.executable, __file__, "--fill", str(data_dir), str(count)], check=True)
    return time.perf_counter() - started


def _fill_here(data_dir: Path, count: int) -> None:
    sb = Sandbox(Settings(data_dir=str(data_dir), seed=1))
    expires = sb.clock.format(sb.clock.timestamp() + 6 * 86400)
    for start in range(0, count, 1000):
        with sb.store.transaction():
            for n in range(start, min(count, start + 1000)):
                req = {
                    "out_order_no": f"S{n}",
                    "merchant_no": "8222900701106PZ",
                    "total_amount": 100 + n % 700,  # below the magic amounts (901-914)
                    "order_info": "scale",
                    "order_efficient_time": expires,
                }
                order, _ = sb.engine.create(
                    "v1", req, request_hash=str(n), base_url="http://127.0.0.1"
                )
                if n % 3 == 0:
                    sb.engine.apply(order.pay_order_no, "pay", source="bench")


def measure(count: int, queries: int) -> tuple[float, float, float, float]:
    with tempfile.TemporaryDirectory(prefix="lakala-scale-") as tmp:
        data_dir = Path(tmp) / "data"
        filled_in = fill(data_dir, count)
        with Served(data_dir=data_dir) as server:
            rng = random.Random(7)

            def query(n: int) -> tuple[str, bytes, dict[str, str]]:
                body = {"out_order_no": f"S{rng.randrange(count)}"}
                return V1 + "query", json.dumps(body).encode(), {}

            load("warm-up", server.url, query, concurrency=1, requests=200, seconds=10)
            result = load(
                f"query, {count:,} orders",
                server.url,
                query,
                concurrency=1,
                requests=queries,
                seconds=30,
            )
            assert result.errors == 0, result.row()
            return filled_in, result.pct(50), result.pct(99), server.rss_mb()


def main() -> int:
    if sys.argv[1:2] == ["--fill"]:
        _fill_here(Path(sys.argv[2]), int(sys.argv[3]))
        return 0
    parser = argparse.ArgumentParser()
    parser.add_argument("--small", type=int, default=1_000)
    parser.add_argument("--large", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=2_000)
    args = parser.parse_args()
    print(f"machine: {machine()}")
    rows = {}
    for count in (args.small, args.large):
        rows[count] = measure(count, args.queries)
        filled, p50, p99, rss = rows[count]
        print(
            f"{count:>8,} orders: filled in {filled:.1f}s, query p50 {p50:.2f} ms, "
            f"p99 {p99:.2f} ms, server RSS {rss:.0f} MB",
            flush=True,
        )
    small, large = rows[args.small], rows[args.large]
    print(f"query p50 ratio large/small: {large[1] / small[1]:.2f} (goal: at most 1.2)")
    print(f"RSS with {args.large:,} orders: {large[3]:.0f} MB (goal: under 250 MB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
