"""LakalaClient / AsyncLakalaClient: signed requests, verified answers, typed errors."""

from __future__ import annotations

import asyncio
import contextlib
import http.server
import ipaddress
import json
import socket
import ssl
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import certifi
import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from starlette.applications import Starlette

from sandbox.client.clients import (
    ENV_VARS,
    ENVIRONMENTS,
    AsyncLakalaClient,
    LakalaAPIError,
    LakalaClient,
    LakalaConfigError,
    LakalaHTTPError,
    LakalaResponseError,
    LakalaSchemaError,
    LakalaSignatureError,
    LakalaTimeout,
    LakalaTransportError,
)
from sandbox.client.transport import MAX_ANSWER_BYTES, InProcessTransport
from sandbox.core.keys import KeyStore
from sandbox.runtime import Sandbox
from sandbox.testing.plugin import ServerThread
from sandbox.wire import signing
from tests.conftest import make_app
from tests.paths import ROOT
from tests.servers import SandboxProcess, loopback
from tests.support import future14, import_searches, self_signed

CREATE = "/api/v3/ccss/counter/order/special_create"


@contextlib.contextmanager
def in_process_client(app: Starlette, sb: Sandbox, **settings: Any) -> Iterator[LakalaClient]:
    """A client of the in-process sandbox ``app``, with its keys."""
    transport = InProcessTransport(app)
    with LakalaClient(
        base_url="http://sandbox.test",
        transport=transport,
        private_key=sb.keys.merchant_key,
        certificate=sb.keys.platform_cert,
        **settings,
    ) as c:
        yield c
    transport.close()


@pytest.fixture
def client(app: Starlette, sb: Sandbox) -> Iterator[LakalaClient]:
    with in_process_client(app, sb) as c:
        yield c


def test_client_creates_queries_and_closes_against_the_sandbox_in_process(
    client: LakalaClient, sb: Sandbox
) -> None:
    created = client.create(
        out_order_no="CLIENT-1",
        total_amount=100,
        order_info="Tea",
        notify_url="http://127.0.0.1:9/notify",
    )
    assert created["out_order_no"] == "CLIENT-1" and created["total_amount"] == "100"
    assert created["merchant_no"] == "82229007392000A"  # the sandbox preset's test merchant
    order = sb.engine.get(created["pay_order_no"])
    assert order.data["notify_url"] == "http://127.0.0.1:9/notify"
    assert order.data["term_no"] == "D9296400"
    assert client.query(out_order_no="CLIENT-1")["order_status"] == "0"
    sb.engine.apply(created["pay_order_no"], "pay", pay_mode="WECHAT")
    paid = client.query(pay_order_no=created["pay_order_no"])
    assert paid["order_status"] == "2"
    assert paid["order_trade_info_list"][0]["pay_mode"] == "WECHAT"
    with pytest.raises(LakalaAPIError) as error:
        client.close(out_order_no="CLIENT-1")
    assert error.value.code == "SBX20003" and "cannot close" in error.value.msg


def test_an_in_process_answer_is_a_whole_httpx_response(app: Starlette) -> None:
    """What an httpx client over InProcessTransport gives back reads like one off a socket,
    ``elapsed`` included (httpx sets it when the answer's stream is closed)."""
    with httpx.Client(transport=InProcessTransport(app), base_url="http://t") as http:
        answer = http.get("/healthz")
        assert answer.status_code == 200 and answer.json()
        assert answer.elapsed.total_seconds() >= 0
        with http.stream("GET", "/healthz") as streamed:
            assert streamed.read() == answer.content


def test_repeating_a_create_gets_the_same_order_back(app: Starlette, sb: Sandbox) -> None:
    """A retry (say, after a timeout) of a create that left out order_efficient_time sends the
    expiry the first try was given, so the sandbox sees an identical repeat, not a clash."""
    with in_process_client(app, sb, clock=sb.clock) as client:
        first = client.create(out_order_no="RETRY-1", total_amount=100, order_info="Tea")
        sb.clock.advance(90)  # the default expiry would be 90 s later now
        again = client.create(out_order_no="RETRY-1", total_amount=100, order_info="Tea")
        other = client.create(out_order_no="RETRY-2", total_amount=100, order_info="Tea")
        with pytest.raises(LakalaAPIError) as clash:  # a different request is still refused
            client.create(out_order_no="RETRY-1", total_amount=200, order_info="Tea")
    assert again["pay_order_no"] == first["pay_order_no"]
    assert again["order_efficient_time"] == first["order_efficient_time"]
    assert other["order_efficient_time"] > first["order_efficient_time"]
    assert clash.value.code == "SBX20001"
    assert sb.engine.count() == 2


def test_client_raw_call_returns_the_whole_answer(client: LakalaClient, sb: Sandbox) -> None:
    reply = client.call(
        CREATE,
        {
            "out_order_no": "RAW-1",
            "merchant_no": "82229007392000A",
            "total_amount": "1",
            "order_info": "raw",
            "order_efficient_time": future14(sb),
        },
    )
    assert reply.code == "000000" and reply.msg == "操作成功"
    assert reply.resp_data is not None and reply.resp_data["out_order_no"] == "RAW-1"
    assert reply.exchange.status == 200
    assert reply.exchange.response_headers["lklapi-serial"] == sb.keys.platform_serial
    sent = json.loads(reply.exchange.request_body)
    assert sent["version"] == "3.0" and sent["req_data"]["total_amount"] == "1"


def test_client_refuses_a_request_that_breaks_the_schema_before_sending(sb: Sandbox) -> None:
    sent: list[httpx.Request] = []
    client = LakalaClient(
        transport=httpx.MockTransport(lambda r: sent.append(r) or httpx.Response(500)),
        private_key=sb.keys.merchant_key,
        certificate=sb.keys.platform_cert,
    )
    with pytest.raises(LakalaSchemaError) as error:
        client.create(out_order_no="X" * 33, total_amount=1, order_info="too long a number")
    assert error.value.direction == "request"
    assert error.value.field == "req_data.out_order_no"
    assert error.value.rule == "must be at most 32 characters (got 33)"
    with pytest.raises(LakalaSchemaError, match="out_order_no or pay_order_no: is required"):
        client.query()
    assert sent == []


def test_client_signs_what_it_sends(sb: Sandbox) -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(503, text="down for maintenance")

    client = LakalaClient(
        base_url="https://lakala.test/sit",
        transport=httpx.MockTransport(handler),
        private_key=sb.keys.merchant_key,
        certificate=sb.keys.platform_cert,
    )
    with pytest.raises(LakalaHTTPError):
        client.query(out_order_no="SIGNED-1", merchant_no="M1")
    request = seen[0]
    assert str(request.url) == "https://lakala.test/sit/api/v3/ccss/counter/order/query"
    fields = signing.parse_authorization(request.headers["authorization"])
    assert (fields["appid"], fields["serial_no"]) == ("OP00000003", "00dfba8194c41b84cf")
    signed = signing.request_string(
        fields["appid"],
        fields["serial_no"],
        fields["timestamp"],
        fields["nonce_str"],
        request.content,
    )
    assert signing.verify(
        sb.keys.merchant_cert.public_key(),
        signed,  # type: ignore[arg-type]
        fields["signature"],
    )
    assert json.loads(request.content)["req_data"] == {
        "merchant_no": "M1",
        "out_order_no": "SIGNED-1",
    }


# -- answers that are wrong, one way each ----------------------------------------------------


def _create_answer(sb: Sandbox) -> dict[str, Any]:
    return {
        "code": "000000",
        "msg": "操作成功",
        "resp_time": sb.clock.now14(),
        "resp_data": {
            "merchant_no": "82229007392000A",
            "channel_id": "25",
            "out_order_no": "MOCK-1",
            "order_create_time": sb.clock.now14(),
            "order_efficient_time": future14(sb),
            "pay_order_no": "21092211012001970631000488056",
            "total_amount": "1",
            "counter_url": "https://pay.wsmsd.cn/r/0000?payOrderNo=21092211012001970631000488056",
        },
    }


def _signed(sb: Sandbox, body: bytes, status: int = 200, **changes: str | None) -> httpx.Response:
    headers = signing.response_headers(
        sb.keys.platform_key, "OP00000003", sb.keys.platform_serial, body
    )
    for name, value in changes.items():
        name = name.replace("_", "-")
        if value is None:
            headers.pop(name)
        else:
            headers[name] = value
    return httpx.Response(status, headers=headers, content=body)


def _body(sb: Sandbox, change: Callable[[dict[str, Any]], None] = lambda m: None) -> bytes:
    message = _create_answer(sb)
    change(message)
    return json.dumps(message, ensure_ascii=False).encode()


def _other_cert_serial() -> str:
    return signing.serial_hex(KeyStore.load(None, appid="X", serial_no="0abc").merchant_cert)


BAD_ANSWERS: list[tuple[str, Callable[[Sandbox], httpx.Response], type[Exception], str]] = [
    *[
        (
            f"no {h}",
            lambda sb, h=h: _signed(sb, _body(sb), **{h.replace("-", "_"): None}),
            LakalaSignatureError,
            f"{h.lower()}: is required",
        )
        for h in signing.RESPONSE_HEADERS
    ],
    (
        "signature over other bytes",
        lambda sb: httpx.Response(
            200,
            headers=_signed(sb, _body(sb)).headers,
            content=_body(sb, lambda m: m["resp_data"].update(total_amount="2")),
        ),
        LakalaSignatureError,
        "lklapi-signature: does not verify with the platform certificate",
    ),
    (
        "signature not base64",
        lambda sb: _signed(sb, _body(sb), Lklapi_Signature="%%%"),
        LakalaSignatureError,
        "lklapi-signature: '%%%' does not match",
    ),
    (
        "serial of another certificate",
        lambda sb: _signed(sb, _body(sb), Lklapi_Serial=_other_cert_serial()),
        LakalaSignatureError,
        "lklapi-serial: is ",
    ),
    (
        "not JSON",
        lambda sb: _signed(sb, b"<html>gateway</html>"),
        LakalaResponseError,
        "response body: is not JSON",
    ),
    (
        "a JSON array",
        lambda sb: _signed(sb, b"[]"),
        LakalaResponseError,
        "response body: must be a JSON object (got list)",
    ),
    (
        "HTTP 500 text",
        lambda sb: httpx.Response(500, text="Internal Server Error"),
        LakalaHTTPError,
        "HTTP 500: ",
    ),
    (
        "HTTP 502 from a gateway",
        lambda sb: httpx.Response(502, html="<h1>Bad Gateway</h1>"),
        LakalaHTTPError,
        "HTTP 502: ",
    ),
    (
        "HTTP 503 signed envelope",
        lambda sb: _signed(
            sb,
            json.dumps(
                {
                    "code": "SBX50001",
                    "msg": "down",
                    "resp_time": sb.clock.now14(),
                    "resp_data": None,
                }
            ).encode(),
            503,
        ),
        LakalaHTTPError,
        "SBX50001: down",
    ),
    (
        "HTTP 404 plain",
        lambda sb: httpx.Response(404, text="no route"),
        LakalaHTTPError,
        "HTTP 404: ",
    ),
    (
        "resp_data without pay_order_no",
        lambda sb: _signed(sb, _body(sb, lambda m: m["resp_data"].pop("pay_order_no"))),
        LakalaSchemaError,
        "resp_data.pay_order_no: is required",
    ),
    (
        "total_amount of the wrong type",
        lambda sb: _signed(sb, _body(sb, lambda m: m["resp_data"].update(total_amount=[1]))),
        LakalaSchemaError,
        "resp_data.total_amount",
    ),
    (
        "envelope without resp_time",
        lambda sb: _signed(sb, _body(sb, lambda m: m.pop("resp_time"))),
        LakalaSchemaError,
        "resp_time: is required",
    ),
    (
        "a business error",
        lambda sb: _signed(
            sb,
            json.dumps(
                {
                    "code": "BBS11184",
                    "msg": "该商户已停用",
                    "resp_time": sb.clock.now14(),
                    "resp_data": None,
                },
                ensure_ascii=False,
            ).encode(),
        ),
        LakalaAPIError,
        "Lakala answered BBS11184: 该商户已停用",
    ),
]


@pytest.mark.parametrize(
    ("case", "answer", "error", "text"), BAD_ANSWERS, ids=[c[0] for c in BAD_ANSWERS]
)
def test_client_raises_a_typed_error_for_a_bad_answer(
    sb: Sandbox,
    case: str,
    answer: Callable[[Sandbox], httpx.Response],
    error: type[Exception],
    text: str,
) -> None:
    client = LakalaClient(
        transport=httpx.MockTransport(lambda request: answer(sb)),
        private_key=sb.keys.merchant_key,
        certificate=sb.keys.platform_cert,
    )
    with pytest.raises(error) as raised:
        client.create(out_order_no="MOCK-1", total_amount=1, order_info="mock")
    assert text in str(raised.value)
    assert "PRIVATE KEY" not in str(raised.value)


def test_schema_error_names_direction_schema_field_and_rule(sb: Sandbox) -> None:
    answer = _signed(sb, _body(sb, lambda m: m["resp_data"].update(pay_order_no="ABC")))
    client = LakalaClient(
        transport=httpx.MockTransport(lambda request: answer),
        private_key=sb.keys.merchant_key,
        certificate=sb.keys.platform_cert,
    )
    with pytest.raises(LakalaSchemaError) as raised:
        client.create(out_order_no="MOCK-1", total_amount=1, order_info="mock")
    assert (raised.value.direction, raised.value.schema) == ("response", "v3/special_create.resp")
    assert raised.value.field == "resp_data.pay_order_no"
    assert raised.value.rule == "'ABC' does not match ^[0-9]{1,64}$"


@pytest.mark.parametrize(
    ("raised", "error", "text"),
    [
        (
            httpx.ReadTimeout("read timed out"),
            LakalaTimeout,
            "no answer from http://127.0.0.1:8090",
        ),
        (httpx.ConnectTimeout("connect timed out"), LakalaTimeout, "within 10s"),
        (httpx.ConnectError("connection refused"), LakalaTransportError, "cannot reach"),
        (httpx.RemoteProtocolError("peer closed"), LakalaTransportError, "RemoteProtocolError"),
    ],
)
def test_client_turns_transport_failures_into_typed_errors(
    sb: Sandbox, raised: Exception, error: type[Exception], text: str
) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise raised

    client = LakalaClient(
        transport=httpx.MockTransport(handler),
        private_key=sb.keys.merchant_key,
        certificate=sb.keys.platform_cert,
    )
    with pytest.raises(error, match=text):
        client.query(out_order_no="T-1")


def test_client_times_out_on_a_server_that_never_answers(sb: Sandbox) -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        port = listener.getsockname()[1]
        client = LakalaClient(
            base_url=f"http://127.0.0.1:{port}",
            timeout=0.3,
            private_key=sb.keys.merchant_key,
            certificate=sb.keys.platform_cert,
        )
        with client, pytest.raises(LakalaTimeout, match="within 0.3s"):
            client.query(out_order_no="SILENT-1")


@pytest.mark.parametrize(
    "answer",
    [
        httpx.Response(200, content=b" " * (MAX_ANSWER_BYTES + 1)),
        httpx.Response(200, content=iter([b" " * 65536] * 100)),  # streamed, no Content-Length
    ],
    ids=["announced", "streamed"],
)
def test_an_answer_past_the_size_cap_is_refused(sb: Sandbox, answer: httpx.Response) -> None:
    client = LakalaClient(
        transport=httpx.MockTransport(lambda request: answer),
        private_key=sb.keys.merchant_key,
        certificate=sb.keys.platform_cert,
    )
    with pytest.raises(LakalaResponseError) as raised:
        client.query(out_order_no="BIG-1")
    assert raised.value.field == "response body"
    assert f"larger than {MAX_ANSWER_BYTES} bytes" in str(raised.value)


def test_the_default_expiry_is_chosen_once_per_order(sb: Sandbox) -> None:
    client = LakalaClient(
        transport=httpx.MockTransport(lambda r: httpx.Response(500)),
        private_key=sb.keys.merchant_key,
        certificate=sb.keys.platform_cert,
    )
    first = client.default_expiry("M1", "E-1", lambda: "20300101000000")
    assert client.default_expiry("M1", "E-1", lambda: "20310101000000") == first
    assert client.default_expiry("M1", "E-1") == first
    assert (
        client.request_data(
            "create", out_order_no="E-1", total_amount=1, order_info="x", merchant_no="M1"
        )["order_efficient_time"]
        == first
    )
    assert client.default_expiry("M2", "E-1", lambda: "20310101000000") == "20310101000000"


# -- a real port, and keys handed out by the sandbox -----------------------------------------


@pytest.mark.slow
def test_client_against_a_served_sandbox_downloads_its_keys(tmp_path: Path) -> None:
    with SandboxProcess(tmp_path / "data") as server, LakalaClient(base_url=server.url) as client:
        created = client.create(out_order_no="PORT-1", total_amount=1, order_info="over a port")
        assert created["counter_url"].startswith(server.url + "/b/pay?")
        paid = loopback.post(f"{server.url}/sandbox/api/orders/{created['pay_order_no']}/pay")
        assert paid.status_code == 200
        assert client.query(out_order_no="PORT-1")["order_status"] == "2"
        with pytest.raises(LakalaAPIError, match="SBX20003"):
            client.close(out_order_no="PORT-1")
        served = (tmp_path / "data" / "platform.cer").read_bytes()
        assert client.certificate is not None
        assert signing.serial_hex(client.certificate) == signing.serial_hex(
            signing.load_certificate(served)
        )


def test_a_sandbox_that_hands_out_no_keys_is_a_config_error() -> None:
    client = LakalaClient(transport=httpx.MockTransport(lambda r: httpx.Response(404)))
    with pytest.raises(
        LakalaConfigError,
        match="private_key: the sandbox at http://127.0.0.1:8090 did not hand out",
    ):
        client.query(out_order_no="K-1")


# -- the async client ------------------------------------------------------------------------


def test_async_client_does_the_same_in_process(app: Starlette, sb: Sandbox) -> None:
    async def scenario() -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
        async with AsyncLakalaClient(
            base_url="http://sandbox.test", transport=httpx.ASGITransport(app=app)
        ) as client:
            created = await client.create(
                out_order_no="ASYNC-1", total_amount=5, order_info="async"
            )
            queried = await client.query(out_order_no="ASYNC-1")
            closed = await client.close(pay_order_no=created["pay_order_no"])
            with pytest.raises(LakalaAPIError, match="SBX20002"):
                await client.query(out_order_no="ASYNC-MISSING")
            return created, queried, closed

    created, queried, closed = asyncio.run(scenario())
    assert queried["pay_order_no"] == created["pay_order_no"] and queried["order_status"] == "0"
    assert closed["order_status"] == "7"
    assert sb.engine.get(created["pay_order_no"]).status == 7


def test_an_async_call_searches_the_import_path_for_nothing(app: Starlette) -> None:
    """httpx (in-process) and httpcore (on a socket) import sniffio on every async request:
    installed with the package, it is found in ``sys.modules``, not searched for again."""
    searched: list[str] = []

    async def calls(client: AsyncLakalaClient) -> None:
        async with client:
            await client.create(out_order_no="ASYNC-IMPORT", total_amount=5, order_info="a")
            with import_searches() as during:
                for _ in range(3):
                    await client.query(out_order_no="ASYNC-IMPORT")
            searched.extend(during)

    transport = httpx.ASGITransport(app=app)
    asyncio.run(calls(AsyncLakalaClient(base_url="http://sandbox.test", transport=transport)))
    served = ServerThread(make_app()).start()
    try:
        asyncio.run(calls(AsyncLakalaClient(base_url=served.url)))
    finally:
        served.stop()
    assert searched == []


def test_async_client_raises_the_same_typed_errors(sb: Sandbox) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("slow")

    async def scenario() -> None:
        client = AsyncLakalaClient(
            transport=httpx.MockTransport(handler),
            private_key=sb.keys.merchant_key,
            certificate=sb.keys.platform_cert,
        )
        with pytest.raises(LakalaTimeout):
            await client.query(out_order_no="A-T")
        await client.aclose()

    asyncio.run(scenario())


# -- verify_notify ---------------------------------------------------------------------------


def _notify_body(sb: Sandbox) -> bytes:
    return json.dumps(
        {
            "pay_order_no": "21092211012001970631000488056",
            "out_order_no": "N-1",
            "channel_id": "25",
            "merchant_no": "82229007392000A",
            "term_no": "D9296400",
            "order_status": "2",
            "order_info": "tea",
            "total_amount": 1,
            "order_create_time": sb.clock.now14(),
            "order_efficient_time": future14(sb),
            "split_mark": None,
            "split_info": None,
            "counter_remark": None,
            "order_trade_info": {
                "trade_no": "2024112011000000001",
                "log_no": "66112000000001",
                "trade_type": "PAY",
                "trade_status": "S",
                "trade_amount": 1,
                "trade_time": sb.clock.now14(),
                "pay_mode": "ALIPAY",
            },
        },
        ensure_ascii=False,
    ).encode()


def _notify_client(sb: Sandbox) -> LakalaClient:
    return LakalaClient(
        transport=httpx.MockTransport(lambda r: httpx.Response(500)),
        private_key=sb.keys.merchant_key,
        certificate=sb.keys.merchant_cert,
        notify_certificate=sb.keys.platform_cert,
    )


def test_verify_notify_returns_the_checked_notify(sb: Sandbox) -> None:
    body = _notify_body(sb)
    header, _ = signing.notify_authorization(sb.keys.platform_key, body)
    notify = _notify_client(sb).verify_notify({"Authorization": header}, body)
    assert notify["order_status"] == "2" and notify["order_trade_info"]["trade_status"] == "S"
    # headers in any casing, the body as text
    assert (
        _notify_client(sb).verify_notify({"AUTHORIZATION": header}, body.decode())["out_order_no"]
        == "N-1"
    )


@pytest.mark.parametrize(
    ("case", "prepare", "error", "text"),
    [
        (
            "no Authorization",
            lambda sb, body: ({}, body),
            LakalaSignatureError,
            "authorization: is required",
        ),
        (
            "another scheme",
            lambda sb, body: ({"Authorization": "Bearer x"}, body),
            LakalaSignatureError,
            "authorization",
        ),
        (
            "tampered body",
            lambda sb, body: (
                {"Authorization": signing.notify_authorization(sb.keys.platform_key, body)[0]},
                body.replace(b'"total_amount": 1,', b'"total_amount": 100,'),
            ),
            LakalaSignatureError,
            "authorization.signature: does not verify with the notify certificate",
        ),
        (
            "signed by the wrong key",
            lambda sb, body: (
                {"Authorization": signing.notify_authorization(sb.keys.merchant_key, body)[0]},
                body,
            ),
            LakalaSignatureError,
            "does not verify",
        ),
        (
            "not JSON",
            lambda sb, body: (
                {"Authorization": signing.notify_authorization(sb.keys.platform_key, b"paid!")[0]},
                b"paid!",
            ),
            LakalaResponseError,
            "notify body: is not JSON",
        ),
        (
            "missing order_trade_info",
            lambda sb, body: _resigned(sb, body, "order_trade_info"),
            LakalaSchemaError,
            "order_trade_info: is required",
        ),
    ],
)
def test_verify_notify_refuses_what_does_not_hold(
    sb: Sandbox,
    case: str,
    prepare: Callable[[Sandbox, bytes], tuple[dict[str, str], bytes]],
    error: type[Exception],
    text: str,
) -> None:
    headers, body = prepare(sb, _notify_body(sb))
    with pytest.raises(error, match=text.replace(".", r"\.")):
        _notify_client(sb).verify_notify(headers, body)


def _resigned(sb: Sandbox, body: bytes, drop: str) -> tuple[dict[str, str], bytes]:
    message = json.loads(body)
    message.pop(drop)
    raw = json.dumps(message).encode()
    return {"Authorization": signing.notify_authorization(sb.keys.platform_key, raw)[0]}, raw


# -- settings ----------------------------------------------------------------------------------


@pytest.fixture
def key_files(tmp_path: Path, sb: Sandbox) -> dict[str, str]:
    key, cert = tmp_path / "merchant.pem", tmp_path / "lkl-apigw-v2.cer"
    key.write_bytes(sb.keys.pem("merchant_private_key.pem"))
    cert.write_bytes(sb.keys.pem("platform.cer"))
    return {"LAKALA_PRIVATE_KEY_FILE": str(key), "LAKALA_CERTIFICATE_FILE": str(cert)}


def test_from_env_reads_the_lakala_variables(key_files: dict[str, str]) -> None:
    env = {
        "LAKALA_ENV": "lakala-test",
        "LAKALA_APPID": "OP00009999",
        "LAKALA_SERIAL_NO": "0123abcd",
        "LAKALA_MERCHANT_NO": "822000000000001",
        "LAKALA_TERM_NO": "T0000001",
        "LAKALA_TIMEOUT": "3.5",
        **key_files,
    }
    client = LakalaClient.from_env(env)
    s = client.settings
    assert (s.environment, s.base_url, s.appid, s.serial_no) == (
        "lakala-test",
        "https://test.wsmsd.cn/sit",
        "OP00009999",
        "0123abcd",
    )
    assert (s.merchant_no, s.term_no, s.timeout) == ("822000000000001", "T0000001", 3.5)
    assert s.private_key is not None and s.certificate is not None
    assert s.notify_certificate is None  # the platform certificate verifies notifies too
    assert "PRIVATE" not in repr(s) and "private_key" not in repr(s)


@pytest.mark.parametrize(
    ("env", "base_url"),
    [
        ({}, "http://127.0.0.1:8090"),
        ({"LAKALA_ENV": "lakala-production"}, "https://s2.lakala.com"),
        (
            {"LAKALA_ENV": "lakala-test", "LAKALA_BASE_URL": "http://127.0.0.1:9999/"},
            "http://127.0.0.1:9999",
        ),
    ],
)
def test_one_setting_picks_the_host(
    key_files: dict[str, str], env: dict[str, str], base_url: str
) -> None:
    ids = {"LAKALA_APPID": "OP1", "LAKALA_SERIAL_NO": "01"} if env else {}
    assert LakalaClient.from_env({**env, **ids, **key_files}).base_url == base_url


def test_keyword_arguments_win_over_the_environment(key_files: dict[str, str]) -> None:
    client = LakalaClient.from_env(
        {"LAKALA_MERCHANT_NO": "FROM-ENV", **key_files}, merchant_no="FROM-ARG"
    )
    assert client.merchant_no == "FROM-ARG"


@pytest.mark.parametrize(
    ("env", "text"),
    [
        (
            {"LAKALA_ENV": "lakala-test"},
            "the lakala-test environment needs appid, serial_no, "
            "private_key, certificate (set LAKALA_APPID, "
            "LAKALA_SERIAL_NO, LAKALA_PRIVATE_KEY_FILE, "
            "LAKALA_CERTIFICATE_FILE",
        ),
        (
            {"LAKALA_ENV": "staging"},
            "environment must be one of sandbox, lakala-test, lakala-production, not 'staging'",
        ),
        ({"LAKALA_TIMEOUT": "soon"}, "LAKALA_TIMEOUT must be seconds, not 'soon'"),
        ({"LAKALA_TIMEOUT": "0"}, "timeout must be positive seconds"),
        (
            {"LAKALA_PRIVATE_KEY_FILE": "/nonexistent/key.pem"},
            "private_key: cannot read /nonexistent/key.pem",
        ),
        (
            {"LAKALA_CERTIFICATE": "-----BEGIN CERTIFICATE-----\nnot really\n"},
            "certificate: cannot load a certificate from the PEM text given",
        ),
    ],
)
def test_bad_settings_are_config_errors_that_name_the_setting(
    env: dict[str, str], text: str
) -> None:
    with pytest.raises(LakalaConfigError) as raised:
        LakalaClient.from_env(env)
    assert text in str(raised.value)


def test_a_broken_private_key_is_not_echoed(tmp_path: Path) -> None:
    secret = "-----BEGIN PRIVATE KEY-----\nTOPSECRETMATERIAL\n-----END PRIVATE KEY-----\n"
    with pytest.raises(LakalaConfigError) as raised:
        LakalaClient(private_key=secret)
    assert "TOPSECRETMATERIAL" not in str(raised.value)
    assert "private_key: cannot load an RSA private key from the PEM text given" in str(
        raised.value
    )


def test_merchant_no_is_needed_somewhere(key_files: dict[str, str]) -> None:
    client = LakalaClient.from_env(
        {"LAKALA_ENV": "lakala-test", "LAKALA_APPID": "OP1", "LAKALA_SERIAL_NO": "01", **key_files},
        transport=httpx.MockTransport(lambda r: httpx.Response(500)),
    )
    with pytest.raises(
        LakalaConfigError, match="merchant_no: pass merchant_no= or set LAKALA_MERCHANT_NO"
    ):
        client.query(out_order_no="NO-MERCHANT")


def test_one_client_serves_threads(client: LakalaClient) -> None:
    errors: list[BaseException] = []

    def create(i: int) -> None:
        try:
            client.create(out_order_no=f"THREAD-{i}", total_amount=1, order_info="t")
        except BaseException as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=create, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert errors == []
    assert {client.query(out_order_no=f"THREAD-{i}")["out_order_no"] for i in range(6)} == {
        f"THREAD-{i}" for i in range(6)
    }


def test_every_client_variable_is_documented() -> None:
    section = (ROOT / "docs" / "client.md").read_text(encoding="utf-8")
    for name in ENV_VARS:
        assert f"`{name}`" in section, f"{name} is not in the README"
    for environment, host in ENVIRONMENTS.items():
        assert f"| `{environment}`" in section and f"`{host}`" in section


@contextlib.contextmanager
def https_server(folder: Path) -> Iterator[tuple[str, Path]]:
    """An HTTPS server on loopback answering 200 ``{}`` to any POST, its certificate self-signed
    for 127.0.0.1: its URL, and that certificate's PEM file."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    cert = self_signed(
        key,
        "127.0.0.1",
        x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
        x509.BasicConstraints(ca=True, path_length=None),
    )
    cert_file, key_file = folder / "server.pem", folder / "server.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("content-length", 0)))
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_file, key_file)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"https://127.0.0.1:{server.server_address[1]}", cert_file
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def test_clients_share_one_tls_context_and_it_still_verifies(
    sb: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """httpx reads the whole CA bundle for each client it builds (30-40 ms of CPU): the
    package's clients share one context per process instead, and it verifies as httpx's would,
    ``SSL_CERT_FILE`` included."""
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    made: list[dict[str, Any]] = []
    create_default_context = ssl.create_default_context

    def counted(*args: Any, **kwargs: Any) -> ssl.SSLContext:
        made.append(kwargs)
        return create_default_context(*args, **kwargs)

    monkeypatch.setattr(ssl, "create_default_context", counted)
    keys = {"private_key": sb.keys.merchant_key, "certificate": sb.keys.platform_cert}
    order = {
        "out_order_no": "TLS-1",
        "merchant_no": "82229007392000A",
        "total_amount": "1",
        "order_info": "tls",
        "order_efficient_time": future14(sb),
    }
    with https_server(tmp_path) as (url, cert_file):
        clients = [LakalaClient(base_url=url, **keys) for _ in range(5)]
        async_client = AsyncLakalaClient(base_url=url, **keys)
        # the CA bundle does not hold a self-signed certificate: refused, as httpx refuses it
        with pytest.raises(LakalaTransportError, match="CERTIFICATE_VERIFY_FAILED"):
            clients[0].send(CREATE, order)
        monkeypatch.setenv("SSL_CERT_FILE", str(cert_file))
        trusting = [LakalaClient(base_url=url, **keys) for _ in range(5)]
        assert trusting[0].send(CREATE, order).status == 200
        assert trusting[-1].send(CREATE, order).status == 200
        for client in clients + trusting:
            client.shutdown()
        asyncio.run(async_client.aclose())
    # eleven clients: one context from the CA bundle (none, if this process made it before),
    # one from SSL_CERT_FILE
    assert [k.get("cafile") for k in made] in ([str(cert_file)], [certifi.where(), str(cert_file)])
