"""Benchmark 6, second half: the per-test cost of the in-process ``lakala_sandbox`` fixture.

    python bench/fixture_cost.py [--tests 40]

Runs two generated test files in fresh pytest processes: one whose tests take the fixture and
create an order, one whose tests create nothing; the difference per test is the fixture's cost.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import machine  # noqa: E402

WITH = """
import pytest

@pytest.mark.parametrize("n", range({tests}))
def test_with_sandbox(lakala_sandbox, n):
    order = lakala_sandbox.client.create(out_order_no=f"F{{n}}", total_amount=1, order_info="x")
    assert order["pay_order_no"]
"""
WITHOUT = """
import pytest

@pytest.mark.parametrize("n", range({tests}))
def test_without(n):
    assert n >= 0
"""


def run(source: str, tests: int) -> float:
    with tempfile.TemporaryDirectory(prefix="lakala-fixture-") as tmp:
        path = Path(tmp) / "test_cost.py"
        path.write_text(source.format(tests=tests))
        started = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(path)],
            cwd=tmp,
            check=True,
            capture_output=True,
            timeout=600,
        )
        return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tests", type=int, default=40)
    args = parser.parse_args()
    print(f"machine: {machine()}")
    base = run(WITHOUT, args.tests)
    with_fixture = run(WITH, args.tests)
    print(
        f"{args.tests} tests: {with_fixture:.2f}s with the fixture (and one create each), "
        f"{base:.2f}s without; {(with_fixture - base) / args.tests * 1000:.0f} ms per test"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
