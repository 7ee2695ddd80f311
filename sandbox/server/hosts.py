"""Answer only to this sandbox's own host names: a defence against DNS rebinding.

A web page on ``rebind.evil.example`` can have its name re-resolved to 127.0.0.1 and then call
the sandbox as its own origin: its requests carry ``Host: rebind.evil.example``. The sandbox
answers a Host that names loopback (``localhost``, ``*.localhost``, 127.0.0.0/8, ::1), the address
the connection reached (the bound address, or the host an in-process client called: no DNS is
involved there), ``--public-url``'s host, or one ``--allowed-hosts`` lists (``*``: any); anything
else is refused (``SBX30008``) on every surface, before any handler runs.
"""

from __future__ import annotations

import functools
import ipaddress
import re
from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit

from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from sandbox.core.settings import Settings
from sandbox.wire.errors import SandboxError

Refuse = Callable[[Request, SandboxError], Awaitable[Response]]
_HOST_HEADER = re.compile(r"(\[[^\]]*\]|[^:\[\]]*)(?::[0-9]{1,5})?")


def host_name(header: str) -> str | None:
    """The name a Host header value gives, lower case, without port, brackets or a final dot;
    None if it is not ``name[:port]`` or ``[address][:port]``."""
    match = _HOST_HEADER.fullmatch(header.strip())
    if not match:
        return None
    return match.group(1).strip("[]").rstrip(".").lower()


def _address(name: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(name)
    except ValueError:
        return None


def is_loopback(name: str) -> bool:
    if name == "localhost" or name.endswith(".localhost"):
        return True  # browsers resolve these to loopback themselves: no DNS to rebind
    address = _address(name)
    return address is not None and address.is_loopback


def same_host(a: str, b: str) -> bool:
    left, right = _address(a), _address(b)
    if left is not None and right is not None:
        return left == right
    return a == b


class HostCheck:
    """ASGI middleware: refuse a request whose Host this sandbox does not answer to."""

    def __init__(self, app: ASGIApp, settings: Settings, refuse: Refuse) -> None:
        self.app = app
        self.refuse = refuse
        self.anything = "*" in settings.allowed_hosts
        named = [h for h in settings.allowed_hosts if h != "*"]
        if settings.public_url:
            named.append(urlsplit(settings.public_url).hostname or "")
        self.names = {host_name(h) or "" for h in named} - {""}
        # remembered per Host and address, since a client sends the same Host on every
        # request; at most 256, so no caller can grow it
        self._decide = functools.lru_cache(maxsize=256)(self._judge)

    def allows(self, header: str, scope: Scope) -> bool:
        """Whether ``header`` names this sandbox, reached at ``scope``'s address."""
        server = scope.get("server")
        return self._decide(header, str(server[0]).lower() if server else None)

    def _judge(self, header: str, address: str | None) -> bool:
        name = host_name(header)
        if name is None:
            return False
        if is_loopback(name) or name in self.names:
            return True
        return address is not None and same_host(name, address)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self.anything:
            await self.app(scope, receive, send)
            return
        header = Headers(scope=scope).get("host")
        if header is None or self.allows(header, scope):  # (HTTP/1.0 may send none)
            await self.app(scope, receive, send)
            return
        shown = header[:100].encode("ascii", "backslashreplace").decode()
        error = SandboxError("HOST_NOT_ALLOWED", host=shown)
        response = await self.refuse(Request(scope), error)
        await response(scope, receive, send)
