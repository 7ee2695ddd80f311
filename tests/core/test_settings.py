"""Settings knows its own allowed values: a wrong word is refused however it arrives (in code, from
the environment or on the command line), and the CLI offers exactly what Settings accepts."""

from __future__ import annotations

import argparse
import re
import subprocess
import sys

import pytest

from sandbox import Settings
from sandbox.core.settings import CHOICES
from sandbox.tools.cli import _serve_args


@pytest.mark.parametrize(
    ("name", "value", "says"),
    [
        ("signature", "bogus", "signature (LAKALA_SANDBOX_SIGNATURE) must be strict, warn or off"),
        ("mode", "fake", "mode (LAKALA_SANDBOX_MODE) must be sandbox or real, not 'fake'"),
    ],
)
def test_a_word_outside_the_choices_is_refused_in_code_and_from_the_environment(
    name: str, value: str, says: str
) -> None:
    with pytest.raises(ValueError, match=re.escape(says)):
        Settings(**{name: value})
    with pytest.raises(ValueError, match=re.escape(says)):
        Settings.from_env({f"LAKALA_SANDBOX_{name.upper()}": value})


@pytest.mark.parametrize("name", sorted(CHOICES))
def test_every_choice_is_accepted_everywhere(name: str) -> None:
    for word in CHOICES[name]:
        assert getattr(Settings(**{name: word}), name) == word
        assert getattr(Settings.from_env({f"LAKALA_SANDBOX_{name.upper()}": word}), name) == word


def test_the_cli_offers_exactly_the_choices_settings_accepts() -> None:
    parser = argparse.ArgumentParser()
    _serve_args(parser)
    offered = {a.dest: tuple(a.choices) for a in parser._actions if a.dest in CHOICES and a.choices}
    assert offered == CHOICES
    result = subprocess.run(
        [sys.executable, "-m", "sandbox", "serve", "--mode", "fake"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "invalid choice: 'fake' (choose from 'sandbox', 'real')" in result.stderr
