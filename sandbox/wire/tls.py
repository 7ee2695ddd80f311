"""The TLS context this package's clients verify HTTPS servers with (Lakala's API, a merchant's
notify URL), shared by all of them in a process.

httpx makes a new context for each client it builds, reading the whole CA bundle each time: about
30-40 ms of CPU, ten times what a signed call to a served sandbox takes, which every
``LakalaClient``, every ``contract`` or ``notify-check`` run and every served plugin handle paid.
"""

from __future__ import annotations

import functools
import os
import ssl


def tls(*, trust_env: bool = True) -> ssl.SSLContext:
    """The context to pass as httpx's ``verify=`` (or asyncio's ``ssl=``), made as httpx makes
    its own: from ``SSL_CERT_FILE`` or ``SSL_CERT_DIR`` when ``trust_env`` and one is set, else
    from certifi's bundle. Setting either variable later gets a context of its own."""
    where = (os.environ.get("SSL_CERT_FILE"), os.environ.get("SSL_CERT_DIR")) if trust_env else None
    return _made(where)


def verify_for(transport: object | None) -> ssl.SSLContext | bool:
    """httpx's ``verify=`` for a client built with ``transport``: the shared context when httpx
    makes the transport; ``True``, httpx's default and never used, when the client is given one
    (in-process, mocked) that brings whatever TLS it has, so that no context is made for it."""
    return tls() if transport is None else True


@functools.cache
def _made(where: tuple[str | None, str | None] | None) -> ssl.SSLContext:
    import httpx  # (the server side never needs it before a notify goes out over HTTPS)

    return httpx.create_ssl_context(verify=True, trust_env=where is not None)
