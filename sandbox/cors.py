"""Cross-origin calls to the v1 API, for a frontend served from another origin.

The seed's frontend snippets call ``/api/v1/...`` on their own origin, through the frontend's dev
server. A frontend that calls the sandbox directly (``http://127.0.0.1:8090/api/v1/...``) from a
page on ``http://localhost:3000`` needs the browser's CORS permission: this gives it for the v1
paths only. The v3 API is for servers, with a private key; the admin API and the pages stay
same-origin.
"""

from __future__ import annotations

from typing import Any

from starlette.datastructures import Headers
from starlette.middleware.cors import CORSMiddleware
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from sandbox.envelopes import error_body, json_response
from sandbox.errors import SandboxError
from sandbox.runtime import Sandbox

V1_PREFIX = "/api/v1/"
# any port on this machine's loopback names, http or https
LOOPBACK = r"https?://(localhost|127\.0\.0\.1|\[::1\])(:\d{1,5})?"


class _Cors(CORSMiddleware):
    """Starlette's CORS, with a refused origin told why in the v1 envelope."""

    def __init__(self, app: ASGIApp, sb: Sandbox, **options: Any) -> None:
        super().__init__(app, **options)
        self.sb = sb

    def preflight_response(self, request_headers: Headers) -> Response:
        response = super().preflight_response(request_headers)
        origin = request_headers.get("origin", "")
        if response.status_code == 200 or self.is_allowed_origin(origin):
            return response  # allowed, or refused for its method or headers: Starlette says why
        error = SandboxError("ORIGIN_NOT_ALLOWED", origin=origin)
        _, body = error_body(
            "v1", error, self.sb.clock.now14(), data_alias=self.sb.settings.v1_data_alias
        )
        return json_response(body, error.kind.http_status)


class V1Cors:
    """ASGI middleware: CORS for the v1 paths as ``settings.cors_origins`` allow."""

    def __init__(self, app: ASGIApp, sb: Sandbox) -> None:
        self.app = app
        settings = sb.settings
        origins = [o for o in settings.cors_origins if o not in ("loopback", "none")]
        loopback = "loopback" in settings.cors_origins
        self.cors: ASGIApp | None = None
        if origins or loopback:
            self.cors = _Cors(
                app,
                sb,
                allow_origins=origins,
                allow_origin_regex=LOOPBACK if loopback else None,
                allow_methods=["POST"],
                allow_headers=["Authorization", "Content-Type"],
                max_age=600,
            )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            self.cors is not None
            and scope["type"] == "http"
            and scope["path"].startswith(V1_PREFIX)
        ):
            await self.cors(scope, receive, send)
        else:
            await self.app(scope, receive, send)
