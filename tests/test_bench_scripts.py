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
