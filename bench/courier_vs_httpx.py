"""Does the courier pay for itself? The same notifies posted by ``sandbox.notify.courier.Courier``
and by ``httpx.AsyncClient`` with the same pooling, side by side in one run.

A receiver in its own process answers every POST with Lakala's v3 ack, keep-alive, as fast as
asyncio can; the sender's process runs one event loop, as the server's does, with the same number
of deliveries in flight. Rounds alternate between the two senders so the machine's noise falls on
both. Every round is bounded by count and time.

    python bench/courier_vs_httpx.py [--notifies 3000] [--concurrency 64] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import socket
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import machine  # noqa: E402
from sandbox.notify.courier import Courier  # noqa: E402

ACK = b'{"code":"SUCCESS","message":"\xe6\x89\xa7\xe8\xa1\x8c\xe6\x88\x90\xe5\x8a\x9f"}'
ANSWER = (
    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
    + str(len(ACK)).encode()
    + b"\r\n\r\n"
    + ACK
)
# a v3 notify's size and headers, as the notifier sends them
BODY = json.dumps({"x": "a" * 1400}).encode()
HEADERS = {
    "Content-Type": "application/json",
    "Authorization": 'LKLAPI-SHA256withRSA timestamp="1",nonce_str="n",signature="'
    + "s" * 344
    + '"',
}
TIMEOUT = 10.0


def _receiver(sock: socket.socket) -> None:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":", 1)[1])
                await reader.readexactly(length)
                writer.write(ANSWER)
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    async def serve() -> None:
        server = await asyncio.start_server(handle, sock=sock, backlog=1024)
        async with server:
            await server.serve_forever()

    asyncio.run(serve())


async def _send_all(
    post: Callable[[], Awaitable[bool]], notifies: int, concurrency: int, budget: float
) -> tuple[float, int]:
    """Post ``notifies`` with ``concurrency`` in flight; (seconds, acknowledged)."""
    left = notifies
    acked = 0
    start = time.perf_counter()
    deadline = start + budget

    async def worker() -> None:
        nonlocal left, acked
        while left > 0 and time.perf_counter() < deadline:
            left -= 1
            if await post():
                acked += 1

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return time.perf_counter() - start, acked


async def courier_round(url: str, notifies: int, concurrency: int) -> tuple[float, int]:
    courier = Courier(max_idle_per_receiver=concurrency)
    courier.attach(asyncio.get_running_loop())

    async def post() -> bool:
        answer = await courier.post(url, BODY, HEADERS, timeout=TIMEOUT, max_answer=4096)
        return answer.status == 200 and answer.body == ACK

    try:
        return await _send_all(post, notifies, concurrency, budget=120)
    finally:
        courier.stop()


async def httpx_round(url: str, notifies: int, concurrency: int) -> tuple[float, int]:
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(limits=limits, timeout=TIMEOUT) as client:

        async def post() -> bool:
            answer = await client.post(url, content=BODY, headers=HEADERS)
            return answer.status_code == 200 and answer.content == ACK

        return await _send_all(post, notifies, concurrency, budget=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--notifies", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(1024)
    url = f"http://127.0.0.1:{sock.getsockname()[1]}/notify"
    receiver = multiprocessing.get_context("fork").Process(target=_receiver, args=(sock,))
    receiver.start()
    try:
        print(machine())
        print(f"{args.notifies} notifies, {args.concurrency} in flight, {args.rounds} rounds each")
        rates: dict[str, list[float]] = {"courier": [], "httpx": []}
        for _ in range(args.rounds):
            for name, run in (("courier", courier_round), ("httpx", httpx_round)):
                seconds, acked = asyncio.run(run(url, args.notifies, args.concurrency))
                rate = acked / seconds
                rates[name].append(rate)
                print(f"  {name:8} {acked:6} acknowledged in {seconds:6.2f} s: {rate:8,.0f}/s")
        courier = statistics.median(rates["courier"])
        other = statistics.median(rates["httpx"])
        print(
            f"median: courier {courier:,.0f}/s, httpx {other:,.0f}/s, ratio {courier / other:.2f}x"
        )
    finally:
        receiver.terminate()
        receiver.join(5)


if __name__ == "__main__":
    main()
