"""SM4-ECB with PKCS#7 as base64 text, checked against the standard's own example."""

from __future__ import annotations

import base64

import pytest

from sandbox.wire import sm4

# GB/T 32907-2016, example 1: the key and the plaintext are the same block
STANDARD_KEY = bytes.fromhex("0123456789abcdeffedcba9876543210")
STANDARD_CIPHER = bytes.fromhex("681edf34d206965e86b3e94f536e4246")


def test_the_standard_example_encrypts_to_its_published_ciphertext() -> None:
    sent = base64.b64decode(sm4.encrypt(STANDARD_KEY, STANDARD_KEY))
    # one full block of PKCS#7 padding follows the 16 bytes of data
    assert sent[:16] == STANDARD_CIPHER and len(sent) == 32
    assert sm4.decrypt(STANDARD_KEY, base64.b64encode(sent)) == STANDARD_KEY


def test_a_round_trip_keeps_the_bytes_and_is_one_line_of_padded_base64() -> None:
    text = '{"req_time":"20261206120000","version":"3.0","req_data":{"a":"收银台"}}'.encode()
    body = sm4.encrypt(STANDARD_KEY, text)
    assert b"\n" not in body and len(body) % 4 == 0
    assert sm4.decrypt(STANDARD_KEY, body) == text


@pytest.mark.parametrize(
    ("body", "words"),
    [
        (b"not base64!", "not base64"),
        (base64.b64encode(b"x" * 20), "not a whole number of 16-byte SM4 blocks"),
        (b"", "0 bytes"),
    ],
)
def test_what_does_not_decrypt_says_which_step_failed(body: bytes, words: str) -> None:
    with pytest.raises(sm4.DecryptError, match=words):
        sm4.decrypt(STANDARD_KEY, body)


def test_a_wrong_key_is_refused_by_its_padding_or_by_what_it_decrypts_to() -> None:
    body = sm4.encrypt(STANDARD_KEY, b'{"a":1}')
    refused = 0
    for n in range(40):
        other = bytes([n]) * 16
        try:
            plain = sm4.decrypt(other, body)
        except sm4.DecryptError as why:
            assert "padding" in str(why)
            refused += 1
        else:
            assert plain != b'{"a":1}'
    assert refused >= 30


@pytest.mark.parametrize(
    ("text", "words"),
    [("AAAA", "16 bytes"), ("not base64!", "base64"), (base64.b64encode(b"k" * 17).decode(), "17")],
)
def test_a_bad_key_is_refused_naming_why(text: str, words: str) -> None:
    with pytest.raises(ValueError, match=words):
        sm4.parse_key(text)
    assert sm4.parse_key(sm4.key_text(STANDARD_KEY)) == STANDARD_KEY
