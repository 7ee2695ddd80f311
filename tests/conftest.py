from __future__ import annotations

import os
from collections.abc import Iterator

import httpx
import pytest
from starlette.applications import Starlette

from sandbox.client.clients import ENV_VARS
from sandbox.client.transport import InProcessTransport
from sandbox.core.settings import Settings
from sandbox.runtime import Sandbox
from sandbox.server.app import create_app

# the browser tests' fixtures (Chromium, a served sandbox, the merchant app), one set per run
pytest_plugins = ["tests.browser_support"]

# Tests reach nothing beyond loopback: notifies to other hosts (the seed's your-domain.com) are
# journaled as skipped, here and in every sandbox process a test starts.
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")
os.environ.setdefault("LAKALA_SANDBOX_NOTIFY_HOSTS", ",".join(LOOPBACK_HOSTS))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The longest modules first, as far as their markers tell: pytest-xdist (with
    ``--no-loadscope-reorder``, as .ci/run runs it) then hands them out first instead of leaving
    one to run alone at the end. A browser or slow test counts 3 s, or the ``seconds`` its slow
    marker gives; any other 0.05 s."""
    weight: dict[str, list[float]] = {}  # module: [-seconds, -tests]
    for item in items:
        slow = item.get_closest_marker("slow")
        seconds = 0.05
        if slow is not None or item.get_closest_marker("browser") is not None:
            seconds = float(slow.kwargs.get("seconds", 3)) if slow is not None else 3.0
        module = weight.setdefault(item.nodeid.split("::")[0], [0.0, 0.0])
        module[0] -= seconds
        module[1] -= 1
    items.sort(key=lambda item: weight[item.nodeid.split("::")[0]])  # (stable within a module)


# the sandboxes make_app made while the current test ran (see _close_what_the_test_made)
_MADE: list[list[Sandbox]] = []


def make_app(**settings: object) -> Starlette:
    options: dict[str, object] = {
        "data_dir": ":memory:",
        "strict_responses": True,
        "seed": 7,
        "notify_hosts": LOOPBACK_HOSTS,
    }
    options.update(settings)
    app = create_app(Settings(**options))  # type: ignore[arg-type]
    if _MADE:
        _MADE[-1].append(app.state.sandbox)
    return app


@pytest.fixture(autouse=True)
def _close_what_the_test_made() -> Iterator[None]:
    """Every sandbox ``make_app`` makes while a test runs (in its body or its function-scoped
    fixtures) is closed when the test ends: left open it holds its store's files, and Python 3.13
    warns of its SQLite connection when that is collected, in whichever test runs then. Those of
    module- and session-scoped fixtures are made before this starts, and close with them."""
    made: list[Sandbox] = []
    _MADE.append(made)
    try:
        yield
    finally:
        _MADE.remove(made)
        for sb in made:
            sb.close()


@pytest.fixture
def frozen() -> Iterator[tuple[httpx.Client, Sandbox]]:
    """An in-process sandbox on a frozen clock, notify timeout 1 s, and a client for it."""
    app = make_app(clock_speed=0, notify_timeout=1)
    with httpx.Client(transport=InProcessTransport(app), base_url="http://t") as http:
        yield http, app.state.sandbox
    app.state.sandbox.close()


@pytest.fixture
def no_lakala_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """None of the ``LAKALA_*`` variables the real-mode client reads, whatever the shell has."""
    for name in (
        *ENV_VARS,
        "LAKALA_PRIVATE_KEY",
        "LAKALA_CERTIFICATE",
        "LAKALA_NOTIFY_CERTIFICATE",
    ):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def app() -> Iterator[Starlette]:
    app = make_app()
    yield app
    app.state.sandbox.close()  # stops its background worker, if one started


@pytest.fixture
def sb(app: Starlette) -> Sandbox:
    return app.state.sandbox  # type: ignore[no-any-return]


@pytest.fixture
def http(app: Starlette) -> Iterator[httpx.Client]:
    transport = InProcessTransport(app)
    with httpx.Client(transport=transport, base_url="http://sandbox.test") as client:
        yield client
