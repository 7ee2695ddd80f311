"""What the HTML pages share: templates, the two languages, money, and the forged-POST guard.

Every page is rendered by Jinja2 with autoescape on, so an order field is always text. A POST from
a page carries a form token (an HMAC of its scope under a secret kept in the store's ``meta``
table, so in the data directory, or in memory for ``:memory:``) and must come from the sandbox's
own origin.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from jinja2 import DictLoader, Environment, TemplateError
from markupsafe import Markup, escape
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from sandbox.core.engine import Order
from sandbox.runtime import Sandbox
from sandbox.wire import signing
from sandbox.wire.vocabulary import (
    CARD_MODES,
    COUNTER_PAGE,
    PAY_MODE_NAMES,
    STATUS_V1,
    OrderStatus,
)

HERE = Path(__file__).resolve().parent
STATIC_PATH = "/sandbox/static"
SECRET_META_KEY = "page_form_secret"
LANGS = ("zh", "en")
# The dashboard's language: each text in Chinese, then in English, as the error table writes them.
BOTH = "zh+en"

# The outcome buttons, in the order the page shows them: action -> (zh, en).
OUTCOMES: dict[str, tuple[str, str]] = {
    "pay": ("支付成功", "Payment succeeds"),
    "fail": ("支付失败", "Payment fails"),
    "cancel": ("取消支付", "Cancel payment"),
    "paying": ("保持支付中", "Keep it paying"),
}

TEXT: dict[str, tuple[str, str]] = {
    "cashier": ("拉卡拉收银台", "Lakala Checkout"),
    "sandbox_badge": ("沙箱 · 不会真实扣款", "Sandbox · no real money moves"),
    "merchant": ("商户", "Merchant"),
    "order_info": ("商品", "Item"),
    "amount": ("应付金额", "Amount due"),
    "out_order_no": ("商户订单号", "Merchant order no."),
    "pay_order_no": ("收银台订单号", "Checkout order no."),
    "expires_in": ("剩余支付时间", "Time left to pay"),
    "expires_at": ("订单有效期至", "Order valid until"),
    "choose_method": ("选择支付方式", "Choose a payment method"),
    "other_methods": ("更换支付方式", "Other payment methods"),
    "scan_title": ("请使用{name}扫码支付", "Scan with {name} to pay"),
    "scan_hint": (
        "用手机扫描二维码，在手机上打开本订单的支付页。",
        "Scan the code to open this order's payment page on a phone.",
    ),
    "phone_link": ("手机支付链接", "Phone payment link"),
    "phone_title": ("在手机上确认支付", "Confirm the payment on the phone"),
    "simulate": ("模拟支付结果", "Simulate the outcome"),
    "advanced": ("高级：通知策略", "Advanced: notify policy"),
    "notify_policy": ("支付结果通知（notify_url）", "Payment notify (notify_url)"),
    "notify_now": ("立即发送", "Send now"),
    "notify_after": ("延迟发送（秒）", "Send after N seconds"),
    "notify_never": ("不发送", "Never send"),
    "notify_twice": ("发送两次", "Send twice"),
    "seconds": ("秒数", "Seconds"),
    "card_title": ("银行卡支付", "Pay by card"),
    "card_no": ("卡号", "Card number"),
    "card_expiry": ("有效期（MM/YY）", "Expiry (MM/YY)"),
    "card_cvv": ("安全码", "CVV"),
    "card_holder": ("持卡人姓名", "Cardholder name"),
    "card_submit": ("确认付款", "Pay now"),
    "test_cards": ("测试卡号", "Test card numbers"),
    "test_cards_hint": (
        "卡号决定支付结果；有效期、安全码任填。",
        "The card number decides the outcome; any expiry and CVV work.",
    ),
    "card_outcome": ("结果", "Outcome"),
    "step_ran": ("本次点击执行的场景步骤", "The scenario step this click ran"),
    "back_to_merchant": ("返回商户", "Back to merchant"),
    "redirect_in": ("{n} 秒后自动返回商户", "Returning to the merchant in {n} s"),
    "no_callback": (
        "商户未提供 http(s) 回调地址（callback_url），不会跳转。",
        "The merchant gave no http(s) callback_url, so there is nowhere to return to.",
    ),
    "pay_again": ("重新支付", "Pay again"),
    "revoke": ("撤销支付", "Revoke the payment"),
    "continue_paying": ("继续支付", "Continue paying"),
    "state_title": ("订单状态", "Order status"),
    "paid_at": ("支付时间", "Paid at"),
    "pay_mode": ("支付方式", "Payment method"),
    "trade_no": ("交易流水号", "Trade no."),
    "not_found": ("订单不存在", "Order not found"),
    "not_found_hint": (
        "请检查收银台链接是否完整（merchantNo、merchantOrderNo、payOrderNo）。",
        "Check that the checkout link is complete (merchantNo, merchantOrderNo, payOrderNo).",
    ),
    "refused_title": ("请求被拒绝", "Request refused"),
    "refused_hint": (
        "为保护您的订单，支付操作只接受来自本沙箱收银台页面的提交。",
        "For your safety, payment actions are accepted only from this sandbox's own checkout page.",
    ),
    "refused_hint_dashboard": (
        "控制台的操作只接受来自本控制台页面的提交。",
        "Dashboard actions are accepted only from the dashboard's own pages.",
    ),
    "refused_hint_host": (
        "为防范 DNS 重绑定攻击，本沙箱只响应它自己的主机名。",
        "Against DNS rebinding, this sandbox answers only to its own host names.",
    ),
    "bad_request": ("请求有误", "Bad request"),
    "mode_not_allowed": ("该订单不支持{name}。", "This order does not accept {name}."),
    "action_refused": (
        "「{action}」未执行：订单当前状态为「{status}」。",
        "“{action}” was not done: the order is now “{status}”.",
    ),
    "paying_notice": (
        "支付处理中，可继续选择结果。",
        "The payment is in progress; you can still choose its outcome.",
    ),
    "failed_notice": ("上次支付失败，可重新支付。", "The last payment failed; you can pay again."),
    "failed_reason_notice": (
        "上次支付失败（{reason}），可重新支付。",
        "The last payment failed ({reason}); you can pay again.",
    ),
    "fail_reason": ("失败原因", "Reason"),
    "refunded": ("已退款金额", "Refunded"),
    "paying_back_hint": (
        "不再等待？可返回商户，订单仍为支付中。",
        "Not waiting? Return to the merchant; the order stays in progress.",
    ),
    "failed_back_hint": (
        "不再重试？可返回商户。",
        "Not trying again? Return to the merchant.",
    ),
    "language": ("English", "中文"),
    "demo_title": ("商户回调页（沙箱演示）", "Merchant callback page (sandbox demo)"),
}


def lang_of(request: Request, form: Any = None) -> str:
    lang = (form or {}).get("lang") or request.query_params.get("lang")
    return "en" if lang == "en" else "zh"


def text(lang: str, key: str, **params: Any) -> str:
    template = pick(lang, TEXT[key])
    if any(isinstance(v, Markup) for v in params.values()):
        return Markup(escape(template)).format(**params)  # other params are escaped
    return template.format(**params)


def pick(lang: str, pair: tuple[str, str]) -> str:
    """The text of a (zh, en) pair for ``lang``; both, Chinese first, for ``BOTH``."""
    if lang == BOTH:
        return f"{pair[0]} {pair[1]}"
    return pair[1] if lang == "en" else pair[0]


class PageError(ValueError):
    """A problem told in both languages; ``str()`` gives both, ``say(lang)`` one of them."""

    def __init__(self, zh: str, en: str) -> None:
        super().__init__(en)
        self.pair = (zh, en)

    def say(self, lang: str) -> str:
        return pick(lang, self.pair)

    def __str__(self) -> str:
        return self.say(BOTH)


def yuan(fen: int) -> str:
    """``100`` -> ``¥1.00`` (amounts travel in fen)."""
    sign = "-" if fen < 0 else ""
    fen = abs(fen)
    return f"{sign}¥{fen // 100:,}.{fen % 100:02d}"


def mode_kind(pay_mode: str) -> str:
    return "card" if pay_mode in CARD_MODES else "scan"


def callback_target(order: Order) -> str | None:
    """The ``callback_url`` with ``out_order_no`` and ``status`` added; None unless http(s)."""
    url = order.data.get("callback_url")
    if not isinstance(url, str) or not url:
        return None
    try:
        parts = urlsplit(url.strip())
    except ValueError:  # stored before create checked that it parses
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        return None
    query = [
        (k, v)
        for k, v in parse_qsl(parts.query, keep_blank_values=True)
        if k not in ("out_order_no", "status")
    ]
    query += [("out_order_no", order.out_order_no), ("status", STATUS_V1[order.status])]
    return urlunsplit(
        (parts.scheme, parts.netloc, parts.path or "/", urlencode(query), parts.fragment)
    )


class Refused(PageError):
    """A POST that did not come from the sandbox's own page."""


def form_token(sb: Sandbox, scope: str) -> str:
    return hmac.new(_secret(sb), scope.encode(), hashlib.sha256).hexdigest()


def check_form(sb: Sandbox, request: Request, form: Any, scope: str) -> None:
    """Refuse a POST that is cross-site or lacks this scope's token; Refused says why."""
    check_origin(sb, request)
    given = str(form.get("csrf") or "")
    if not signing.same_secret(given, form_token(sb, scope)):
        raise Refused(
            "表单令牌缺失或不正确，请刷新页面后重试。",
            "the form token is missing or wrong; reload the page and try again",
        )


def check_origin(sb: Sandbox, request: Request) -> None:
    """Refuse a request the browser marks as coming from another site or origin."""
    if request.headers.get("sec-fetch-site") == "cross-site":
        raise Refused(
            "浏览器表明此请求来自其他网站（Sec-Fetch-Site: cross-site）。",
            "the browser says this request came from another site (Sec-Fetch-Site: cross-site)",
        )
    origin = request.headers.get("origin")
    if origin is None and request.headers.get("referer"):
        try:
            ref = urlsplit(request.headers["referer"])
        except ValueError:  # e.g. a bracketed host that is no IPv6 address
            raise Refused(
                "提交表单的页面地址无法解析。",
                "the form was posted from a page whose address does not parse",
            ) from None
        origin = f"{ref.scheme}://{ref.netloc}"
    if origin is not None and origin.rstrip("/").lower() not in own_origins(sb, request):
        raise Refused(
            f"表单来自 {origin}，而非本沙箱。",
            f"the form was posted from {origin}, not from this sandbox",
        )


def own_origins(sb: Sandbox, request: Request) -> set[str]:
    origins = {str(request.base_url).rstrip("/").lower()}
    if sb.settings.public_url:
        public = urlsplit(sb.settings.public_url)
        origins.add(f"{public.scheme}://{public.netloc}".lower())
    return origins


def _secret(sb: Sandbox) -> bytes:
    with sb.store.lock:
        value = sb.store.get_meta(SECRET_META_KEY)
        if value is None:
            value = secrets.token_hex(32)
            sb.store.set_meta(SECRET_META_KEY, value)
    return bytes.fromhex(value)


# Every file the pages use. They are read into memory when the first app is built, so a package
# reinstalled under a running server keeps its pages, and a missing file stops `serve` at start.
TEMPLATES = (
    "_flash.html",
    "base.html",
    "callback_demo.html",
    "counter.html",
    "dashboard.html",
    "dashboard_order.html",
    "login.html",
    "message.html",
)
STATIC_FILES = {
    "counter.js": "text/javascript; charset=utf-8",
    "dashboard.js": "text/javascript; charset=utf-8",
    "style.css": "text/css; charset=utf-8",
}


class PageFilesMissing(ValueError):
    """A template or static file of the pages cannot be read: the installed package is damaged."""


@dataclass(frozen=True)
class PageFiles:
    env: Environment
    static: dict[str, tuple[bytes, str, str]]  # name: (content, media type, ETag)


def read_page_files(folder: Path = HERE) -> PageFiles:
    """Read every template and static file under ``folder`` and parse the templates; a missing or
    broken one raises ``PageFilesMissing`` naming it."""
    sources: dict[str, str] = {}
    static: dict[str, tuple[bytes, str, str]] = {}
    try:
        for name in TEMPLATES:
            path = folder / "templates" / name
            sources[name] = path.read_text(encoding="utf-8")
        for name, media_type in STATIC_FILES.items():
            path = folder / "static" / name
            content = path.read_bytes()
            static[name] = (
                content,
                media_type,
                '"' + hashlib.sha256(content).hexdigest()[:32] + '"',
            )
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise PageFilesMissing(
            f"cannot read the page file {path} ({reason}): the installed package is incomplete; "
            "reinstall it (pip install --force-reinstall) and start again"
        ) from None
    env = Environment(
        loader=DictLoader(sources), autoescape=True, trim_blocks=True, lstrip_blocks=True
    )
    env.globals.update(
        Markup=Markup,
        yuan=yuan,
        STATIC=STATIC_PATH,
        PAY_MODE_NAMES=PAY_MODE_NAMES,
        Status=OrderStatus,
        pick=pick,
    )
    for name in TEMPLATES:
        # parsed now, so a broken template stops the start too; compiled when a page first
        # needs it (a third of reading them all, compiling two thirds: most starts show no page)
        try:
            env.parse(sources[name], name)
        except TemplateError as exc:
            raise PageFilesMissing(f"the page template {name} cannot be compiled: {exc}") from None
    return PageFiles(env, static)


@functools.cache
def page_files() -> PageFiles:
    """The package's page files, read once per process (``create_app`` calls this first)."""
    return read_page_files()


def render(
    template: str,
    lang: str,
    context: dict[str, Any],
    *,
    status: int = 200,
    headers: dict[str, str] | None = None,
) -> Response:
    def t(key: str, **params: Any) -> str:
        return text(lang, key, **params)

    html = page_files().env.get_template(template).render(lang=lang, t=t, **context)
    merged = {
        "Cache-Control": "no-store",
        "X-Frame-Options": "DENY",
        "Referrer-Policy": "same-origin",
        "X-Content-Type-Options": "nosniff",
    }
    merged.update(headers or {})
    return HTMLResponse(html, status_code=status, headers=merged)


def refused(
    lang: str,
    reason: str | PageError,
    status: int = 403,
    *,
    hint: str = "refused_hint",
    brand: str | None = None,
) -> Response:
    """The page for a refused POST; a ``PageError`` reason is told in the page's language."""
    message = reason.say(lang) if isinstance(reason, PageError) else reason
    return render(
        "message.html",
        lang,
        {
            "title": text(lang, "refused_title"),
            "message": message,
            "hint": text(lang, hint),
            "refused": True,
            "brand": brand,
        },
        status=status,
    )


def is_page(path: str) -> bool:
    """A path a browser shows (the counter page, the dashboard), answered in HTML."""
    return path == "/" or path.startswith((COUNTER_PAGE, "/dashboard/"))


def with_query(path: str, **params: Any) -> str:
    return path + "?" + urlencode({k: v for k, v in params.items() if v not in (None, "")})


async def _static(request: Request) -> Response:
    found = page_files().static.get(request.path_params["name"])
    if found is None:
        raise HTTPException(404)
    content, media_type, etag = found
    headers = {"ETag": etag, "Cache-Control": "no-cache"}
    if etag in request.headers.get("if-none-match", ""):
        return Response(status_code=304, headers=headers)
    return Response(content, media_type=media_type, headers=headers)


static_mount = Route(STATIC_PATH + "/{name}", _static, methods=["GET", "HEAD"], name="static")
