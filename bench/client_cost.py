"""Benchmark 9: what making a client costs, and a first signed call through it.

    python bench/client_cost.py [--clients 40]

A test suite that makes a ``LakalaClient`` per test (or a tool per run) pays for the client's
construction each time. Measured in CPU time of this process, against a served sandbox, three
ways in turn: ``LakalaClient(...)`` alone, ``LakalaClient(...)`` and one signed v3 create through
it, and, for scale, a bare ``httpx.Client()``, which builds a TLS context and reads the whole CA
bundle for each client it makes.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx  # noqa: E402

from bench.common import machine  # noqa: E402
from sandbox.client.clients import LakalaClient  # noqa: E402
from sandbox.core.keys import MERCHANT_KEY, PLATFORM_CERT  # noqa: E402
from tests.servers import SandboxProcess  # noqa: E402


def cpu_ms(make: Callable[[int], None], rounds: int) -> list[float]:
    """CPU milliseconds of each call of ``make(n)``, n = 0 .. rounds - 1."""
    spent = []
    for n in range(rounds):
        started = time.process_time()
        make(n)
        spent.append((time.process_time() - started) * 1000)
    return spent


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--clients", type=int, default=40)
    args = parser.parse_args()
    rounds = max(1, min(args.clients, 1000))
    print(f"machine: {machine()}")
    with tempfile.TemporaryDirectory(prefix="lakala-clients-") as tmp:
        data = Path(tmp) / "data"
        with SandboxProcess(data) as server:
            keys = {"private_key": data / MERCHANT_KEY, "certificate": data / PLATFORM_CERT}

            def client_only(n: int) -> None:
                LakalaClient(base_url=server.url, **keys).shutdown()

            def client_and_create(n: int) -> None:
                with LakalaClient(base_url=server.url, **keys) as client:
                    client.create(out_order_no=f"CC{n}", total_amount=1, order_info="cost")

            def bare_httpx(n: int) -> None:
                httpx.Client().close()

            for label, make in (
                ("LakalaClient(...)", client_only),
                ("LakalaClient(...) + one signed create", client_and_create),
                ("httpx.Client(), for scale", bare_httpx),
            ):
                spent = cpu_ms(make, rounds)
                print(
                    f"{label:40s} CPU per client: median {statistics.median(spent):6.2f} ms, "
                    f"max {max(spent):6.2f} ms ({rounds} clients)"
                )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
