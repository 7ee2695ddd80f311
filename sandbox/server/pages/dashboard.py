"""The dashboard at ``/``: orders, one order's trades and notify journal, the clock, scenarios,
keys, and a form that creates a test order and opens its counter page.

Same access rule as the admin API (``admin.is_admin``: loopback, or the admin token). A browser
cannot send the token as a header, so with ``--admin-token`` the dashboard asks for it once and
keeps it in an HTTP-only, same-site cookie. Every action is a POST form with a token and an
origin check, answered by a redirect back to the page (it all works without JavaScript).
"""

from __future__ import annotations

import asyncio
import functools
import re
import secrets
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from sandbox.core.engine import Order, ScenarioChoice
from sandbox.core.keys import MERCHANT_CERT, MERCHANT_KEY, PLATFORM_CERT
from sandbox.runtime import Sandbox
from sandbox.scenarios.files import CreateView
from sandbox.server import api_v1
from sandbox.server.admin.orders import is_admin, order_view
from sandbox.server.http import base_url
from sandbox.server.pages.common import (
    BOTH,
    PageError,
    Refused,
    callback_target,
    check_form,
    check_origin,
    form_token,
    pick,
    refused,
    render,
    with_query,
)
from sandbox.server.pages.counter import parse_policy
from sandbox.wire import signing
from sandbox.wire.envelopes import whole_number
from sandbox.wire.errors import SandboxError
from sandbox.wire.vocabulary import ACTIONS, PAY_MODE_NAMES, STATUS_NAMES, STATUS_V1

BRAND = "lakala-sandbox 控制台"
COOKIE = "lakala_sandbox_admin"
SCOPE = "dashboard"
DEMO_CALLBACK = "/dashboard/callback"
ADVANCE_CHOICES = [("+1 min", 60), ("+10 min", 600), ("+1 h", 3600), ("+1 day", 86400)]
MAX_ADVANCE = 10 * 366 * 86400
YUAN = re.compile(r"[0-9]{1,10}(\.[0-9]{1,10})?")  # checked for two decimals after
Endpoint = Callable[[Request], Awaitable[Response]]


def allowed(request: Request) -> bool:
    """The admin API's rule, plus the same token carried in the dashboard's cookie."""
    if is_admin(request):
        return True
    token = request.app.state.sandbox.settings.admin_token
    cookie = request.cookies.get(COOKIE, "")
    return bool(token) and signing.same_secret(cookie, token)


def _forbidden(sb: Sandbox) -> Response:
    if sb.settings.admin_token:
        return render("login.html", BOTH, {"csrf": None}, status=401)
    return render(
        "message.html",
        BOTH,
        {
            "title": "控制台仅限本机访问 Dashboard: loopback only",
            "message": "控制台只回应本机（loopback）的请求。以 --admin-token 启动沙箱，"
            "即可从其他地址打开它（以及管理 API）。 "
            "The dashboard answers loopback clients only. Start the sandbox with "
            "--admin-token to open it (and the admin API) to other addresses.",
            "brand": BRAND,
        },
        status=403,
    )


def guarded(endpoint: Endpoint) -> Endpoint:
    @functools.wraps(endpoint)
    async def check(request: Request) -> Response:
        sb: Sandbox = request.app.state.sandbox
        if not allowed(request):
            return _forbidden(sb)
        return await endpoint(request)

    return check


def posted(endpoint: Callable[[Request, Any], Awaitable[Response]]) -> Endpoint:
    """A dashboard POST: access rule, token and origin checked, SandboxErrors shown on the page."""

    @guarded
    @functools.wraps(endpoint)
    async def handle(request: Request) -> Response:
        sb: Sandbox = request.app.state.sandbox
        form = await request.form(max_files=0, max_fields=32)
        try:
            check_form(sb, request, form, SCOPE)
        except Refused as why:
            return refused(BOTH, why, hint="refused_hint_dashboard", brand=BRAND)
        back = _back(form)
        try:
            return await endpoint(request, form)
        except SandboxError as error:
            return RedirectResponse(with_query(back, error=error.message[:500]), 303)
        except ValueError as problem:
            return RedirectResponse(with_query(back, error=str(problem)[:500]), 303)

    return handle


def _back(form: Any) -> str:
    """Where to go after a POST: one of the dashboard's own pages, never elsewhere."""
    target = str(form.get("back") or "/")
    if target == "/" or (
        target.startswith("/dashboard/orders/") and "//" not in target and "?" not in target
    ):
        return target
    return "/"


def _done(form: Any, zh: str, en: str) -> Response:
    return RedirectResponse(with_query(_back(form), done=pick(BOTH, (zh, en))[:500]), 303)


def _attempts(sb: Sandbox, pay_order_no: str) -> list[dict[str, Any]]:
    return list(sb.notifier.attempts(pay_order_no))


def _row(sb: Sandbox, order: Order) -> dict[str, Any]:
    paid = order.last_trade("PAY")
    return {
        "order": order,
        "status_name": STATUS_NAMES[order.status],
        "pay_mode": paid["pay_mode"] if paid else None,
        "notifies": len(_attempts(sb, order.pay_order_no)),
    }


def _common(request: Request, sb: Sandbox) -> dict[str, Any]:
    q = request.query_params
    return {
        "csrf": form_token(sb, SCOPE),
        "clock": sb.timekeeper.describe(),
        "done": q.get("done"),
        "error": q.get("error"),
        "status_names": STATUS_NAMES,
    }


@guarded
async def home(request: Request) -> Response:
    sb: Sandbox = request.app.state.sandbox
    orders = sb.engine.recent(limit=100)
    ctx = _common(request, sb)
    ctx.update(
        {
            "orders": [_row(sb, o) for o in orders],
            "total": sb.engine.count(),
            "scenarios": sb.runner.list(),
            "advance_choices": ADVANCE_CHOICES,
            "keys": [PLATFORM_CERT, MERCHANT_CERT, MERCHANT_KEY],
            "pay_modes": [(m, PAY_MODE_NAMES.get(m, (m, m))[0]) for m in sb.engine.pay_modes],
            "demo_callback": base_url(sb.settings, request) + DEMO_CALLBACK,
        }
    )
    return render("dashboard.html", BOTH, ctx)


@guarded
async def order_page(request: Request) -> Response:
    sb: Sandbox = request.app.state.sandbox
    try:
        order = sb.engine.get(request.path_params["pay_order_no"])
    except SandboxError as error:
        return render(
            "message.html",
            BOTH,
            {"title": "订单不存在 Order not found", "message": error.message, "brand": BRAND},
            status=404,
        )
    ctx = _common(request, sb)
    ctx.update(
        {
            "order": order,
            "view": order_view(sb, order),
            "attempts": _attempts(sb, order.pay_order_no),
            "run": sb.runner.run_for(order.pay_order_no),
            "actions": sb.engine.allowed_actions(order),
            "all_actions": ACTIONS,
            "pay_modes": sb.engine.allowed_pay_modes(order),
            "callback": callback_target(order),
            "order_time": sb.clock.format(sb.engine.now_for(order)),
            "back": f"/dashboard/orders/{order.pay_order_no}",
        }
    )
    return render("dashboard_order.html", BOTH, ctx)


def _seconds(form: Any, name: str = "seconds") -> int:
    raw = str(form.get(name) or "").strip()
    seconds = whole_number(raw, MAX_ADVANCE)
    if seconds is None:
        raise PageError(
            f"{name} 秒数须为 0 到 {MAX_ADVANCE} 的整数（收到 {raw[:20]!r}）"
            if name != "seconds"
            else f"秒数须为 0 到 {MAX_ADVANCE} 的整数（收到 {raw[:20]!r}）",
            f"{name} must be whole seconds from 0 to {MAX_ADVANCE} (got {raw[:20]!r})",
        )
    return seconds


@posted
async def clock(request: Request, form: Any) -> Response:
    sb: Sandbox = request.app.state.sandbox
    if form.get("op") == "reset":
        sb.timekeeper.reset()
        now = sb.clock.now14()
        return _done(form, f"时钟已重置为 {now}", f"clock reset to {now}")
    seconds = _seconds(form)
    await asyncio.to_thread(sb.timekeeper.advance, seconds)  # off the loop, as the admin API
    now = sb.clock.now14()
    return _done(form, f"时钟已前进 {seconds} 秒，到 {now}", f"clock advanced {seconds}s to {now}")


@posted
async def scenario(request: Request, form: Any) -> Response:
    sb: Sandbox = request.app.state.sandbox
    chosen = sb.runner.set_default(str(form.get("name") or ""))
    return _done(form, f"默认场景已改为 {chosen.name}", f"default scenario is now {chosen.name}")


@posted
async def order_action(request: Request, form: Any) -> Response:
    sb: Sandbox = request.app.state.sandbox
    action = str(form.get("action") or "")
    if action not in ACTIONS:
        listed = ", ".join(ACTIONS)
        raise PageError(
            f"action 须为 {listed} 之一（收到 {action[:20]!r}）",
            f"action must be one of {listed} (got {action[:20]!r})",
        )
    pay_mode = str(form.get("pay_mode") or "") or None
    if pay_mode is not None and pay_mode not in sb.engine.pay_modes:
        raise PageError(
            f"未知的支付方式 pay_mode {pay_mode[:20]!r}", f"unknown pay_mode {pay_mode[:20]!r}"
        )
    policy = parse_policy(form)
    order = sb.engine.apply(
        request.path_params["pay_order_no"],
        action,
        pay_mode=pay_mode if action in ("pay", "paying", "fail") else None,
        source="admin",
        options={"notify": policy},
    )
    status = order.status
    return _done(
        form,
        f"{action}：订单状态现为 {status}（{STATUS_NAMES[status]}）",
        f"{action}: order is now {status} ({STATUS_V1[status]})",
    )


@posted
async def order_notify(request: Request, form: Any) -> Response:
    sb: Sandbox = request.app.state.sandbox
    attempt = sb.notifier.send_now(request.path_params["pay_order_no"])
    return _done(
        form,
        f"通知 #{attempt['id']} 已排队发往 {attempt['url']}",
        f"notify #{attempt['id']} queued to {attempt['url']}",
    )


@posted
async def order_advance(request: Request, form: Any) -> Response:
    sb: Sandbox = request.app.state.sandbox
    seconds = _seconds(form)
    no = request.path_params["pay_order_no"]
    await asyncio.to_thread(sb.timekeeper.advance_order, no, seconds)
    return _done(form, f"订单时钟已前进 {seconds} 秒", f"order clock advanced {seconds}s")


@posted
async def refund_outcome(request: Request, form: Any) -> Response:
    """The order's next refund through a refund API: fails, or stays PROCESSING a while."""
    sb: Sandbox = request.app.state.sandbox
    step = {
        "refund_outcome": {
            "result": str(form.get("result") or ""),
            "after": _seconds(form, "after"),
            **({"reason": str(form["reason"])} if form.get("reason") else {}),
        }
    }
    sb.runner.run_step(request.path_params["pay_order_no"], step, source="admin")
    result, after = step["refund_outcome"]["result"], step["refund_outcome"]["after"]
    zh = {"success": "成功", "fail": "失败"}[str(result)]
    return _done(
        form,
        f"下一笔退款将{zh}" + (f"（先处理中 {after} 秒）" if after else ""),
        f"the next refund will {'succeed' if result == 'success' else 'fail'}"
        + (f" after {after}s PROCESSING" if after else ""),
    )


@posted
async def replay(request: Request, form: Any) -> Response:
    sb: Sandbox = request.app.state.sandbox
    attempt = sb.notifier.replay(int(request.path_params["attempt_id"]))
    return _done(
        form,
        f"通知 #{attempt['id']} 将原样重发到 {attempt['url']}",
        f"notify #{attempt['id']} replays the body to {attempt['url']}",
    )


def _fen(raw: str) -> int:
    text = raw.strip().lstrip("¥")
    # checked before Decimal sees it: Decimal takes "1e999999" (and int() of it takes minutes),
    # "Infinity" and "sNaN"
    if not YUAN.fullmatch(text):
        raise PageError(
            f"金额须以元为单位，如 1.00（收到 {raw[:20]!r}）",
            f"amount must be yuan like 1.00 (got {raw[:20]!r})",
        )
    value = Decimal(text)
    fen = value * 100
    if fen != fen.to_integral_value() or fen <= 0:
        raise PageError(
            f"金额须为正数，最多两位小数（收到 {raw[:20]!r}）",
            f"amount must be positive yuan with at most two decimals (got {raw[:20]!r})",
        )
    return int(fen)


@posted
async def create_order(request: Request, form: Any) -> Response:
    """A v1 create exactly as the API does it (same schema, same engine), then the counter page."""
    sb: Sandbox = request.app.state.sandbox
    body: dict[str, Any] = {
        "out_order_no": "DASH" + sb.clock.now14() + secrets.token_hex(2).upper(),
        "total_amount": _fen(str(form.get("amount") or "")),
        "order_info": str(form.get("order_info") or "").strip() or "测试商品购买",
    }
    for name in ("payment_method", "callback_url", "notify_url"):
        value = str(form.get(name) or "").strip()
        if value:
            body[name] = value
    minutes = str(form.get("valid_minutes") or "60").strip()
    valid = whole_number(minutes, 7 * 24 * 60)
    if not valid:
        raise PageError(
            f"有效期（分钟）须为 1 到 {7 * 24 * 60}（收到 {minutes[:20]!r}）",
            f"valid_minutes must be 1..{7 * 24 * 60} (got {minutes[:20]!r})",
        )
    body["order_efficient_time"] = sb.clock.format(sb.clock.timestamp() + valid * 60)
    sb.schemas.check("v1/create.req", body)
    body = sb.schemas.coerce("v1/create.req", body)
    scenario, reason = sb.runner.choose(CreateView.of("v1", body, request.headers))
    created = api_v1.OPERATIONS["create"](sb, request, body, ScenarioChoice(scenario.name, reason))
    assert isinstance(created, dict)  # (the sandbox's own handlers answer at once)
    return RedirectResponse(created["counter_url"], 303)


async def login(request: Request) -> Response:
    sb: Sandbox = request.app.state.sandbox
    form = await request.form(max_files=0, max_fields=4)
    token = sb.settings.admin_token
    try:
        check_origin(sb, request)
    except Refused as why:
        return refused(BOTH, why, hint="refused_hint_dashboard", brand=BRAND)
    given = str(form.get("token") or "")
    if not token or not signing.same_secret(given, token):
        return render("login.html", BOTH, {"failed": True}, status=401)
    response = RedirectResponse("/", 303)
    response.set_cookie(COOKIE, token, httponly=True, samesite="strict", path="/")
    return response


async def demo_callback(request: Request) -> Response:
    """Where test orders from the dashboard return: shows what a merchant's page would read."""
    params = dict(request.query_params)
    return render(
        "callback_demo.html", BOTH, {"params": params, "ok": params.get("status") == "SUCCESS"}
    )


routes = [
    Route("/", home, methods=["GET"]),
    Route("/dashboard/orders/{pay_order_no}", order_page, methods=["GET"]),
    Route("/dashboard/orders/{pay_order_no}/action", order_action, methods=["POST"]),
    Route("/dashboard/orders/{pay_order_no}/notify", order_notify, methods=["POST"]),
    Route("/dashboard/orders/{pay_order_no}/advance", order_advance, methods=["POST"]),
    Route("/dashboard/orders/{pay_order_no}/refund_outcome", refund_outcome, methods=["POST"]),
    Route("/dashboard/notifies/{attempt_id:int}/replay", replay, methods=["POST"]),
    Route("/dashboard/clock", clock, methods=["POST"]),
    Route("/dashboard/scenario", scenario, methods=["POST"]),
    Route("/dashboard/create", create_order, methods=["POST"]),
    Route("/dashboard/login", login, methods=["POST"]),
    Route(DEMO_CALLBACK, demo_callback, methods=["GET"]),
]
