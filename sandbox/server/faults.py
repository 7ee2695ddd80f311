"""Scenario faults played on API calls: an error code, extra latency, an HTTP 5xx or a dropped
connection.

A scenario step arms one for the next call(s) on its order, or for the next create of any order;
a scenario's ``create:`` applies to every create call it matches. The endpoints call
``before_call`` once, after validating the request and before doing anything, so a refused call
changes nothing.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from sandbox.core.engine import ScenarioChoice
from sandbox.runtime import Sandbox
from sandbox.scenarios.files import CreateView
from sandbox.wire.errors import ConnectionDropped, SandboxError

CREATE_OPERATIONS = ("create", "special_create", "special_create_encry")
ORDER_OPERATIONS = ("query", "close")


class DroppedResponse(Response):
    """Starts an answer that promises a body, then breaks off: the caller's client reports the
    connection closed mid-response, as after a network cut."""

    def __init__(self) -> None:
        super().__init__(status_code=200)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/json"), (b"content-length", b"64")],
            }
        )
        raise ConnectionDropped("a scenario dropped this connection")


class QuietDrops(logging.Filter):
    """Keeps the server's error log free of the tracebacks deliberate drops cause."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        while exc is not None:
            if isinstance(exc, ConnectionDropped):
                return False
            exc = exc.__context__
        return True


def quiet_drops(logger_name: str = "uvicorn.error") -> None:
    logger = logging.getLogger(logger_name)
    if not any(isinstance(f, QuietDrops) for f in logger.filters):
        logger.addFilter(QuietDrops())


async def before_call(
    sb: Sandbox, request: Request, dialect: str, operation: str, req: dict[str, Any]
) -> ScenarioChoice | None:
    """The endpoints' hook: choose a create's scenario, once (refusing an unknown name), and play
    any fault meant for this call. The choice goes to ``engine.create``."""
    if sb.settings.mode == "real":
        return None
    armed = sb.faults.any_armed()
    choice = None
    if operation in CREATE_OPERATIONS:
        scenario, reason = sb.runner.choose(CreateView.of(dialect, req, request.headers))
        choice = ScenarioChoice(scenario.name, reason)
        spec = (armed and sb.faults.take(None, "create")) or scenario.create
    elif not armed or operation not in ORDER_OPERATIONS:
        return None  # (the refund API names payments, not orders: scenario faults are not for it)
    else:
        merchant_no = str(req.get("merchant_no") or sb.settings.merchant_no)
        try:
            order = sb.engine.find(
                merchant_no,
                out_order_no=req.get("out_order_no"),
                pay_order_no=req.get("pay_order_no"),
            )
        except SandboxError:
            return None  # the handler answers "not found" as usual
        spec = sb.faults.take(order.pay_order_no, operation)
    if spec:
        await play(request, spec)
    return choice


async def play(request: Request, spec: dict[str, Any]) -> None:
    if spec.get("latency"):
        await _hold(request, float(spec["latency"]))
    if spec.get("drop"):
        raise ConnectionDropped("a scenario dropped this connection")
    if spec.get("http_status"):
        status = int(spec["http_status"])
        error = SandboxError("SERVICE_UNAVAILABLE", reason=f"scenario fault: HTTP {status}")
        error.kind = dataclasses.replace(error.kind, http_status=status)
        raise error
    if spec.get("error"):
        error = SandboxError("SCENARIO_ERROR", message=str(spec["error"]["msg"]))
        error.kind = dataclasses.replace(error.kind, code=str(spec["error"]["code"]))
        raise error


async def _hold(request: Request, seconds: float) -> None:
    """Wait ``seconds`` of wall time, but stop as soon as the caller hangs up."""
    deadline = time.monotonic() + seconds
    while (remaining := deadline - time.monotonic()) > 0:
        if await request.is_disconnected():
            return
        await asyncio.sleep(min(remaining, 0.1))
