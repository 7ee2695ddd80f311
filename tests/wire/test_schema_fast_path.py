"""The fast validity check (``sandbox.wire.schemas._holds``: a schema made into functions) must
say exactly what jsonschema says.

A request it wrongly called valid would skip the error report and reach the engine, so every
shipped schema is checked against jsonschema's own verdict (``is_valid``) on valid documents made
by the sandbox itself, on every single-field mutation of them (removed, retyped, too long, not a
date, broken JSON inside a JSON string...), and on arbitrary JSON.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from sandbox.client.transport import InProcessTransport
from sandbox.wire.schemas import _holds
from tests.conftest import make_app
from tests.support import V1, seed_create, v3_post, v3_req_data

SPLIT = [
    {"out_sub_order_no": "S1", "merchant_no": "82229007392000A", "amount": 60},
    {"out_sub_order_no": "S2", "merchant_no": "82229007392000A", "amount": 40},
]
REPLACEMENTS: list[Any] = [
    None,
    True,
    False,
    0,
    1,
    -1,
    1.5,
    2.0,
    10**13,
    "",
    "x",
    "1",
    "01",
    "x" * 2000,
    "20261301000000",
    "20991231235959",
    "{",
    "[]",
    '{"pay_mode":"PAYPAL"}',
    [],
    [1],
    {},
    {"a": 1},
]


def mutations(doc: Any) -> Iterator[Any]:
    """Every document one change away from ``doc``."""
    yield doc
    yield from _mutate(doc, lambda changed: changed)


def _mutate(node: Any, rebuild: Any) -> Iterator[Any]:
    if isinstance(node, dict):
        for key in list(node):
            without = {k: v for k, v in node.items() if k != key}
            yield rebuild(without)
            for value in REPLACEMENTS:
                yield rebuild({**node, key: value})
            yield from _mutate(node[key], lambda changed, key=key: rebuild({**node, key: changed}))
        yield rebuild({**node, "unknown_extra": "x"})
    elif isinstance(node, list):
        yield rebuild(node + node[:1])
        yield rebuild([])
        for i, item in enumerate(node):
            for value in REPLACEMENTS[:8]:
                yield rebuild(node[:i] + [value] + node[i + 1 :])
            yield from _mutate(
                item, lambda changed, i=i: rebuild(node[:i] + [changed] + node[i + 1 :])
            )
    elif isinstance(node, str) and node[:1] in ("{", "["):
        try:
            parsed = json.loads(node)
        except ValueError:
            return
        yield from _mutate(parsed, lambda changed: rebuild(json.dumps(changed)))


@pytest.fixture(scope="module")
def documents() -> dict[str, list[Any]]:
    """Valid documents per schema: requests as the tests send them, answers as the sandbox
    gives them."""
    app = make_app()
    sb = app.state.sandbox
    http = httpx.Client(transport=InProcessTransport(app), base_url="http://sandbox.test")
    rich = v3_req_data(
        sb,
        "FAST-3",
        total_amount=100,
        counter_param='{"pay_mode":"ALIPAY"}',
        busi_type_param='[{"busi_type":"UPCARD","params":{"pay_mode":"CARD"}}]',
        split_mark="1",
        out_split_info=SPLIT,
    )
    v1_body = seed_create(sb, "FAST-1")
    docs: dict[str, list[Any]] = {
        "v1/create.req": [v1_body],
        "v1/query.req": [{"out_order_no": "FAST-1"}, {"pay_order_no": "26112600000000001"}],
        "v1/close.req": [{"out_order_no": "FAST-1"}],
        "v3/special_create.req": [rich, v3_req_data(sb, "FAST-4")],
        "v3/create.req": [v3_req_data(sb, "FAST-5")],
        "v3/query.req": [{"merchant_no": "82229007392000A", "out_order_no": "FAST-3"}],
        "v3/close.req": [{"merchant_no": "82229007392000A", "out_order_no": "FAST-3"}],
        "v3/request": [{"req_time": "20261126120000", "version": "3.0", "req_data": rich}],
        "v1/notify_ack": [{"code": "000000", "msg": "ok", "resp_time": "20261126120000"}],
        "v3/notify_ack": [{"code": "SUCCESS", "message": "执行成功"}],
    }
    for op, body in (("create", v1_body), ("query", {"out_order_no": "FAST-1"})):
        docs[f"v1/{op}.resp"] = [http.post(V1 + op, json=body).json()]
    for op, req in (("special_create", rich), ("query", docs["v3/query.req"][0])):
        answer = v3_post(http, sb, op, req).json()
        assert answer["code"] == "000000", answer
        docs["v3/response"] = docs.get("v3/response", []) + [answer]
        docs[f"v3/{op}.resp"] = [answer["resp_data"]]
    docs["v1/close.resp"] = [http.post(V1 + "close", json={"out_order_no": "FAST-1"}).json()]
    http.close()
    sb.close()
    return docs


@pytest.mark.parametrize(
    "name",
    [
        "v1/create.req",
        "v1/query.req",
        "v1/close.req",
        "v1/create.resp",
        "v1/query.resp",
        "v1/close.resp",
        "v1/notify_ack",
        "v3/request",
        "v3/special_create.req",
        "v3/create.req",
        "v3/query.req",
        "v3/close.req",
        "v3/response",
        "v3/special_create.resp",
        "v3/query.resp",
        "v3/notify_ack",
    ],
)
def test_fast_path_agrees_with_jsonschema_on_every_mutation(
    documents: dict[str, list[Any]], name: str
) -> None:
    app = make_app()
    validator = app.state.sandbox.schemas.validator(name)
    holds = _holds(validator)
    checked = valid = 0
    for doc in documents[name]:
        assert validator.is_valid(doc), f"{name}: the base document should be valid"
        for instance in mutations(copy.deepcopy(doc)):
            expected = validator.is_valid(instance)
            assert holds(instance) == expected, (name, instance)
            checked += 1
            valid += expected
    assert checked > 20 and 0 < valid < checked  # both verdicts were exercised
    app.state.sandbox.close()


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(
            st.sampled_from(
                ["out_order_no", "merchant_no", "total_amount", "req_data", "code", "pay_mode", "x"]
            ),
            inner,
            max_size=5,
        )
    ),
    max_leaves=12,
)


@pytest.mark.parametrize("name", ["v1/create.req", "v3/request", "v3/special_create.req"])
@settings(
    max_examples=150,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(instance=JSON)
def test_fast_path_agrees_with_jsonschema_on_arbitrary_json(name: str, instance: Any) -> None:
    validator, holds = _validators(name)
    assert holds(instance) == validator.is_valid(instance)


_CACHE: dict[str, tuple[Any, Callable[[Any], bool]]] = {}


def _validators(name: str) -> tuple[Any, Callable[[Any], bool]]:
    if name not in _CACHE:
        app = make_app()
        validator = app.state.sandbox.schemas.validator(name)
        _CACHE[name] = validator, _holds(validator)
        app.state.sandbox.close()
    return _CACHE[name]


# every applicator the fast path walks itself and every keyword it tests inline, with
# booleans as schemas, type lists and a prefixItems beside items (left to jsonschema)
SMALL = {
    "type": ["object", "array", "integer", "null"],
    "required": ["a"],
    "properties": {
        "a": {"type": "string", "minLength": 1, "maxLength": 3, "pattern": "^[a-z]+$"},
        "b": {"type": "number", "minimum": 1, "maximum": 9.5},
        "c": {"oneOf": [{"type": "integer"}, {"minimum": 5}]},
        "d": {"not": {"type": "string"}},
        "e": {"if": {"type": "string"}, "then": {"maxLength": 1}, "else": {"type": "boolean"}},
        "f": {"if": {"type": "integer"}, "then": {"minimum": 3}},
        "g": {"items": {"anyOf": [{"type": "null"}, {"type": "boolean"}]}},
        "h": {"prefixItems": [{"type": "integer"}], "items": {"type": "string"}},
        "i": {"allOf": [True, {"const": "x"}], "anyOf": [False, True]},
        "j": False,
        "k": {"type": [], "x-ignored": 1},
    },
}


@settings(max_examples=400, derandomize=True, deadline=None)
@given(
    instance=st.dictionaries(
        st.sampled_from(list("abcdefghijk")),
        st.none()
        | st.booleans()
        | st.integers(-3, 12)
        | st.floats(0, 12)
        | st.text(max_size=4)
        | st.lists(st.none() | st.booleans() | st.integers() | st.text(max_size=2), max_size=3),
        max_size=4,
    )
    | JSON
)
def test_fast_path_agrees_with_jsonschema_on_a_schema_of_every_keyword_it_walks(
    instance: Any,
) -> None:
    validator = Draft202012Validator(SMALL)
    assert _holds(validator)(instance) == validator.is_valid(instance), instance
