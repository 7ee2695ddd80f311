"""Every benchmark still starts: a module moved in the package must not leave a bench script
importing it from where it was (``--help`` imports the script and exits).

The scripts run one after another in one Python of their own, each as ``python SCRIPT --help``
runs it (``runpy``, as ``__main__``, its own argv): a Python each would pay the same imports a
dozen times over."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.paths import ROOT

SCRIPTS = sorted(
    p for p in (ROOT / "bench").glob("*.py") if p.name not in ("__init__.py", "common.py")
)

RUN_EACH = """
import contextlib, io, json, runpy, sys, traceback
results = {}
for path in sys.argv[1:]:
    out, err, code = io.StringIO(), io.StringIO(), 0
    sys.argv = [path, "--help"]
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            runpy.run_path(path, run_name="__main__")
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (exc.code is not None)
        except BaseException:
            code = 1
            traceback.print_exc(file=err)
    results[path] = [code, out.getvalue(), err.getvalue()]
sys.__stdout__.write(json.dumps(results))
"""


@pytest.fixture(scope="module")
def started() -> dict[str, list[object]]:
    result = subprocess.run(
        [sys.executable, "-c", RUN_EACH, *map(str, SCRIPTS)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr
    runs: dict[str, list[object]] = json.loads(result.stdout)
    return runs


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_the_script_starts(script: Path, started: dict[str, list[object]]) -> None:
    code, out, err = started[str(script)]
    assert code == 0, err
    assert str(out).startswith("usage:"), (out, err)


LEFT_OUT = """
import json, sys
from pathlib import Path
import httpx
from bench.create_parts import PARTS, leave_out, variant_server
leave_out([part for part in PARTS if part != "store"])
from sandbox.client.transport import InProcessTransport
from sandbox.core.settings import Settings
from sandbox.server.app import create_app
app = create_app(Settings(data_dir=":memory:", seed=None))
store = app.state.sandbox.store
with httpx.Client(transport=InProcessTransport(app), base_url="http://127.0.0.1:8090") as http:
    answer = http.post(
        "/api/v1/payment/lakala/counter/create",
        json={"out_order_no": "P1", "total_amount": "100", "order_info": 5},
        headers={"X-Sandbox-Scenario": "no-such-scenario"},
    ).json()
(order,) = store.execute("SELECT request_hash, data FROM orders")
print(json.dumps({
    "code": answer["code"],
    "data": json.loads(order["data"]),
    "request_hash": order["request_hash"],
    "runs": store.execute("SELECT count(*) FROM scenario_runs")[0][0],
    "store_server": variant_server(["store"], Path(".")).command,
}))
"""


def test_create_parts_leaves_out_what_it_names() -> None:
    """bench/create_parts.py's figures are only true if each variant's server really skips the
    part it names: a create the whole sandbox refuses twice over (``order_info`` a number, an
    unknown scenario named) is answered, and stored as sent (the amount not coerced), without a
    scenario run or a fingerprint."""
    result = subprocess.run(
        [sys.executable, "-c", LEFT_OUT], capture_output=True, text=True, timeout=120, cwd=ROOT
    )
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout)
    assert seen["code"] == "000000"  # an unknown scenario named, order_info a number: no refusal
    assert seen["data"]["order_info"] == 5  # (no schema check)
    assert seen["data"]["total_amount"] == "100"  # (not coerced)
    assert seen["request_hash"] == "-"
    assert seen["runs"] == 0
    assert seen["store_server"][-2:] == ["--data-dir", ":memory:"]
