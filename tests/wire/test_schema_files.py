"""The shipped JSON Schemas load, resolve, accept the documented examples and reject bad input.

Only plain JSON Schema 2020-12 is exercised here: the annotation keywords (x-coerce,
x-time-window, x-split-sum), the lakala-datetime format and contentSchema are asserted by the
sandbox's own validator and tested with it.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from referencing import Registry
from referencing.jsonschema import DRAFT202012

from tests.paths import ROOT
from tests.support import SEED_CREATE

SCHEMA_DIR = ROOT / "schemas"
BASE = "https://lakala-sandbox/schemas/"


def _load() -> dict[str, dict[str, Any]]:
    return {
        path.relative_to(SCHEMA_DIR).as_posix(): json.loads(path.read_text(encoding="utf-8"))
        for path in sorted(SCHEMA_DIR.rglob("*.json"))
    }


SCHEMAS = _load()
REGISTRY: Registry = Registry().with_resources(
    (schema["$id"], DRAFT202012.create_resource(schema)) for schema in SCHEMAS.values()
)


def validator(name: str) -> Draft202012Validator:
    """A validator for a file, or for a fragment written as 'file#/pointer'."""
    return Draft202012Validator({"$ref": BASE + name}, registry=REGISTRY)


def errors(name: str, instance: Any) -> list[str]:
    return [error.message for error in validator(name).iter_errors(instance)]


def walk(node: Any, pointer: str = "") -> Iterator[tuple[str, Any]]:
    yield pointer, node
    if isinstance(node, dict):
        for key, value in node.items():
            yield from walk(value, f"{pointer}/{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from walk(value, f"{pointer}/{index}")


# --------------------------------------------------------------------------- the files

EXPECTED_FILES = {
    "admin/action.req.schema.json",
    "admin/advance.req.schema.json",
    "admin/clock_set.req.schema.json",
    "admin/clock_speed.req.schema.json",
    "admin/notify.req.schema.json",
    "admin/scenario_default.req.schema.json",
    "common.schema.json",
    "error.schema.json",
    "scenario.schema.json",
    "v1/close.req.schema.json",
    "v1/close.resp.schema.json",
    "v1/create.req.schema.json",
    "v1/create.resp.schema.json",
    "v1/notify.schema.json",
    "v1/notify_ack.schema.json",
    "v1/query.req.schema.json",
    "v1/query.resp.schema.json",
    "v3/close.req.schema.json",
    "v3/close.resp.schema.json",
    "v3/create.req.schema.json",
    "v3/create.resp.schema.json",
    "v3/notify.schema.json",
    "v3/notify_ack.schema.json",
    "v3/notify_headers.schema.json",
    "v3/query.req.schema.json",
    "v3/query.resp.schema.json",
    "v3/idmrefund.req.schema.json",
    "v3/idmrefund.resp.schema.json",
    "v3/idmrefundquery.req.schema.json",
    "v3/idmrefundquery.resp.schema.json",
    "v3/relation_refund.req.schema.json",
    "v3/relation_refund.resp.schema.json",
    "v3/trade_refund.req.schema.json",
    "v3/trade_refund.resp.schema.json",
    "v3/trade_refund_query.req.schema.json",
    "v3/trade_refund_query.resp.schema.json",
    "v3/refund.req.schema.json",
    "v3/refund.resp.schema.json",
    "v3/refund_query.req.schema.json",
    "v3/refund_query.resp.schema.json",
    "v3/request.schema.json",
    "v3/response.schema.json",
    "v3/response_headers.schema.json",
    "v3/special_create.req.schema.json",
    "v3/special_create.resp.schema.json",
}


def test_schema_directory_holds_exactly_the_documented_files() -> None:
    assert set(SCHEMAS) == EXPECTED_FILES


@pytest.mark.parametrize("name", sorted(EXPECTED_FILES))
def test_file_is_a_valid_2020_12_schema_with_its_path_as_id(name: str) -> None:
    schema = SCHEMAS[name]
    Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"] == BASE + name
    assert schema.get("description")


@pytest.mark.parametrize("name", sorted(EXPECTED_FILES))
def test_every_ref_resolves(name: str) -> None:
    schema = SCHEMAS[name]
    resolver = REGISTRY.resolver(base_uri=schema["$id"])
    refs = [node["$ref"] for _, node in walk(schema) if isinstance(node, dict) and "$ref" in node]
    for ref in refs:
        resolved = resolver.lookup(ref).contents
        assert isinstance(resolved, dict), ref


@pytest.mark.parametrize("name", sorted(EXPECTED_FILES))
def test_every_property_has_a_description(name: str) -> None:
    missing = [
        f"{pointer}/{prop}"
        for pointer, node in walk(SCHEMAS[name])
        if pointer.endswith("/properties") and isinstance(node, dict)
        for prop, sub in node.items()
        if not (isinstance(sub, dict) and sub.get("description"))
    ]
    assert missing == []


def test_no_schema_forbids_additional_properties() -> None:
    # Lakala ignores unknown fields and adds new ones to responses without notice. (Scenario
    # files and admin API bodies are ours: there an unknown key is a typo that must not pass
    # silently, as {"pay_mod": "WECHAT"} once paid with the default mode.)
    closed = [
        f"{name}#{pointer}"
        for name, schema in SCHEMAS.items()
        if name != "scenario.schema.json" and not name.startswith("admin/")
        for pointer, node in walk(schema)
        if isinstance(node, dict) and node.get("additionalProperties") is False
    ]
    assert closed == []


def test_x_coerce_marks_only_the_defs_that_accept_integer_and_string() -> None:
    marked = {
        f"{name}#{pointer}"
        for name, schema in SCHEMAS.items()
        for pointer, node in walk(schema)
        if isinstance(node, dict) and "x-coerce" in node
    }
    assert marked == {"common.schema.json#/$defs/fen", "common.schema.json#/$defs/flag01"}
    for fragment in marked:
        assert errors(fragment, 1) == [] and errors(fragment, "1") == []


def test_special_create_carries_the_split_sum_and_time_window_annotations() -> None:
    schema = SCHEMAS["v3/special_create.req.schema.json"]
    assert schema["x-split-sum"] == {
        "flag": "split_mark",
        "items": "out_split_info",
        "amount": "amount",
        "total": "total_amount",
    }
    efficient = SCHEMAS["common.schema.json"]["$defs"]["efficient_time"]
    assert efficient["x-time-window"] == {"future": True, "max_days": 7}


# ------------------------------------------------------------------------- seed examples, verbatim

SEED_CREATE_REQUEST = SEED_CREATE  # the seed's create example, kept once in tests/support.py
SEED_FRONTEND_CREATE_REQUEST = {
    "out_order_no": "ORDER1732000000000",
    "total_amount": 100,
    "order_info": "测试商品购买",
    "notify_url": "https://your-domain.com/api/payment/notify",
    "callback_url": "https://your-domain.com/payment/success",
    "payment_method": "ALIPAY",
}
SEED_CREATE_RESPONSE = {
    "code": "000000",
    "msg": "操作成功",
    "resp_time": "20241119120135",
    "resp_data": {
        "merchant_no": "8222900701106PZ",
        "channel_id": "25",
        "out_order_no": "ORDER20241119120135",
        "order_create_time": "20241119120135",
        "order_efficient_time": "20241119130135",
        "pay_order_no": "21092211012001970631000488056",
        "total_amount": "100",
        "counter_url": "http://q.huijingcai.top/b/pay?merchantNo=8221210594300JY&merchantOrderNo=08F4542EEC6A4497BC419161747A92FQ&payOrderNo=21092211012001970631000488056",  # noqa: E501
    },
}
SEED_QUERY_REQUEST = {"out_order_no": "ORDER20241119120135"}
SEED_QUERY_RESPONSE = {
    "code": "000000",
    "msg": "操作成功",
    "resp_time": "20241119120135",
    "resp_data": {
        "out_order_no": "ORDER20241119120135",
        "order_status": "SUCCESS",
        "total_amount": "100",
        "pay_order_no": "21092211012001970631000488056",
    },
}
SEED_CLOSE_REQUEST = {"out_order_no": "ORDER20241119120135"}
SEED_CLOSE_RESPONSE = {"code": "000000", "msg": "操作成功", "resp_time": "20241119120135"}
SEED_NOTIFY = {
    "out_order_no": "ORDER20241119120135",
    "pay_order_no": "21092211012001970631000488056",
    "order_status": "SUCCESS",
    "total_amount": "100",
    "resp_time": "20241119120135",
}
SEED_NOTIFY_ACK = {
    "code": "000000",
    "msg": "Notification received successfully",
    "resp_time": "20241119120135",
}


def with_data(response: dict[str, Any]) -> dict[str, Any]:
    """The sandbox mirrors resp_data into data, which the seed's frontend reads."""
    return {**response, "data": copy.deepcopy(response["resp_data"])}


@pytest.mark.parametrize(
    ("name", "instance"),
    [
        pytest.param("v1/create.req.schema.json", SEED_CREATE_REQUEST, id="create-request"),
        pytest.param(
            "v1/create.req.schema.json",
            {**SEED_CREATE_REQUEST, "order_efficient_time": "20991231235959"},
            id="create-request-far-future",
        ),
        pytest.param(
            "v1/create.req.schema.json",
            SEED_FRONTEND_CREATE_REQUEST,
            id="frontend-create-request",
        ),
        pytest.param(
            "v1/create.resp.schema.json",
            with_data(SEED_CREATE_RESPONSE),
            id="create-response",
        ),
        pytest.param("v1/query.req.schema.json", SEED_QUERY_REQUEST, id="query-request"),
        pytest.param(
            "v1/query.resp.schema.json",
            with_data(SEED_QUERY_RESPONSE),
            id="query-response",
        ),
        pytest.param("v1/close.req.schema.json", SEED_CLOSE_REQUEST, id="close-request"),
        pytest.param("v1/close.resp.schema.json", SEED_CLOSE_RESPONSE, id="close-response"),
        pytest.param(
            "v1/close.resp.schema.json",
            {
                **SEED_CLOSE_RESPONSE,
                "resp_data": {
                    "out_order_no": "ORDER20241119120135",
                    "pay_order_no": "21092211012001970631000488056",
                    "order_status": "CLOSED",
                },
                "data": {
                    "out_order_no": "ORDER20241119120135",
                    "pay_order_no": "21092211012001970631000488056",
                    "order_status": "CLOSED",
                },
            },
            id="close-response-with-data",
        ),
        pytest.param("v1/notify.schema.json", SEED_NOTIFY, id="notify"),
        pytest.param("v1/notify_ack.schema.json", SEED_NOTIFY_ACK, id="notify-ack"),
    ],
)
def test_seed_example_validates(name: str, instance: Any) -> None:
    assert errors(name, instance) == []


@pytest.mark.parametrize(
    ("name", "instance"),
    [
        pytest.param(
            "v1/create.resp.schema.json",
            {**SEED_CREATE_RESPONSE, "data": {}},
            id="create-with-empty-data",
        ),
        pytest.param(
            "v1/query.resp.schema.json",
            {**SEED_QUERY_RESPONSE, "data": {}},
            id="query-with-empty-data",
        ),
        pytest.param(
            "v1/query.req.schema.json",
            {"merchant_no": "8222900701106PZ"},
            id="query-without-order-number",
        ),
        pytest.param("v1/notify_ack.schema.json", {"code": "SUCCESS"}, id="ack-in-v3-words"),
        pytest.param(
            "v1/query.resp.schema.json",
            with_data(
                {
                    **SEED_QUERY_RESPONSE,
                    "resp_data": {**SEED_QUERY_RESPONSE["resp_data"], "order_status": "2"},
                }
            ),
            id="query-with-v3-status",
        ),
    ],
)
def test_seed_shape_rejects_incomplete_response(name: str, instance: Any) -> None:
    assert errors(name, instance) != []


# --------------------------------------------------------------------------- v3 wire shapes

COUNTER_PARAM = '{"pay_mode":"ALIPAY"}'
BUSI_TYPE_PARAM = (
    '[{"busi_type":"UPCARD","params":{"crd_flg":"CRDFLG_D|CRDFLG_C|CRDFLG_OTH"}},'
    '{"busi_type":"SCPAY","params":{"pay_mode":"ALIPAY"}}]'
)
SPECIAL_CREATE = {
    "out_order_no": "ORDER20241119120135",
    "merchant_no": "82229007392000A",
    "total_amount": "1",
    "order_efficient_time": "20241119130135",
    "order_info": "测试商品购买",
    "term_no": "D9296400",
    "notify_url": "https://your-domain.com/api/payment/notify",
    "callback_url": "https://your-domain.com/payment/success",
    "support_refund": "1",
    "counter_param": COUNTER_PARAM,
    "busi_type_param": BUSI_TYPE_PARAM,
}
SPLIT = [
    {"out_sub_order_no": "SUB1", "merchant_no": "82229007392000A", "amount": 60},
    {
        "out_sub_order_no": "SUB2",
        "merchant_no": "8222900701106PZ",
        "amount": "40",
        "term_no": "D9296400",
        "settle_type": "0",
    },
]
QUERY_RESP_DATA = {
    "pay_order_no": "21092211012001970631000488056",
    "out_order_no": "ORDER20241119120135",
    "channel_id": "95",
    "trans_merchant_no": "82229007392000A",
    "trans_term_no": "D9296400",
    "merchant_no": "82229007392000A",
    "term_no": "D9296400",
    "order_status": "2",
    "order_info": "测试商品购买",
    "total_amount": 1,
    "order_create_time": "20241119120135",
    "order_efficient_time": "20241119130135",
    "counter_param": COUNTER_PARAM,
    "counter_remark": None,
    "busi_type_param": None,
    "split_mark": None,
    "split_info": None,
    "out_split_info": None,
    "goods_mark": None,
    "goods_field": None,
    "order_trade_info_list": [
        {
            "trade_no": "2024111966210003630077",
            "log_No": "66210003630077",
            "trade_ref_no": None,
            "trade_type": "PAY",
            "trade_status": "S",
            "trade_amount": 1,
            "payer_amount": 1,
            "user_id1": "2088****1234",
            "user_id2": None,
            "busi_type": "SCPAY",
            "trade_time": "20241119120301",
            "acc_trade_no": "2024111922001400000000000001",
            "payer_account_no": None,
            "payer_name": None,
            "payer_account_bank": None,
            "acc_type": "99",
            "pay_mode": "ALIPAY",
            "settle_merchant_no": "82229007392000A",
            "settle_term_no": "D9296400",
            "origin_trade_no": None,
            "bank_type": None,
        }
    ],
}
NOTIFY = {
    "pay_order_no": "21092211012001970631000488056",
    "out_order_no": "ORDER20241119120135",
    "channel_id": "95",
    "merchant_no": "82229007392000A",
    "term_no": "D9296400",
    "order_status": "2",
    "order_info": "测试商品购买",
    "total_amount": 1,
    "order_create_time": "20241119120135",
    "order_efficient_time": "20241119130135",
    "split_mark": None,
    "split_info": None,
    "counter_remark": None,
    "order_trade_info": {
        "trade_no": "2024111966210003630077",
        "log_no": "66210003630077",
        "trade_type": "PAY",
        "trade_status": "S",
        "trade_amount": 1,
        "payer_amount": 1,
        "trade_time": "20241119120301",
        "busi_type": "SCPAY",
        "pay_mode": "ALIPAY",
        "trade_remark": "",
        "acc_settle_amount": "1",
        "acc_mdiscount_amount": "0",
        "acc_discount_amount": "",
        "request_ip": "127.0.0.1",
    },
}
LAKALA_ERROR = {
    "code": "BBS11184",
    "msg": "该商户已停用",
    "resp_time": "20241119120135",
    "resp_data": None,
}
RESPONSE_HEADERS = {
    "lklapi-appid": "OP00000003",
    "lklapi-serial": "00dfba8194c41b84cf",
    "lklapi-timestamp": "1732000000",
    "lklapi-nonce": "bGfguYYXFzbO",
    "lklapi-signature": "I1UJq1xfo+BEqKMsd5hzqxwrHUOFUDfp6IYs3Y3FBVg=",
    "lklapi-traceid": "5c1b2a",
}


@pytest.mark.parametrize(
    ("name", "instance"),
    [
        pytest.param(
            "v3/special_create.req.schema.json",
            SPECIAL_CREATE,
            id="special-create-string-amount",
        ),
        pytest.param(
            "v3/special_create.req.schema.json",
            {**SPECIAL_CREATE, "total_amount": 1},
            id="special-create-integer-amount",
        ),
        pytest.param("v3/create.req.schema.json", SPECIAL_CREATE, id="legacy-create"),
        pytest.param(
            "v3/special_create.req.schema.json",
            {**SPECIAL_CREATE, "total_amount": 100, "split_mark": "1", "out_split_info": SPLIT},
            id="special-create-split",
        ),
        pytest.param(
            "v3/special_create.req.schema.json",
            {
                **SPECIAL_CREATE,
                "split_mark": 0,
                "order_scene_field": {"order_scene_type": "HB_FQ", "scene_info": "{}"},
            },
            id="special-create-unsplit-with-scene",
        ),
        pytest.param(
            "v3/special_create.req.schema.json",
            {
                **SPECIAL_CREATE,
                "order_scene_field": {
                    "order_scene_type": "ONLINE_WILDCARD",
                    "scene_info": '{"userId":"u1","userCreateDate":"20240101000000"}',
                    "encrypted_field": '{"email":"a@example.com"}',
                },
            },
            id="special-create-online-wildcard-scene",
        ),
        pytest.param(
            "v3/special_create.req.schema.json",
            {**SPECIAL_CREATE, "sgn_info": ["AGR-1", "AGR-2"]},
            id="special-create-sgn-info-list",
        ),
        pytest.param(
            "v3/special_create.req.schema.json",
            {**SPECIAL_CREATE, "some_future_field": "x"},
            id="special-create-unknown-field",
        ),
        pytest.param(
            "v3/special_create.req.schema.json#/$defs/envelope",
            {
                "req_time": "20241119120135",
                "version": "3.0",
                "out_org_code": "OP00000003",
                "req_data": SPECIAL_CREATE,
            },
            id="special-create-envelope",
        ),
        pytest.param(
            "v3/request.schema.json",
            {"req_time": "20241119120135", "version": "3.0", "req_data": {}},
            id="request-envelope",
        ),
        pytest.param(
            "v3/special_create.resp.schema.json",
            {
                **SEED_CREATE_RESPONSE["resp_data"],
                "merchant_no": "82229007392000A",
                "total_amount": "1",
            },
            id="special-create-resp-string-amount",
        ),
        pytest.param(
            "v3/create.resp.schema.json#/$defs/envelope",
            {
                **SEED_CREATE_RESPONSE,
                "resp_data": {**SEED_CREATE_RESPONSE["resp_data"], "total_amount": 100},
            },
            id="create-resp-envelope",
        ),
        pytest.param(
            "v3/query.req.schema.json",
            {"merchant_no": "82229007392000A", "out_order_no": "ORDER1"},
            id="query-by-out-order-no",
        ),
        pytest.param(
            "v3/query.req.schema.json",
            {"merchant_no": "82229007392000A", "pay_order_no": "2109221101"},
            id="query-by-pay-order-no",
        ),
        pytest.param("v3/query.resp.schema.json", QUERY_RESP_DATA, id="query-resp"),
        pytest.param(
            "v3/query.resp.schema.json#/$defs/envelope",
            {
                "code": "000000",
                "msg": "操作成功",
                "resp_time": "20241119120400",
                "resp_data": QUERY_RESP_DATA,
            },
            id="query-resp-envelope",
        ),
        pytest.param(
            "v3/close.req.schema.json",
            {"merchant_no": "82229007392000A", "pay_order_no": "2109221101"},
            id="close-req",
        ),
        pytest.param(
            "v3/close.resp.schema.json",
            {
                "merchant_no": "82229007392000A",
                "out_order_no": "ORDER1",
                "pay_order_no": "21092211012001970631000488056",
                "channel_id": None,
                "order_status": "7",
            },
            id="close-resp",
        ),
        pytest.param("v3/notify.schema.json", NOTIFY, id="notify"),
        pytest.param(
            "v3/notify_ack.schema.json",
            {"code": "SUCCESS", "message": "执行成功"},
            id="notify-ack",
        ),
        pytest.param("v3/response_headers.schema.json", RESPONSE_HEADERS, id="response-headers"),
        pytest.param(
            "v3/notify_headers.schema.json",
            {
                "authorization": 'LKLAPI-SHA256withRSA timestamp="1732000000",'
                'nonce_str="bGfguYYXFzbO",signature="abc+/=="'
            },
            id="notify-headers",
        ),
        pytest.param(
            "v3/notify_headers.schema.json",
            {
                "authorization": 'LKLAPI-SHA256withRSA signature="abc==",'
                'nonce_str="n0nce",timestamp="1732000000"'
            },
            id="notify-headers-other-key-order",
        ),
        pytest.param(
            "v3/response.schema.json",
            LAKALA_ERROR,
            id="response-envelope-error",
        ),
        pytest.param(
            "error.schema.json",
            LAKALA_ERROR,
            id="error",
        ),
    ],
)
def test_v3_shape_validates(name: str, instance: Any) -> None:
    assert errors(name, instance) == []


@pytest.mark.parametrize(
    ("fragment", "text", "ok"),
    [
        ("counter_param", COUNTER_PARAM, True),
        ("counter_param", '{"pay_mode":"PAYPAL"}', False),
        ("busi_type_param", BUSI_TYPE_PARAM, True),
        ("busi_type_param", '[{"busi_type":"SCPAY","params":{"pay_mode":"PAYPAL"}}]', False),
        ("busi_type_param", '[{"params":{}}]', False),
        ("busi_type_param", '{"busi_type":"SCPAY"}', False),
    ],
)
def test_content_schema_judges_the_parsed_json_string(fragment: str, text: str, ok: bool) -> None:
    # The sandbox's validator applies contentSchema to the parsed string; check the subschema.
    found = errors(f"common.schema.json#/$defs/{fragment}/contentSchema", json.loads(text))
    assert (found == []) is ok


# --------------------------------------------------------------------------- rejected input

V1_CREATE = {"out_order_no": "ORDER1", "total_amount": 100, "order_info": "测试商品购买"}


def changed(base: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return {**base, **fields}


def without(base: dict[str, Any], *keys: str) -> dict[str, Any]:
    return {key: value for key, value in base.items() if key not in keys}


@pytest.mark.parametrize(
    ("name", "instance"),
    [
        pytest.param(
            "v1/create.req.schema.json",
            changed(V1_CREATE, total_amount=1_000_000_000_000),
            id="amount-13-digits",
        ),
        pytest.param(
            "v1/create.req.schema.json",
            changed(V1_CREATE, total_amount="1000000000000"),
            id="amount-13-digit-string",
        ),
        pytest.param(
            "v1/create.req.schema.json",
            changed(V1_CREATE, total_amount=-1),
            id="amount-negative",
        ),
        pytest.param(
            "v1/create.req.schema.json",
            changed(V1_CREATE, total_amount=0),
            id="amount-zero",
        ),
        pytest.param(
            "v1/create.req.schema.json",
            changed(V1_CREATE, total_amount="0"),
            id="amount-zero-string",
        ),
        pytest.param(
            "v1/create.req.schema.json",
            changed(V1_CREATE, total_amount=1.5),
            id="amount-float",
        ),
        pytest.param(
            "v1/create.req.schema.json",
            changed(V1_CREATE, total_amount="1.5"),
            id="amount-decimal-string",
        ),
        pytest.param(
            "v1/create.req.schema.json",
            changed(V1_CREATE, total_amount=""),
            id="amount-empty-string",
        ),
        pytest.param(
            "v1/create.req.schema.json",
            changed(V1_CREATE, total_amount="-1"),
            id="amount-negative-string",
        ),
        pytest.param(
            "v1/create.req.schema.json",
            changed(V1_CREATE, total_amount=True),
            id="amount-boolean",
        ),
        pytest.param(
            "v1/create.req.schema.json",
            without(V1_CREATE, "total_amount"),
            id="amount-missing",
        ),
        pytest.param(
            "v1/create.req.schema.json",
            changed(V1_CREATE, out_order_no=""),
            id="out-order-no-empty",
        ),
        pytest.param(
            "v1/create.req.schema.json",
            changed(V1_CREATE, out_order_no="A" * 33),
            id="out-order-no-33-chars",
        ),
        pytest.param(
            "v1/create.req.schema.json",
            changed(V1_CREATE, order_info="商" * 65),
            id="order-info-65-chinese-chars",
        ),
        pytest.param(
            "v1/create.req.schema.json",
            changed(V1_CREATE, order_info=""),
            id="order-info-empty",
        ),
        pytest.param(
            "v1/create.req.schema.json",
            changed(V1_CREATE, notify_url="javascript:alert(1)"),
            id="notify-url-javascript",
        ),
        pytest.param(
            "v1/create.req.schema.json",
            changed(V1_CREATE, notify_url="ftp://example.com/n"),
            id="notify-url-ftp",
        ),
        pytest.param(
            "v1/create.req.schema.json",
            changed(V1_CREATE, callback_url="data:text/html,hi"),
            id="callback-url-data",
        ),
        pytest.param(
            "v1/create.req.schema.json",
            changed(V1_CREATE, notify_url="https://a.example/" + "x" * 256),
            id="notify-url-too-long",
        ),
        pytest.param(
            "v1/create.req.schema.json",
            changed(V1_CREATE, payment_method="PAYPAL"),
            id="payment-method-paypal",
        ),
        pytest.param(
            "v1/create.req.schema.json",
            changed(V1_CREATE, support_refund=2),
            id="support-refund-2",
        ),
        pytest.param(
            "v1/create.req.schema.json",
            changed(V1_CREATE, support_refund="yes"),
            id="support-refund-yes",
        ),
        pytest.param(
            "v1/create.req.schema.json",
            changed(V1_CREATE, support_cancel=True),
            id="support-cancel-boolean",
        ),
        pytest.param(
            "v1/create.req.schema.json",
            changed(V1_CREATE, order_efficient_time="2024-11-19"),
            id="datetime-with-dashes",
        ),
        pytest.param(
            "v1/create.req.schema.json",
            changed(V1_CREATE, order_efficient_time=20241119130135),
            id="datetime-as-number",
        ),
        pytest.param(
            "v3/special_create.req.schema.json",
            without(SPECIAL_CREATE, "merchant_no"),
            id="v3-merchant-no-missing",
        ),
        pytest.param(
            "v3/special_create.req.schema.json",
            without(SPECIAL_CREATE, "order_efficient_time"),
            id="v3-efficient-time-missing",
        ),
        pytest.param(
            "v3/special_create.req.schema.json",
            changed(SPECIAL_CREATE, total_amount=1.5),
            id="v3-amount-float",
        ),
        pytest.param(
            "v3/special_create.req.schema.json",
            changed(SPECIAL_CREATE, notify_url="https://a.example/" + "x" * 111),
            id="v3-notify-url-129-chars",
        ),
        pytest.param(
            "v3/special_create.req.schema.json",
            changed(SPECIAL_CREATE, split_mark="1"),
            id="split-mark-string-without-split-info",
        ),
        pytest.param(
            "v3/special_create.req.schema.json",
            changed(SPECIAL_CREATE, split_mark=1),
            id="split-mark-integer-without-split-info",
        ),
        pytest.param(
            "v3/special_create.req.schema.json",
            changed(SPECIAL_CREATE, split_mark="1", out_split_info=SPLIT[:1]),
            id="split-info-one-entry",
        ),
        pytest.param(
            "v3/special_create.req.schema.json",
            changed(SPECIAL_CREATE, split_mark="1", out_split_info=SPLIT * 11),
            id="split-info-22-entries",
        ),
        pytest.param(
            "v3/special_create.req.schema.json",
            changed(
                SPECIAL_CREATE,
                split_mark="1",
                out_split_info=[SPLIT[0], without(SPLIT[1], "amount")],
            ),
            id="split-entry-without-amount",
        ),
        pytest.param(
            "v3/special_create.req.schema.json",
            changed(SPECIAL_CREATE, counter_param={"pay_mode": "ALIPAY"}),
            id="counter-param-object-not-string",
        ),
        pytest.param(
            "v3/special_create.req.schema.json",
            changed(SPECIAL_CREATE, counter_param="x" * 1025),
            id="counter-param-too-long",
        ),
        pytest.param(
            "v3/special_create.req.schema.json",
            changed(SPECIAL_CREATE, order_scene_field={"order_scene_type": "XX"}),
            id="order-scene-type-unknown",
        ),
        pytest.param(
            "v3/special_create.req.schema.json",
            changed(SPECIAL_CREATE, sgn_info="AGR-1"),
            id="sgn-info-not-a-list",
        ),
        pytest.param(
            "v3/special_create.req.schema.json",
            changed(SPECIAL_CREATE, sgn_info=["AGR-1", "AGR-1"]),
            id="sgn-info-repeated",
        ),
        pytest.param(
            "v3/special_create.req.schema.json",
            changed(SPECIAL_CREATE, sgn_info=[""]),
            id="sgn-info-empty-entry",
        ),
        pytest.param(
            "v3/request.schema.json",
            {"req_time": "20241119120135", "version": "1.0", "req_data": {}},
            id="envelope-wrong-version",
        ),
        pytest.param(
            "v3/request.schema.json",
            {"req_time": "20241119120135", "version": "3.0"},
            id="envelope-without-req-data",
        ),
        pytest.param(
            "v3/request.schema.json",
            {"req_time": "2024-11-19", "version": "3.0", "req_data": {}},
            id="envelope-bad-req-time",
        ),
        pytest.param(
            "v3/query.req.schema.json",
            {"merchant_no": "82229007392000A"},
            id="query-without-order-number",
        ),
        pytest.param(
            "v3/query.req.schema.json",
            {"out_order_no": "ORDER1"},
            id="query-without-merchant",
        ),
        pytest.param(
            "v3/query.resp.schema.json",
            changed(QUERY_RESP_DATA, order_status="SUCCESS"),
            id="query-resp-v1-status",
        ),
        pytest.param(
            "v3/query.resp.schema.json",
            changed(QUERY_RESP_DATA, order_status=2),
            id="query-resp-integer-status",
        ),
        pytest.param(
            "v3/query.resp.schema.json",
            changed(
                QUERY_RESP_DATA,
                order_trade_info_list=[
                    changed(QUERY_RESP_DATA["order_trade_info_list"][0], trade_status="Z")
                ],
            ),
            id="query-resp-bad-trade-status",
        ),
        pytest.param(
            "v3/close.resp.schema.json",
            {"merchant_no": "M", "out_order_no": "O", "pay_order_no": "1", "order_status": "2"},
            id="close-resp-not-closed",
        ),
        pytest.param(
            "v3/notify.schema.json",
            changed(NOTIFY, order_trade_info=[NOTIFY["order_trade_info"]]),
            id="notify-trade-as-list",
        ),
        pytest.param(
            "v3/notify_ack.schema.json",
            {"code": "FAIL", "message": "失败"},
            id="notify-ack-fail",
        ),
        pytest.param(
            "v3/response_headers.schema.json",
            without(RESPONSE_HEADERS, "lklapi-signature"),
            id="headers-without-signature",
        ),
        pytest.param(
            "v3/response_headers.schema.json",
            changed(RESPONSE_HEADERS, **{"lklapi-serial": "00dfbz"}),
            id="headers-serial-not-hex",
        ),
        pytest.param(
            "v3/response_headers.schema.json",
            changed(RESPONSE_HEADERS, **{"lklapi-timestamp": "1732000000000"}),
            id="headers-timestamp-millis",
        ),
        pytest.param(
            "v3/response_headers.schema.json",
            changed(RESPONSE_HEADERS, **{"lklapi-signature": "not base64!"}),
            id="headers-signature-not-base64",
        ),
        pytest.param(
            "v3/notify_headers.schema.json",
            {"authorization": 'LKLAPI-SHA256withRSA timestamp="1732000000",nonce_str="n0nce"'},
            id="notify-auth-without-signature",
        ),
        pytest.param(
            "v3/notify_headers.schema.json",
            {"authorization": 'Bearer timestamp="1732000000",nonce_str="n0nce",signature="abc=="'},
            id="notify-auth-wrong-scheme",
        ),
        pytest.param(
            "error.schema.json",
            {"code": "000000", "msg": "操作成功", "resp_time": "20241119120135"},
            id="error-with-success-code",
        ),
        pytest.param(
            "v1/notify.schema.json",
            changed(SEED_NOTIFY, total_amount=100),
            id="v1-notify-integer-amount",
        ),
        pytest.param(
            "v1/close.resp.schema.json",
            changed(SEED_CLOSE_RESPONSE, code="BBS10000"),
            id="v1-close-error-code",
        ),
    ],
)
def test_bad_value_is_rejected(name: str, instance: Any) -> None:
    assert errors(name, instance) != []


@pytest.mark.parametrize(
    ("name", "instance"),
    [
        pytest.param(
            "v1/create.req.schema.json",
            changed(V1_CREATE, total_amount=999_999_999_999),
            id="amount-12-digits",
        ),
        pytest.param(
            "v1/create.req.schema.json",
            changed(V1_CREATE, total_amount="999999999999"),
            id="amount-12-digit-string",
        ),
        pytest.param(
            "v1/create.req.schema.json",
            changed(V1_CREATE, total_amount="1"),
            id="amount-string-one",
        ),
        pytest.param(
            "v1/create.req.schema.json",
            changed(V1_CREATE, out_order_no="A" * 32),
            id="out-order-no-32-chars",
        ),
        pytest.param(
            "v1/create.req.schema.json",
            changed(V1_CREATE, order_info="商" * 64),
            id="order-info-64-chinese-chars",
        ),
        pytest.param(
            "v1/create.req.schema.json",
            changed(V1_CREATE, support_refund="0"),
            id="support-refund-string",
        ),
        pytest.param(
            "v1/create.req.schema.json",
            changed(V1_CREATE, notify_url="http://localhost:8000/notify"),
            id="notify-url-localhost",
        ),
        pytest.param(
            "v1/create.req.schema.json",
            changed(V1_CREATE, payment_method="ALIPAY_HK"),
            id="payment-method-alipay-hk",
        ),
        pytest.param(
            "v3/special_create.req.schema.json",
            changed(SPECIAL_CREATE, notify_url="https://a.example/" + "x" * 110),
            id="v3-notify-url-128-chars",
        ),
        pytest.param(
            "v3/special_create.req.schema.json",
            changed(SPECIAL_CREATE, split_mark="0"),
            id="split-mark-zero-alone",
        ),
    ],
)
def test_boundary_value_is_accepted(name: str, instance: Any) -> None:
    assert errors(name, instance) == []
