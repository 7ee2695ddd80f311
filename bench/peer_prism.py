"""Benchmark 3: the same v1 request mix against the sandbox and against Prism mocking the
sandbox's own /openapi.json, in one run; prints the throughput ratio.

    python bench/peer_prism.py [--requests N] [--seconds S]

Prism (npm ``@stoplight/prism-cli``) is installed into ``bench/.prism`` on first use.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import HEADER, Served, beijing, load, machine  # noqa: E402
from tests.servers import free_port  # noqa: E402

V1 = "/api/v1/payment/lakala/counter/"
PRISM_DIR = Path(__file__).resolve().parent / ".prism"
PRISM = PRISM_DIR / "node_modules" / ".bin" / "prism"


def ensure_prism() -> Path:
    if not PRISM.exists():
        if shutil.which("npm") is None:
            raise SystemExit("npm is needed to install Prism (apt-get install npm)")
        PRISM_DIR.mkdir(exist_ok=True)
        subprocess.run(
            [
                "npm",
                "install",
                "--no-audit",
                "--no-fund",
                "--prefix",
                str(PRISM_DIR),
                "@stoplight/prism-cli@5",
            ],
            check=True,
            timeout=900,
        )
    return PRISM


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--seconds", type=float, default=8.0)
    args = parser.parse_args()
    prism = ensure_prism()
    print(f"machine: {machine()}")
    expires = beijing(3600)
    run_id = str(int(time.time()))

    def mix(n: int) -> tuple[str, bytes, dict[str, str]]:
        # the same v1 mix for both: create, then query what was created
        if n % 2 == 0:
            body = {
                "out_order_no": f"P{run_id}{n}",
                "total_amount": 100,
                "order_info": "peer",
                "order_efficient_time": expires,
                "payment_method": "ALIPAY",
            }
            return V1 + "create", json.dumps(body).encode(), {}
        return V1 + "query", json.dumps({"out_order_no": f"P{run_id}{n - 1}"}).encode(), {}

    def ok(status: int, body: bytes) -> bool:
        return status == 200

    results = []

    def cells(name: str, url: str) -> None:
        for concurrency in (1, 16, 64):
            results.append(
                load(
                    name,
                    url,
                    mix,
                    concurrency=concurrency,
                    requests=args.requests,
                    seconds=args.seconds,
                    check=ok,
                )
            )
            print(results[-1].row(), flush=True)

    with Served() as server:
        spec = httpx.get(server.url + "/openapi.json").content
        spec_file = server.data_dir.parent / "openapi.json"
        spec_file.write_bytes(spec)
        cells("sandbox v1 mix", server.url)

        port = free_port()
        process = subprocess.Popen(
            [str(prism), "mock", "-h", "127.0.0.1", "-p", str(port), str(spec_file)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                try:
                    httpx.post(f"http://127.0.0.1:{port}{V1}query", json={"out_order_no": "x"})
                    break
                except httpx.TransportError:
                    time.sleep(0.2)
            cells("prism v1 mix", f"http://127.0.0.1:{port}")
        finally:
            process.terminate()
            process.wait(timeout=20)
    print()
    print(HEADER)
    for r in results:
        print(r.row())
    print()
    for concurrency in (1, 16, 64):
        ours = next(
            r.rps for r in results if r.name.startswith("sandbox") and r.concurrency == concurrency
        )
        theirs = next(
            r.rps for r in results if r.name.startswith("prism") and r.concurrency == concurrency
        )
        print(
            f"concurrency {concurrency}: sandbox/prism throughput = {ours / theirs:.1f}x "
            f"(goal: at least 3x)"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
