"""The schema fuzzing of ``fuzz_contract.py``, in a pytest run of its own (see there why)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from sandbox.core.clock import Clock
from sandbox.server import openapi
from sandbox.wire.resources import schemas_dir
from sandbox.wire.schemas import Schemas
from tests.paths import TESTS

FUZZ = TESTS / "server" / "fuzz_contract.py"
pytestmark = pytest.mark.slow(seconds=30)  # about: conftest.py starts long modules first
METHODS = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}


def test_generated_requests_never_break_the_contract() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "schemathesis", "-p", "no:cacheprovider", "-q"]
        + [str(FUZZ)],
        cwd=TESTS.parent,
        capture_output=True,
        text=True,
        timeout=600,
    )
    report = result.stdout[-6000:] + result.stderr[-2000:]
    assert result.returncode == 0, report
    # each operation of the document was fuzzed (one test each), and the module's two others ran
    document = openapi.document(Schemas(schemas_dir(), Clock()))
    operations = sum(len(METHODS & set(item)) for item in document["paths"].values())
    assert operations > 10
    assert f"{operations + 2} passed" in result.stdout.splitlines()[-1], report
