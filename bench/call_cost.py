"""Benchmark 10: the CPU one call costs in-process, without sockets or a load generator.

    python bench/call_cost.py [--calls 3000]

Two ways, each timed with ``time.process_time`` over ``--calls`` calls after a warm-up:

- through the ASGI app as ``serve`` builds it (a file store, a fresh data directory): a v1
  create and a v1 query, the app called directly with the scope uvicorn would give it, so the
  figure is the sandbox's own work per call, the framework's included and uvicorn's not;
- through ``httpx.Client(transport=InProcessTransport(app))``, as a test calls an in-process
  sandbox: ``GET /healthz`` and a v1 query, the client's and the transport's work included.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx  # noqa: E402

from bench.common import machine  # noqa: E402
from sandbox.client.transport import InProcessTransport  # noqa: E402
from sandbox.core.settings import Settings  # noqa: E402
from sandbox.server.app import create_app  # noqa: E402
from sandbox.wire.vocabulary import V1_COUNTER_PREFIX as V1  # noqa: E402


def scope(path: str, body: bytes) -> dict[str, Any]:
    """What uvicorn gives the app for a JSON POST from a client on this machine."""
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"127.0.0.1:8090"),
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
        ],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8090),
    }


async def through_the_app(app: Any, calls: int) -> dict[str, float]:
    statuses: list[int] = []

    async def post(path: str, body: bytes) -> None:
        sent = False

        async def receive() -> dict[str, Any]:
            nonlocal sent
            if sent:
                return {"type": "http.disconnect"}
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                statuses.append(message["status"])

        await app(scope(path, body), receive, send)

    def create(n: str) -> bytes:
        return json.dumps({"out_order_no": n, "total_amount": 100, "order_info": "cost"}).encode()

    for n in range(300):
        await post(V1 + "create", create(f"W{n}"))
    results = {}
    for name, path, make in [
        ("v1 create", V1 + "create", lambda n: create(f"C{n}")),
        ("v1 query", V1 + "query", lambda n: json.dumps({"out_order_no": f"W{n % 300}"}).encode()),
    ]:
        bodies = [make(n) for n in range(calls)]
        started = time.process_time()
        for body in bodies:
            await post(path, body)
        results[name] = (time.process_time() - started) / calls * 1000
    if set(statuses) != {200}:
        raise SystemExit(f"an answer was not 200: {sorted(set(statuses))}")
    return results


def through_a_client(app: Any, calls: int) -> dict[str, float]:
    results = {}
    with httpx.Client(transport=InProcessTransport(app), base_url="http://127.0.0.1:8090") as http:
        query = {"out_order_no": "W1"}
        ways: list[tuple[str, Callable[[], httpx.Response]]] = [
            ("GET /healthz", lambda: http.get("/healthz")),
            ("v1 query", lambda: http.post(V1 + "query", json=query)),
        ]
        for name, call in ways:
            for _ in range(100):
                call()
            started = time.process_time()
            for _ in range(calls):
                if call().status_code != 200:
                    raise SystemExit(f"{name}: not 200")
            results[name] = (time.process_time() - started) / calls * 1000
    return results


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=3000)
    args = parser.parse_args()
    calls = max(1, min(args.calls, 100_000))
    print(f"machine: {machine()}")
    with tempfile.TemporaryDirectory(prefix="lakala-calls-") as tmp:
        app = create_app(Settings(data_dir=str(Path(tmp) / "data"), seed=None))
        try:
            direct = asyncio.run(through_the_app(app, calls))
            client = through_a_client(app, calls)
        finally:
            app.state.sandbox.close()
    for name, ms in direct.items():
        print(f"through the app, {name:14s} {ms:6.3f} ms of CPU a call")
    for name, ms in client.items():
        print(f"through a client, {name:13s} {ms:6.3f} ms of CPU a call")
    return 0


if __name__ == "__main__":
    sys.exit(main())
