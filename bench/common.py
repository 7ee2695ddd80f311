"""What every benchmark shares: the machine it ran on, a served sandbox, the bare echo, a load
generator.

The load generator speaks HTTP/1.1 keep-alive on raw asyncio streams, so on a 2-core machine the
client costs little next to the server it measures. Every loop is bounded by count and by time.
"""

from __future__ import annotations

import asyncio
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402

from tests.servers import SandboxProcess, free_port  # noqa: E402


def machine() -> str:
    cpu = "unknown cpu"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (
        f"{platform.node()} | {os.cpu_count()} cores | {cpu} | Python "
        f"{platform.python_version()} | {time.strftime('%Y-%m-%d %H:%M:%S %Z')}"
    )


class Served(SandboxProcess):
    """``lakala-sandbox serve`` started the way a user starts it, on a free port, in a temporary
    data directory unless one is given; ``started_in`` is the time to the first 200 on /healthz."""

    def __init__(self, *args: str, data_dir: Path | None = None) -> None:
        self._tmp = tempfile.TemporaryDirectory(prefix="lakala-bench-")
        super().__init__(
            data_dir or Path(self._tmp.name) / "data",
            "--log-level",
            "warning",
            *args,
            startup_timeout=60,
        )
        self.started_in = 0.0

    def start(self) -> Served:
        started = time.perf_counter()
        super().start()
        self.started_in = time.perf_counter() - started
        return self

    def __enter__(self) -> Served:
        return self.start()

    def rss_mb(self) -> float:
        assert self.process is not None
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return float("nan")

    def __exit__(self, *exc: object) -> None:
        super().__exit__(None, None, None)
        self._tmp.cleanup()


class Server:
    """A process serving on ``port`` of 127.0.0.1 from ``with`` to its end, believed up once a
    ``ready`` request (its HTTP method) to ``/healthz`` is answered with success."""

    def __init__(self, command: list[str], port: int, ready: str) -> None:
        self.command, self.port = command, port
        self.url = f"http://127.0.0.1:{port}"
        self.ready = ready
        self.process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Server:
        self.process = subprocess.Popen(self.command, stdout=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{' '.join(self.command)} ended ({self.process.returncode})")
            try:
                httpx.request(
                    self.ready, self.url + "/healthz", json={}, timeout=1
                ).raise_for_status()
                return self
            except httpx.HTTPError:
                time.sleep(0.1)
        raise RuntimeError(f"{' '.join(self.command)} did not answer in 60 s")

    def __exit__(self, *exc: object) -> None:
        assert self.process is not None
        self.process.terminate()
        self.process.wait(10)


def echo_server() -> Server:
    """``bench/echo_app.py``, the bare Starlette JSON echo the sandbox is measured against."""
    port = free_port()
    return Server([sys.executable, str(ROOT / "bench" / "echo_app.py"), str(port)], port, "POST")


@dataclass
class Result:
    name: str
    concurrency: int
    requests: int
    seconds: float
    latencies: list[float]
    errors: int

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    def pct(self, p: float) -> float:
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))] * 1000

    def row(self) -> str:
        return (
            f"| {self.name} | {self.concurrency} | {self.requests} | {self.rps:,.0f} | "
            f"{self.pct(50):.2f} | {self.pct(99):.2f} | {self.errors} |"
        )


HEADER = (
    "| what | concurrency | requests | req/s | p50 ms | p99 ms | errors |\n"
    "|---|---|---|---|---|---|---|"
)


def beijing(offset: float = 0) -> str:
    """Beijing time ``offset`` seconds from now, in the 14 digits Lakala's fields take."""
    return time.strftime("%Y%m%d%H%M%S", time.gmtime(time.time() + 8 * 3600 + offset))


def order_fields() -> dict[str, Any]:
    """A bench create's fields beside its ``out_order_no``: one yuan, valid for a week, its
    notifies sent to a port nothing listens on."""
    return {
        "total_amount": 100,
        "order_info": "bench",
        "notify_url": "http://127.0.0.1:9/notify",
        "order_efficient_time": beijing(7 * 86400),
    }


# A request is (path, body bytes, extra headers); the factory gets a running counter.
RequestFactory = Callable[[int], tuple[str, bytes, dict[str, str]]]
Check = Callable[[int, bytes], bool]


async def _worker(
    host: str,
    port: int,
    connection: tuple[asyncio.StreamReader, asyncio.StreamWriter],
    make: RequestFactory,
    check: Check,
    counter: list[int],
    limit: int,
    deadline: float,
    latencies: list[float],
    errors: list[int],
    pace: Callable[[int], float] | None,
) -> None:
    reader, writer = connection
    try:
        while counter[0] < limit and time.perf_counter() < deadline:
            n = counter[0]
            counter[0] += 1
            if pace is not None:
                # request n is due at a fixed time; its latency counts from then, so a reply
                # that holds up the requests behind it is charged to them too
                due = pace(n)
                if due > time.perf_counter():
                    await asyncio.sleep(due - time.perf_counter())
            path, body, headers = make(n)
            head = (
                f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
                + "".join(f"{k}: {v}\r\n" for k, v in headers.items())
                + "\r\n"
            )
            t0 = time.perf_counter() if pace is None else due
            writer.write(head.encode() + body)
            status_line = await reader.readline()
            length = 0
            while True:
                line = await reader.readline()
                if line in (b"\r\n", b""):
                    break
                name, _, value = line.decode("latin-1").partition(":")
                if name.lower() == "content-length":
                    length = int(value)
            payload = await reader.readexactly(length)
            latencies.append(time.perf_counter() - t0)
            status = int(status_line.split()[1])
            if not check(status, payload):
                errors[0] += 1
    finally:
        writer.close()


def load(
    name: str,
    url: str,
    make: RequestFactory,
    *,
    concurrency: int,
    requests: int,
    seconds: float,
    check: Check | None = None,
    rate: float | None = None,
) -> Result:
    """Up to ``requests`` requests over ``concurrency`` connections, for at most ``seconds``.

    Without ``rate`` it is a closed loop: each connection sends its next request as soon as the
    last is answered, so the server sets the pace and latency is mostly queueing. With ``rate``
    the requests are sent on a fixed schedule (``rate`` a second over all connections), each
    timed from when it was due: the latency a client sees at that load."""
    host, port = url.removeprefix("http://").split(":")
    latencies: list[float] = []
    errors = [0]
    counter = [0]
    ok: Check = check or (lambda status, body: status == 200 and b'"000000"' in body)

    async def run() -> float:
        connections = await asyncio.gather(
            *[asyncio.open_connection(host, int(port)) for _ in range(concurrency)]
        )
        deadline = time.perf_counter() + seconds
        t0 = time.perf_counter()
        pace = None if rate is None else (lambda n: t0 + n / rate)
        await asyncio.gather(
            *[
                _worker(
                    host,
                    int(port),
                    c,
                    make,
                    ok,
                    counter,
                    requests,
                    deadline,
                    latencies,
                    errors,
                    pace,
                )
                for c in connections
            ]
        )
        return time.perf_counter() - t0

    elapsed = asyncio.run(run())
    return Result(name, concurrency, len(latencies), elapsed, latencies, errors[0])


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")
