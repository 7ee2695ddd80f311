"""The sandbox's own API (``/sandbox/api/…``), key downloads and ``/healthz``.

The admin API answers loopback clients only, unless an admin token is configured; then every
call needs ``Authorization: Bearer <token>`` (or ``X-Sandbox-Admin-Token``). A browser's request
from another site's page is refused either way: a page on the web must not drive a local sandbox.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sandbox.core.engine import Order
from sandbox.core.keys import MERCHANT_CERT, MERCHANT_KEY, PLATFORM_CERT, SM4_KEY
from sandbox.runtime import Sandbox
from sandbox.server.http import json_response, read_body
from sandbox.server.pages import common as pages
from sandbox.wire import signing
from sandbox.wire.envelopes import error_body, parse_object, whole_number
from sandbox.wire.errors import SandboxError
from sandbox.wire.vocabulary import ACTIONS, STATUS_NAMES, STATUS_V1

LOOPBACK = ("127.", "::1", "localhost")
READ_ONLY = ("notifies", "scenario")  # /sandbox/api/orders/{no}/… answered to GET only
Endpoint = Callable[[Request], Awaitable[Response]]


def is_admin(request: Request) -> bool:
    sb: Sandbox = request.app.state.sandbox
    token = sb.settings.admin_token
    if token:
        given = request.headers.get("x-sandbox-admin-token") or ""
        scheme, _, bearer = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() == "bearer":
            given = given or bearer.strip()
        return signing.same_secret(given, token)
    host = request.client.host if request.client else ""
    return host.startswith(LOOPBACK)


def admin(endpoint: Endpoint) -> Endpoint:
    """Guard an endpoint and render its SandboxErrors as plain JSON with an HTTP status."""

    @functools.wraps(endpoint)
    async def guarded(request: Request) -> Response:
        sb: Sandbox = request.app.state.sandbox
        try:
            if not is_admin(request):
                raise SandboxError("ADMIN_FORBIDDEN", why=forbidden_why(sb))
            try:
                pages.check_origin(sb, request)
            except pages.Refused:
                origin = request.headers.get("origin") or "another site"
                raise SandboxError(
                    "ADMIN_FORBIDDEN",
                    why=f"a web page on {origin} may not call the admin API; only this "
                    "sandbox's own pages and clients outside a browser may",
                ) from None
            return await endpoint(request)
        except SandboxError as error:
            status, body = error_body("admin", error, sb.clock.now14())
            return json_response(body, status)

    return guarded


def forbidden_why(sb: Sandbox) -> str:
    if sb.settings.admin_token:
        return (
            "this sandbox's admin API needs its admin token (Authorization: Bearer <token> or "
            "X-Sandbox-Admin-Token), and it is missing or wrong"
        )
    return (
        "the admin API answers loopback clients only; start the sandbox with --admin-token "
        "to let others call it with that token"
    )


def order_view(sb: Sandbox, order: Order) -> dict[str, Any]:
    return {
        "pay_order_no": order.pay_order_no,
        "out_order_no": order.out_order_no,
        "merchant_no": order.merchant_no,
        "dialect": order.dialect,
        "order_status": str(order.status),
        "status_name": STATUS_NAMES[order.status],
        "v1_status": STATUS_V1[order.status],
        "total_amount": order.total_amount,
        "order_info": order.data.get("order_info"),
        "order_create_time": order.data.get("order_create_time"),
        "order_efficient_time": order.data.get("order_efficient_time"),
        "counter_url": order.counter_url,
        "order_time": sb.clock.format(sb.engine.now_for(order)),
        "clock_offset_seconds": order.clock_offset,
        "allowed_pay_modes": sb.engine.allowed_pay_modes(order),
        "request": order.data,
        "trades": order.trades,
    }


async def json_body(
    request: Request, schema: str | None, *, optional: bool = True
) -> dict[str, Any]:
    """The body, held to ``schemas/admin/<schema>.req.schema.json`` like every other surface's:
    unknown fields and wrong types are refused before anything changes. (None: a scenario step,
    which the runner holds to the scenario schema's step.)"""
    sb: Sandbox = request.app.state.sandbox
    raw = await read_body(request, sb.settings.max_body_bytes)
    body = {} if optional and not raw.strip() else parse_object(raw)
    if schema is not None:
        sb.schemas.check(f"admin/{schema}.req", body)
    return body


def _int_param(request: Request, name: str, default: int, maximum: int) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    value = whole_number(raw, maximum)
    if value is None:
        raise SandboxError("INVALID_PARAM", field=name, rule=f"must be an integer 0..{maximum}")
    return value


@admin
async def list_orders(request: Request) -> Response:
    sb: Sandbox = request.app.state.sandbox
    limit = _int_param(request, "limit", 50, 1000)
    offset = _int_param(request, "offset", 0, 10**9)
    orders = sb.engine.recent(limit=limit, offset=offset)
    return json_response(
        {"total": sb.engine.count(), "orders": [order_view(sb, o) for o in orders]}
    )


@admin
async def get_order(request: Request) -> Response:
    sb: Sandbox = request.app.state.sandbox
    return json_response(
        {"order": order_view(sb, sb.engine.get(request.path_params["pay_order_no"]))}
    )


@admin
async def order_action(request: Request) -> Response:
    sb: Sandbox = request.app.state.sandbox
    action = request.path_params["action"]
    if action in READ_ONLY:  # GET-only paths this POST route also matches
        raise SandboxError("METHOD_NOT_ALLOWED", method="POST", path=request.url.path)
    if action not in ACTIONS:
        raise SandboxError(
            "INVALID_PARAM",
            field="action",
            rule=f"must be one of {', '.join(ACTIONS)} (got {action!r})",
        )
    body = await json_body(request, "action")
    pay_mode = body.get("pay_mode")
    if pay_mode is not None and pay_mode not in sb.engine.pay_modes:
        raise SandboxError(
            "INVALID_PARAM",
            field="pay_mode",
            rule="must be one of " + ", ".join(sb.engine.pay_modes),
        )
    if "notify" in body:
        sb.notifier.parse_policy(body["notify"])  # refuse a bad policy before anything changes
    amount = body.get("amount")
    fen = None if amount is None or isinstance(amount, bool) else whole_number(str(amount), 10**12)
    if amount is not None and (action != "refund" or fen is None):
        raise SandboxError(
            "INVALID_PARAM",
            field="amount",
            rule="is a refund's amount in fen, a whole number"
            if action == "refund"
            else f"is for refund only, not {action}",
        )
    order = sb.engine.apply(
        request.path_params["pay_order_no"],
        action,
        pay_mode=pay_mode,
        source="admin",
        options=body,
        amount=fen,
    )
    return json_response({"order": order_view(sb, order)})


@admin
async def reset(request: Request) -> Response:
    sb: Sandbox = request.app.state.sandbox
    sb.engine.reset()
    return json_response({"reset": True, "orders": sb.engine.count()})


async def healthz(request: Request) -> Response:
    sb: Sandbox = request.app.state.sandbox
    return json_response({"status": "ok", "orders": sb.engine.count(), "now": sb.clock.now14()})


DOWNLOADS = {
    PLATFORM_CERT: "application/x-x509-ca-cert",
    MERCHANT_CERT: "application/x-x509-ca-cert",
    MERCHANT_KEY: "application/x-pem-file",
    SM4_KEY: "text/plain; charset=us-ascii",  # base64 of the default app's 16-byte SM4 key
}


async def download_key(request: Request) -> Response:
    sb: Sandbox = request.app.state.sandbox
    name = request.path_params["name"]
    if name not in DOWNLOADS:
        status, body = error_body(
            "admin", SandboxError("NOT_FOUND", path=request.url.path), sb.clock.now14()
        )
        return json_response(body, status)
    return Response(
        sb.keys.pem(name),
        media_type=DOWNLOADS[name],
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


routes = [
    Route("/healthz", healthz, methods=["GET"]),
    Route("/sandbox/keys/{name}", download_key, methods=["GET"]),
    Route("/sandbox/api/orders", list_orders, methods=["GET"]),
    Route("/sandbox/api/orders/{pay_order_no}", get_order, methods=["GET"]),
    Route("/sandbox/api/orders/{pay_order_no}/{action}", order_action, methods=["POST"]),
    Route("/sandbox/api/reset", reset, methods=["POST"]),
]
