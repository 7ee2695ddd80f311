"""Cross-origin calls to the v1 API, for a frontend served from another origin.

The seed's frontend snippets call ``/api/v1/...`` on their own origin, through the frontend's dev
server. A frontend that calls the sandbox directly (``http://127.0.0.1:8090/api/v1/...``) from a
page on ``http://localhost:3000`` needs the browser's CORS permission: this gives it for the v1
paths only, to the origins ``--cors-origins`` allows. A browser request from any other origin is
refused (``SBX30007``), the preflight and the request itself: a "simple" cross-site POST needs no
preflight, and must not create or close orders either. The v3 API is for servers, with a private
key; the admin API and the pages stay same-origin (they check it themselves).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from starlette.datastructures import Headers
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from sandbox.runtime import Sandbox
from sandbox.server.http import json_response
from sandbox.server.pages import common as pages
from sandbox.wire.envelopes import error_body
from sandbox.wire.errors import SandboxError
from sandbox.wire.vocabulary import V1_PREFIX

# any port on this machine's loopback names, http or https
LOOPBACK = r"https?://(localhost|127\.0\.0\.1|\[::1\])(:\d{1,5})?"
# what a page may send: the seed's two, and the README's scenario header
ALLOWED_HEADERS = ["Authorization", "Content-Type", "X-Sandbox-Scenario", "X-Requested-With"]


class _Cors(CORSMiddleware):
    """Starlette's CORS, with whatever it refuses told why in the v1 envelope."""

    def __init__(self, app: ASGIApp, sb: Sandbox, **options: Any) -> None:
        super().__init__(app, **options)
        self.sb = sb

    def preflight_response(self, request_headers: Headers) -> Response:
        response = super().preflight_response(request_headers)
        if response.status_code == 200:
            return response
        origin = request_headers.get("origin", "")
        if not self.is_allowed_origin(origin):
            return self.refuse(SandboxError("ORIGIN_NOT_ALLOWED", origin=origin))
        asked = (
            f"method {request_headers.get('access-control-request-method', '')}, headers "
            f"{request_headers.get('access-control-request-headers', '') or 'none'}"
        )
        rule = f"a page may send POST with {', '.join(ALLOWED_HEADERS)}; it asked for {asked}"
        return self.refuse(SandboxError("INVALID_PARAM", field="preflight", rule=rule), 400)

    def refuse(self, error: SandboxError, status: int | None = None) -> Response:
        _, body = error_body(
            "v1", error, self.sb.clock.now14(), data_alias=self.sb.settings.v1_data_alias
        )
        return json_response(body, status or error.kind.http_status)


class V1Cors:
    """ASGI middleware: CORS for the v1 paths as ``settings.cors_origins`` allow.

    A v1 POST without ``Origin`` (a server's call, or a page calling its own origin) needs no
    CORS decision: only the ``Vary: Origin`` Starlette's CORS adds to every answer. Such a call to
    one of the ``direct`` routes goes straight to its endpoint, which answers every refusal
    itself, instead of through the exception layer, the router and the route's wrappers: the
    same answer, byte for byte, for about a tenth less CPU a create and a sixth less a query
    (bench/RESULTS.md, section 15). Everything else takes the routed way."""

    def __init__(self, app: ASGIApp, sb: Sandbox, direct: Sequence[Route] = ()) -> None:
        self.app = app
        chosen = sb.settings.cors_origins
        self.cors = _Cors(
            app,
            sb,
            allow_origins=[o for o in chosen if o not in ("loopback", "none")],
            allow_origin_regex=LOOPBACK if "loopback" in chosen else None,
            allow_methods=["POST"],
            allow_headers=ALLOWED_HEADERS,
            max_age=600,
        )
        self.direct = {
            route.path: route.endpoint
            for route in direct
            if route.methods == {"POST"} and route.path.startswith(V1_PREFIX)
        }

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(V1_PREFIX):
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        origin = headers.get("origin")
        if origin is None:  # no browser's cross-origin call: no preflight, nothing to refuse
            endpoint = self.direct.get(scope["path"]) if scope["method"] == "POST" else None
            if endpoint is not None and not scope.get("root_path"):
                response = await endpoint(Request(scope, receive, send))
                response.raw_headers[:] = vary_origin(response.raw_headers)
                await response(scope, receive, send)
                return
            # only the Vary that Starlette's CORS adds to the answer (with the headers read once)
            await self.cors.simple_response(scope, receive, send, request_headers=headers)
            return
        if not self._allowed(origin, scope):
            error = SandboxError("ORIGIN_NOT_ALLOWED", origin=origin)
            await self.cors.refuse(error)(scope, receive, send)
            return
        await self.cors(scope, receive, send)

    def _allowed(self, origin: str, scope: Scope) -> bool:
        own = pages.own_origins(self.cors.sb, Request(scope))
        return origin.rstrip("/").lower() in own or self.cors.is_allowed_origin(origin)


def vary_origin(raw: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """``raw`` with ``Origin`` added to its ``Vary`` as Starlette's CORS adds it to an answer to
    a call without ``Origin``: the values joined into the first ``vary``, others dropped, or one
    appended."""
    values = [value for name, value in raw if name == b"vary"]
    if not values:
        return [*raw, (b"vary", b"Origin")]
    joined = b", ".join([*values, b"Origin"])
    out, seen = [], False
    for name, value in raw:
        if name == b"vary":
            if seen:
                continue
            seen, value = True, joined
        out.append((name, value))
    return out
