"""A sandbox that keeps serving: v1 create throughput and the data directory's size as its store
grows, on one server.

    python bench/store_growth.py [--fills 20000,30000,50000] [--seconds 3] [--concurrency 64]

Starts ``lakala-sandbox serve`` as users start it, then measures a cell of v1 creates
(``--concurrency`` connections, ``--seconds`` long, a unique ``out_order_no`` each), fills the
store with the next number of ``--fills`` creates (16 connections), measures again, and so on.
Each line gives the creates made so far, the cell's req/s and p50, the size of the store's file
and of SQLite's log beside it, and the server's RSS. A server that slows as it keeps running, or
whose files grow faster than its orders, shows here.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import Served, load, machine, order_fields  # noqa: E402
from sandbox.runtime import DB_FILE  # noqa: E402
from sandbox.wire.vocabulary import V1_COUNTER_PREFIX as V1  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument(
        "--fills", default="20000,30000,50000", help="creates made between cells, comma-separated"
    )
    parser.add_argument("--seconds", type=float, default=3.0, help="per cell")
    parser.add_argument("--concurrency", type=int, default=64)
    args = parser.parse_args()
    fills = [int(n) for n in args.fills.split(",") if n.strip()]
    print(f"machine: {machine()}")
    body = order_fields()
    run_id = str(int(time.time()))

    def creates(prefix: str):  # type: ignore[no-untyped-def]
        def make(n: int) -> tuple[str, bytes, dict[str, str]]:
            order = {"out_order_no": f"G{run_id}{prefix}{n}", **body}
            return V1 + "create", json.dumps(order).encode(), {}

        return make

    def mb(path: Path) -> float:
        return path.stat().st_size / 1e6 if path.exists() else 0.0

    with Served() as server:
        store = server.data_dir / DB_FILE
        log = server.data_dir / (DB_FILE + "-wal")
        made = 0
        for step, fill in enumerate([0, *fills]):
            if fill:
                filled = load(
                    "fill",
                    server.url,
                    creates(f"F{step}-"),
                    concurrency=16,
                    requests=fill,
                    seconds=3600,
                )
                made += filled.requests
            cell = load(
                "create",
                server.url,
                creates(f"C{step}-"),
                concurrency=args.concurrency,
                requests=1_000_000,
                seconds=args.seconds,
            )
            made += cell.requests
            print(
                f"after {made:>8,} creates: {cell.rps:7,.0f} req/s  p50 {cell.pct(50):6.2f} ms  "
                f"store {mb(store):7.1f} MB  log {mb(log):7.1f} MB  "
                f"server RSS {server.rss_mb():.0f} MB  errors {cell.errors}",
                flush=True,
            )


if __name__ == "__main__":
    main()
