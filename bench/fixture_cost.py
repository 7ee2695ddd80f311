"""Benchmark 6, second half: the per-test cost of the in-process ``lakala_sandbox`` fixture.

    python bench/fixture_cost.py [--tests 40]

Runs generated test files in fresh pytest processes: tests that take the fixture and create an
order (a signed v3 create), and tests that create nothing, each with ``--tests`` and three times
as many tests. The fixture builds one sandbox per session and resets it per test, so its cost is
a one-off (the first sandbox) plus a cost per test: the latter is the extra time of the extra
tests, the former what is left. Each figure is the best of ``--rounds`` runs (this machine is
noisy).
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


def run_once(source: str, tests: int) -> float:
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
    parser.add_argument("--tests", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3, help="each run's best of this many")
    args = parser.parse_args()

    def run(source: str, tests: int) -> float:
        return min(run_once(source, tests) for _ in range(args.rounds))

    print(f"machine: {machine()}")
    few, many = args.tests, 3 * args.tests
    base_few, base_many = run(WITHOUT, few), run(WITHOUT, many)
    with_few, with_many = run(WITH, few), run(WITH, many)
    per_test = ((with_many - base_many) - (with_few - base_few)) / (many - few)
    once = (with_few - base_few) - per_test * few
    for n, with_fixture, base in ((few, with_few, base_few), (many, with_many, base_many)):
        print(
            f"{n} tests: {with_fixture:.2f}s with the fixture (and one create each), "
            f"{base:.2f}s without; {(with_fixture - base) / n * 1000:.1f} ms per test on average"
        )
    print(
        f"the fixture: {per_test * 1000:.1f} ms per test, and {once * 1000:.0f} ms once per "
        "session (per xdist worker) for its first sandbox"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
