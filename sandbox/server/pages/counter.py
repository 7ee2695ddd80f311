"""The hosted counter page at an order's ``counter_url``:
``/b/pay?merchantNo=…&merchantOrderNo=…&payOrderNo=…``.

The core flow is plain HTML: a GET form picks the method, a POST form runs the outcome (one
scenario step: ``engine.apply(..., source="page", options={"notify": POLICY})``), then
redirect-after-POST back to the page, which shows the result and returns the payer to the order's
``callback_url``. JavaScript only adds the countdown, live status and the automatic return.
"""

from __future__ import annotations

from typing import Any

import segno
import yaml
from markupsafe import Markup
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from sandbox.core import cards
from sandbox.core.engine import Order
from sandbox.runtime import Sandbox
from sandbox.server.http import base_url, json_response
from sandbox.server.pages.common import (
    OUTCOMES,
    PageError,
    Refused,
    callback_target,
    check_form,
    form_token,
    lang_of,
    mode_kind,
    pick,
    refused,
    render,
    text,
    with_query,
)
from sandbox.wire.envelopes import whole_number
from sandbox.wire.errors import SandboxError
from sandbox.wire.vocabulary import (
    COUNTER_PAGE,
    OPEN,
    PAY_MODE_NAMES,
    STATUS_TEXT,
    STATUS_V1,
    OrderStatus,
)

PAGE = COUNTER_PAGE
SUBMIT = PAGE + "/submit"
RETURN = PAGE + "/return"
STATUS = PAGE + "/status"
POLICIES = ("now", "after", "never", "twice")
MAX_AFTER_SECONDS = 7 * 24 * 3600
GLYPHS = {
    "ALIPAY": "支",
    "WECHAT": "微",
    "UNION": "闪",
    "CARD": "卡",
    "LKLAT": "转",
    "QUICK_PAY": "快",
    "EBANK": "网",
    "UNION_CC": "银",
    "BESTPAY": "翼",
    "HB_FQ": "花",
    "UNION_FQ": "分",
    "ONLINE_CARDLESS": "外",
    "JDBT": "白",
    "ALIPAY_HK": "HK",
}
# What a click that was refused meanwhile is called on the page.
REFUSED_NAMES = {**OUTCOMES, "card": ("确认付款", "Pay now")}


def find_order(sb: Sandbox, params: Any) -> Order | None:
    """The order the link names; all the numbers its link carries must agree, as on Lakala's
    counter."""
    pay_order_no = str(params.get("payOrderNo") or "")
    if not pay_order_no:
        return None
    try:
        order = sb.engine.get(pay_order_no)
    except SandboxError:
        return None
    if any(params.get(k) != v for k, v in order.counter_params.items()):
        return None
    return order


def link_params(order: Order, lang: str) -> dict[str, str | None]:
    return {**order.counter_params, "lang": "en" if lang == "en" else None}


def step_yaml(action: str, pay_mode: str | None, policy: Any, reason: str | None = None) -> str:
    """The click as the scenario step it is, e.g. ``- pay: {pay_mode: ALIPAY, notify: now}``."""
    params: dict[str, Any] = {}
    if pay_mode and action in ("pay", "paying", "fail"):
        params["pay_mode"] = pay_mode
    params["notify"] = policy
    if reason:
        params["reason"] = reason
    # one line however long, quoted where YAML needs it
    flow = yaml.safe_dump(
        params, default_flow_style=True, sort_keys=False, allow_unicode=True, width=10**6
    )
    return f"- {action}: {flow.strip()}"


def parse_policy(values: Any) -> Any:
    """The notify policy of a click from form or query fields; ``PageError`` says what is wrong."""
    kind = str(values.get("notify") or "now")
    if kind not in POLICIES:
        listed = ", ".join(POLICIES)
        raise PageError(
            f"notify 须为 {listed} 之一（收到 {kind[:20]!r}）",
            f"notify must be one of {listed} (got {kind[:20]!r})",
        )
    if kind != "after":
        return kind
    raw = str(values.get("notify_after") or values.get("after") or "").strip()
    after = whole_number(raw, MAX_AFTER_SECONDS)
    if after is None:
        raise PageError(
            f"notify_after 须为 0 到 {MAX_AFTER_SECONDS} 的整秒数（收到 {raw[:20]!r}）",
            f"notify_after must be whole seconds 0..{MAX_AFTER_SECONDS} (got {raw[:20]!r})",
        )
    return {"after": after}


def _checked_policy(sb: Sandbox, action: str, pay_mode: str | None, form: Any) -> Any:
    """The click's notify policy, once its fields are known good; ``PageError`` if not."""
    if action not in OUTCOMES:
        listed = ", ".join(OUTCOMES)
        raise PageError(
            f"action 须为 {listed} 之一（收到 {action[:40]!r}）",
            f"action must be one of {listed} (got {action[:40]!r})",
        )
    if pay_mode is not None and pay_mode not in sb.engine.pay_modes:
        raise PageError(
            f"未知的支付方式 pay_mode {pay_mode[:40]!r}", f"unknown pay_mode {pay_mode[:40]!r}"
        )
    return parse_policy(form)


def _policy_query(policy: Any) -> dict[str, Any]:
    if isinstance(policy, dict):
        return {"notify": "after", "after": policy["after"]}
    return {"notify": policy}


def _fail_reason(card: cards.Card | None, action: str) -> tuple[str, str] | None:
    """Why the card's payment failed, (zh, en); None unless it is a failing card's fail."""
    if card is None or action != "fail" or card.action != "fail":
        return None
    return card.reason


def _stored_reason(order: Order) -> tuple[str, str] | None:
    """Why a failed order's payment failed, as its trade keeps it (a card's, a scenario's)."""
    paid = order.last_trade("PAY")
    remark = (paid or {}).get("trade_remark") if order.status == OrderStatus.FAILED else None
    if not remark:
        return None
    card = next((c.reason for c in cards.TEST_CARDS if c.reason and c.reason[0] == remark), None)
    return card or (remark, remark)


def _ran_step(sb: Sandbox, params: Any) -> dict[str, Any] | None:
    """The step the last click ran, as the redirect after it names it (display only)."""
    action = params.get("ran")
    if action not in OUTCOMES:
        return None
    mode = params.get("mode")
    mode = mode if mode in sb.engine.pay_modes else None
    try:
        policy = parse_policy(params)
    except ValueError:
        return None
    card = next((c for c in cards.TEST_CARDS if c.number == params.get("card")), None)
    reason = _fail_reason(card, action)
    return {
        "yaml": step_yaml(action, mode, policy, reason[0] if reason else None),
        "card": card,
        "reason": reason,
    }


def _phone_url(sb: Sandbox, request: Request, order: Order, pay_mode: str, lang: str) -> str:
    return base_url(sb.settings, request) + with_query(
        PAGE, **link_params(order, lang), payMode=pay_mode, via="qr"
    )


def _qr_svg(url: str) -> Markup:
    qr = segno.make(url, error="m")
    return Markup(
        qr.svg_inline(
            scale=1, border=4, omitsize=True, svgclass="qr-svg", dark="#000", light="#fff"
        )
    )


def counter_view(
    sb: Sandbox,
    request: Request,
    order: Order,
    lang: str,
    params: Any,
    *,
    card_error: str | None = None,
    typed_card: str = "",
    status: int = 200,
) -> Response:
    engine = sb.engine
    allowed_modes = engine.allowed_pay_modes(order)
    actions = engine.allowed_actions(order)
    can_pay = "pay" in actions
    notices: list[str] = []
    pay_mode = params.get("payMode") or None
    if pay_mode is not None and pay_mode not in allowed_modes:
        name = pick(lang, PAY_MODE_NAMES[pay_mode]) if pay_mode in PAY_MODE_NAMES else str(pay_mode)
        notices.append(text(lang, "mode_not_allowed", name=name))
        pay_mode = None
    if pay_mode is None and len(allowed_modes) == 1:
        pay_mode = allowed_modes[0]  # only one way to pay: the page opens on it, no click first
    tried = params.get("refused")
    if tried in REFUSED_NAMES:
        notices.append(
            text(
                lang,
                "action_refused",
                action=pick(lang, REFUSED_NAMES[tried]),
                status=pick(lang, STATUS_TEXT[order.status]),
            )
        )
    if not can_pay:
        view = "state"
    elif pay_mode:
        view = "method"
    else:
        view = "methods"
    link = link_params(order, lang)
    step = _ran_step(sb, params)
    reason = (
        step["reason"] if step and order.status == OrderStatus.FAILED else None
    ) or _stored_reason(order)
    ctx: dict[str, Any] = {
        "order": order,
        "view": view,
        "notices": notices,
        "actions": actions,
        "status_text": pick(lang, STATUS_TEXT[order.status]),
        "is_open": order.status in OPEN,
        "remaining": max(0, int(order.efficient_ts - engine.now_for(order))),
        "modes": [
            {
                "code": m,
                "name": pick(lang, PAY_MODE_NAMES.get(m, (m, m))),
                "glyph": GLYPHS.get(m, m[:1]),
                "kind": mode_kind(m),
            }
            for m in allowed_modes
        ],
        "link": link,
        "csrf": form_token(sb, "order:" + order.pay_order_no),
        "step": step,
        "card_error": card_error,
        "typed_card": typed_card,
        "test_cards": cards.TEST_CARDS,
        "page": PAGE,
        "submit": SUBMIT,
        "status_url": with_query(STATUS, **{**link, "lang": None}),
        "methods_url": with_query(PAGE, **link),
        "lang_url": with_query(
            PAGE,
            **{**link, "lang": None if lang == "en" else "en"},
            payMode=pay_mode,
            via=params.get("via"),
        ),
        "paid": order.last_trade("PAY")
        if order.status in (OrderStatus.PAID, OrderStatus.CANCELLED, OrderStatus.REFUNDED)
        else None,
        "outcomes": [(a, pick(lang, OUTCOMES[a])) for a in OUTCOMES if a in actions],
        "redirect_seconds": max(0, sb.settings.page_redirect_seconds),
        "callback": callback_target(order),
        "return_url": with_query(RETURN, **link),
        "return_path": RETURN,
        "via_qr": params.get("via") == "qr",
    }
    ctx["fail_reason"] = pick(lang, reason) if reason else None
    if order.status == OrderStatus.PAYING and can_pay:
        notices.append(text(lang, "paying_notice"))
    if order.status == OrderStatus.FAILED and can_pay:
        if reason:
            notices.append(text(lang, "failed_reason_notice", reason=pick(lang, reason)))
        else:
            notices.append(text(lang, "failed_notice"))
    # the payer's part is over when nothing but the merchant is left to go back to
    ctx["auto_redirect"] = not can_pay and order.status not in OPEN and ctx["callback"] is not None
    # still payable, but the payer may give up waiting or retrying and go back (no automatic
    # return: the page stays for a payment that may yet come)
    ctx["early_back"] = (
        can_pay
        and order.status in (OrderStatus.PAYING, OrderStatus.FAILED)
        and ctx["callback"] is not None
    )
    ctx["early_back_hint"] = text(
        lang, "paying_back_hint" if order.status == OrderStatus.PAYING else "failed_back_hint"
    )
    if view == "method":
        assert pay_mode is not None
        ctx["pay_mode"] = pay_mode
        ctx["pay_mode_name"] = pick(lang, PAY_MODE_NAMES.get(pay_mode, (pay_mode, pay_mode)))
        ctx["kind"] = mode_kind(pay_mode)
        if ctx["kind"] == "scan":
            ctx["phone_url"] = _phone_url(sb, request, order, pay_mode, lang)
            ctx["qr_svg"] = _qr_svg(ctx["phone_url"])
    return render("counter.html", lang, ctx, status=status)


def _message(lang: str, title_key: str, message: str, status: int) -> Response:
    return render(
        "message.html", lang, {"title": text(lang, title_key), "message": message}, status=status
    )


def _not_found(lang: str) -> Response:
    return _message(lang, "not_found", text(lang, "not_found_hint"), 404)


async def counter(request: Request) -> Response:
    sb: Sandbox = request.app.state.sandbox
    lang = lang_of(request)
    order = find_order(sb, request.query_params)
    if order is None:
        return _not_found(lang)
    return counter_view(sb, request, order, lang, request.query_params)


async def submit(request: Request) -> Response:
    sb: Sandbox = request.app.state.sandbox
    form = await request.form(max_files=0, max_fields=32)
    lang = lang_of(request, form)
    order = find_order(sb, form)
    if order is None:
        return _not_found(lang)
    try:
        check_form(sb, request, form, "order:" + order.pay_order_no)
    except Refused as why:
        return refused(lang, why)
    action = str(form.get("action") or "")
    pay_mode = str(form.get("pay_mode") or "") or None
    card = None
    trade_data: dict[str, Any] | None = None
    options: dict[str, Any] = {}
    if action == "card":
        try:
            card = cards.lookup(str(form.get("card_no") or ""))
        except cards.CardRejected as rejected:
            params = {"payMode": pay_mode}
            return counter_view(
                sb,
                request,
                order,
                lang,
                params,
                card_error=rejected.reason,
                typed_card=str(form.get("card_no") or "")[:40],
                status=422,
            )
        action = card.action
        if action in ("pay", "paying", "fail"):
            # the trade records the card typed (masked), not a made-up one
            trade_data = cards.payer_fields(card.number)
        reason = _fail_reason(card, action)
        if reason:
            options["reason"] = reason[0]
    try:
        policy = _checked_policy(sb, action, pay_mode, form)
    except PageError as problem:
        return _message(lang, "bad_request", problem.say(lang), 400)
    back = link_params(order, lang)
    try:
        sb.engine.apply(
            order.pay_order_no,
            action,
            pay_mode=pay_mode if action in ("pay", "paying", "fail") else None,
            source="page",
            options={"notify": policy, **options},
            trade_data=trade_data,
        )
    except SandboxError as error:
        if not error.is_one_of("ILLEGAL_TRANSITION", "PAY_MODE_NOT_ALLOWED"):
            return _message(lang, "bad_request", error.message, error.kind.http_status)
        tried = "card" if card is not None else action
        return RedirectResponse(with_query(PAGE, **back, payMode=pay_mode, refused=tried), 303)
    return RedirectResponse(
        with_query(
            PAGE,
            **back,
            payMode=pay_mode if action == "paying" else None,
            ran=action,
            mode=pay_mode,
            **_policy_query(policy),
            card=card.number if card else None,
        ),
        303,
    )


async def back_to_merchant(request: Request) -> Response:
    """Only ever the order's own http(s) ``callback_url``; otherwise back to the page."""
    sb: Sandbox = request.app.state.sandbox
    lang = lang_of(request)
    order = find_order(sb, request.query_params)
    if order is None:
        return _not_found(lang)
    target = callback_target(order)
    if target is None:
        return RedirectResponse(with_query(PAGE, **link_params(order, lang)), 303)
    return RedirectResponse(target, 303)


async def order_status(request: Request) -> Response:
    sb: Sandbox = request.app.state.sandbox
    order = find_order(sb, request.query_params)
    if order is None:
        return json_response({"error": "ORDER_NOT_FOUND"}, 404)
    return json_response(
        {
            "order_status": str(order.status),
            "status": STATUS_V1[order.status],
            "remaining_seconds": max(0, int(order.efficient_ts - sb.engine.now_for(order))),
        },
        headers={"Cache-Control": "no-store"},
    )


routes = [
    Route(PAGE, counter, methods=["GET"]),
    Route(SUBMIT, submit, methods=["POST"]),
    Route(RETURN, back_to_merchant, methods=["GET"]),
    Route(STATUS, order_status, methods=["GET"]),
]
