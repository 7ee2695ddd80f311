"""Real mode (``serve --mode real``): the seed's ``/api/v1`` endpoints on real Lakala orders.

A v1 create goes to Lakala (``special_create``, through ``AsyncLakalaClient``) with
``notify_url = public_url + NOTIFY_PATH``; the order is then mirrored in this sandbox's own engine
under Lakala's ``pay_order_no``, with the caller's ``notify_url``. Query and close ask Lakala and
bring the mirror along. Lakala's notifies arrive at ``NOTIFY_PATH``, are verified with the notify
certificate and validated, and move the mirror; the mirror's change reaches the caller's
``notify_url`` as a v1 notify through the sandbox's durable notify outbox, like any other order.

Nothing unverified moves a mirror, and a notify is acknowledged only after its change is stored,
so Lakala's own retries cover anything that fails before that.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Awaitable
from typing import Any, TypeVar

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sandbox.client.clients import PATHS, AsyncLakalaClient
from sandbox.client.errors import (
    LakalaAPIError,
    LakalaConfigError,
    LakalaError,
    LakalaHTTPError,
    LakalaSchemaError,
    LakalaSignatureError,
    LakalaTransportError,
)
from sandbox.core.engine import (
    LATE_PAYMENT,
    Order,
    ScenarioChoice,
    refunded_amount,
    request_hash,
)
from sandbox.runtime import Sandbox
from sandbox.server import api_v1
from sandbox.server.api_v3 import create_data
from sandbox.server.http import base_url, json_response, read_body
from sandbox.wire.errors import SandboxError
from sandbox.wire.vocabulary import OPEN, STATUS_V1, OrderStatus

log = logging.getLogger("lakala_sandbox.proxy")

NOTIFY_PATH = "/lakala/notify"
ACK = {"code": "SUCCESS", "message": "执行成功"}
# The action that moves a mirror to Lakala's order_status, and the trade type it records.
FOLLOW = {
    OrderStatus.PAYING: "paying",
    OrderStatus.PAID: "pay",
    OrderStatus.FAILED: "fail",
    OrderStatus.EXPIRED: "expire",
    OrderStatus.CANCELLED: "cancel",
    OrderStatus.REFUNDED: "refund",
    OrderStatus.CLOSED: "close",
}
TRADE_TYPE = {"paying": "PAY", "pay": "PAY", "fail": "PAY", "cancel": "CANCEL", "refund": "REFUND"}

# What ties an answer to one order: each must be what was asked for.
NUMBERS = ("merchant_no", "out_order_no", "pay_order_no")

T = TypeVar("T")


class Proxy:
    """Real mode for one sandbox: ``routes`` replace the v1 ones, ``client`` talks to Lakala."""

    def __init__(self, sb: Sandbox, client: AsyncLakalaClient) -> None:
        if not sb.settings.public_url:
            raise ValueError(
                "real mode needs --public-url (LAKALA_SANDBOX_PUBLIC_URL): the "
                f"address Lakala sends notifies to, {NOTIFY_PATH} appended"
            )
        self.sb = sb
        self.client = client
        self.notify_url = sb.settings.public_url.rstrip("/") + NOTIFY_PATH
        self.routes = [
            *[
                Route(api_v1.PREFIX + op, api_v1.endpoint(op, handler), methods=["POST"])
                for op, handler in (
                    ("create", self.create),
                    ("query", self.query),
                    ("close", self.close),
                )
            ],
            Route(NOTIFY_PATH, self.notify, methods=["POST"]),
        ]

    @classmethod
    def for_sandbox(cls, sb: Sandbox, client: AsyncLakalaClient | None = None) -> Proxy:
        """``client`` defaults to ``AsyncLakalaClient.from_env()`` (the LAKALA_* variables)."""
        return cls(sb, client or AsyncLakalaClient.from_env())

    def merchant_no(self, body: dict[str, Any]) -> str:
        return str(
            body.get("merchant_no") or self.client.merchant_no or self.sb.settings.merchant_no
        )

    def default_expiry(self, body: dict[str, Any]) -> str:
        """v1's default validity, chosen once per order: a create retried after a lost answer
        must reach Lakala as the identical request, or Lakala refuses it as a duplicate."""
        sb = self.sb

        def fresh() -> str:
            return sb.clock.format(sb.clock.timestamp() + sb.settings.v1_validity_seconds)

        return self.client.default_expiry(self.merchant_no(body), str(body["out_order_no"]), fresh)

    # -- the v1 operations ------------------------------------------------------------------
    async def create(
        self, sb: Sandbox, request: Request, body: dict[str, Any], _scenario: ScenarioChoice | None
    ) -> dict[str, Any]:
        merchant_no, digest = self.merchant_no(body), request_hash(body)
        existing = self._mirror(merchant_no, out_order_no=str(body["out_order_no"]))
        if existing is not None:
            if existing.request_hash != digest:
                raise SandboxError(
                    "ORDER_EXISTS",
                    out_order_no=existing.out_order_no,
                    merchant_no=existing.merchant_no,
                )
            return create_data(sb, existing)  # a safe retry: Lakala is not asked twice
        sent = {**body, "merchant_no": merchant_no}
        if not body.get("order_efficient_time"):
            sent["order_efficient_time"] = self.default_expiry(body)
        req, extra = api_v1.v3_request(sb, sent)
        reply = await _upstream(
            self.client.call(PATHS["special_create"], {**req, "notify_url": self.notify_url})
        )
        data = reply.resp_data or {}
        pay_order_no = str(data["pay_order_no"])
        self._check_answer_is_about("create", req, data)
        extra.update(
            {k: data[k] for k in ("channel_id", "counter_url", "order_create_time") if data.get(k)}
        )
        try:
            order, _ = sb.engine.create(
                "v1",
                req,
                request_hash=digest,
                base_url=base_url(sb.settings, request),
                extra=extra,
                source="proxy",
                pay_order_no=pay_order_no,
            )
        except sqlite3.IntegrityError:  # the same number mirrored meanwhile, by another thread
            raise SandboxError(
                "UPSTREAM_INVALID",
                reason=f"create answered pay_order_no {pay_order_no}, already mirrored",
            ) from None
        return create_data(sb, order)

    async def query(
        self, sb: Sandbox, request: Request, body: dict[str, Any], _scenario: ScenarioChoice | None
    ) -> dict[str, Any]:
        merchant_no = self.merchant_no(body)
        data = await _upstream(
            self.client.query(
                merchant_no=merchant_no,
                out_order_no=body.get("out_order_no"),
                pay_order_no=body.get("pay_order_no"),
            )
        )
        self._check_answer_is_about("query", {**body, "merchant_no": merchant_no}, data)
        trades = data.get("order_trade_info_list") or []
        self._bring_along(
            str(data["pay_order_no"]), str(data["order_status"]), trades[0] if trades else None
        )
        return v1_query_view(data)

    async def close(
        self, sb: Sandbox, request: Request, body: dict[str, Any], _scenario: ScenarioChoice | None
    ) -> dict[str, Any]:
        merchant_no = self.merchant_no(body)
        data = await _upstream(
            self.client.close(
                merchant_no=merchant_no,
                out_order_no=body.get("out_order_no"),
                pay_order_no=body.get("pay_order_no"),
            )
        )
        self._check_answer_is_about("close", {**body, "merchant_no": merchant_no}, data)
        self._bring_along(str(data["pay_order_no"]), str(data["order_status"]), None)
        return {
            "out_order_no": data["out_order_no"],
            "pay_order_no": data["pay_order_no"],
            "order_status": STATUS_V1[int(data["order_status"])],
        }

    # -- Lakala's notifies ------------------------------------------------------------------
    async def notify(self, request: Request) -> Response:
        try:
            raw = await read_body(request, self.sb.settings.max_body_bytes)
        except SandboxError as exc:
            return _fail(str(exc), exc.kind.http_status)
        try:
            notify = await self.client.verify_notify(request.headers, raw)
        except LakalaError as exc:
            log.warning("refused a notify that failed verification: %s", exc)
            return _fail(str(exc), 401 if isinstance(exc, LakalaSignatureError) else 400)
        mirror = self._mirror(str(notify["merchant_no"]), pay_order_no=str(notify["pay_order_no"]))
        if mirror is None:
            # not (yet) ours: FAIL makes Lakala send it again, so a create still finishing gets it
            log.warning(
                "a notify for unknown order %s (%s); asked Lakala to retry",
                notify["pay_order_no"],
                notify["out_order_no"],
            )
            return _fail(f"no order {notify['pay_order_no']} here", 404)
        try:
            self.follow(
                mirror.pay_order_no, str(notify["order_status"]), notify.get("order_trade_info")
            )
        except Unfollowed as exc:  # Lakala's money not stored here: it must send this again
            log.error("did not acknowledge a notify: %s", exc)
            return _fail(f"{exc}; send again", 409)
        except Exception:  # the change was not stored: let Lakala retry rather than lose it
            log.exception("could not apply the notify for %s", mirror.pay_order_no)
            return _fail("could not store the notify; send again", 503)
        return json_response(ACK)

    # -- the mirror -------------------------------------------------------------------------
    def _check_answer_is_about(
        self, operation: str, asked: dict[str, Any], data: dict[str, Any]
    ) -> None:
        """A signed answer about another order must change nothing: it must carry the numbers
        asked for (and those of the mirror asked about), and its pay_order_no must not be
        another order's mirror here. Otherwise it is a bad upstream answer (SBX50003)."""
        answered = {name: _text(data.get(name)) for name in NUMBERS}
        wanted = {name: _text(asked.get(name)) for name in NUMBERS}
        known = self._known(wanted)
        if known is not None:
            wanted.update(out_order_no=known.out_order_no, pay_order_no=known.pay_order_no)
        for name in NUMBERS:
            if wanted[name] is not None and answered[name] != wanted[name]:
                raise SandboxError(
                    "UPSTREAM_INVALID",
                    reason=f"the {operation} answer is about {name} {answered[name]}, "
                    f"not {wanted[name]}",
                )
        holder = self._existing(answered["pay_order_no"] or "")
        if holder is not None and (holder.merchant_no, holder.out_order_no) != (
            answered["merchant_no"],
            answered["out_order_no"],
        ):
            raise SandboxError(
                "UPSTREAM_INVALID",
                reason=f"the {operation} answer gives pay_order_no {answered['pay_order_no']} "
                f"to out_order_no {answered['out_order_no']}, but here it is order "
                f"{holder.out_order_no} of merchant {holder.merchant_no}",
            )

    def _known(self, wanted: dict[str, str | None]) -> Order | None:
        """The mirror of the order asked about, if there is one."""
        if wanted["out_order_no"] is None and wanted["pay_order_no"] is None:
            return None
        return self._mirror(
            str(wanted["merchant_no"]),
            out_order_no=wanted["out_order_no"],
            pay_order_no=wanted["pay_order_no"],
        )

    def _existing(self, pay_order_no: str) -> Order | None:
        try:
            return self.sb.engine.get(pay_order_no)
        except SandboxError:
            return None

    def _mirror(
        self, merchant_no: str, *, out_order_no: str | None = None, pay_order_no: str | None = None
    ) -> Order | None:
        try:
            return self.sb.engine.find(
                merchant_no, out_order_no=out_order_no, pay_order_no=pay_order_no
            )
        except SandboxError:
            return None

    def _bring_along(self, pay_order_no: str, lakala_status: str, trade: Any) -> None:
        """``follow`` after a query or close: the caller is answered with Lakala's word anyway."""
        try:
            self.follow(pay_order_no, lakala_status, trade)
        except Unfollowed as exc:
            log.error("the mirror does not follow Lakala: %s", exc)

    def follow(self, pay_order_no: str, lakala_status: str, trade: dict[str, Any] | None) -> None:
        """Move the mirror (if any) to Lakala's status, keeping Lakala's trade fields.

        A payment Lakala reports wins over the mirror's own reading of the expiry: an expired
        mirror is paid late (the trade says so). ``Unfollowed`` when Lakala reports money the
        mirror cannot take, so nothing is acknowledged that was not stored."""
        try:
            order = self.sb.engine.get(pay_order_no)
        except SandboxError:
            return  # created elsewhere: nothing of ours to move
        target = OrderStatus.of(lakala_status)
        if order.status == target or target == OrderStatus.WAIT_PAY:
            return
        steps = [FOLLOW[target]]
        paid_first = target == OrderStatus.REFUNDED or (trade or {}).get("trade_type") == "CANCEL"
        settled = (OrderStatus.CANCELLED, OrderStatus.REFUNDED)
        if target in settled and order.status in (*OPEN, OrderStatus.EXPIRED) and paid_first:
            steps = ["pay", FOLLOW[target]]  # the payment's own notify was missed
        for action in steps:
            fields = (
                _trade_fields(trade)
                if (trade or {}).get("trade_type") == TRADE_TYPE.get(action)
                else None
            )
            try:
                order = self.sb.engine.apply(
                    pay_order_no, action, source="proxy", trade_data=fields, late=True
                )
            except SandboxError as exc:
                if _reports_a_payment(target, trade) and not _holds_a_payment(order):
                    raise Unfollowed(
                        f"Lakala reports order {pay_order_no} paid (status {target}), but its "
                        f"mirror here is {order.status} {STATUS_V1[order.status]} and cannot "
                        f"take the payment: {exc}"
                    ) from None
                # an older notify arriving late, or a state this mirror cannot take
                log.warning(
                    "mirror %s stays %s, Lakala says %s: %s",
                    pay_order_no,
                    order.status,
                    target,
                    exc,
                )
                return
            if action == "pay" and LATE_PAYMENT in (order.last_trade("PAY") or {}):
                log.warning(
                    "mirror %s paid late: Lakala reported the payment after the order "
                    "expired here at %s",
                    pay_order_no,
                    order.data.get("order_efficient_time"),
                )


class Unfollowed(Exception):
    """Lakala reports money the mirror cannot take: the notify must not be acknowledged."""


def _holds_a_payment(order: Order) -> bool:
    return any(t["trade_type"] == "PAY" and t["trade_status"] == "S" for t in order.trades)


def _reports_a_payment(target: int, trade: dict[str, Any] | None) -> bool:
    """Whether Lakala's status (and trade) says the order's money was taken."""
    return (
        target in (OrderStatus.PAID, OrderStatus.REFUNDED)
        or (trade or {}).get("trade_type") == "CANCEL"
    )


def v1_query_view(data: dict[str, Any]) -> dict[str, Any]:
    """Lakala's query ``resp_data`` in the seed's shape, rendered as ours are."""
    trades = data.get("order_trade_info_list") or []
    paid = next((t for t in trades if t.get("trade_type") == "PAY"), None)
    return api_v1.query_view(
        data, int(data["order_status"]), paid, refunded_amount(trades), data.get("channel_id")
    )


def _text(value: Any) -> str | None:
    return None if value is None or value == "" else str(value)


def _trade_fields(trade: dict[str, Any] | None) -> dict[str, Any] | None:
    if not trade:
        return None
    fields = dict(trade)
    if "log_No" in fields:  # the query spells it log_No, the notify log_no
        fields["log_no"] = fields.pop("log_No")
    return fields


async def _upstream(call: Awaitable[T]) -> T:
    """Lakala's problems as the sandbox's own errors, in the v1 envelope."""
    try:
        return await call
    except LakalaAPIError as exc:
        raise SandboxError("UPSTREAM_ERROR", code=exc.code, msg=exc.msg) from None
    except LakalaSchemaError as exc:
        if exc.direction == "request":
            raise SandboxError("INVALID_PARAM", field=exc.field, rule=exc.rule) from None
        raise SandboxError("UPSTREAM_INVALID", reason=str(exc)) from None
    except (LakalaTransportError, LakalaHTTPError, LakalaConfigError) as exc:
        log.warning("Lakala call failed: %s", exc)
        raise SandboxError("SERVICE_UNAVAILABLE", reason=f"Lakala is unavailable: {exc}") from None
    except LakalaError as exc:  # a signature or a body that does not hold up
        log.warning("Lakala's answer refused: %s", exc)
        raise SandboxError("UPSTREAM_INVALID", reason=str(exc)) from None


def _fail(message: str, status: int) -> Response:
    return json_response({"code": "FAIL", "message": message}, status)
