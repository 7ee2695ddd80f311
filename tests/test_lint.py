"""The code is checked as pyproject.toml configures it: ruff (lint and format) and mypy."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.paths import ROOT


@pytest.mark.parametrize(
    "command",
    [
        ["ruff", "check", "sandbox", "tests", "bench"],
        ["ruff", "format", "--check", "sandbox", "tests", "bench"],
        ["mypy", "sandbox"],
    ],
    ids=["ruff-check", "ruff-format", "mypy"],
)
def test_code_passes(command: list[str]) -> None:
    result = subprocess.run(
        [sys.executable, "-m", *command], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stdout + result.stderr
