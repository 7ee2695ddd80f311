"""Admin API for the clock: read it, advance it, set it, reset it, change its speed, and move one
order's own clock (``/sandbox/api/clock…``, ``/sandbox/api/orders/{no}/advance``).

Moving the clock forward plays every scenario step due on the way, which for many orders takes a
while; it runs on a worker thread so the server keeps answering other calls meanwhile. (Notifies
of the orders it pays go out once it is done: deliveries running alongside made the whole slower.)
"""

from __future__ import annotations

import asyncio
import math
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sandbox.runtime import Sandbox
from sandbox.server.admin.orders import admin, json_body, order_view
from sandbox.server.http import json_response
from sandbox.wire.errors import SandboxError

MAX_SECONDS = 10 * 366 * 86400
MAX_SPEED = 1_000_000


def number(body: dict[str, Any], name: str, *, maximum: float) -> float:
    value = body.get(name)
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or not 0 <= value <= maximum
    ):
        raise SandboxError(
            "INVALID_PARAM",
            field=name,
            rule=f"must be a number from 0 to {maximum:g} (got {value!r})",
        )
    return float(value)


@admin
async def get_clock(request: Request) -> Response:
    sb: Sandbox = request.app.state.sandbox
    return json_response({"clock": sb.timekeeper.describe()})


@admin
async def advance_clock(request: Request) -> Response:
    sb: Sandbox = request.app.state.sandbox
    seconds = number(
        await json_body(request, "advance", optional=False), "seconds", maximum=MAX_SECONDS
    )
    return json_response({"clock": await asyncio.to_thread(sb.timekeeper.advance, seconds)})


@admin
async def set_clock(request: Request) -> Response:
    sb: Sandbox = request.app.state.sandbox
    text = (await json_body(request, "clock_set", optional=False)).get("time")
    try:
        timestamp = sb.clock.parse(text) if isinstance(text, str) else None
    except ValueError:
        timestamp = None
    if timestamp is None:
        raise SandboxError(
            "INVALID_PARAM",
            field="time",
            rule=f"must be yyyyMMddHHmmss in {sb.clock.tz} (got {text!r})",
        )
    return json_response({"clock": await asyncio.to_thread(sb.timekeeper.set, timestamp)})


@admin
async def reset_clock(request: Request) -> Response:
    sb: Sandbox = request.app.state.sandbox
    return json_response({"clock": sb.timekeeper.reset()})


@admin
async def clock_speed(request: Request) -> Response:
    sb: Sandbox = request.app.state.sandbox
    speed = number(
        await json_body(request, "clock_speed", optional=False), "speed", maximum=MAX_SPEED
    )
    return json_response({"clock": sb.timekeeper.set_speed(speed)})


@admin
async def advance_order(request: Request) -> Response:
    sb: Sandbox = request.app.state.sandbox
    seconds = number(
        await json_body(request, "advance", optional=False), "seconds", maximum=MAX_SECONDS
    )
    no = request.path_params["pay_order_no"]
    order = await asyncio.to_thread(sb.timekeeper.advance_order, no, seconds)
    return json_response({"order": order_view(sb, order)})


routes = [
    Route("/sandbox/api/clock", get_clock, methods=["GET"]),
    Route("/sandbox/api/clock/advance", advance_clock, methods=["POST"]),
    Route("/sandbox/api/clock/set", set_clock, methods=["POST"]),
    Route("/sandbox/api/clock/reset", reset_clock, methods=["POST"]),
    Route("/sandbox/api/clock/speed", clock_speed, methods=["POST"]),
    Route("/sandbox/api/orders/{pay_order_no}/advance", advance_order, methods=["POST"]),
]
