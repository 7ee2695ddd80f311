"""Property-based fuzzing from /openapi.json: no 5xx, every response matches its documented
schema, and a rejected request changes nothing.

Run by ``test_fuzz.py`` in a pytest of its own, with Schemathesis' plugin (the suite's own runs
leave it out): building the cases of every operation takes seconds at collection, which each
pytest-xdist worker would otherwise pay. ``pytest -p schemathesis tests/server/fuzz_contract.py``
runs it directly.

The app is built in a fixture, not when pytest imports this module: a sandbox may start threads
of its own, and none may run while pytest is still importing other modules."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
)
from starlette.applications import Starlette

from sandbox.client.transport import InProcessTransport
from sandbox.core.clock import Clock
from sandbox.server import openapi
from sandbox.wire.resources import schemas_dir
from sandbox.wire.schemas import Schemas
from tests.conftest import make_app
from tests.paths import ROOT
from tests.support import snapshot

CHECKS = [not_a_server_error, response_schema_conformance, content_type_conformance]


@pytest.fixture(scope="module")
def fuzzed_app() -> Iterator[Starlette]:
    # signatures off, so generated v3 bodies reach validation instead of stopping at the signature
    app = make_app(signature="off", seed=None)
    yield app
    app.state.sandbox.close()


# the document the app serves at /openapi.json, made the same way without building an app
DOCUMENT = openapi.document(Schemas(schemas_dir(), Clock()))
schema = schemathesis.openapi.from_dict(DOCUMENT)


@pytest.fixture(scope="module")
def http(fuzzed_app: Starlette) -> Iterator[httpx.Client]:
    """The app called in-process (Schemathesis' own ASGI bridge, through requests and a
    thread per call, took two thirds of the time)."""
    with httpx.Client(transport=InProcessTransport(fuzzed_app), base_url="http://t") as client:
        yield client


def test_the_fuzzed_document_is_the_one_served(http: httpx.Client) -> None:
    assert http.get("/openapi.json").json() == DOCUMENT


@schema.parametrize()
@settings(max_examples=25, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
def test_generated_requests_never_break_the_contract(
    case: schemathesis.Case, fuzzed_app: Starlette, http: httpx.Client
) -> None:
    sb = fuzzed_app.state.sandbox
    before = snapshot(sb)
    sent = case.as_transport_kwargs(base_url="http://t")
    if isinstance(sent.get("data"), str | bytes):  # (requests' name for a raw body)
        sent["content"] = sent.pop("data")
    http.cookies = sent.pop("cookies", None) or {}  # (httpx takes them per client, not call)
    response = http.request(**sent)
    case.validate_response(response, checks=CHECKS)
    body = response.json()
    if body.get("code") != "000000":
        assert snapshot(sb) == before, f"rejected with {body.get('code')} but state changed"


def test_importing_this_module_starts_no_thread() -> None:
    """pytest imports every test module before running any: none may start a thread then."""
    probe = (
        "import threading\n"
        "started = []\n"
        "start = threading.Thread.start\n"
        "def recording(self):\n"
        "    started.append(self.name)\n"
        "    start(self)\n"
        "threading.Thread.start = recording\n"
        "import tests.server.fuzz_contract\n"
        "print(started)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
