"""One vocabulary: Lakala's words are written in ``sandbox/wire/vocabulary.py`` alone, and agree
with the JSON Schemas every surface is checked against."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

from sandbox.wire.vocabulary import (
    BUSI_TYPE,
    CARD_MODES,
    COUNTER_PAGE,
    OPEN,
    PAY_MODE_NAMES,
    STATUS_NAMES,
    STATUS_TEXT,
    STATUS_V1,
    OrderStatus,
)
from tests.paths import ROOT

COMMON = json.loads((ROOT / "schemas" / "common.schema.json").read_text())["$defs"]
VOCABULARY = ROOT / "sandbox" / "wire" / "vocabulary.py"


def test_statuses_are_the_schemas_statuses_in_both_dialects() -> None:
    assert [str(s.value) for s in OrderStatus] == COMMON["order_status_v3"]["enum"]
    assert [s.v1 for s in OrderStatus] == COMMON["order_status_v1"]["enum"]


def test_each_status_carries_its_number_and_every_label() -> None:
    paid = OrderStatus.of(2)
    assert OrderStatus.of("2") is paid
    with pytest.raises(ValueError, match="'8' is not an order_status"):
        OrderStatus.of("8")
    assert paid is OrderStatus.PAID and paid == 2
    assert (paid.v1, paid.short, paid.zh, paid.en) == ("SUCCESS", "支付成功", "支付成功", "Paid")
    assert STATUS_V1[4] == "EXPIRED" and STATUS_NAMES[4] == "已过期"
    assert STATUS_TEXT[4] == ("订单已过期", "Order expired")
    assert OPEN == (0, 1)
    assert json.dumps({"s": OrderStatus.REFUNDED}) == '{"s": 6}'  # stored and sent as a number


def test_pay_modes_are_the_schemas_pay_modes() -> None:
    assert list(PAY_MODE_NAMES) == COMMON["pay_mode"]["enum"]
    assert CARD_MODES <= set(PAY_MODE_NAMES)
    assert set(BUSI_TYPE) <= set(PAY_MODE_NAMES)


def _constants(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    return {
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and id(node) not in docstrings
    }


# Words that name a Lakala concept and may be spelled out only in the vocabulary.
WORDS = sorted(
    {s.v1 for s in OrderStatus if s.v1 != "SUCCESS"}  # "SUCCESS" is also the v3 notify ack
    # 支付成功 / 支付失败 are also the page's outcome buttons, a payer's words, not a state's
    | {s.zh for s in OrderStatus if s.zh not in ("支付成功", "支付失败")}
    | {"操作成功", COUNTER_PAGE, "/api/v1/", "/api/v3/", "/api/v1/payment/lakala/counter/"}
    | {"/api/v3/ccss/counter/order/", "/api/v3/rfd/refund_front/", "UPCARD", "线上外卡"}
)


@pytest.mark.parametrize(
    "module",
    sorted(p for p in (ROOT / "sandbox").rglob("*.py") if p != VOCABULARY),
    ids=lambda p: str(p.relative_to(ROOT)),
)
def test_no_module_spells_out_the_vocabulary_again(module: Path) -> None:
    again = sorted(set(WORDS) & _constants(module))
    assert not again, f"{module.name} writes {again}: import them from sandbox.wire.vocabulary"
