"""Goals 1 and 2 of issue 14: v1 create and query against a bare Starlette echo, same run.

    python bench/side_by_side.py [--concurrency 64] [--seconds 5] [--warm 0] [--rounds 3]
                                [--v3-concurrency 16]

Starts ``lakala-sandbox serve`` as users start it and ``bench/echo_app.py`` on the same uvicorn
settings, then drives both with the same closed-loop load generator (``bench.common.load``:
HTTP/1.1 keep-alive on asyncio streams, each connection sending its next request when the last
is answered), in turns: echo, v1 create, v1 query, and signed v3 special_create at
``--v3-concurrency`` connections (16), ``--rounds`` times. Every create has a unique
``out_order_no``; the v3 requests are signed before their cell's clock starts, so the cell
measures the server (which verifies each and signs each answer), not the generator's RSA.
``--warm N`` first makes N creates over HTTP, so the tail is measured on a server that has
already served them. Prints req/s, p50, p99, p99/p50, and create and query
throughput as a share of the echo's in the same round.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (  # noqa: E402
    RequestFactory,
    Result,
    Served,
    beijing,
    echo_server,
    load,
    machine,
    order_fields,
)
from sandbox.core.keys import MERCHANT_KEY  # noqa: E402
from sandbox.wire import signing  # noqa: E402

V1 = "/api/v1/payment/lakala/counter/"
V3 = "/api/v3/ccss/counter/order/"
APPID, SERIAL, MERCHANT = "OP00000003", "00dfba8194c41b84cf", "82229007392000A"


def line(result: Result, echo: Result | None) -> str:
    p50, p99 = result.pct(50), result.pct(99)
    share = f"{result.rps / echo.rps:.0%} of echo" if echo else ""
    return (
        f"{result.name:<10} c={result.concurrency:<3} {result.requests:>6} req "
        f"{result.rps:>8,.0f} req/s  p50 {p50:7.2f} ms  p99 {p99:7.2f} ms  "
        f"p99/p50 {p99 / p50:5.1f}  errors {result.errors}  {share}"
    )


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--requests", type=int, default=100_000, help="per cell, at most")
    parser.add_argument("--warm", type=int, default=0, help="creates served before measuring")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--v3-concurrency", type=int, default=16)
    args = parser.parse_args()
    print(f"machine: {machine()}")
    run_id = str(int(time.time()))
    body = order_fields()

    def v1_create(prefix: str):  # type: ignore[no-untyped-def]
        def make(n: int) -> tuple[str, bytes, dict[str, str]]:
            order = {"out_order_no": f"B{run_id}{prefix}{n}", **body}
            return V1 + "create", json.dumps(order).encode(), {}

        return make

    def v1_query(n: int) -> tuple[str, bytes, dict[str, str]]:
        return V1 + "query", json.dumps({"out_order_no": f"B{run_id}W{n % 500}"}).encode(), {}

    def echo_body(n: int) -> tuple[str, bytes, dict[str, str]]:
        order = {"out_order_no": f"E{run_id}{n}", **body}
        return "/echo", json.dumps(order).encode(), {}

    def v3_create(prefix: str, key: Any, count: int) -> RequestFactory:
        """``count`` signed special_creates, signed now; the factory hands them out in turn."""
        signed = []
        for n in range(count):
            req = {"out_order_no": f"B{run_id}{prefix}{n}", "merchant_no": MERCHANT, **body}
            raw = json.dumps({"req_time": beijing(), "version": "3.0", "req_data": req}).encode()
            auth = signing.sign_request(key, APPID, SERIAL, raw)
            signed.append((V3 + "special_create", raw, {"Authorization": auth}))
        return lambda n: signed[n % count]

    c, seconds, limit = args.concurrency, args.seconds, args.requests
    with Served() as server, echo_server() as echo:
        key = signing.load_private_key((server.data_dir / MERCHANT_KEY).read_bytes())
        print(f"sandbox at {server.url}, echo at {echo.url}")
        warm = max(args.warm, 500)  # (the queries look up 500 of them)
        started = time.perf_counter()
        warmed = load(
            "warm-up", server.url, v1_create("W"), concurrency=16, requests=warm, seconds=3600
        )
        print(
            f"warm-up: {warmed.requests} creates in {time.perf_counter() - started:.0f}s, "
            f"{warmed.errors} errors"
        )
        for round_no in range(1, args.rounds + 1):
            print(f"-- round {round_no}")
            e = load(
                "echo",
                echo.url,
                echo_body,
                concurrency=c,
                requests=limit,
                seconds=seconds,
                check=lambda status, _: status == 200,
            )
            print(line(e, None))
            r = load(
                "v1 create",
                server.url,
                v1_create(f"R{round_no}C"),
                concurrency=c,
                requests=limit,
                seconds=seconds,
            )
            print(line(r, e))
            q = load(
                "v1 query", server.url, v1_query, concurrency=c, requests=limit, seconds=seconds
            )
            print(line(q, e))
            # as many as the last v1 create cell made, with room: each is used once
            v3 = v3_create(f"R{round_no}V", key, max(2000, 2 * r.requests))
            s = load(
                "v3 create",
                server.url,
                v3,
                concurrency=args.v3_concurrency,
                requests=max(2000, 2 * r.requests),
                seconds=seconds,
            )
            print(line(s, e))
        print(f"server RSS {server.rss_mb():.0f} MB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
