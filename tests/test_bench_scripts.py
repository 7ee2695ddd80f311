"""Every benchmark still starts: a module moved in the package must not leave a bench script
importing it from where it was (``--help`` imports the script and exits)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.paths import ROOT

SCRIPTS = sorted(
    p for p in (ROOT / "bench").glob("*.py") if p.name not in ("__init__.py", "common.py")
)


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_the_script_starts(script: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(script), "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage:")
