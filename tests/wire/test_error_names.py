"""Error kinds are named by constants the type checker knows: every name a ``SandboxError`` may be
raised with is in ``ErrorName``, and every raise in the package uses one of them."""

from __future__ import annotations

import ast
from typing import get_args

import pytest

from sandbox.wire.errors import ERRORS, ErrorName, SandboxError
from tests.paths import ROOT


def test_the_names_are_exactly_the_table() -> None:
    assert list(get_args(ErrorName)) == list(ERRORS)


def test_every_raise_in_the_package_names_a_known_kind() -> None:
    raised = set()
    for path in (ROOT / "sandbox").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id == "SandboxError"
                and node.args
                and isinstance(node.args[0], ast.Constant)
            ):
                raised.add(node.args[0].value)
    assert raised and raised <= set(ERRORS)


def test_an_error_says_which_kind_it_is() -> None:
    error = SandboxError("ORDER_NOT_FOUND", what="out_order_no A1")
    assert error.is_one_of("ILLEGAL_TRANSITION", "ORDER_NOT_FOUND")
    assert not error.is_one_of("ILLEGAL_TRANSITION")
    with pytest.raises(KeyError, match="NO_SUCH_KIND"):
        SandboxError("NO_SUCH_KIND")  # type: ignore[arg-type]
