"""The v3 Authorization header read as Lakala's SDKs write it: the serial in hex digits (either
case), each parameter once, no parameter the scheme does not have."""

from __future__ import annotations

import httpx
import pytest

from sandbox.runtime import Sandbox
from sandbox.server.api_v3 import PATHS as V3_PATHS
from sandbox.wire import signing
from sandbox.wire.envelopes import dumps
from tests.server.test_json_rules import v3_envelope
from tests.support import snapshot, v3_req_data, verify_v3_response


def call(http: httpx.Client, sb: Sandbox, no: str, serial: str, extra: str = "") -> dict[str, str]:
    raw = dumps(v3_envelope(v3_req_data(sb, no)))
    header = signing.sign_request(sb.keys.merchant_key, sb.settings.appid, serial, raw) + extra
    response = http.post(
        V3_PATHS["special_create"],
        content=raw,
        headers={"Authorization": header, "Content-Type": "application/json"},
    )
    verify_v3_response(response, sb.keys.platform_cert)
    return dict(response.json())


@pytest.mark.parametrize(
    "serial",
    ["00dfba8194c41b84cf", "00DFBA8194C41B84CF", "dfba8194c41b84cf", "00DfBa8194c41B84cF"],
)
def test_the_serial_in_hex_digits_of_either_case_is_accepted(
    http: httpx.Client, sb: Sandbox, serial: str
) -> None:
    out = call(http, sb, "SERIAL-OK", serial)
    assert out["code"] == "000000", out


@pytest.mark.parametrize(
    "serial",
    [
        "0x00dfba8194c41b84cf",
        "0X00DFBA8194C41B84CF",
        "00DF_BA81_94C4_1B84_CF",
        " 00dfba8194c41b84cf",
        "00dfba8194c41b84cf ",
        "+00dfba8194c41b84cf",
    ],
)
def test_a_serial_written_otherwise_names_no_certificate(
    http: httpx.Client, sb: Sandbox, serial: str
) -> None:
    before = snapshot(sb)
    out = call(http, sb, "SERIAL-BAD", serial)  # signed correctly over the serial as sent
    assert out["code"] == "SBX30004", out
    assert f"serial_no {serial}" in out["msg"]
    assert snapshot(sb) == before


@pytest.mark.parametrize(
    ("extra", "says"),
    [
        (',signature="AAAA"', "parameter 'signature' is given twice"),
        (',appid="OP00000003"', "parameter 'appid' is given twice"),
        (',alg="none"', "unknown parameter 'alg'"),
        (',Signature="AAAA"', "unknown parameter 'Signature'"),
    ],
)
def test_a_parameter_twice_or_unknown_is_refused_naming_it(
    http: httpx.Client, sb: Sandbox, extra: str, says: str
) -> None:
    before = snapshot(sb)
    out = call(http, sb, "AUTH-PARAMS", sb.settings.serial_no, extra)
    assert out["code"] == "SBX30001", out
    assert says in out["msg"], out["msg"]
    assert snapshot(sb) == before


def test_a_duplicated_signature_first_does_not_let_the_last_win(
    http: httpx.Client, sb: Sandbox
) -> None:
    raw = dumps(v3_envelope(v3_req_data(sb, "AUTH-FIRST")))
    good = signing.sign_request(sb.keys.merchant_key, sb.settings.appid, sb.settings.serial_no, raw)
    scheme, _, params = good.partition(" ")
    header = f'{scheme} signature="AAAA",{params}'
    response = http.post(V3_PATHS["special_create"], content=raw, headers={"Authorization": header})
    assert response.json()["code"] == "SBX30001"
    assert sb.engine.count() == 0
