"""Benchmarks 1 and 2: API throughput and latency over loopback, and the RSA signing ceiling.

    python bench/api_throughput.py [--requests N] [--seconds S]

Starts ``lakala-sandbox serve`` as a user would, then drives v1 create, v1 query and signed v3
special_create + query at concurrency 1, 16 and 64. Every v3 request is signed by the client with
the merchant key; the v3 mix is measured twice, once signing in the loop (the load generator's RSA
competes with the server for the two cores) and once with the requests signed before the clock
starts (the server alone). Either way the server verifies every request and signs every answer.
Last, each mix runs at concurrency 64 again with its requests sent on a schedule, at half the rate
its closed loop reached, to show the latency of a server that is not saturated.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import HEADER, RequestFactory, Served, beijing, load, machine  # noqa: E402
from sandbox.core.keys import MERCHANT_KEY  # noqa: E402
from sandbox.wire import signing  # noqa: E402

V1 = "/api/v1/payment/lakala/counter/"
V3 = "/api/v3/ccss/counter/order/"


def signing_ceiling(seconds: float = 3.0) -> float:
    """RSA-2048 SHA256withRSA signatures per second on one core, same library as the server."""
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    message = b"OP00000003\n00dfba8194c41b84cf\n1700000000\nnonce\n" + b"x" * 300 + b"\n"
    count, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        signing.sign(key, message)
        count += 1
    return count / (time.perf_counter() - t0)


def _shifted(make: RequestFactory, offset: int) -> RequestFactory:
    return lambda n: make(n + offset)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=3000, help="per cell, at most")
    parser.add_argument("--seconds", type=float, default=8.0, help="per cell, at most")
    args = parser.parse_args()
    print(f"machine: {machine()}")
    ceiling = signing_ceiling()
    print(f"signing ceiling: {ceiling:,.0f} RSA-2048 signatures/s on one core")

    with Served() as server:
        print(f"sandbox started in {server.started_in:.2f}s at {server.url}")
        key = signing.load_private_key((server.data_dir / MERCHANT_KEY).read_bytes())
        expires = beijing(3600)
        run_id = str(int(time.time()))

        def v1_create(n: int) -> tuple[str, bytes, dict[str, str]]:
            body = {
                "out_order_no": f"B{run_id}C{n}",
                "total_amount": 100,
                "order_info": "bench",
                "notify_url": "http://127.0.0.1:9/notify",
                "order_efficient_time": expires,
            }
            return V1 + "create", json.dumps(body).encode(), {}

        def v1_query(n: int) -> tuple[str, bytes, dict[str, str]]:
            body = {"out_order_no": f"B{run_id}C{n % 500}"}
            return V1 + "query", json.dumps(body).encode(), {}

        # the orders the query cells read
        made = load("setup", server.url, v1_create, concurrency=16, requests=500, seconds=60)
        assert made.requests == 500 and made.errors == 0, made.row()

        def v3_request(n: int) -> tuple[str, bytes, dict[str, str]]:
            """Even n: a fresh special_create; odd n: a query of an order made in setup."""
            if n % 2 == 0:
                path, req = (
                    "special_create",
                    {
                        "out_order_no": f"B{run_id}V{n}",
                        "merchant_no": "82229007392000A",
                        "total_amount": 1,
                        "order_efficient_time": expires,
                        "order_info": "bench",
                    },
                )
            else:
                path, req = (
                    "query",
                    {"merchant_no": "82229007392000A", "out_order_no": f"B{run_id}V{n % 500 * 2}"},
                )
            raw = json.dumps({"req_time": beijing(), "version": "3.0", "req_data": req}).encode()
            return (
                V3 + path,
                raw,
                {
                    "Authorization": signing.sign_request(
                        key, "OP00000003", "00dfba8194c41b84cf", raw
                    )
                },
            )

        made = load(
            "setup",
            server.url,
            lambda n: v3_request(2 * n),
            concurrency=16,
            requests=500,
            seconds=60,
        )
        assert made.requests == 500 and made.errors == 0, made.row()

        def v3_presigned(make: RequestFactory) -> RequestFactory:
            """The same requests signed before the clock starts: the cell measures the server
            alone, not the load generator's signing on the same two cores."""
            signed = [make(n) for n in range(args.requests)]
            return lambda n: signed[n]

        results = []
        for concurrency in (1, 16, 64):
            offset = concurrency * 1_000_000  # fresh order numbers in every cell
            for name, make in (
                ("v1 create", _shifted(v1_create, offset)),
                ("v1 query", v1_query),
                ("v3 create+query, signed in the loop", _shifted(v3_request, offset)),
                (
                    "v3 create+query, pre-signed",
                    v3_presigned(_shifted(v3_request, offset + 500_000)),
                ),
            ):
                results.append(
                    load(
                        name,
                        server.url,
                        make,
                        concurrency=concurrency,
                        requests=args.requests,
                        seconds=args.seconds,
                    )
                )
                print(results[-1].row(), flush=True)
        # The same mixes at concurrency 64 with the requests sent on a schedule, at half the rate
        # the closed loop reached: the latency a client sees when the server is not saturated.
        closed = {r.name: r for r in results if r.concurrency == 64}
        for name, make in (
            ("v1 create", _shifted(v1_create, 90_000_000)),
            ("v1 query", v1_query),
            ("v3 create+query, pre-signed", v3_presigned(_shifted(v3_request, 91_000_000))),
        ):
            rate = round(closed[name].rps / 2)
            results.append(
                load(
                    f"{name}, paced at {rate:,}/s",
                    server.url,
                    make,
                    concurrency=64,
                    requests=min(args.requests, int(rate * args.seconds)),
                    seconds=args.seconds,
                    rate=rate,
                )
            )
            print(results[-1].row(), flush=True)
        print()
        print(HEADER)
        for r in results:
            print(r.row())
        print()
        for kind in ("signed in the loop", "pre-signed"):
            best = max(r.rps for r in results if r.name.endswith(kind))
            print(
                f"v3 {kind}: best {best:,.0f} req/s = {best / ceiling:.0%} of the signing "
                f"ceiling (goal: at least 60%)"
            )
        for r in results:
            if r.concurrency == 64:
                print(f"p99 at concurrency 64, {r.name}: {r.pct(99):.1f} ms (goal: under 25 ms)")
        print(
            "(closed loop: 64 connections each waiting for its answer, so by Little's law the "
            "mean latency is 64 / throughput; paced: the requests sent on a schedule)"
        )
        print(f"server RSS after the run: {server.rss_mb():.0f} MB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
