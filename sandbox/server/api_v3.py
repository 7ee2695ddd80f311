"""Lakala's v3 counter wire: ``/api/v3/ccss/counter/order/{special_create,create,query,close}``,
and the refund APIs beside it (``sandbox.server.refunds``, ``sandbox.server.refund_apis``).

Signed both ways: the request's ``Authorization`` is checked (strict / warn / off), and every
answer, errors included, carries the ``Lklapi-*`` headers signed with the platform key.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable, Mapping
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sandbox.core.engine import Order, ScenarioChoice, request_hash
from sandbox.runtime import Sandbox
from sandbox.server import faults, refund_apis, refunds
from sandbox.server.http import base_url, read_body
from sandbox.wire import signing, sm4
from sandbox.wire.envelopes import dumps, envelope, error_body, parse_object, whole_number
from sandbox.wire.errors import SandboxError
from sandbox.wire.vocabulary import (
    COUNTER_PREFIX,
    ENCRYPTED_CREATE,
    ENCRYPTED_OF,
    OK_MSG,
    REFUND_PATHS,
    REQUEST_AUTH_FIELDS,
    SUCCESS,
)

PREFIX = COUNTER_PREFIX
WARNING_HEADER = "X-Sandbox-Signature-Warning"
CHINESE_LABEL = re.compile(r"^[^\x00-\x7f]+\s*")


def verify_request(sb: Sandbox, header: str | None, body: bytes) -> tuple[str, str | None]:
    """(appid to answer as, warning or None); raises in strict mode."""
    mode = sb.settings.signature
    appid = sb.settings.appid
    problem: SandboxError | None
    try:
        fields = signing.parse_authorization(header)
        appid = fields.get("appid", appid)
    except ValueError as exc:
        problem = SandboxError("SIGNATURE_MISSING", reason=str(exc))
    else:
        problem = _check_fields(sb, fields, body)
    if problem is None or mode == "off":
        return appid, None
    if mode == "warn":
        # a header is ASCII: the message without its Chinese label (the English says the same)
        english = CHINESE_LABEL.sub("", problem.message, count=1)
        return appid, _ascii(f"{problem.code} {problem.kind.name}: {english}")
    raise problem


def _check_fields(sb: Sandbox, fields: dict[str, str], body: bytes) -> SandboxError | None:
    missing = [k for k in REQUEST_AUTH_FIELDS if not fields.get(k)]
    if missing:
        return SandboxError("SIGNATURE_MISSING", reason="missing " + ", ".join(missing))
    cert = sb.keys.find(fields["appid"], fields["serial_no"])
    if cert is None:
        return SandboxError("UNKNOWN_APP", appid=fields["appid"], serial=fields["serial_no"])
    timestamp = whole_number(fields["timestamp"], 10**12)
    if timestamp is None:
        return SandboxError("SIGNATURE_MISSING", reason="timestamp must be Unix seconds")
    skew = timestamp - int(time.time())
    if abs(skew) > sb.settings.signature_max_skew:
        return SandboxError(
            "SIGNATURE_EXPIRED",
            timestamp=fields["timestamp"],
            skew=skew,
            limit=sb.settings.signature_max_skew,
        )
    signed = signing.request_string(
        fields["appid"], fields["serial_no"], fields["timestamp"], fields["nonce_str"], body
    )
    if not signing.verify(signing.certificate_public_key(cert), signed, fields["signature"]):
        text = signed.decode("utf-8", "replace")
        return SandboxError(
            "SIGNATURE_INVALID",
            serial=fields["serial_no"],  # as the request names it (the same number)
            subject=cert.subject.rfc4514_string(),
            signed=text if len(text) < 4000 else text[:4000] + "…",
        )
    return None


def _ascii(text: str) -> str:
    """What is still not ASCII (the request's own text in a signed string) as \\uXXXX."""
    return text.encode("ascii", "backslashreplace").decode().replace("\n", "\\n")[:2000]


def channel_id(sb: Sandbox, order: Order) -> str:
    return str(order.data.get("channel_id") or sb.settings.channel_id)


def create_data(sb: Sandbox, order: Order) -> dict[str, Any]:
    return {
        "merchant_no": order.merchant_no,
        "channel_id": channel_id(sb, order),
        "out_order_no": order.out_order_no,
        "order_create_time": order.data["order_create_time"],
        "order_efficient_time": order.data["order_efficient_time"],
        "pay_order_no": order.pay_order_no,
        "total_amount": str(order.total_amount),
        "counter_url": order.counter_url,
    }


def trade_view(trade: Mapping[str, Any], term_no: str) -> dict[str, Any]:
    """A trade as the query lists it: ``log_No`` (sic), settled on the order's terminal."""
    view = {k: v for k, v in trade.items() if not k.startswith("_")}  # not the sandbox's notes
    view["log_No"] = view.pop("log_no")
    view["settle_term_no"] = view.get("settle_term_no") or term_no
    return view


def query_data(sb: Sandbox, order: Order) -> dict[str, Any]:
    d = order.data
    term_no = d.get("term_no") or sb.settings.term_no
    return {
        "pay_order_no": order.pay_order_no,
        "out_order_no": order.out_order_no,
        "channel_id": channel_id(sb, order),
        "trans_merchant_no": order.merchant_no,
        "trans_term_no": term_no,
        "merchant_no": order.merchant_no,
        "term_no": term_no,
        "order_status": str(order.status),
        "order_info": d["order_info"],
        "total_amount": order.total_amount,
        "order_create_time": d["order_create_time"],
        "order_efficient_time": d["order_efficient_time"],
        "counter_param": d.get("counter_param"),
        "counter_remark": d.get("counter_remark"),
        "busi_type_param": d.get("busi_type_param"),
        "split_mark": _opt_str(d.get("split_mark")),
        "split_info": None,
        "out_split_info": d.get("out_split_info"),
        "goods_mark": d.get("goods_mark"),
        "goods_field": d.get("goods_field"),
        "order_trade_info_list": [trade_view(t, term_no) for t in order.trades],
    }


def _opt_str(value: Any) -> str | None:
    return None if value is None else str(value)


def close_data(sb: Sandbox, order: Order) -> dict[str, Any]:
    return {
        "merchant_no": order.merchant_no,
        "out_order_no": order.out_order_no,
        "pay_order_no": order.pay_order_no,
        "channel_id": channel_id(sb, order),
        "order_status": str(order.status),
    }


def _create(
    sb: Sandbox, request: Request, req: dict[str, Any], scenario: ScenarioChoice | None
) -> dict[str, Any]:
    order, _ = sb.engine.create(
        "v3",
        sb.schemas.documented("v3/special_create.req", req),
        request_hash=request_hash(req),
        base_url=base_url(sb.settings, request),
        scenario=scenario,
    )
    return create_data(sb, order)


def _lookup(sb: Sandbox, req: dict[str, Any]) -> Order:
    return sb.engine.find(
        str(req["merchant_no"]),
        out_order_no=req.get("out_order_no"),
        pay_order_no=req.get("pay_order_no"),
    )


def _query(
    sb: Sandbox, request: Request, req: dict[str, Any], _scenario: ScenarioChoice | None
) -> dict[str, Any]:
    return query_data(sb, _lookup(sb, req))


def _close(
    sb: Sandbox, request: Request, req: dict[str, Any], _scenario: ScenarioChoice | None
) -> dict[str, Any]:
    order = sb.engine.apply(_lookup(sb, req).pay_order_no, "close", source="api")
    return close_data(sb, order)


Handler = Callable[[Sandbox, Request, dict[str, Any], ScenarioChoice | None], dict[str, Any]]
OPERATIONS: dict[str, Handler] = {
    "special_create": _create,
    "create": _create,
    "query": _query,
    "close": _close,
    "refund": refunds.refund,
    "refund_query": refunds.refund_query,
}
# each operation's path: the counter's, and the refund API beside it
PATHS = {op: (refunds.PREFIX if op.startswith("refund") else PREFIX) + op for op in OPERATIONS}
# the refund APIs of Lakala's SDKs' typed classes, each at its own path
REFUND_APIS: dict[str, Handler] = {
    "relation_refund": refund_apis.relation_refund,
    "trade_refund": refund_apis.trade_refund,
    "trade_refund_query": refund_apis.trade_refund_query,
    "idmrefund": refund_apis.idmrefund,
    "idmrefundquery": refund_apis.idmrefundquery,
}
OPERATIONS.update(REFUND_APIS)
PATHS.update({op: REFUND_PATHS[op] for op in REFUND_APIS})
# the create with the whole body SM4-encrypted (全报文加密): special_create once decrypted
ENCRYPTED = ENCRYPTED_CREATE
OPERATIONS[ENCRYPTED] = _create
PATHS[ENCRYPTED] = PREFIX + ENCRYPTED
SCHEMA_OF = ENCRYPTED_OF


def _decrypted(sb: Sandbox, appid: str, body: bytes) -> tuple[bytes, bytes]:
    """(the JSON an encrypted body holds, the app's SM4 key); a clear error naming what failed."""
    app = sb.keys.app(appid)
    if app is None or app.sm4_key is None:
        raise SandboxError(
            "INVALID_PARAM",
            field="appid",
            rule=f"app {appid} has no SM4 key for {ENCRYPTED} (give it sm4_key in the apps file)",
        )
    try:
        return sm4.decrypt(app.sm4_key, body), app.sm4_key
    except sm4.DecryptError as why:
        raise SandboxError("NOT_JSON", reason=f"the SM4-encrypted body {why}") from None


async def signed_response(
    sb: Sandbox,
    appid: str,
    body: dict[str, Any],
    status: int = 200,
    extra_headers: dict[str, str] | None = None,
    encrypt_with: bytes | None = None,
    *,
    alone: bool = True,
) -> Response:
    """The v3 answer, signed. ``alone``: no other v3 call of the app is in progress."""
    raw = dumps(body)
    if encrypt_with is not None:  # an app that takes encrypted answers: signed as sent
        raw = sm4.encrypt(encrypt_with, raw)
    sign = (sb.keys.platform_key, appid, sb.keys.platform_serial, raw)
    if alone:
        # nothing else waits for the loop: handing the signature to a signing thread and back
        # would cost half a millisecond of CPU more than signing here (an in-process call, or
        # a server called one call at a time)
        headers = signing.response_headers(*sign)
    else:
        # The RSA signature is most of a v3 call's CPU and releases the interpreter lock: made
        # on a signing thread it runs on another core while the event loop serves the others.
        loop = asyncio.get_running_loop()
        headers = await loop.run_in_executor(signing.executor(), signing.response_headers, *sign)
    response = Response(
        raw, status_code=status, headers=extra_headers, media_type="application/json; charset=utf-8"
    )
    # Starlette writes header names in lower case; Lakala's are "Lklapi-Appid" and so on, and
    # clients that read them from a plain map (the PHP SDK's way) look for exactly that case.
    response.raw_headers.extend(
        (k.encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()
    )
    return response


def endpoint(operation: str) -> Callable[[Request], Any]:
    handler = OPERATIONS[operation]

    async def handle(request: Request) -> Response:
        sb: Sandbox = request.app.state.sandbox
        # the app's v3 calls in progress: all on one loop (a miscount would only pick the
        # other way of signing)
        calls = _calls_of(request.app)
        calls[0] += 1
        try:
            return await answer(request, sb, calls)
        finally:
            calls[0] -= 1

    async def answer(request: Request, sb: Sandbox, calls: list[int]) -> Response:
        appid, warning = sb.settings.appid, None
        answer_key: bytes | None = None
        try:
            body = await read_body(request, sb.settings.max_body_bytes)
            appid, warning = verify_request(sb, request.headers.get("authorization"), body)
            if operation == ENCRYPTED:  # the signature is over the text as sent: checked above
                body, key = _decrypted(sb, appid, body)
                app = sb.keys.app(appid)
                answer_key = key if app is not None and app.encrypt_answers else None
            try:
                message = parse_object(body)
            except SandboxError as error:
                if operation != ENCRYPTED:
                    raise
                raise SandboxError(
                    "NOT_JSON", reason=f"the SM4-decrypted body: {error.message}"
                ) from None
            sb.schemas.check("v3/request", message)
            if operation in REFUND_APIS:  # their SDKs send null / "" for what is unset
                message["req_data"] = refund_apis.drop_absent(message["req_data"])
            schema = SCHEMA_OF.get(operation, operation)
            sb.schemas.check(f"v3/{schema}.req", message["req_data"], prefix="req_data")
            req = sb.schemas.coerce(f"v3/{schema}.req", message["req_data"])
            scenario = await faults.before_call(sb, request, "v3", operation, req)
            result = handler(sb, request, req, scenario)
            out = envelope("v3", SUCCESS, OK_MSG, sb.clock.now14(), result)
            sb.check_outgoing("v3/response", out)
            sb.check_outgoing(f"v3/{schema}.resp", out["resp_data"])
            status = 200
        except SandboxError as error:
            status, out = error_body("v3", error, sb.clock.now14())
        alone = calls[0] == 1
        if alone:
            # One turn of the loop first: calls it has already taken in start meanwhile, and
            # count. A call seldom waits for anything before its signature, so without the turn
            # each one ran to its end before the next began, and always looked alone.
            await asyncio.sleep(0)
            alone = calls[0] == 1
        return await signed_response(
            sb,
            appid,
            out,
            status,
            {WARNING_HEADER: warning} if warning else None,
            encrypt_with=answer_key,
            alone=alone,
        )

    return handle


def _calls_of(app: Any) -> list[int]:
    """The app's v3 calls in progress, in a list so that it is changed in place."""
    try:
        return app.state.v3_calls  # type: ignore[no-any-return]
    except AttributeError:
        app.state.v3_calls = calls = [0]
        return calls


routes = [Route(path, endpoint(op), methods=["POST"]) for op, path in PATHS.items()]
