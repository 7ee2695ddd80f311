"""Scenario faults on API calls: an error code, extra latency, an HTTP 5xx or a dropped connection.

A scenario step arms one for the next call(s) on its order, or for the next create of any order;
a scenario's ``create:`` applies to every create call it matches. The endpoints call
``before_call`` once, after validating the request and before doing anything, so a refused call
changes nothing.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import time
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from sandbox.errors import SandboxError
from sandbox.scenarios import CreateView
from sandbox.store import Store

if TYPE_CHECKING:
    from sandbox.runtime import Sandbox

SCHEMA = """
CREATE TABLE IF NOT EXISTS scenario_faults (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    pay_order_no TEXT REFERENCES orders(pay_order_no) ON DELETE CASCADE,
    call TEXT NOT NULL,
    spec TEXT NOT NULL,
    remaining INTEGER NOT NULL
);
"""
CREATE_OPERATIONS = ("create", "special_create")
ORDER_OPERATIONS = ("query", "close")


class ConnectionDropped(Exception):
    """A scenario asked for the connection to be closed without a complete answer."""


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


class Faults:
    def __init__(self, store: Store) -> None:
        self.store = store
        store.executescript(SCHEMA)

    def arm(
        self, pay_order_no: str | None, call: str, spec: dict[str, Any], times: int = 1
    ) -> None:
        """``pay_order_no`` None with ``call="create"``: the next create of any order."""
        self.store.execute(
            "INSERT INTO scenario_faults (pay_order_no, call, spec, remaining) VALUES (?, ?, ?, ?)",
            (pay_order_no, call, json.dumps(spec, ensure_ascii=False), times),
        )

    def any_armed(self) -> bool:
        """One cheap read, so that the calls of a sandbox with no fault armed (nearly all of
        them) skip the write transaction ``take`` needs."""
        return bool(self.store.execute("SELECT 1 FROM scenario_faults WHERE remaining > 0 LIMIT 1"))

    def take(self, pay_order_no: str | None, operation: str) -> dict[str, Any] | None:
        """Use up one armed fault for this call, if any."""
        calls = ("create",) if pay_order_no is None else (operation, "any")
        with self.store.transaction() as conn:
            row = conn.execute(
                "SELECT id, spec, remaining FROM scenario_faults WHERE pay_order_no IS ? "
                f"AND call IN ({','.join('?' * len(calls))}) AND remaining > 0 ORDER BY id LIMIT 1",
                (pay_order_no, *calls),
            ).fetchone()
            if row is None:
                return None
            if row["remaining"] > 1:
                conn.execute(
                    "UPDATE scenario_faults SET remaining = remaining - 1 WHERE id = ?",
                    (row["id"],),
                )
            else:
                conn.execute("DELETE FROM scenario_faults WHERE id = ?", (row["id"],))
        return dict(json.loads(row["spec"]))


async def before_call(
    sb: Sandbox, request: Request, dialect: str, operation: str, req: dict[str, Any]
) -> None:
    """The endpoints' hook: pick the create's scenario (refusing an unknown name) and play any
    fault meant for this call."""
    if getattr(sb.settings, "mode", "sandbox") == "real":
        return
    armed = sb.scenarios.faults.any_armed()
    if operation in CREATE_OPERATIONS:
        scenario, _ = sb.scenarios.choose(CreateView.of(dialect, req, request.headers))
        spec = (armed and sb.scenarios.faults.take(None, "create")) or scenario.create
    elif not armed or operation not in ORDER_OPERATIONS:
        return  # (the refund API names payments, not orders: scenario faults are not for it)
    else:
        merchant_no = str(req.get("merchant_no") or sb.settings.merchant_no)
        try:
            order = sb.engine.find(
                merchant_no,
                out_order_no=req.get("out_order_no"),
                pay_order_no=req.get("pay_order_no"),
            )
        except SandboxError:
            return  # the handler answers "not found" as usual
        spec = sb.scenarios.faults.take(order.pay_order_no, operation)
    if spec:
        await play(request, spec)


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
