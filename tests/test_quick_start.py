"""The README's two quick-start commands run side by side: a sandbox served from the package as
step 1 installs it keeps answering its pages while step 2 (`bash .ci/run`) sets up the tests.

Both steps' environments start as copies of the one running these tests, so pip finds every
dependency in place and does the rest of what it does on a fresh machine (build and install the
package, install the tests' tools) in seconds instead of a minute. What a fresh machine adds is
checked elsewhere: CI runs step 2 on a clean clone from scratch, and
``test_package.test_the_package_imports_only_what_it_declares`` holds step 1's install to the
dependencies ``pyproject.toml`` declares."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

import httpx
import pytest

from tests.paths import ROOT
from tests.servers import announced_in, loopback

pytestmark = pytest.mark.slow(seconds=40)  # about: conftest.py starts long modules first

# what a fresh clone holds, not what a working copy has made
LEFT_OUT = shutil.ignore_patterns(
    ".git", ".venv", ".lakala-sandbox", "__pycache__", "*.pyc", ".*_cache", "build", "dist",
    "*.egg-info", "test-artifacts", ".prism",
)  # fmt: skip


def quick_start_blocks() -> tuple[str, str]:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```sh\n(.*?)```", readme, flags=re.S)
    [serve] = [b for b in blocks if "lakala-sandbox serve" in b]
    [test] = [b for b in blocks if ".ci/run" in b]
    return serve, test


def seed_environment(into: Path) -> None:
    """A copy of the virtualenv running these tests at ``into``: its installed packages as hard
    links (cheap, and pip replaces rather than rewrites the files it changes), and everything
    that ``python -m venv`` or pip rewrites in place (the scripts, pyvenv.cfg) as real copies,
    the scripts' ``#!`` lines pointing at the copy's own python (``.venv/bin/pip`` on the
    original's python installs into the original), so the running environment is never
    touched."""
    prefix = Path(sys.prefix)
    if prefix == Path(sys.base_prefix):
        return  # not a virtualenv: step 2 sets up from scratch

    def link_or_copy(src: str, dst: str) -> object:
        if Path(src).is_relative_to(prefix / "lib"):
            try:
                return os.link(src, dst)
            except OSError:  # another file system
                pass
        return shutil.copy2(src, dst)

    shutil.copytree(prefix, into, symlinks=True, copy_function=link_or_copy)
    for script in (into / "bin").iterdir():
        if script.is_file() and not script.is_symlink():
            text = script.read_bytes()
            if os.fsencode(prefix) in text:
                script.write_bytes(text.replace(os.fsencode(prefix), os.fsencode(into)))


def fingerprint(prefix: Path) -> dict[str, tuple[int, int]]:
    """What installing into the environment at ``prefix`` would change: its scripts and the
    entries of its site-packages, each with its inode and, for a file, its modification time.
    A folder's own modification time is left out: Python changes it whenever it writes a
    ``__pycache__`` inside, which any import anywhere can do meanwhile; pip replaces a package's
    folder (a new inode) rather than writing into it."""
    purelib = Path(sysconfig.get_paths(vars={"base": str(prefix)})["purelib"])

    def mark(path: Path) -> tuple[int, int]:
        stat = path.lstat()
        return stat.st_ino, 0 if path.is_dir() and not path.is_symlink() else stat.st_mtime_ns

    return {str(p): mark(p) for d in (prefix / "bin", purelib) for p in d.iterdir()}


def test_the_test_command_leaves_the_served_sandbox_alone(tmp_path: Path) -> None:
    clone = tmp_path / "clone"
    shutil.copytree(ROOT, clone, ignore=LEFT_OUT)
    for venv in (".venv", ".ci/.venv"):
        seed_environment(clone / venv)
    running = fingerprint(Path(sys.prefix))
    serve_block, test_block = quick_start_blocks()
    # --port 0: the port it names is one it has bound (one picked here could be taken meanwhile
    # by another worker's server, whose /healthz would answer for it)
    step1 = serve_block.replace("lakala-sandbox serve", "lakala-sandbox serve --port 0")
    step2 = test_block.replace("bash .ci/run", "bash .ci/run --version")  # set up, run nothing
    # .ci/run installs chromium and curl with apt when they are missing: here they need not run
    tools = tmp_path / "bin"
    tools.mkdir()
    for name in ("chromium", "curl"):
        if shutil.which(name) is None:
            (tools / name).symlink_to(shutil.which("true") or "/bin/true")
    env = {**os.environ, "PATH": f"{tools}:{os.environ['PATH']}"}
    env.pop("VIRTUAL_ENV", None)
    log = (tmp_path / "serve.log").open("wb")
    server = subprocess.Popen(
        ["bash", "-euo", "pipefail", "-c", step1],
        cwd=clone,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = ""
    try:
        deadline = time.monotonic() + 600  # a pip install, maybe from scratch
        while True:
            assert server.poll() is None, (tmp_path / "serve.log").read_text(errors="replace")
            taken = announced_in(tmp_path / "serve.log")
            url = f"http://127.0.0.1:{taken}" if taken else ""
            try:
                if url and loopback.get(url + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "step 1 did not start the sandbox"
            time.sleep(0.2)
        setup = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", step2],
            cwd=clone,
            env=env,
            capture_output=True,
            text=True,
            timeout=900,
        )
        assert setup.returncode == 0, setup.stdout + setup.stderr
        assert "pytest" in setup.stdout + setup.stderr
        assert (clone / ".ci" / ".venv" / "bin" / "python").exists()
        # the served sandbox still answers its pages, from the package step 1 installed
        created = loopback.post(
            url + "/api/v1/payment/lakala/counter/create",
            json={"out_order_no": "QS-1", "total_amount": 100, "order_info": "Side by side"},
        ).json()
        page = loopback.get(created["resp_data"]["counter_url"])
        assert page.status_code == 200 and "Side by side" in page.text
        assert loopback.get(url + "/").status_code == 200
        assert loopback.get(url + "/sandbox/static/counter.js").status_code == 200
        assert fingerprint(Path(sys.prefix)) == running, "the steps installed into this environment"
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(timeout=30)
        log.close()
