"""lakala-sandbox: a local stand-in for Lakala's hosted counter (聚合收银台).

The public face: ``from sandbox import create_app, Settings, LakalaClient, NotifyReceiver, ...``.
Names are loaded when first used, so ``from sandbox import LakalaClient`` does not load the server.

The map. One folder per layer; imports flow one way, down this list's arrows
(``tests/test_layers.py`` holds it):

    wire/       Lakala's vocabulary (``wire/vocabulary.py``: OrderStatus, actions, pay modes, paths,
                codes, written nowhere else), times, signing, JSON rules, the schemas and the checks
                a message must pass, the TLS context clients verify HTTPS with. Imports nothing
                else of the package.
    core/       the domain, no HTTP: settings, clock, ids, keys, store, the order engine, refunds,
                the scheduler. Imports wire.
    scenarios/  scenario files (model, loader, limits), the runner, faults, the time keeper.
    notify/     notify bodies, the outbox and its notifier, the courier.    (both import core, wire)
    runtime.py  the one place that builds the services from Settings and wires them together.
    server/     the only importer of Starlette: the app, both API dialects, refunds, admin API,
                pages, CORS, serving, OpenAPI, the real-mode proxy (the only importer of client/).
    client/     LakalaClient / AsyncLakalaClient, their errors and transports. Imports wire only.
    tools/      the CLI and its subcommands (contract, notify-check, scenarios check).
    testing/    the pytest plugin and the notify receiver.

    wire <- core <- scenarios, notify <- runtime <- server <- tools, testing
    wire <- client <- server.proxy, tools, testing
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# public name -> the module that defines it
_EXPORTS = {
    "create_app": "sandbox.server.app",
    "Settings": "sandbox.core.settings",
    "LakalaClient": "sandbox.client",
    "AsyncLakalaClient": "sandbox.client",
    "ClientSettings": "sandbox.client",
    "LakalaResponse": "sandbox.client",
    "LakalaError": "sandbox.client",
    "LakalaConfigError": "sandbox.client",
    "LakalaTransportError": "sandbox.client",
    "LakalaTimeout": "sandbox.client",
    "LakalaHTTPError": "sandbox.client",
    "LakalaFindingsError": "sandbox.client",
    "LakalaSignatureError": "sandbox.client",
    "LakalaResponseError": "sandbox.client",
    "LakalaSchemaError": "sandbox.client",
    "LakalaAPIError": "sandbox.client",
    "NotifyReceiver": "sandbox.testing.receiver",
    "LakalaSandbox": "sandbox.testing.plugin",
}

__all__ = [
    "__version__",
    "create_app",
    "Settings",
    "LakalaClient",
    "AsyncLakalaClient",
    "ClientSettings",
    "LakalaResponse",
    "LakalaError",
    "LakalaConfigError",
    "LakalaTransportError",
    "LakalaTimeout",
    "LakalaHTTPError",
    "LakalaFindingsError",
    "LakalaSignatureError",
    "LakalaResponseError",
    "LakalaSchemaError",
    "LakalaAPIError",
    "NotifyReceiver",
    "LakalaSandbox",
]

if TYPE_CHECKING:
    from sandbox.client import (
        AsyncLakalaClient,
        ClientSettings,
        LakalaAPIError,
        LakalaClient,
        LakalaConfigError,
        LakalaError,
        LakalaFindingsError,
        LakalaHTTPError,
        LakalaResponse,
        LakalaResponseError,
        LakalaSchemaError,
        LakalaSignatureError,
        LakalaTimeout,
        LakalaTransportError,
    )
    from sandbox.core.settings import Settings
    from sandbox.server.app import create_app
    from sandbox.testing.plugin import LakalaSandbox
    from sandbox.testing.receiver import NotifyReceiver


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'sandbox' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # the next lookup is a plain attribute
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
