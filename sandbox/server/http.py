"""Starlette-side helpers every surface shares: reading a bounded body, a JSON answer, links."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from sandbox.core.settings import Settings
from sandbox.wire.envelopes import dumps, whole_number
from sandbox.wire.errors import SandboxError


async def read_body(request: Request, limit: int) -> bytes:
    """The raw body, refused with 413 past ``limit`` bytes without reading it all."""
    declared = request.headers.get("content-length")
    declared_size = whole_number(declared or "", 2**62)
    if declared_size is not None and declared_size > limit:
        raise SandboxError("BODY_TOO_LARGE", limit=limit)
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise SandboxError("BODY_TOO_LARGE", limit=limit)
        chunks.append(chunk)
    return b"".join(chunks)


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(
        dumps(body),
        status_code=status,
        headers=headers,
        media_type="application/json; charset=utf-8",
    )


_BASE_URLS: dict[tuple[object, ...], str] = {}


def base_url(settings: Settings, request: Request) -> str:
    """Where links (``counter_url``) point: the configured public URL or the host called
    (worked out once per scheme, Host, root path and address: every create asks)."""
    if settings.public_url:
        return settings.public_url.rstrip("/")
    scope = request.scope
    host, server = request.headers.get("host"), tuple(scope.get("server") or ())
    key = (scope.get("scheme"), host, scope.get("root_path"), scope.get("app_root_path"), server)
    found = _BASE_URLS.get(key)
    if found is None:
        found = str(request.base_url).rstrip("/")
        if len(_BASE_URLS) >= 256:  # a caller cycling through Host headers cannot grow it
            _BASE_URLS.clear()
        _BASE_URLS[key] = found
    return found
