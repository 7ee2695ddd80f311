"""``create_app(settings)``: every surface of one sandbox on one Starlette app."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sandbox.core.settings import Settings
from sandbox.runtime import Sandbox
from sandbox.server import api_v1, api_v3, openapi
from sandbox.server.admin import clock as admin_time
from sandbox.server.admin import notifies as admin_notify
from sandbox.server.admin import orders as admin
from sandbox.server.cors import V1Cors
from sandbox.server.faults import DroppedResponse, quiet_drops
from sandbox.server.hosts import HostCheck
from sandbox.server.http import json_response
from sandbox.server.pages import common as pages
from sandbox.server.pages import counter as counter_page
from sandbox.server.pages import dashboard
from sandbox.wire.envelopes import dialect_of, error_body
from sandbox.wire.errors import ConnectionDropped, SandboxError

if TYPE_CHECKING:
    from sandbox.server.proxy import AsyncLakalaClient

log = logging.getLogger("lakala_sandbox")


def create_app(
    settings: Settings | None = None, *, lakala: AsyncLakalaClient | None = None
) -> Starlette:
    """Build the app; schemas, keys and storage are loaded here, before the first request.

    In real mode (``settings.mode == "real"``) the v1 endpoints go to Lakala through ``lakala``
    (default: ``AsyncLakalaClient.from_env()``)."""
    settings = settings or Settings.from_env()
    pages.page_files()  # the pages' templates and static files, in memory from here on
    sandbox = Sandbox(settings)
    proxy = None
    if settings.mode == "real":
        # imported here: the proxy brings the client and httpx, which a sandbox-mode server
        # never uses, and importing them is a tenth of a second of every start
        from sandbox.server.proxy import Proxy

        try:
            proxy = Proxy.for_sandbox(sandbox, lakala)
        except BaseException:  # (no Lakala settings, say): the sandbox made for it is let go
            sandbox.close()
            raise
    v1_routes = proxy.routes if proxy else api_v1.routes
    app = Starlette(
        routes=[  # (matched in this order, one by one: the busiest first)
            *v1_routes,
            *api_v3.routes,
            *admin_time.routes,
            *admin_notify.routes,
            *admin.routes,
            *openapi.routes,
            *counter_page.routes,
            *dashboard.routes,
            Route("/favicon.ico", _icon, methods=["GET"]),
            pages.static_mount,
        ],
        exception_handlers={
            HTTPException: _http_error,
            SandboxError: _sandbox_error,
            Exception: _internal_error,
        },
        middleware=[
            Middleware(HostCheck, settings=settings, refuse=_refuse_host),
            Middleware(V1Cors, sb=sandbox, direct=v1_routes),
        ],
        lifespan=_lifespan,
    )
    app.state.sandbox = sandbox
    app.state.proxy = proxy
    return app


# the tab icon browsers ask every page's host for; without it each page logs a 404
ICON = (
    b'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 32 32">'
    b'<rect width="32" height="32" rx="7" fill="#0a5bd6"/>'
    b'<path d="M10 7v18h13" fill="none" stroke="#fff" stroke-width="4"/></svg>'
)


async def _icon(request: Request) -> Response:
    return Response(ICON, media_type="image/svg+xml", headers={"Cache-Control": "max-age=86400"})


@contextlib.asynccontextmanager
async def _lifespan(app: Starlette) -> AsyncIterator[None]:
    # under a server, scenario steps and notifies run from start-up to shutdown
    sandbox: Sandbox = app.state.sandbox
    quiet_drops()
    sandbox.start()
    yield
    await asyncio.to_thread(sandbox.close)


async def _render(request: Request, error: SandboxError) -> Response:
    sb: Sandbox = request.app.state.sandbox
    dialect = dialect_of(request.scope["path"])  # (not request.url: the Host may not parse)
    status, body = error_body(
        dialect, error, sb.clock.now14(), data_alias=sb.settings.v1_data_alias
    )
    if dialect == "v3":  # every answer on the v3 wire is signed, an unknown path's too
        return await api_v3.signed_response(sb, sb.settings.appid, body, status)
    return json_response(body, status)


async def _refuse_host(request: Request, error: SandboxError) -> Response:
    if pages.is_page(request.scope["path"]):
        host = error.params["host"]
        problem = pages.PageError(
            f"本沙箱不响应主机名 {host}（Host 请求头）。请用 localhost 或 127.0.0.1 打开，"
            "或以 --allowed-hosts 允许该主机名。",
            f"this sandbox does not answer to the host name {host} (Host header). Open it as "
            "localhost or 127.0.0.1, or allow the name with --allowed-hosts.",
        )
        return pages.refused(pages.BOTH, problem, error.kind.http_status, hint="refused_hint_host")
    return await _render(request, error)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code not in (404, 405) and pages.is_page(request.url.path):
        # a form the page could not read (too large, too many fields): say so on a page
        problem = pages.PageError(
            f"无法读取表单：{exc.detail}", f"the form could not be read: {exc.detail}"
        )
        return pages.refused(pages.BOTH, problem, exc.status_code)
    if exc.status_code == 405:
        error = SandboxError("METHOD_NOT_ALLOWED", method=request.method, path=request.url.path)
    elif exc.status_code == 404:
        error = SandboxError("NOT_FOUND", path=request.url.path)
    else:
        error = SandboxError("INVALID_PARAM", field="request", rule=str(exc.detail))
    response = await _render(request, error)
    if exc.status_code == 405 and exc.headers:
        response.headers.update(exc.headers)
    return response


async def _sandbox_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, SandboxError)
    return await _render(request, exc)


async def _internal_error(request: Request, exc: Exception) -> Response:
    if isinstance(exc, ConnectionDropped):
        return DroppedResponse()  # a scenario's deliberate drop, not a bug
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return await _render(request, SandboxError("INTERNAL", reason=type(exc).__name__))
