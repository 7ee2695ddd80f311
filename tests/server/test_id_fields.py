"""Identifier fields hold printable text: control, bidi-override and invisible format characters
are refused naming the field (they reached logs, pages and notifies looking like other text)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from sandbox.runtime import Sandbox
from sandbox.server.api_v3 import PATHS as V3_PATHS
from sandbox.wire.envelopes import dumps
from tests.server.test_json_rules import post_v3, v3_envelope
from tests.support import V1, seed_create, snapshot, v3_req_data

HIDDEN = ["\x00", "\r", "\n", "\x1b", "\x7f", "\x85", "\u202e", "\u2066", "\u200f", "\ufeff"]
SPLIT = [
    {"out_sub_order_no": "S1", "merchant_no": "M1", "amount": 40},
    {"out_sub_order_no": "S2", "merchant_no": "M2", "amount": 60},
]

# (dialect, operation, id fields of its request); split items are checked on their own
ID_FIELDS = [
    ("v1", "create", ["out_order_no", "merchant_no", "vpos_id", "channel_id", "term_no"]),
    ("v1", "query", ["out_order_no", "pay_order_no", "merchant_no"]),
    ("v1", "close", ["out_order_no", "pay_order_no", "merchant_no"]),
    (
        "v3",
        "special_create",
        ["out_order_no", "merchant_no", "vpos_id", "channel_id", "term_no", "out_user_id"],
    ),
    ("v3", "create", ["out_order_no", "merchant_no", "term_no", "product_id"]),
    ("v3", "query", ["out_order_no", "merchant_no", "pay_order_no", "channel_id"]),
    ("v3", "close", ["out_order_no", "merchant_no", "pay_order_no", "channel_id"]),
    ("v3", "refund", ["out_trade_no", "merchant_no", "term_no", "origin_out_trade_no"]),
    ("v3", "refund_query", ["out_trade_no", "merchant_no", "term_no", "trade_no"]),
]
CASES = [
    (dialect, op, field, char)
    for dialect, op, fields in ID_FIELDS
    for field in fields
    for char in HIDDEN
]


def send(http: httpx.Client, sb: Sandbox, dialect: str, op: str, body: dict[str, Any]) -> Any:
    if dialect == "v1":
        return http.post(V1 + op, content=dumps(body)).json()
    return post_v3(http, sb, V3_PATHS[op], dumps(v3_envelope(body))).json()


def base(sb: Sandbox, dialect: str, op: str) -> dict[str, Any]:
    if dialect == "v1":
        return seed_create(sb, "ID-1")
    data = v3_req_data(sb, "ID-3", term_no="T1")
    if op.startswith("refund"):
        data.update(out_trade_no="R1", refund_amount=1, origin_out_trade_no="O1")
        data["location_info"] = {"request_ip": "127.0.0.1"}
    return data


@pytest.mark.parametrize(
    ("dialect", "op", "field", "char"),
    CASES,
    ids=[f"{d}-{o}-{f}-U+{ord(c):04X}" for d, o, f, c in CASES],
)
def test_an_id_with_a_hidden_character_is_refused_naming_it(
    http: httpx.Client, sb: Sandbox, dialect: str, op: str, field: str, char: str
) -> None:
    before = snapshot(sb)
    out = send(http, sb, dialect, op, {**base(sb, dialect, op), field: f"A{char}B"})
    assert out["code"] == "SBX10001", out
    name = field if dialect == "v1" else f"req_data.{field}"
    assert f"{name}: must not hold control, bidi-override" in out["msg"], out["msg"]
    assert snapshot(sb) == before


@pytest.mark.parametrize("field", ["out_sub_order_no", "merchant_no"])
def test_a_split_item_id_with_a_hidden_character_is_refused(
    http: httpx.Client, sb: Sandbox, field: str
) -> None:
    split = [dict(SPLIT[0], **{field: "S\u202e1"}), SPLIT[1]]
    body = v3_req_data(sb, "SPLIT-ID", total_amount=100, split_mark="1", out_split_info=split)
    out = send(http, sb, "v3", "special_create", body)
    assert out["code"] == "SBX10001", out
    assert f"req_data.out_split_info.0.{field}: must not hold control" in out["msg"]
    assert sb.engine.count() == 0


def test_ids_in_other_scripts_and_punctuation_are_still_welcome(
    http: httpx.Client, sb: Sandbox
) -> None:
    for no in ("订单-2024/11#1", "ORDER 1 (a&b)", "Ü-ñ_é.ø"):
        out = http.post(V1 + "create", json=seed_create(sb, no)).json()
        assert out["code"] == "000000", out
        assert out["resp_data"]["out_order_no"] == no


@pytest.mark.parametrize("dialect", ["v1", "v3"])
@pytest.mark.parametrize("char", ["测", "\U0001f600", "&"])
def test_the_longest_ids_give_a_counter_url_within_its_schema(
    http: httpx.Client, sb: Sandbox, dialect: str, char: str
) -> None:
    """32 characters that each take 9 to 12 percent-encoded bytes in the link."""
    out_order_no, merchant_no = char * 32, "M" * 31 + char
    if dialect == "v1":
        body = seed_create(sb, out_order_no, merchant_no=merchant_no)
    else:
        body = v3_req_data(sb, out_order_no, merchant_no=merchant_no)
    out = send(http, sb, dialect, "create" if dialect == "v1" else "special_create", body)
    assert out["code"] == "000000", out  # strict responses: a link past 256 was a 500
    url = out["resp_data"]["counter_url"]
    assert len(url) <= 256
    page = http.get(url)
    assert page.status_code == 200
    assert out["resp_data"]["pay_order_no"] in page.text
