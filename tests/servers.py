"""Real sandbox processes for end-to-end tests: `python -m sandbox serve` on a free port."""

from __future__ import annotations

import itertools
import os
import re
import selectors
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType
from typing import IO

import httpx

from sandbox.client.transport import NO_KEEPALIVE
from sandbox.tools.cli import NEVER_STARTED
from sandbox.wire.tls import tls

# What the tests call the servers they start on loopback with: a new connection per request, as
# httpx.get makes, without the TLS context httpx.get builds for every call (40 ms of CPU reading
# the CA bundle; a few hundred calls a run), which an http:// URL never uses.
loopback = httpx.Client(timeout=10, limits=NO_KEEPALIVE, verify=tls())


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


ANNOUNCED = re.compile(r"on http://127\.0\.0\.1:(\d+) ")  # serve's first line names its port


def announced(
    process: subprocess.Popen[str], timeout: float, lines: int = 1
) -> tuple[int, list[str]]:
    """The port ``serve --port 0`` took, from the first line of its banner, and the banner's
    first ``lines`` lines (the banner is one write: once it has begun, its lines are there)."""
    assert process.stdout is not None
    with selectors.DefaultSelector() as ready:
        ready.register(process.stdout, selectors.EVENT_READ)
        assert ready.select(timeout=timeout), "serve printed nothing"
    banner = [process.stdout.readline().rstrip("\n") for _ in range(lines)]
    match = ANNOUNCED.search(banner[0])
    assert match and int(match.group(1)) > 0, banner[0]
    return int(match.group(1)), banner


def announced_in(log_path: Path, start: int = 0) -> int | None:
    """The port serve's banner names in the log at ``log_path`` (from byte ``start`` on), once
    it has printed it: serve binds the port before it says which."""
    with log_path.open("rb") as log:
        log.seek(start)
        taken = ANNOUNCED.search(log.read().decode(errors="replace"))
    return int(taken.group(1)) if taken else None


_LOGS = itertools.count()


class PortTaken(RuntimeError):
    """``serve`` could not bind the port it was given."""


class SandboxProcess:
    """``with SandboxProcess(data_dir) as server: loopback.get(server.url + "/healthz")``.

    Without a ``port`` the server takes one with ``serve --port 0`` and keeps it across ``stop``
    and ``start``: a port picked here and let go before the server bound it could be taken
    meanwhile by another worker's server. ``serve`` binds its port before its banner names it,
    so ``/healthz`` is believed only once the banner has: another server on a given ``port``
    never answers for this one, and should another have taken it first, ``start`` raises
    ``PortTaken`` and the test can pick again."""

    def __init__(
        self,
        data_dir: Path,
        *args: str,
        port: int | None = None,
        env: dict[str, str] | None = None,
        cwd: Path | None = None,  # (where `python -m sandbox` runs: a copy of the package, say)
        startup_timeout: float = 60.0,  # a bound: on 2 cores shared by parallel workers,
    ) -> None:  # a start that takes 1 s alone can take 10 s or more
        self.data_dir = data_dir
        self.args = args
        self.port = port or 0  # (0 until the server says which it took)
        self.env = {**os.environ, **(env or {})}
        self.cwd = cwd
        self.startup_timeout = startup_timeout
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = data_dir.parent / f"server-{os.getpid()}-{next(_LOGS)}.log"
        self._log: IO[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> SandboxProcess:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._log = self.log_path.open("ab")
        announced_from = self.log_path.stat().st_size  # (a restart appends to the same log)
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "sandbox",
                "serve",
                "--port",
                str(self.port),
                "--data-dir",
                str(self.data_dir),
                *self.args,
            ],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=self.env,
            cwd=self.cwd,
        )
        deadline = time.monotonic() + self.startup_timeout
        bound = False  # (until its banner names the port it bound)
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                failure = PortTaken if self.process.returncode == NEVER_STARTED else RuntimeError
                self.stop()  # (closes the log)
                raise failure(f"sandbox exited with {self.process.returncode}:\n{self.log()}")
            if not bound and (taken := announced_in(self.log_path, announced_from)):
                self.port = self.port or taken
                bound = taken == self.port
            try:
                if bound and loopback.get(self.url + "/healthz", timeout=1).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.01)
        self.stop()
        raise RuntimeError(
            f"sandbox did not answer /healthz in {self.startup_timeout}s:\n{self.log()}"
        )

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        if self._log is not None:
            self._log.close()
            self._log = None

    def kill(self) -> None:
        self.stop(signal.SIGKILL)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def __enter__(self) -> SandboxProcess:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


DOCUMENTED_URL = "http://127.0.0.1:8090"  # where the docs' examples expect the sandbox
_SIGN = re.compile(r"(?:[\w.-]*/)*lakala-sandbox sign\b")  # and any path before it


def run_shell_example(
    block: str,
    server: SandboxProcess,
    *,
    sign_data_dir: Path | None = None,
    cwd: Path | None = None,
) -> str:
    """A documented shell example run against ``server`` as written (its URL put in place of the
    documented one; ``lakala-sandbox sign``, however it is spelled, signing with the keys in
    ``sign_data_dir``); its output, once it has succeeded."""
    script = block.replace(DOCUMENTED_URL, server.url)
    if sign_data_dir is not None:
        sign = f"{sys.executable} -m sandbox sign --data-dir {sign_data_dir}"
        script = _SIGN.sub(lambda _: sign, script)
    result = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout
