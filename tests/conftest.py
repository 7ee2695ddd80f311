from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from starlette.applications import Starlette

from sandbox.app import create_app
from sandbox.config import Settings
from sandbox.runtime import Sandbox
from sandbox.transport import InProcessTransport


def make_app(**settings: object) -> Starlette:
    options: dict[str, object] = {"data_dir": ":memory:", "strict_responses": True, "seed": 7}
    options.update(settings)
    return create_app(Settings(**options))  # type: ignore[arg-type]


@pytest.fixture
def app() -> Starlette:
    return make_app()


@pytest.fixture
def sb(app: Starlette) -> Sandbox:
    return app.state.sandbox  # type: ignore[no-any-return]


@pytest.fixture
def http(app: Starlette) -> Iterator[httpx.Client]:
    transport = InProcessTransport(app)
    with httpx.Client(transport=transport, base_url="http://sandbox.test") as client:
        yield client
