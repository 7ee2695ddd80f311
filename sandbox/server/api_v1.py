"""The seed document's merchant API: ``/api/v1/payment/lakala/counter/{create,query,close}``.

Flat JSON in, ``resp_data`` out, string statuses. Responses also carry the same object as
``data``, because the seed's own frontend snippets read ``result.data.counter_url``.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sandbox.core.engine import Order, ScenarioChoice, request_hash
from sandbox.runtime import Sandbox
from sandbox.server import faults
from sandbox.server.api_v3 import channel_id, create_data
from sandbox.server.http import base_url, json_response, read_body
from sandbox.wire import signing
from sandbox.wire.envelopes import envelope, error_body, parse_object
from sandbox.wire.errors import SandboxError
from sandbox.wire.vocabulary import OK_MSG, STATUS_V1, SUCCESS, V1_COUNTER_PREFIX, OrderStatus

PREFIX = V1_COUNTER_PREFIX


def check_token(sb: Sandbox, header: str | None) -> None:
    """Any Bearer token is accepted unless tokens are configured."""
    if not sb.settings.v1_tokens:
        return
    scheme, _, token = (header or "").partition(" ")
    if scheme.lower() != "bearer" or not any(
        signing.same_secret(token.strip(), t) for t in sb.settings.v1_tokens
    ):
        raise SandboxError("UNAUTHORIZED")


def query_view(
    order: Mapping[str, Any],
    status: int,
    paid: Mapping[str, Any] | None,
    refunded: int,
    channel: str | None,
) -> dict[str, Any]:
    """A query's ``resp_data`` in the seed's shape, from an order's v3 fields (``order``: ours, or
    Lakala's answer to a proxied query), its status, its payment trade and what was refunded."""
    return {
        "out_order_no": order["out_order_no"],
        "order_status": STATUS_V1[status],
        "total_amount": str(order["total_amount"]),
        "pay_order_no": order["pay_order_no"],
        "merchant_no": order.get("merchant_no"),
        "channel_id": channel,
        "order_info": order.get("order_info"),
        "order_create_time": order.get("order_create_time"),
        "order_efficient_time": order.get("order_efficient_time"),
        "pay_mode": paid.get("pay_mode") if paid else None,
        "trade_no": paid.get("trade_no") if paid else None,
        "trade_time": paid.get("trade_time") if paid else None,
        "refund_amount": str(refunded) if status == OrderStatus.REFUNDED else None,
    }


def query_data(sb: Sandbox, order: Order) -> dict[str, Any]:
    fields = {
        **order.data,
        "out_order_no": order.out_order_no,
        "total_amount": order.total_amount,
        "pay_order_no": order.pay_order_no,
        "merchant_no": order.merchant_no,
    }
    return query_view(
        fields, order.status, order.last_trade("PAY"), order.refunded, channel_id(sb, order)
    )


def v3_request(sb: Sandbox, body: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The v3 ``req_data`` a v1 create means, and what the order keeps beside it."""
    req = sb.schemas.documented("v1/create.req", body)
    extra = {"payment_method": req.pop("payment_method", None)}
    if extra["payment_method"]:
        # v1's payment_method narrows the counter the way v3's counter_param does
        req.setdefault(
            "counter_param",
            json.dumps({"pay_mode": extra["payment_method"]}, separators=(",", ":")),
        )
    req.setdefault("merchant_no", sb.settings.merchant_no)
    if "order_efficient_time" not in req:
        req["order_efficient_time"] = sb.clock.format(
            sb.clock.timestamp() + sb.settings.v1_validity_seconds
        )
    return req, extra


def _create(
    sb: Sandbox, request: Request, body: dict[str, Any], scenario: ScenarioChoice | None
) -> dict[str, Any]:
    req, extra = v3_request(sb, body)
    order, _ = sb.engine.create(
        "v1",
        req,
        request_hash=request_hash(body),
        base_url=base_url(sb.settings, request),
        extra=extra,
        scenario=scenario,
    )
    return create_data(sb, order)


def _lookup(sb: Sandbox, body: dict[str, Any]) -> Order:
    return sb.engine.find(
        str(body.get("merchant_no") or sb.settings.merchant_no),
        out_order_no=body.get("out_order_no"),
        pay_order_no=body.get("pay_order_no"),
    )


def _query(
    sb: Sandbox, request: Request, body: dict[str, Any], _scenario: ScenarioChoice | None
) -> dict[str, Any]:
    return query_data(sb, _lookup(sb, body))


def _close(
    sb: Sandbox, request: Request, body: dict[str, Any], _scenario: ScenarioChoice | None
) -> dict[str, Any]:
    order = sb.engine.apply(_lookup(sb, body).pay_order_no, "close", source="api")
    return {
        "out_order_no": order.out_order_no,
        "pay_order_no": order.pay_order_no,
        "order_status": STATUS_V1[order.status],
    }


Handler = Callable[
    [Sandbox, Request, dict[str, Any], ScenarioChoice | None],
    dict[str, Any] | Awaitable[dict[str, Any]],
]
OPERATIONS: dict[str, Handler] = {"create": _create, "query": _query, "close": _close}


def endpoint(operation: str, handler: Handler | None = None) -> Callable[[Request], Any]:
    """The v1 endpoint around ``handler`` (the sandbox's own, or real mode's async one)."""
    run: Handler = handler or OPERATIONS[operation]

    async def handle(request: Request) -> Response:
        sb: Sandbox = request.app.state.sandbox
        alias = sb.settings.v1_data_alias
        try:
            check_token(sb, request.headers.get("authorization"))
            body = parse_object(await read_body(request, sb.settings.max_body_bytes))
            sb.schemas.check(f"v1/{operation}.req", body)
            body = sb.schemas.coerce(f"v1/{operation}.req", body)
            scenario = await faults.before_call(sb, request, "v1", operation, body)
            result = run(sb, request, body, scenario)
            if inspect.isawaitable(result):
                result = await result
            out = envelope("v1", SUCCESS, OK_MSG, sb.clock.now14(), result, data_alias=alias)
            sb.check_outgoing(f"v1/{operation}.resp", out)
            status = 200
        except SandboxError as error:
            status, out = error_body("v1", error, sb.clock.now14(), data_alias=alias)
        return json_response(out, status)

    return handle


routes = [Route(PREFIX + op, endpoint(op), methods=["POST"]) for op in OPERATIONS]
