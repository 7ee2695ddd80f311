"""The README says what the code does: its tables come from the code, its commands run."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from sandbox.core.settings import ENV_PREFIX, Settings
from sandbox.wire.errors import error_table_markdown
from tests.paths import DOCS, ROOT
from tests.servers import SandboxProcess, run_shell_example

README = ROOT / "README.md"


def readme() -> str:
    return README.read_text(encoding="utf-8")


def shell_blocks() -> list[str]:
    return re.findall(r"```sh\n(.*?)```", readme(), flags=re.S)


def test_error_table_is_the_one_the_code_uses() -> None:
    errors = (DOCS / "errors.md").read_text(encoding="utf-8")
    block = errors.split("<!-- errors:start -->\n")[1].split("\n<!-- errors:end -->")[0]
    assert block == error_table_markdown()


def test_every_setting_is_documented() -> None:
    text = (DOCS / "configuration.md").read_text(encoding="utf-8")
    for f in dataclasses.fields(Settings):
        if f.name != "extra":
            assert f"`{ENV_PREFIX}{f.name.upper()}`" in text, f"{f.name} is not documented"


def test_quick_start_has_two_commands_and_ci_runs_the_test_one() -> None:
    blocks = shell_blocks()
    serve = [b for b in blocks if "lakala-sandbox serve" in b]
    test = [b for b in blocks if ".ci/run" in b]
    assert len(serve) == 1 and len(test) == 1
    assert [line for line in test[0].splitlines() if not line.startswith("#")] == ["bash .ci/run"]
    ci = (README.parent / ".ci" / "run").read_text()
    assert "python -m pytest" in ci


@pytest.mark.slow
def test_readme_curl_examples_work_against_a_served_sandbox(tmp_path: Path) -> None:
    curls = [b for b in shell_blocks() if "curl" in b and "/api/" in b]
    assert len(curls) == 2
    with SandboxProcess(tmp_path / "data") as server:
        for block in curls:
            out = run_shell_example(block, server, sign_data_dir=tmp_path / "data", cwd=tmp_path)
            assert '"code":"000000"' in out, out
            if "special_create" in block:
                assert "lklapi-signature:" in out.lower()
