"""Installed from a built wheel (not the source tree), the package still finds its data:
schemas, scenarios, page templates and static files. One wheel is built for the module."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.paths import ROOT

pytestmark = pytest.mark.slow

CHECK = """
import sys, httpx
import sandbox
from sandbox.server.app import create_app
from sandbox.core.settings import Settings
from sandbox.wire.resources import schemas_dir, scenarios_dir
from sandbox.client.transport import InProcessTransport
assert sandbox.__file__.startswith(sys.argv[1]), sandbox.__file__
assert schemas_dir().is_relative_to(sys.argv[1]) and scenarios_dir().is_relative_to(sys.argv[1])
app = create_app(Settings(data_dir=":memory:", strict_responses=True))
with httpx.Client(transport=InProcessTransport(app), base_url="http://wheel") as http:
    out = http.post("/api/v1/payment/lakala/counter/create",
                    json={"out_order_no": "W1", "total_amount": 100, "order_info": "wheel"}).json()
    assert out["code"] == "000000", out
    page = http.get(out["resp_data"]["counter_url"] + "&payMode=ALIPAY")
    assert page.status_code == 200 and "qr-svg" in page.text and "¥1.00" in page.text, page.text
    assert http.get("/sandbox/static/counter.js").status_code == 200
    assert http.get("/").status_code == 200
app.state.sandbox.close()
print("wheel ok", schemas_dir())
"""


def shipped(*folders: str) -> set[str]:
    return {
        p.relative_to(ROOT).as_posix()
        for d in folders
        for p in (ROOT / d).rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    }


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    dist = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation"]
        + ["-w", str(dist), str(ROOT)],
        check=True,
        timeout=300,
        capture_output=True,
    )
    [built] = dist.glob("lakala_sandbox-*.whl")
    return built


def test_wheel_holds_the_data_files(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    data = shipped("schemas", "scenarios")
    assert data and {f"sandbox/_data/{name}" for name in data} <= names
    pages = shipped("sandbox/server/pages/templates", "sandbox/server/pages/static")
    assert pages and pages <= names
    assert "sandbox/py.typed" in names


def test_installed_wheel_serves_from_its_own_files(wheel: Path, tmp_path: Path) -> None:
    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target)]
        + [str(wheel)],
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
