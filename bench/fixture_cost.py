"""Benchmark 6, second half: the per-test cost of the in-process ``lakala_sandbox`` fixture.

    python bench/fixture_cost.py [--tests 200]

Runs a generated test file in a fresh pytest process: each test takes the fixture and makes one
signed v3 create through ``lakala_sandbox.client``. Each test's setup, call and teardown, timed
by a generated conftest, give its cost: the first test's (which builds the session's sandbox,
imports included) and the median and 90th percentile of the others'. Timing each test
inside one process keeps the figure clear of process start-up, which on a busy machine varies by
more than the whole fixture costs.
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
import tempfile
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
# times each test's setup, call and teardown (pytest's --durations rounds to 10 ms)
CONFTEST = """
import time

import pytest

SPENT = {}


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item):
    started = time.perf_counter()
    yield
    SPENT[item.callspec.params["n"]] = time.perf_counter() - started


def pytest_terminal_summary(terminalreporter):
    for n, seconds in sorted(SPENT.items()):
        terminalreporter.write_line(f"spent {n} {seconds:.6f}")
"""
LINE = re.compile(r"^spent (\d+) ([\d.]+)$")


def run(tests: int) -> dict[int, float]:
    """Seconds per test (setup + call + teardown), by test number."""
    with tempfile.TemporaryDirectory(prefix="lakala-fixture-") as tmp:
        path = Path(tmp) / "test_cost.py"
        path.write_text(WITH.format(tests=tests))
        (Path(tmp) / "conftest.py").write_text(CONFTEST)
        done = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(path)],
            cwd=tmp,
            check=True,
            capture_output=True,
            text=True,
            timeout=600,
        )
    spent: dict[int, float] = {}
    for line in done.stdout.splitlines():
        found = LINE.match(line.strip())
        if found:
            spent[int(found.group(1))] = float(found.group(2))
    return spent


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tests", type=int, default=200)
    args = parser.parse_args()
    print(f"machine: {machine()}")
    spent = run(args.tests)
    rest = sorted(seconds for n, seconds in spent.items() if n != 0)
    print(
        f"{len(spent)} tests, each one signed v3 create: the first {spent[0] * 1000:.0f} ms "
        f"(builds the session's sandbox), the others median "
        f"{statistics.median(rest) * 1000:.1f} ms, p90 {rest[int(0.9 * len(rest))] * 1000:.1f} ms"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
