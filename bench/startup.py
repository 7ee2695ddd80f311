"""Benchmark 6: time from launching ``lakala-sandbox serve`` to the first 200 on /healthz.

    python bench/startup.py [--runs 5]

A first start makes the keys (two RSA-2048 key pairs); later starts load them.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import Served, machine  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    print(f"machine: {machine()}")
    first, warm = [], []
    for _ in range(args.runs):
        with tempfile.TemporaryDirectory(prefix="lakala-start-") as tmp:
            data_dir = Path(tmp) / "data"
            with Served(data_dir=data_dir) as server:
                first.append(server.started_in)
            with Served(data_dir=data_dir) as server:
                warm.append(server.started_in)
    print(
        f"first start (makes keys): median {statistics.median(first):.2f}s, "
        f"max {max(first):.2f}s over {args.runs} runs"
    )
    print(
        f"later starts:             median {statistics.median(warm):.2f}s, "
        f"max {max(warm):.2f}s (goal: under 1.5 s)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
