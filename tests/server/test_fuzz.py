"""Property-based fuzzing from /openapi.json: no 5xx, every response matches its documented
schema, and a rejected request changes nothing."""

from __future__ import annotations

import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
)

from tests.conftest import make_app
from tests.support import snapshot

# signatures off, so generated v3 bodies reach validation instead of stopping at the signature
APP = make_app(signature="off", seed=None)
SB = APP.state.sandbox
schema = schemathesis.openapi.from_asgi("/openapi.json", APP)
CHECKS = [not_a_server_error, response_schema_conformance, content_type_conformance]


@schema.parametrize()
@settings(max_examples=25, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
def test_generated_requests_never_break_the_contract(case: schemathesis.Case) -> None:
    before = snapshot(SB)
    response = case.call()
    case.validate_response(response, checks=CHECKS)
    body = response.json()
    if body.get("code") != "000000":
        assert snapshot(SB) == before, f"rejected with {body.get('code')} but state changed"
