"""special_create_encry (全报文加密): the whole body SM4-encrypted as base64 text, the signature
over that text as sent; decrypted, it is special_create. Bad bodies are refused, naming what failed,
with nothing stored."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import httpx
import pytest

from sandbox.client.clients import LakalaClient
from sandbox.client.transport import InProcessTransport
from sandbox.runtime import Sandbox
from sandbox.tools.cli import main
from sandbox.wire import signing, sm4
from tests.conftest import make_app
from tests.support import snapshot, v3_body, v3_post, v3_req_data, verify_v3_response

ENCRY = "special_create_encry"
APPID, SERIAL = "OP00000003", "00dfba8194c41b84cf"


def send(
    http: httpx.Client, sb: Sandbox, body: bytes, *, signed: bytes | None = None
) -> httpx.Response:
    """POST ``body`` as the SDKs do (labelled JSON), signed over ``signed`` (default: itself)."""
    auth = signing.sign_request(
        sb.keys.merchant_key, APPID, SERIAL, body if signed is None else signed
    )
    return http.post(
        "/api/v3/ccss/counter/order/" + ENCRY,
        content=body,
        headers={"Authorization": auth, "Content-Type": "application/json;charset=UTF-8"},
    )


def test_the_sandbox_key_is_served_as_base64_text(frozen: tuple[httpx.Client, Sandbox]) -> None:
    http, sb = frozen
    served = http.get("/sandbox/keys/sm4_key")
    assert served.status_code == 200 and served.headers["content-type"].startswith("text/plain")
    assert base64.b64decode(served.content, validate=True) == sb.keys.sm4_key
    assert len(sb.keys.sm4_key) == 16


def test_an_encrypted_create_makes_the_order_special_create_would(
    frozen: tuple[httpx.Client, Sandbox],
) -> None:
    http, sb = frozen
    plain = v3_body(v3_req_data(sb, "ENC-1", total_amount=123))
    body = sm4.encrypt(sb.keys.sm4_key, plain)
    answer = send(http, sb, body)
    verify_v3_response(answer, sb.keys.platform_cert)
    data = answer.json()  # a plain, signed JSON answer: the default app does not encrypt answers
    assert data["code"] == "000000", data
    assert data["resp_data"]["out_order_no"] == "ENC-1"
    assert sb.schemas.problems("v3/special_create.resp", data["resp_data"]) == []
    queried = v3_post(
        http, sb, "query", {"merchant_no": "82229007392000A", "out_order_no": "ENC-1"}
    ).json()["resp_data"]
    assert (queried["pay_order_no"], queried["total_amount"]) == (
        data["resp_data"]["pay_order_no"],
        123,
    )
    # the identical repeat returns the same order
    assert send(http, sb, body).json()["resp_data"] == data["resp_data"]


def _cases(sb: Sandbox) -> list[tuple[str, bytes, bytes | None, str, str]]:
    plain = v3_body(v3_req_data(sb, "ENC-BAD"))
    good = sm4.encrypt(sb.keys.sm4_key, plain)
    return [
        ("wrong key", sm4.encrypt(b"\x01" * 16, plain), None, "SBX40001", "SM4"),
        ("truncated", good[:-8], None, "SBX40001", "16-byte SM4 blocks"),
        ("not base64", b"{" + good, None, "SBX40001", "not base64"),
        ("not JSON inside", sm4.encrypt(sb.keys.sm4_key, b"hello"), None, "SBX40001", "decrypted"),
        ("signed before encryption", good, plain, "SBX30002", ""),
    ]


@pytest.mark.parametrize(
    "case",
    range(5),
    ids=["wrong-key", "truncated", "not-base64", "not-json-inside", "signed-before-encryption"],
)
def test_a_bad_encrypted_body_is_refused_naming_what_failed_and_stores_nothing(
    frozen: tuple[httpx.Client, Sandbox], case: int
) -> None:
    http, sb = frozen
    name, body, signed, code, words = _cases(sb)[case]
    before = snapshot(sb)
    answer = send(http, sb, body, signed=signed)
    verify_v3_response(answer, sb.keys.platform_cert)
    out = answer.json()
    assert out["code"] == code and words in out["msg"], (name, out)
    assert answer.status_code < 500
    assert snapshot(sb) == before


def test_an_app_from_the_apps_file_has_its_own_key_and_takes_encrypted_answers(
    tmp_path: Path,
) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    from sandbox.core.keys import _certificate

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    cert = _certificate(key, "encrypting merchant", 0x5EC)
    (tmp_path / "enc.cer").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    own = bytes(range(16))
    (tmp_path / "apps.yaml").write_text(
        "apps:\n  - appid: OP00004444\n    certificate: enc.cer\n"
        f"    sm4_key: {sm4.key_text(own)}\n    encrypt_answers: true\n"
    )
    app = make_app(apps_file=str(tmp_path / "apps.yaml"))
    sb = app.state.sandbox
    plain = v3_body(v3_req_data(sb, "ENC-APP"))
    body = sm4.encrypt(own, plain)
    with httpx.Client(transport=InProcessTransport(app), base_url="http://s") as http:
        answer = http.post(
            "/api/v3/ccss/counter/order/" + ENCRY,
            content=body,
            headers={"Authorization": signing.sign_request(key, "OP00004444", "5ec", body)},
        )
        # the default key does not open this app's bodies
        other = v3_body(v3_req_data(sb, "ENC-APP-2"))
        wrong = sm4.encrypt(sb.keys.sm4_key, other)
        refused = http.post(
            "/api/v3/ccss/counter/order/" + ENCRY,
            content=wrong,
            headers={"Authorization": signing.sign_request(key, "OP00004444", "5ec", wrong)},
        )
    # the answer is base64 ciphertext, signed as sent
    verify_v3_response(answer, sb.keys.platform_cert)
    assert not answer.content.startswith(b"{")
    opened = json.loads(sm4.decrypt(own, answer.content))
    assert opened["code"] == "000000" and opened["resp_data"]["out_order_no"] == "ENC-APP"
    # (refused before the app is known to be this one: a plain JSON error)
    assert refused.json()["code"] == "SBX40001" and "SM4" in refused.json()["msg"]
    # the client with the app's key reads the encrypted answer
    with LakalaClient(
        base_url="http://s",
        transport=InProcessTransport(app),
        appid="OP00004444",
        serial_no="5ec",
        private_key=key,
        certificate=sb.keys.platform_cert,
        sm4_key=sm4.key_text(own),
    ) as client:
        created = client.create_encrypted(out_order_no="ENC-CLI", total_amount=9, order_info="e")
    assert created["out_order_no"] == "ENC-CLI"
    sb.close()


def test_an_apps_file_sm4_key_that_is_not_16_bytes_is_refused(tmp_path: Path) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    from sandbox.core.keys import _certificate

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    (tmp_path / "c.cer").write_bytes(
        _certificate(key, "x", 7).public_bytes(serialization.Encoding.PEM)
    )
    (tmp_path / "apps.yaml").write_text(
        "apps:\n  - appid: OP1\n    certificate: c.cer\n    sm4_key: AAAA\n"
    )
    with pytest.raises(ValueError, match=r"apps\[0\]\.sm4_key: an SM4 key must be 16 bytes"):
        make_app(apps_file=str(tmp_path / "apps.yaml"))


def test_the_client_fetches_the_sandbox_key_and_creates_encrypted() -> None:
    app = make_app()
    with LakalaClient(base_url="http://s", transport=InProcessTransport(app)) as client:
        created = client.create_encrypted(out_order_no="ENC-F", total_amount=5, order_info="f")
        assert created["total_amount"] == "5"
        assert client.query(out_order_no="ENC-F")["pay_order_no"] == created["pay_order_no"]
    app.state.sandbox.close()


def test_sign_encrypts_a_body_the_sandbox_accepts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data_dir = tmp_path / "data"
    app = make_app(data_dir=str(data_dir))
    sb = app.state.sandbox
    plain = tmp_path / "create.json"
    plain.write_bytes(v3_body(v3_req_data(sb, "ENC-CLI-SIGN")))
    out = tmp_path / "create.enc"
    assert main(["sign", f"@{plain}", "--data-dir", str(data_dir), "--encrypt", str(out)]) == 0
    authorization = capsys.readouterr().out.strip()
    body = out.read_bytes()
    assert sm4.decrypt(sb.keys.sm4_key, body) == plain.read_bytes()
    with httpx.Client(transport=InProcessTransport(app), base_url="http://s") as http:
        answer = http.post(
            "/api/v3/ccss/counter/order/" + ENCRY,
            content=body,
            headers={"Authorization": authorization},
        )
    assert answer.json()["code"] == "000000", answer.json()
    assert main(["sign", "{}", "--sm4-key", "AAAA", "--encrypt", str(out)]) == 2
    assert "16 bytes" in capsys.readouterr().err
    sb.close()
