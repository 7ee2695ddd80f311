"""Installed from a built wheel (not the source tree), the package still finds its data:
schemas, scenarios, page templates and static files. One wheel is built for the module."""

from __future__ import annotations

import ast
import os
import shutil
import site
import subprocess
import sys
import sysconfig
import tarfile
import time
import tomllib
import zipfile
from importlib import metadata
from pathlib import Path

import httpx
import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.browser_support import cannot_run
from tests.paths import ROOT
from tests.servers import announced, loopback
from tests.support import USER_RUN

pytestmark = pytest.mark.slow(seconds=8)  # a test, about: conftest.py starts long modules first

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


def serves_from_its_own_files(target: Path, tmp_path: Path) -> None:
    """The package installed in ``target``, alone on the path, passes ``CHECK``."""
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


def test_installed_wheel_serves_from_its_own_files(wheel: Path, tmp_path: Path) -> None:
    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target)]
        + [str(wheel)],
        check=True,
        timeout=300,
        capture_output=True,
    )
    serves_from_its_own_files(target, tmp_path)


USER_TEST = """
from sandbox import LakalaSandbox, NotifyReceiver


def test_the_installed_plugin_serves_a_users_test(lakala_sandbox: LakalaSandbox) -> None:
    with NotifyReceiver() as merchant:
        order = lakala_sandbox.client.create(
            out_order_no="FRESH-1", total_amount=100, order_info="Tea", notify_url=merchant.url
        )
        lakala_sandbox.pay(order["pay_order_no"])
        assert merchant.wait(1)[0].json()["order_status"] == "2"
"""


def test_the_wheel_in_a_fresh_virtualenv_serves_checks_and_tests(
    wheel: Path, tmp_path: Path
) -> None:
    """What the README's "build a wheel once, install it anywhere" gives a user: a virtualenv
    outside the checkout where `serve`, a page, `contract` and the pytest plugin work."""
    fresh = tmp_path / "venv"
    # without pip of its own (ensurepip took a third of the test): this one installs into it
    subprocess.run(
        [sys.executable, "-m", "venv", "--without-pip", str(fresh)], check=True, timeout=120
    )
    python = fresh / "bin" / "python"
    # the dependencies come from this environment (no index is asked); the package from the wheel
    purelib = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    ours = {sysconfig.get_paths()["purelib"], *site.getsitepackages()}
    (Path(purelib) / "dependencies.pth").write_text("\n".join(sorted(ours)) + "\n")
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps"]
        + ["--no-index", str(wheel)],
        check=True,
        timeout=300,
        capture_output=True,
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LAKALA", "PYTHON"))}
    env.pop("VIRTUAL_ENV", None)
    where = subprocess.run(
        [str(python), "-c", "import sandbox; print(sandbox.__file__)"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert where.startswith(purelib), where
    command = str(fresh / "bin" / "lakala-sandbox")

    checked = subprocess.run(
        [command, "contract"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert checked.stdout.rstrip().endswith("checks, no drift")

    (tmp_path / "test_user.py").write_text(USER_TEST, encoding="utf-8")
    tested = subprocess.run(
        [str(python), "-m", "pytest", "-q", *USER_RUN, "test_user.py"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert "1 passed" in tested.stdout

    server = subprocess.Popen(
        [command, "serve", "--port", "0", "--data-dir", str(tmp_path / "data")],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        port, _ = announced(server, 60)
        url = f"http://127.0.0.1:{port}"
        for _ in range(300):
            try:
                created = loopback.post(
                    url + "/api/v1/payment/lakala/counter/create",
                    json={"out_order_no": "FRESH-2", "total_amount": 100, "order_info": "Wheel"},
                ).json()
                break
            except httpx.TransportError:
                time.sleep(0.1)
        else:
            pytest.fail("the served sandbox never answered")
        page = loopback.get(created["resp_data"]["counter_url"])
        assert page.status_code == 200 and "Wheel" in page.text
    finally:
        server.terminate()
        server.wait(30)
        if server.stdout is not None:
            server.stdout.close()


def test_the_package_imports_only_what_it_declares() -> None:
    """Every module outside the standard library that the package's code imports (all of it but
    the pytest plugin, which runs under pytest) comes from a distribution ``[project]
    dependencies`` names, or one of theirs: a fresh ``pip install .`` brings what it needs."""
    imported: set[str] = set()
    for path in (ROOT / "sandbox").rglob("*.py"):
        if "testing" not in path.relative_to(ROOT / "sandbox").parts:
            for node in ast.walk(ast.parse(path.read_bytes())):
                if isinstance(node, ast.Import):
                    imported |= {alias.name.split(".")[0] for alias in node.names}
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    imported.add(node.module.split(".")[0])
    assert {"starlette", "jsonschema", "yaml"} <= imported  # (the walk found the imports)
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    wanted = [Requirement(line) for line in declared]
    brought: set[str] = set()
    while wanted:
        requirement = wanted.pop()
        name = canonicalize_name(requirement.name)
        if name in brought or (requirement.marker and not requirement.marker.evaluate()):
            continue
        brought.add(name)
        wanted += [Requirement(line) for line in metadata.requires(name) or ()]
    providers = metadata.packages_distributions()
    outside = {
        name: providers.get(name)
        for name in imported
        if name not in sys.stdlib_module_names and name != "sandbox"
        and not {canonicalize_name(d) for d in providers.get(name, ())} & brought
    }  # fmt: skip
    assert outside == {}, f"imported but not declared in [project] dependencies: {outside}"


def test_the_sdist_holds_what_a_clone_needs_to_run_its_quick_start(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "hatchling", "build", "-t", "sdist", "-d", str(tmp_path)],
        cwd=ROOT,
        check=True,
        timeout=300,
        capture_output=True,
    )
    [built] = tmp_path.glob("lakala_sandbox-*.tar.gz")
    with tarfile.open(built) as archive:
        names = {n.split("/", 1)[1] for n in archive.getnames() if "/" in n}
    wanted = {"README.md", "pyproject.toml", ".ci/run", "docs/README.md"}
    wanted |= shipped("docs", "schemas", "scenarios", "sandbox/server/pages/templates")
    assert wanted <= names, wanted - names
    assert not any(n.startswith((".venv/", ".ci/.venv/")) for n in names)


def test_installing_from_a_git_url_gives_the_package_and_its_data(tmp_path: Path) -> None:
    if not (ROOT / ".git").exists() or shutil.which("git") is None:
        cannot_run(
            "the git-URL install",
            "needs a git checkout (an unpacked sdist has no history to install from)",
        )
    # the README's `pip install "git+https://…"`, from this repository's own history (what is
    # committed), with the dependencies this environment already has
    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation"]
        + ["--target", str(target), f"git+file://{ROOT}"],
        check=True,
        timeout=300,
        capture_output=True,
    )
    serves_from_its_own_files(target, tmp_path)
