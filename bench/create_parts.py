"""Goal 2 of issue 14, taken apart: what each part of a v1 create costs when served.

    python bench/create_parts.py [--concurrency 64] [--seconds 4] [--rounds 2] [--parts ...]
    python bench/create_parts.py --cpu 3000 [--rounds 2] [--parts ...]

Starts ``bench/echo_app.py`` and one ``lakala-sandbox serve`` for each variant, then drives them
with ``bench.common.load`` as ``bench/side_by_side.py`` does (closed loop, unique
``out_order_no``s, the same body), in turns: the echo, each variant's v1 creates, the echo
again. Prints each variant's req/s, its share of the echo (the mean of the round's two echo
cells) and its throughput against ``serve`` as users start it in the same round.

The variants are ``serve`` as users start it, ``serve`` with one part of the create left out,
and ``serve`` with all of them left out at once. Leaving a part out makes a sandbox that breaks
the issue's own terms (a create validated, stored durably before it is answered, and
scenario-matched): none of them is one to ship. They bound what making a part cheaper could gain:
a part costs at most what leaving it out saves.

- ``store``: SQLite in memory (``--data-dir :memory:``): no file, no log, nothing written to disk;
- ``schema``: the request's schema check;
- ``coerce``: the copy with ``x-coerce`` fields turned into integers;
- ``scenario``: the scenario choice and the armed-fault lookup before the create (every create
  gets the default scenario);
- ``run``: recording the order's scenario run;
- ``hash``: the request's fingerprint (what tells a repeat from a clash).

A variant's server is this script run as ``--serve PARTS``: it replaces those parts, then runs
``lakala-sandbox serve`` itself, so everything else is ``serve``'s own.

Served figures move with the machine by a third from one cell to the next; ``--cpu N`` measures
what moves less, the CPU one create costs in-process (``bench/call_cost.py``'s loop: the app
``serve`` builds, called as uvicorn calls it, without sockets), each variant in a Python of its
own, the variants in turn: the median of ``--rounds``, and how much less than as served.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import Server, echo_server, load, machine  # noqa: E402
from tests.servers import free_port  # noqa: E402

V1 = "/api/v1/payment/lakala/counter/"
PARTS = ("store", "schema", "coerce", "scenario", "run", "hash")
BODY = {"total_amount": 100, "order_info": "bench", "notify_url": "http://127.0.0.1:9/notify"}


def leave_out(parts: Sequence[str]) -> None:
    """Make the apps ``serve`` builds in this process skip ``parts`` (``store`` is a flag). Each
    part is replaced where the create calls it; a name that is not there any more fails here,
    rather than leave the part in and print figures that say it is out."""
    import sandbox.server.api_v1 as api_v1
    import sandbox.server.app as app_module
    from sandbox.core.engine import ScenarioChoice
    from sandbox.server import faults

    made = app_module.create_app

    def create_app(*args: Any, **kwargs: Any) -> Any:
        app = made(*args, **kwargs)
        sb = app.state.sandbox
        if "schema" in parts:
            _replace(sb.schemas, "check", lambda *_args, **_kwargs: None)
        if "coerce" in parts:
            _replace(sb.schemas, "coerce", lambda _name, instance: instance)
        if "run" in parts:
            _replace(sb.runner, "start", lambda *_args: None)
        return app

    _replace(app_module, "create_app", create_app)
    if "hash" in parts:
        _replace(api_v1, "request_hash", lambda _body: "-")
    if "scenario" in parts:
        choice = ScenarioChoice("manual", "default")

        async def before_call(*_args: Any) -> ScenarioChoice:
            return choice

        _replace(faults, "before_call", before_call)


def _replace(owner: Any, name: str, value: Any) -> None:
    if not callable(getattr(owner, name, None)):
        raise AttributeError(f"{owner!r} has no {name}() to leave out: this script is out of date")
    setattr(owner, name, value)


def serve(parts: Sequence[str], port: int, data_dir: str) -> int:
    from sandbox.tools import cli

    leave_out(parts)
    return cli.main(
        ["serve", "--port", str(port), "--data-dir", data_dir, "--log-level", "warning"]
    )


def variant_server(parts: Sequence[str], tmp: Path) -> Server:
    port = free_port()
    data_dir = ":memory:" if "store" in parts else str(tmp / f"data-{port}")
    command = [sys.executable, __file__, "--serve", ",".join(parts), "--port", str(port)]
    return Server(command + ["--data-dir", data_dir], port, "GET")


def creates(prefix: str) -> Callable[[int], tuple[str, bytes, dict[str, str]]]:
    def make(n: int) -> tuple[str, bytes, dict[str, str]]:
        order = {"out_order_no": f"{prefix}{n}", **BODY}
        return V1 + "create", json.dumps(order).encode(), {}

    return make


def echo_cell(echo: Server, args: argparse.Namespace) -> float:
    """The echo's req/s over one cell."""
    return load(
        "echo",
        echo.url,
        creates("E"),
        concurrency=args.concurrency,
        requests=10**6,
        seconds=args.seconds,
        check=lambda status, _: status == 200,
    ).rps


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument(
        "--parts",
        default=",".join(PARTS),
        help=f"the parts to leave out one at a time (and all together): {','.join(PARTS)}",
    )
    parser.add_argument(
        "--cpu",
        type=int,
        metavar="CREATES",
        help="instead of serving: the CPU a create costs in-process, over CREATES creates",
    )
    parser.add_argument("--serve", help=argparse.SUPPRESS)  # (a variant's own server)
    parser.add_argument("--cpu-of", help=argparse.SUPPRESS)  # (a variant's own --cpu figure)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--data-dir", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve is not None:
        return serve(_split(args.serve), args.port, args.data_dir)
    if args.cpu_of is not None:
        print(json.dumps(cpu_of(_split(args.cpu_of), args.cpu)))
        return 0
    chosen = _split(args.parts)
    unknown = sorted(set(chosen) - set(PARTS))
    if unknown:
        parser.error(f"unknown part(s) {', '.join(unknown)}; the parts: {', '.join(PARTS)}")
    if args.cpu is not None and not 1 <= args.cpu <= 100_000:
        parser.error("--cpu takes 1 to 100000 creates")
    if not 1 <= args.rounds <= 100 or not 1 <= args.concurrency <= 1000 or args.seconds <= 0:
        parser.error("--rounds takes 1 to 100, --concurrency 1 to 1000, --seconds more than 0")
    variants: list[tuple[str, list[str]]] = [("as served", [])]
    variants += [(f"without {p}", [p]) for p in chosen]
    if len(chosen) > 1:
        variants.append(("without all of them", chosen))
    print(f"machine: {machine()}")
    if args.cpu is not None:
        return in_process(variants, args)
    return served(variants, args)


def _split(parts: str) -> list[str]:
    return [p for p in parts.split(",") if p]


def cpu_of(parts: Sequence[str], calls: int) -> float:
    """Microseconds of CPU a v1 create costs through the app ``serve`` builds, ``parts`` left
    out (``bench/call_cost.py``'s loop: the app called as uvicorn calls it, no sockets)."""
    import asyncio

    import sandbox.server.app as app_module
    from bench.call_cost import through_the_app
    from sandbox.core.settings import Settings

    leave_out(parts)
    with tempfile.TemporaryDirectory(prefix="lakala-parts-") as tmp:
        data_dir = ":memory:" if "store" in parts else str(Path(tmp) / "data")
        app = app_module.create_app(Settings(data_dir=data_dir, seed=None))
        try:
            return asyncio.run(through_the_app(app, calls))["v1 create"] * 1000
        finally:
            app.state.sandbox.close()


def in_process(variants: list[tuple[str, list[str]]], args: argparse.Namespace) -> int:
    """Each variant in a Python of its own (the parts are left out for the whole process), the
    variants in turn, ``--rounds`` times; the median of each, and what leaving out saves."""
    figures: dict[str, list[float]] = {name: [] for name, _ in variants}
    for _ in range(args.rounds):
        for name, parts in variants:
            command = [
                sys.executable,
                __file__,
                "--cpu-of",
                ",".join(parts),
                "--cpu",
                str(args.cpu),
            ]
            out = subprocess.run(command, capture_output=True, text=True, check=True, timeout=600)
            figures[name].append(float(out.stdout.strip().splitlines()[-1]))
    served_as_is = statistics.median(figures[variants[0][0]])
    print(f"CPU a v1 create costs in-process, {args.cpu} creates, {args.rounds} round(s):")
    for name, values in figures.items():
        middle = statistics.median(values)
        rounds = " ".join(f"{v:5.0f}" for v in values)
        print(
            f"   {name:<22} {middle:5.0f} µs (rounds: {rounds})  "
            f"{middle - served_as_is:+5.0f} µs against as served"
        )
    return 0


def served(variants: list[tuple[str, list[str]]], args: argparse.Namespace) -> int:
    """Each variant served, and driven in turn between two cells of the echo, ``--rounds``
    times."""
    run_id = str(int(time.time()))
    with tempfile.TemporaryDirectory(prefix="lakala-parts-") as tmp, ExitStack() as running:
        echo = running.enter_context(echo_server())
        servers = [running.enter_context(variant_server(p, Path(tmp))) for _, p in variants]
        for server in servers:  # every variant starts from 500 orders
            load(
                "warm-up",
                server.url,
                creates(f"P{run_id}W"),
                concurrency=16,
                requests=500,
                seconds=60,
            )
        for round_no in range(1, args.rounds + 1):
            # the echo before and after the variants: the share is of their mean, so a machine
            # that speeds up or slows down within the round moves both ends of each ratio
            before = echo_cell(echo, args)
            results = [
                load(
                    name,
                    server.url,
                    creates(f"P{run_id}R{round_no}"),
                    concurrency=args.concurrency,
                    requests=10**6,
                    seconds=args.seconds,
                )
                for (name, _), server in zip(variants, servers, strict=True)
            ]
            after = echo_cell(echo, args)
            echo_rps = (before + after) / 2
            print(f"-- round {round_no}: echo {before:,.0f} req/s before, {after:,.0f} after")
            for r in results:
                print(
                    f"   {r.name:<22} {r.rps:>7,.0f} req/s  {r.rps / echo_rps:6.1%} of the echo  "
                    f"x{r.rps / results[0].rps:4.2f} as served  p50 {r.pct(50):6.2f} ms  "
                    f"errors {r.errors}",
                    flush=True,
                )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
