"""What the browser tests share: headless Chromium, a served sandbox, a merchant app, screenshots.

The merchant app is what a frontend developer has: a shop page running the seed's frontend snippets
as written, its dev server proxying ``/api/v1/*`` to the sandbox (so the snippets' relative
``fetch('/api/v1/...')`` works, as with a Vite/webpack dev-server proxy), the ``callback_url`` page,
and a backend ``notify_url`` that verifies and records the sandbox's signed notifies.
"""

from __future__ import annotations

import fcntl
import json
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from sandbox.testing.plugin import ServerThread
from sandbox.wire import signing
from sandbox.wire.tls import tls
from tests.paths import ROOT, TESTS
from tests.servers import SandboxProcess, loopback

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
# Turned off on top of what Playwright turns off. A headless window of Debian's chromium builds its
# omnibox's WebUI popup (chrome://omnibox-popup.top-chrome/, some 400 JavaScript modules in a
# renderer of its own) for every new context, though no test ever opens it: half of the CPU the
# browser tests cost (bench/RESULTS.md, section 14).
DISABLED_FEATURES = ("WebUIOmniboxPopup", "WebUIOmniboxAimPopup")
SCREENSHOTS = ROOT / "test-artifacts" / "screenshots"
SEED_JS = TESTS / "seed_frontend.js"
SEED_HOST = "https://your-domain.com"
WIDTHS = {"375": (375, 812), "1280": (1280, 800)}
MERCHANT_TOKEN = "merchant-frontend-token"
SANDBOX_ENV = {"LAKALA_SANDBOX_PAGE_REDIRECT_SECONDS": "3"}


def require_browser() -> None:
    """Locally a missing Chromium skips with the reason; under CI it fails loudly."""
    problem = None
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError as exc:
        problem = f"playwright is not installed ({exc}); pip install -e '.[test]'"
    if problem is None and not os.access(CHROMIUM, os.X_OK):
        problem = f"{CHROMIUM} is missing; apt-get install chromium (.ci/run does)"
    if problem is not None:
        cannot_run("browser tests", problem)


def under_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def cannot_run(what: str, problem: str) -> None:
    """A test that lacks what it needs: skipped with the reason locally, failed under CI."""
    if under_ci():
        pytest.fail(f"{what} cannot run under CI: {problem}", pytrace=False)
    pytest.skip(problem)


def pytest_sessionfinish(session: pytest.Session) -> None:
    """Under CI every test runs: a skip from anywhere (a marker, a library) fails the run."""
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = reporter.stats.get("skipped", []) if reporter is not None else []
    if under_ci() and skipped:
        reporter.ensure_newline()
        reporter.write_line(
            f"under CI no test may skip; {len(skipped)} did: "
            + ", ".join(r.nodeid for r in skipped[:10]),
            red=True,
        )
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


@dataclass
class Notify:
    path: str
    headers: dict[str, str]
    body: bytes
    verified: bool

    def json(self) -> Any:
        return json.loads(self.body)


SHOP_PAGE = """<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>示例商城 · 结算</title>
<style>body{font-family:sans-serif;max-width:480px;margin:40px auto;padding:0 16px}
button{font-size:18px;padding:10px 24px}</style></head>
<body>
<h1>示例商城</h1>
<p>测试商品购买 · ¥1.00</p>
<button type="button" id="pay" onclick="createPaymentOrder()">去支付</button>
<p id="outcome" data-state="none"></p>
<script>
const token = '__TOKEN__';
function showSuccessPage(orderNo) {
  const el = document.getElementById('outcome');
  el.dataset.state = 'success'; el.dataset.order = orderNo; el.textContent = '支付成功：' + orderNo;
}
function showFailurePage(orderNo) {
  const el = document.getElementById('outcome');
  el.dataset.state = 'failure'; el.dataset.order = orderNo;
  el.textContent = '支付未成功：' + orderNo;
}
</script>
<script>
__SEED__
</script>
__ONLOAD__
</body></html>
"""

CALLBACK_ONLOAD = "<script>handlePaymentCallback();</script>"


class MerchantApp:
    """The merchant's site on its own loopback port, in a thread: ``with MerchantApp(url):``."""

    def __init__(self, sandbox_url: str) -> None:
        self.sandbox_url = sandbox_url
        self.notifies: list[Notify] = []
        self.platform_cert: Any = None
        self._cond = threading.Condition()
        self.app = Starlette(
            routes=[
                Route("/", self._shop, methods=["GET"]),
                Route("/payment/success", self._callback, methods=["GET"]),
                Route("/api/payment/notify", self._notify, methods=["POST"]),
                Route("/api/v1/{rest:path}", self._proxy, methods=["POST"]),
                Route("/attack", self._attack, methods=["GET"]),
            ]
        )
        self._server = ServerThread(self.app)
        self.url = self._server.url

    # -- pages ------------------------------------------------------------------------------
    def _page(self, onload: str) -> HTMLResponse:
        seed = SEED_JS.read_text(encoding="utf-8").replace(SEED_HOST, self.url)
        html = (
            SHOP_PAGE.replace("__TOKEN__", MERCHANT_TOKEN)
            .replace("__SEED__", seed)
            .replace("__ONLOAD__", onload)
        )
        return HTMLResponse(html)

    async def _shop(self, request: Request) -> Response:
        return self._page("")

    async def _callback(self, request: Request) -> Response:
        return self._page(CALLBACK_ONLOAD)

    async def _attack(self, request: Request) -> Response:
        """Another site auto-posting the counter's form: what the forgery guard must refuse."""
        fields = "".join(
            f'<input type="hidden" name="{k}" value="{v}">'
            for k, v in request.query_params.items()
            if k != "target"
        )
        return HTMLResponse(
            f'<!doctype html><html lang="en"><body><form id="f" method="post" '
            f'action="{request.query_params["target"]}">{fields}</form>'
            '<script>document.getElementById("f").submit()</script></body></html>'
        )

    # -- backend ----------------------------------------------------------------------------
    async def _proxy(self, request: Request) -> Response:
        """The dev server's proxy: /api/v1/* to the sandbox, body and auth header unchanged."""
        headers = {
            k: v
            for k, v in request.headers.items()
            if k.lower() in ("content-type", "authorization")
        }
        async with httpx.AsyncClient(timeout=10, verify=tls()) as client:
            upstream = await client.post(
                self.sandbox_url + request.url.path, content=await request.body(), headers=headers
            )
        return Response(
            upstream.content,
            status_code=upstream.status_code,
            media_type=upstream.headers.get("content-type"),
        )

    async def _notify(self, request: Request) -> Response:
        body = await request.body()
        verified = self._verify(request.headers.get("authorization"), body)
        with self._cond:
            self.notifies.append(Notify(request.url.path, dict(request.headers), body, verified))
            self._cond.notify_all()
        return JSONResponse(
            {
                "code": "000000",
                "msg": "Notification received successfully",
                "resp_time": time.strftime("%Y%m%d%H%M%S"),
            }
        )

    def _verify(self, header: str | None, body: bytes) -> bool:
        if self.platform_cert is None:
            self.platform_cert = signing.load_certificate(
                loopback.get(self.sandbox_url + "/sandbox/keys/platform.cer", timeout=5).content
            )
        try:
            fields = signing.parse_authorization(header)
        except Exception:  # noqa: BLE001 - a broken header is simply not verified
            return False
        message = signing.notify_string(
            fields.get("timestamp", ""), fields.get("nonce_str", ""), body
        )
        return signing.verify(
            signing.certificate_public_key(self.platform_cert), message, fields.get("signature", "")
        )

    def wait_notifies(self, out_order_no: str, count: int = 1, timeout: float = 15) -> list[Notify]:
        """The notifies for one order, once at least ``count`` have arrived (bounded wait)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                mine = [n for n in self.notifies if n.json().get("out_order_no") == out_order_no]
                if len(mine) >= count:
                    return mine
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(
                        f"{len(mine)} notifies for {out_order_no} after {timeout}s, wanted {count}"
                    )
                self._cond.wait(left)

    # -- lifecycle --------------------------------------------------------------------------
    def __enter__(self) -> MerchantApp:
        self._server.start(timeout=10)
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.stop()


class Screenshots:
    """Each page at 375 px and 1280 px wide, into ``test-artifacts/screenshots/``."""

    def __init__(self, folder: Path = SCREENSHOTS) -> None:
        self.folder = folder
        self.folder.mkdir(parents=True, exist_ok=True)
        self.taken: list[Path] = []

    def take(self, page: Any, name: str) -> None:
        for label, (width, height) in WIDTHS.items():
            page.set_viewport_size({"width": width, "height": height})
            path = self.folder / f"{name}-{label}.png"
            page.screenshot(path=str(path), full_page=True)
            self.taken.append(path)
        page.set_viewport_size({"width": 375, "height": 812})


@pytest.fixture(scope="session")
def screenshots(request: pytest.FixtureRequest) -> Iterator[Screenshots]:
    shots = Screenshots()
    yield shots
    capture = request.config.pluginmanager.getplugin("capturemanager")
    with capture.global_and_fixture_disabled():
        print(f"\n{len(shots.taken)} screenshots (375 px and 1280 px) in {shots.folder}")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A test that drives Chromium is marked ``browser``, so ``-m "not browser"`` leaves it out."""
    unmarked = [
        item.nodeid
        for item in items
        if "chromium" in getattr(item, "fixturenames", ())
        and item.get_closest_marker("browser") is None
    ]
    if unmarked:
        raise pytest.UsageError(
            "tests that use the chromium fixture must be marked browser: " + ", ".join(unmarked)
        )


def disabled_features(page: Any) -> list[list[str]]:
    """Each ``--disable-features`` on the command line of ``page``'s browser, in order, as
    ``chrome://version`` shows it (every one given, though Chromium obeys only the last)."""
    page.goto("chrome://version")
    return [
        arg.partition("=")[2].split(",")
        for arg in page.locator("#command_line").inner_text(timeout=15_000).split()
        if arg.startswith("--disable-features=")
    ]


def expect(actual: Any, message: str | None = None) -> Any:
    """Playwright's ``expect``, imported on first use: every pytest worker collects the browser
    modules, and importing Playwright costs each a quarter of a second."""
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect(actual, message)


_launch_args: list[str] = []  # launch_args' answer, found once per process


def launch_args(playwright: Any, shared: Path | None = None) -> list[str]:
    """``CHROMIUM_ARGS`` and one ``--disable-features``: Playwright's list with ours added.

    Chromium keeps only the last ``--disable-features`` it is given, so ours alone would turn
    Playwright's back on. Its list is read from ``chrome://version``, which shows every one given,
    of a browser launched with ours alone (so that it builds no popup either): once per process,
    or, given a folder the session's processes share (pytest-xdist's workers), once per session,
    the first worker to ask writing the answer there while the others wait for it (a launch costs
    a second of CPU)."""
    if not _launch_args:
        found = (
            _probe_launch_args(playwright)
            if shared is None
            else shared_launch_args(playwright, shared)
        )
        _launch_args[:] = found
    return _launch_args


def shared_launch_args(playwright: Any, shared: Path) -> list[str]:
    """``launch_args``' answer kept in ``shared``: the first process to ask finds it and writes
    it there, the others wait for it and read it."""
    answer = shared / "chromium-launch-args.json"
    with (shared / "chromium-launch-args.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # (released when the file closes)
        if not answer.exists():
            found = shared / f"chromium-launch-args.{os.getpid()}"
            found.write_text(json.dumps(_probe_launch_args(playwright)), encoding="utf-8")
            found.replace(answer)
        args: list[str] = json.loads(answer.read_text(encoding="utf-8"))
    return args


def _probe_launch_args(playwright: Any) -> list[str]:
    ours = "--disable-features=" + ",".join(DISABLED_FEATURES)
    browser = playwright.chromium.launch(
        executable_path=CHROMIUM, args=[*CHROMIUM_ARGS, ours], headless=True
    )
    try:
        features = [f for given in disabled_features(browser.new_page()) for f in given if f]
    finally:
        browser.close()
    return [*CHROMIUM_ARGS, "--disable-features=" + ",".join(dict.fromkeys(features))]


def session_folder(tmp_path_factory: pytest.TempPathFactory) -> Path | None:
    """The folder every process of this pytest session shares: the one pytest-xdist's workers
    make their own temporary folders in; None without workers (nothing to share with)."""
    if not os.environ.get("PYTEST_XDIST_WORKER"):
        return None
    return tmp_path_factory.getbasetemp().parent


@pytest.fixture(scope="module")
def chromium(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    # per module, not per session: Playwright's sync API keeps an event loop running in the main
    # thread while it lives, which would break later tests that run their own loop
    require_browser()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        args = launch_args(p, session_folder(tmp_path_factory))
        browser = p.chromium.launch(executable_path=CHROMIUM, args=args, headless=True)
        yield browser
        browser.close()


@pytest.fixture(scope="session")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxProcess]:
    require_browser()
    with SandboxProcess(tmp_path_factory.mktemp("browser") / "data", env=SANDBOX_ENV) as server:
        yield server


@pytest.fixture(scope="session")
def merchant(served: SandboxProcess) -> Iterator[MerchantApp]:
    with MerchantApp(served.url) as app:
        yield app


VIEWPORT = {"width": 375, "height": 812}


class Tab:
    """One page of its own context, handed to a module's tests in turn.

    Every new page is a new browser window to this Chromium, a tenth of a second of the browser's
    CPU and a new renderer, more than most of these tests spend on their pages; so a module's
    tests share one tab, each getting it as a new one would be: blank, at ``VIEWPORT``, without
    cookies (the only state the pages keep; they use no web storage), its JavaScript errors
    counted from nothing. A tab a test left in a state that does not reset (it failed, or the
    page crashed) is closed, and the next test gets a new one."""

    def __init__(self, browser: Any) -> None:
        self.browser = browser
        self.page: Any = None
        self.errors: list[str] = []

    def take(self) -> Any:
        if self.page is None:
            context = self.browser.new_context(viewport=VIEWPORT, locale="zh-CN")
            context.set_default_timeout(15_000)
            self.page = context.new_page()
            self.page.on("pageerror", lambda exc: self.errors.append(str(exc)))
        self.errors.clear()
        return self.page

    def give_back(self, reuse: bool) -> list[str]:
        """Leave the page (so that whatever ran on it stops); the JavaScript errors seen."""
        page, self.page = self.page, None
        try:
            if reuse:
                page.goto("about:blank")
                page.context.clear_cookies()
                page.set_viewport_size(VIEWPORT)
                self.page = page
                return list(self.errors)
        except Exception:  # noqa: BLE001 - a tab that cannot be reset is replaced below
            pass
        page.context.close()
        return list(self.errors)

    def close(self) -> None:
        if self.page is not None:
            self.page.context.close()
            self.page = None


@pytest.fixture(scope="module")
def tab(chromium: Any) -> Iterator[Tab]:
    shared = Tab(chromium)
    yield shared
    shared.close()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """Each phase's report on its test, for ``page`` to see whether the test passed."""
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


@pytest.fixture
def page(tab: Tab, request: pytest.FixtureRequest) -> Iterator[Any]:
    yield tab.take()
    call = getattr(request.node, "report_call", None)
    errors = tab.give_back(reuse=call is not None and call.passed)
    assert errors == [], f"JavaScript errors on the page: {errors}"
