"""JSON every surface reads by: a key given twice and a lone surrogate are refused with 400
SBX40001 naming the key or field, in the surface's envelope, and change nothing."""

from __future__ import annotations

import http.client
import json
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sandbox.runtime import Sandbox
from sandbox.server.api_v3 import PATHS as V3_PATHS
from sandbox.wire import signing, sm4
from sandbox.wire.envelopes import MAX_NESTING, dumps
from sandbox.wire.errors import ERRORS
from sandbox.wire.vocabulary import ENCRYPTED_CREATE, ENCRYPTED_OF
from tests.servers import SandboxProcess
from tests.support import V1, seed_create, snapshot, v3_req_data

LONE = "\ud800"


def escaped(value: Any) -> bytes:
    """``value`` as JSON with every non-ASCII character escaped: a lone surrogate as \\ud800."""
    return json.dumps(value, ensure_ascii=True).encode()


def post_v3(http: httpx.Client, sb: Sandbox, path: str, raw: bytes) -> httpx.Response:
    if path == V3_PATHS[ENCRYPTED_CREATE]:  # its body is the JSON SM4-encrypted, as sent
        raw = sm4.encrypt(sb.keys.sm4_key, raw)
    auth = signing.sign_request(sb.keys.merchant_key, sb.settings.appid, sb.settings.serial_no, raw)
    headers = {"Authorization": auth, "Content-Type": "application/json"}
    return http.post(path, content=raw, headers=headers)


def v3_envelope(req_data: dict[str, Any]) -> dict[str, Any]:
    return {"req_time": "20261126120000", "version": "3.0", "req_data": req_data}


@pytest.fixture
def paid(http: httpx.Client, sb: Sandbox) -> str:
    """A paid v1 order (so that a wrongly accepted fail, refund or step would show)."""
    created = http.post(V1 + "create", json=seed_create(sb, "JSON-PAID")).json()["resp_data"]
    no = str(created["pay_order_no"])
    assert http.post(f"/sandbox/api/orders/{no}/pay").status_code == 200
    return no


def assert_refused(response: httpx.Response, dialect: str, says: str) -> None:
    assert response.status_code == 400, response.text
    out = response.json()
    assert out["code"] == "SBX40001", out
    assert says in out["msg"], out["msg"]
    if dialect == "admin":
        assert out["error"] == "NOT_JSON"
    else:
        assert out["resp_data"] is None


def test_a_key_given_twice_is_refused_on_every_surface(
    http: httpx.Client, sb: Sandbox, paid: str
) -> None:
    before = snapshot(sb)
    v1 = http.post(
        V1 + "create",
        content=b'{"out_order_no":"DUP-1","order_info":"x","total_amount":100,"total_amount":1}',
    )
    assert_refused(v1, "v1", "'total_amount' appears twice")

    data = json.dumps(v3_req_data(sb, "DUP-3"))[1:-1]
    raw = '{"req_time":"20261126120000","version":"3.0","req_data":{' + data
    raw += ',"total_amount":1}}'
    v3 = post_v3(http, sb, V3_PATHS["special_create"], raw.encode())
    assert_refused(v3, "v3", "'total_amount' appears twice")
    nested = post_v3(
        http,
        sb,
        V3_PATHS["query"],
        b'{"req_time":"20261126120000","version":"3.0","version":"3.0","req_data":{}}',
    )
    assert_refused(nested, "v3", "'version' appears twice")

    admin = http.post(f"/sandbox/api/orders/{paid}/refund", content=b'{"amount":1,"amount":100}')
    assert_refused(admin, "admin", "'amount' appears twice")
    clock = http.post("/sandbox/api/clock/advance", content=b'{"seconds":1,"seconds":99999}')
    assert_refused(clock, "admin", "'seconds' appears twice")
    assert snapshot(sb) == before
    assert sb.engine.count() == 1


def test_a_key_twice_inside_a_json_string_field_names_the_field(
    http: httpx.Client, sb: Sandbox
) -> None:
    counter = '{"pay_mode":"ALIPAY","pay_mode":"WECHAT"}'
    raw = dumps(v3_envelope(v3_req_data(sb, "DUP-IN", counter_param=counter)))
    out = post_v3(http, sb, V3_PATHS["special_create"], raw).json()
    assert out["code"] == "SBX10001"
    assert "req_data.counter_param" in out["msg"] and "appears twice" in out["msg"]
    assert sb.engine.count() == 0


def _properties(schema: Any) -> dict[str, Any]:
    found: dict[str, Any] = dict(schema.get("properties", {}))
    for sub in schema.get("allOf", []):
        found.update(_properties(sub))
    return found


def _fields(sb: Sandbox, schema: str) -> list[tuple[str, Any]]:
    """(field, value) for every property of a request schema, each a lone surrogate in turn,
    and for the properties of the objects its lists hold (a split order's items)."""
    out: list[tuple[str, Any]] = []
    for name, sub in sorted(_properties(sb.schemas.inlined(schema)).items()):
        out.append((name, "a" + LONE))
        items = _properties(sub.get("items", {})) if isinstance(sub.get("items"), dict) else {}
        out += [(f"{name}[0].{inner}", [{inner: LONE}]) for inner in sorted(items)]
    return out


def _shapes(sb: Sandbox) -> list[tuple[str, str, dict[str, Any], str]]:
    """(dialect, path, body, field) for every field of every v1 and v3 request schema."""
    shapes = []
    for op in ("create", "query", "close"):
        base = seed_create(sb, "LONE-1") if op == "create" else {"out_order_no": "LONE-1"}
        for field, value in _fields(sb, f"v1/{op}.req"):
            key = field.split("[")[0]
            shapes.append(("v1", V1 + op, {**base, key: value}, field))
    for op, path in V3_PATHS.items():
        base = v3_req_data(sb, "LONE-3")
        for field, value in _fields(sb, f"v3/{ENCRYPTED_OF.get(op, op)}.req"):
            body = v3_envelope({**base, field.split("[")[0]: value})
            shapes.append(("v3", path, body, f"req_data.{field}"))
    for field, value in _fields(sb, "v3/request"):
        shapes.append(("v3", V3_PATHS["query"], {**v3_envelope({}), field: value}, field))
    return shapes


def test_a_lone_surrogate_in_any_field_is_a_400_naming_it(
    http: httpx.Client, sb: Sandbox, paid: str
) -> None:
    shapes = _shapes(sb)
    assert len(shapes) > 100
    before = snapshot(sb)
    for dialect, path, body, field in shapes:
        raw = escaped(body)
        assert b"\\ud800" in raw
        response = post_v3(http, sb, path, raw) if dialect == "v3" else http.post(path, content=raw)
        assert_refused(response, dialect, f"{field} holds a lone surrogate")
    assert snapshot(sb) == before


# any code point, surrogates included (hypothesis leaves them out unless asked)
ANY_TEXT = st.text(st.characters(blacklist_categories=()), max_size=40)


@settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_any_text_in_any_field_is_answered_never_a_500(
    http: httpx.Client, sb: Sandbox, data: st.DataObject
) -> None:
    dialect, path, body, field = data.draw(st.sampled_from(_shapes(sb)), label="shape")
    text = data.draw(ANY_TEXT, label="text")
    body = _put(body, field, text)
    raw = escaped(body)
    response = post_v3(http, sb, path, raw) if dialect == "v3" else http.post(path, content=raw)
    assert response.status_code < 500, response.text
    if any(0xD800 <= ord(c) <= 0xDFFF for c in text):
        assert_refused(response, dialect, f"{field} holds a lone surrogate")


def _put(body: dict[str, Any], field: str, text: str) -> dict[str, Any]:
    """``body`` with ``text`` where ``field`` (``req_data.x``, ``x[0].y``) is."""
    parts = field.split(".")
    if parts[0] == "req_data" and len(parts) > 1:  # (the envelope's own req_data: below)
        return {**body, "req_data": _put(body["req_data"], ".".join(parts[1:]), text)}
    if "[0]" in parts[0]:
        return {**body, parts[0][:-3]: [{parts[1]: text}]}
    return {**body, parts[0]: text}


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("fail", {"reason": LONE}, "reason"),
        ("step", {"action": "fail", "reason": "x" + LONE}, "reason"),
        ("step", {"action": LONE}, "action"),
        ("notify", {"notify": {"mode": LONE}}, "notify.mode"),
        ("refund", {"amount": 1, "note": [LONE]}, "note[0]"),
        ("pay", {LONE: 1}, "\\ud800"),
    ],
)
def test_a_lone_surrogate_in_an_admin_body_is_a_400_naming_it(
    http: httpx.Client, sb: Sandbox, paid: str, path: str, body: dict[str, Any], field: str
) -> None:
    before = snapshot(sb)
    response = http.post(f"/sandbox/api/orders/{paid}/{path}", content=escaped(body))
    assert_refused(response, "admin", f"{field} holds a lone surrogate")
    assert snapshot(sb) == before


def test_a_surrogate_pair_is_one_character_and_welcome(http: httpx.Client, sb: Sandbox) -> None:
    body = escaped(seed_create(sb, "PAIR-1", order_info="\U0001f600 ok"))
    assert b"\\ud83d\\ude00" in body
    out = http.post(V1 + "create", content=body).json()
    assert out["code"] == "000000", out
    no = out["resp_data"]["pay_order_no"]
    order = http.get(f"/sandbox/api/orders/{no}").json()["order"]
    assert order["order_info"] == "\U0001f600 ok"


@pytest.mark.slow
def test_a_lone_surrogate_leaves_the_keep_alive_connection_serving(tmp_path: Any) -> None:
    with SandboxProcess(tmp_path / "data") as server:
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
        try:
            answers = []
            for out_order_no in (LONE, "KEEP-1"):
                body = json.dumps(
                    {"out_order_no": out_order_no, "total_amount": 1, "order_info": "k"}
                )
                conn.request("POST", V1 + "create", body, {"Content-Type": "application/json"})
                response = conn.getresponse()
                answers.append((response.status, json.loads(response.read())))
                if not answers[1:]:
                    first_socket = conn.sock
            assert conn.sock is first_socket  # the same connection answered both
        finally:
            conn.close()
    (status, refused), (ok_status, ok) = answers
    assert (status, refused["code"]) == (400, "SBX40001")
    assert "out_order_no holds a lone surrogate" in refused["msg"]
    assert (ok_status, ok["code"]) == (200, "000000")


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


def test_nesting_is_held_to_512_levels_on_every_python(http: httpx.Client, sb: Sandbox) -> None:
    """The sandbox's own limit, not the parser's (about 1,000 levels on Python 3.11, far more on
    later ones): the same body gets the same answer on every Python it runs on. The body's own
    object is the first level."""
    at_limit = json.dumps(seed_create(sb, "DEEP-512", extra="x"))
    at_limit = at_limit.replace('"x"', nested(511))
    answer = http.post(
        V1 + "create", content=at_limit, headers={"Content-Type": "application/json"}
    )
    assert answer.json()["code"] == "000000", answer.text
    before = snapshot(sb)
    for depth in (513, 1024, 5000):
        body = json.dumps(seed_create(sb, f"DEEP-{depth}", extra="x"))
        refused = http.post(
            V1 + "create",
            content=body.replace('"x"', nested(depth - 1)),
            headers={"Content-Type": "application/json"},
        )
        assert_refused(refused, "v1", "nested more than 512 deep")
    # and inside a field that holds a JSON string (v3's goods_field): the field is named
    deep = v3_req_data(sb, "DEEP-V3", goods_field=nested(513))
    refused = post_v3(http, sb, V3_PATHS["special_create"], dumps(v3_envelope(deep)))
    out = refused.json()
    assert out["code"] == "SBX10001" and "goods_field" in out["msg"], out
    assert "nested more than 512 deep" in out["msg"], out
    assert snapshot(sb) == before
    # the limit the error catalogue (and so docs/errors.md) states is the one held
    assert (
        MAX_NESTING == 512 and f"nested more than {MAX_NESTING} deep" in ERRORS["NOT_JSON"].meaning
    )
