"""Installed from a built wheel (not the source tree), the package still finds its data."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.slow

CHECK = """
import sys, httpx
import sandbox
from sandbox.app import create_app
from sandbox.config import Settings
from sandbox.resources import schemas_dir, scenarios_dir
from sandbox.transport import InProcessTransport
assert sandbox.__file__.startswith(sys.argv[1]), sandbox.__file__
assert schemas_dir().is_relative_to(sys.argv[1]) and scenarios_dir().is_relative_to(sys.argv[1])
app = create_app(Settings(data_dir=":memory:", strict_responses=True))
with httpx.Client(transport=InProcessTransport(app), base_url="http://wheel") as http:
    out = http.post("/api/v1/payment/lakala/counter/create",
                    json={"out_order_no": "W1", "total_amount": 1, "order_info": "wheel"}).json()
    assert out["code"] == "000000", out
print("wheel ok", schemas_dir())
"""


def test_wheel_ships_schemas_and_scenarios_and_runs_from_them(tmp_path: Path) -> None:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(tmp_path / "dist"),
            str(ROOT),
        ],
        check=True,
        timeout=300,
        capture_output=True,
    )
    [wheel] = (tmp_path / "dist").glob("lakala_sandbox-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    shipped = {
        p.relative_to(ROOT).as_posix()
        for d in ("schemas", "scenarios")
        for p in (ROOT / d).rglob("*")
        if p.is_file()
    }
    assert shipped and {f"sandbox/_data/{name}" for name in shipped} <= set(names)
    assert "sandbox/py.typed" in names

    target = tmp_path / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "-q",
            "--no-deps",
            "--target",
            str(target),
            str(wheel),
        ],
        check=True,
        timeout=300,
        capture_output=True,
    )
    result = subprocess.run(
        [sys.executable, "-c", CHECK, str(target)],
        cwd=tmp_path,
        env={"PYTHONPATH": str(target), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "wheel ok" in result.stdout
