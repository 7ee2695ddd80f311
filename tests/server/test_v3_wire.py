"""The v3 wire: signed requests in, signed responses out, verified as Lakala's SDKs verify them."""

from __future__ import annotations

import asyncio
import json
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography import x509
from starlette.applications import Starlette

from sandbox.client.transport import InProcessTransport
from sandbox.runtime import Sandbox
from sandbox.wire import signing
from tests.conftest import make_app
from tests.support import future14, v3_body, v3_post, v3_req_data, verify_v3_response


def served_certificate(http: httpx.Client) -> x509.Certificate:
    response = http.get("/sandbox/keys/platform.cer")
    assert response.status_code == 200
    assert response.content.startswith(b"-----BEGIN CERTIFICATE-----")
    return x509.load_pem_x509_certificate(response.content)


@pytest.mark.parametrize("path", ["special_create", "create"])
def test_signed_create_round_trip_verifies_with_served_certificate(
    http: httpx.Client, sb: Sandbox, path: str
) -> None:
    cert = served_certificate(http)
    response = v3_post(http, sb, path, v3_req_data(sb, f"V3-{path}", total_amount="1"))
    assert response.status_code == 200
    verify_v3_response(response, cert)
    assert response.headers["Lklapi-Appid"] == "OP00000003"
    out = response.json()
    assert out["code"] == "000000"
    data = out["resp_data"]
    assert data["out_order_no"] == f"V3-{path}"
    assert data["merchant_no"] == "82229007392000A"
    assert data["total_amount"] == "1"
    assert data["counter_url"].startswith("http://sandbox.test/b/pay?merchantNo=82229007392000A")


def test_key_order_inside_authorization_does_not_matter(http: httpx.Client, sb: Sandbox) -> None:
    raw = v3_body(v3_req_data(sb, "V3-ORDER"))
    timestamp, nonce = str(int(time.time())), "abcdefABCDEF"
    signature = signing.sign(
        sb.keys.merchant_key,
        signing.request_string("OP00000003", "00dfba8194c41b84cf", timestamp, nonce, raw),
    )
    # PHP/Go order differs from Java's; parse by key
    header = (
        f'LKLAPI-SHA256withRSA signature="{signature}", nonce_str="{nonce}",'
        f'timestamp="{timestamp}",serial_no="00dfba8194c41b84cf",appid="OP00000003"'
    )
    response = v3_post(http, sb, "special_create", body=raw, authorization=header)
    assert response.json()["code"] == "000000"
    verify_v3_response(response, served_certificate(http))


def test_query_and_close_speak_numeric_statuses(http: httpx.Client, sb: Sandbox) -> None:
    created = v3_post(
        http, sb, "special_create", v3_req_data(sb, "V3-Q", counter_param='{"pay_mode":"WECHAT"}')
    ).json()
    pay_order_no = created["resp_data"]["pay_order_no"]
    query = v3_post(http, sb, "query", {"merchant_no": "82229007392000A", "out_order_no": "V3-Q"})
    verify_v3_response(query, served_certificate(http))
    data = query.json()["resp_data"]
    assert data["order_status"] == "0"
    assert data["total_amount"] == 1
    assert data["order_trade_info_list"] == []

    assert http.post(f"/sandbox/api/orders/{pay_order_no}/pay").status_code == 200
    data = v3_post(
        http, sb, "query", {"merchant_no": "82229007392000A", "pay_order_no": pay_order_no}
    ).json()["resp_data"]
    assert data["order_status"] == "2"
    [trade] = data["order_trade_info_list"]
    assert trade["trade_type"] == "PAY" and trade["trade_status"] == "S"
    assert trade["pay_mode"] == "WECHAT" and trade["busi_type"] == "SCPAY"
    assert "log_No" in trade and "log_no" not in trade
    assert trade["trade_amount"] == 1

    closed = v3_post(
        http, sb, "close", {"merchant_no": "82229007392000A", "out_order_no": "V3-Q"}
    ).json()
    assert closed["code"] == "SBX20003"  # a paid order cannot be closed
    assert "cannot close" in closed["msg"]


def test_close_answers_status_7(http: httpx.Client, sb: Sandbox) -> None:
    v3_post(http, sb, "special_create", v3_req_data(sb, "V3-C"))
    out = v3_post(
        http, sb, "close", {"merchant_no": "82229007392000A", "out_order_no": "V3-C"}
    ).json()
    assert out["code"] == "000000"
    assert out["resp_data"]["order_status"] == "7"
    assert out["resp_data"]["out_order_no"] == "V3-C"


def test_errors_are_signed_too(http: httpx.Client, sb: Sandbox) -> None:
    response = v3_post(
        http, sb, "query", {"merchant_no": "82229007392000A", "out_order_no": "missing"}
    )
    assert response.json()["code"] == "SBX20002"
    verify_v3_response(response, served_certificate(http))


def test_strict_mode_shows_the_signed_string_on_mismatch(http: httpx.Client, sb: Sandbox) -> None:
    raw = v3_body(v3_req_data(sb, "V3-BAD"))
    header = signing.sign_request(sb.keys.merchant_key, "OP00000003", "00dfba8194c41b84cf", raw)
    tampered = raw.replace(b'"total_amount": 1', b'"total_amount": 2')
    out = v3_post(http, sb, "special_create", body=tampered, authorization=header).json()
    assert out["code"] == "SBX30002"
    assert "OP00000003\\n00dfba8194c41b84cf\\n" in out["msg"]
    assert '"total_amount": 2' in out["msg"]
    assert "lakala-sandbox merchant" in out["msg"]
    assert sb.engine.count() == 0


def test_warn_mode_accepts_and_says_why() -> None:
    app = make_app(signature="warn")
    sb = app.state.sandbox
    with httpx.Client(transport=InProcessTransport(app), base_url="http://s") as http:
        response = v3_post(http, sb, "special_create", v3_req_data(sb, "V3-W"), sign=False)
    assert response.json()["code"] == "000000"
    assert response.headers["X-Sandbox-Signature-Warning"].startswith("SBX30001")


def test_warn_mode_header_reads_in_english_and_names_the_serial_as_sent() -> None:
    app = make_app(signature="warn")
    sb = app.state.sandbox
    with httpx.Client(transport=InProcessTransport(app), base_url="http://s") as http:
        body = v3_body(v3_req_data(sb, "V3-W2", order_info="茶"))
        header = signing.sign_request(
            sb.keys.merchant_key, "OP00000003", "00dfba8194c41b84cf", body
        )
        response = http.post(
            "/api/v3/ccss/counter/order/special_create",
            content=body.replace("茶".encode(), "酒".encode()),  # not what was signed
            headers={"Authorization": header, "Content-Type": "application/json"},
        )
    assert response.json()["code"] == "000000"
    warning = response.headers["X-Sandbox-Signature-Warning"]
    assert warning.startswith("SBX30002 SIGNATURE_INVALID: signature does not verify")
    assert "serial 00dfba8194c41b84cf" in warning
    assert "\\u9152" in warning  # the body's own text, escaped: a header is ASCII


def test_off_mode_skips_the_check() -> None:
    app = make_app(signature="off")
    sb = app.state.sandbox
    with httpx.Client(transport=InProcessTransport(app), base_url="http://s") as http:
        response = v3_post(
            http,
            sb,
            "special_create",
            v3_req_data(sb, "V3-O"),
            authorization='LKLAPI-SHA256withRSA appid="x",signature="nope"',
        )
    assert response.json()["code"] == "000000"
    assert "X-Sandbox-Signature-Warning" not in response.headers


def test_apps_file_registers_another_certificate(tmp_path: Path) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    from sandbox.core.keys import _certificate

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    cert = _certificate(key, "another merchant", 0x1234ABCD)
    (tmp_path / "other.cer").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "apps.yaml").write_text(
        "apps:\n  - appid: OP00009999\n    certificate: other.cer\n"
    )
    app = make_app(apps_file=str(tmp_path / "apps.yaml"))
    sb = app.state.sandbox
    raw = v3_body(v3_req_data(sb, "V3-APP"))
    with httpx.Client(transport=InProcessTransport(app), base_url="http://s") as http:
        good = v3_post(
            http,
            sb,
            "special_create",
            body=raw,
            authorization=signing.sign_request(key, "OP00009999", "1234abcd", raw),
        )
        unknown = v3_post(
            http,
            sb,
            "special_create",
            body=raw,
            authorization=signing.sign_request(key, "OP00009999", "99", raw),
        )
    assert good.json()["code"] == "000000"
    assert good.headers["Lklapi-Appid"] == "OP00009999"
    assert unknown.json()["code"] == "SBX30004"


def test_apps_file_errors_name_the_problem(tmp_path: Path) -> None:
    (tmp_path / "apps.yaml").write_text("apps:\n  - appid: OP1\n    certificate: missing.cer\n")
    with pytest.raises(ValueError, match=r"apps\[0\]: cannot load certificate"):
        make_app(apps_file=str(tmp_path / "apps.yaml"))


def test_served_merchant_key_signs_requests_the_sandbox_accepts(
    http: httpx.Client, sb: Sandbox
) -> None:
    key = signing.load_private_key(http.get("/sandbox/keys/merchant_private_key.pem").content)
    merchant_cert = x509.load_pem_x509_certificate(http.get("/sandbox/keys/merchant.cer").content)
    assert signing.serial_hex(merchant_cert) == "dfba8194c41b84cf"
    raw = v3_body(v3_req_data(sb, "V3-KEY"))
    response = v3_post(
        http,
        sb,
        "special_create",
        body=raw,
        authorization=signing.sign_request(key, "OP00000003", "00dfba8194c41b84cf", raw),
    )
    assert response.json()["code"] == "000000"


def test_numbers_as_strings_are_accepted_like_lakalas_samples(
    http: httpx.Client, sb: Sandbox
) -> None:
    req = v3_req_data(
        sb,
        "V3-STR",
        total_amount="100",
        support_refund="1",
        support_cancel=0,
        order_efficient_time=future14(sb, 600),
    )
    out = v3_post(http, sb, "special_create", req).json()
    assert out["code"] == "000000"
    order = sb.engine.get(out["resp_data"]["pay_order_no"])
    assert order.total_amount == 100 and order.flag("support_refund")
    assert json.loads(json.dumps(order.data))["total_amount"] == 100


def test_fields_as_the_official_sdk_sends_them_are_accepted(
    http: httpx.Client, sb: Sandbox
) -> None:
    """The Java SDK sends ``sgn_info`` as a list and knows the ONLINE_WILDCARD scene."""
    req = v3_req_data(
        sb,
        "V3-SDK",
        sgn_info=["AGR-20240101-1", "AGR-20240101-2"],
        order_scene_field={
            "order_scene_type": "ONLINE_WILDCARD",
            "scene_info": '{"userId":"u-1","userCreateDate":"20240101000000"}',
            "encrypted_field": '{"email":"payer@example.com"}',
        },
    )
    out = v3_post(http, sb, "special_create", req).json()
    assert out["code"] == "000000", out
    order = sb.engine.get(out["resp_data"]["pay_order_no"])
    assert order.data["sgn_info"] == ["AGR-20240101-1", "AGR-20240101-2"]
    repeated = v3_post(
        http, sb, "special_create", {**req, "out_order_no": "V3-SDK-2", "sgn_info": ["A", "A"]}
    ).json()
    assert repeated["code"] == "SBX10001" and "sgn_info" in repeated["msg"]
    assert sb.engine.count() == 1


def test_answers_signed_alone_or_among_others_all_verify(
    app: Starlette, http: httpx.Client, sb: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A v3 call with no other in progress is signed on the loop (no hand-over to a signing
    thread); calls made at once hand their signatures over, so the loop serves the others
    meanwhile. Either way every answer verifies, and each caller gets its own."""
    handed_over: list[str] = []
    executor = signing.executor()

    class Counting(type(executor)):  # type: ignore[misc]
        def submit(self, fn, /, *args, **kwargs):  # type: ignore[no-untyped-def]
            handed_over.append(args[1])  # (the appid of the answer)
            return executor.submit(fn, *args, **kwargs)

    monkeypatch.setattr(signing, "executor", lambda: Counting(max_workers=1))
    cert = served_certificate(http)
    alone = v3_post(http, sb, "query", {"merchant_no": "82229007392000A", "out_order_no": "NO"})
    verify_v3_response(alone, cert)
    assert handed_over == []

    # Six threads' calls, let into the app together: threads started at once may still reach
    # it one after another on a busy machine, each then alone, and rightly signed on the loop.
    arrived, everyone = [0], asyncio.Event()

    async def together(scope: Any, receive: Any, send: Any) -> None:
        arrived[0] += 1
        if arrived[0] == 6:
            everyone.set()
        await asyncio.wait_for(everyone.wait(), 30)
        await app(scope, receive, send)

    with httpx.Client(transport=InProcessTransport(together), base_url=http.base_url) as gated:

        def create(i: int) -> httpx.Response:
            return v3_post(gated, sb, "special_create", v3_req_data(sb, f"V3-AT-ONCE-{i}"))

        with ThreadPoolExecutor(max_workers=6) as pool:
            answers = list(pool.map(create, range(6), timeout=60))
    for i, answer in enumerate(answers):
        verify_v3_response(answer, cert)
        assert answer.json()["resp_data"]["out_order_no"] == f"V3-AT-ONCE-{i}"
    assert handed_over, "calls made at once were all signed on the loop"
