"""SM4 (GB/T 32907) in ECB mode with PKCS#7 padding, as base64 text: Lakala's 全报文加密.

A merchant configured with an SM4 key (16 bytes, handed over as base64) sends the whole JSON body
of ``special_create_encry`` encrypted this way, as one line of standard ``=``-padded base64.
"""

from __future__ import annotations

import base64
import binascii

from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

KEY_BYTES = 16
BLOCK_BITS = 128


class DecryptError(ValueError):
    """The body is not what an SM4 key turns back into JSON; the message says which step failed."""


def parse_key(text: str | bytes) -> bytes:
    """A key as handed over: base64 of 16 bytes. ValueError naming the problem otherwise."""
    raw = text.strip() if isinstance(text, bytes) else text.strip().encode("ascii", "replace")
    try:
        key = base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("an SM4 key must be base64 text (of 16 bytes)") from None
    if len(key) != KEY_BYTES:
        raise ValueError(f"an SM4 key must be 16 bytes, base64 encoded (this one is {len(key)})")
    return key


def key_text(key: bytes) -> str:
    return base64.b64encode(key).decode("ascii")


def encrypt(key: bytes, plain: bytes) -> bytes:
    """base64(SM4-ECB(PKCS#7(plain))), as the request or answer body."""
    padder = padding.PKCS7(BLOCK_BITS).padder()
    padded = padder.update(plain) + padder.finalize()
    encryptor = Cipher(algorithms.SM4(key), modes.ECB()).encryptor()  # noqa: S305 - Lakala's
    return base64.b64encode(encryptor.update(padded) + encryptor.finalize())


def decrypt(key: bytes, body: bytes) -> bytes:
    """The plain bytes of a base64 SM4 body; DecryptError naming the step that failed."""
    try:
        cipher = base64.b64decode(body.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise DecryptError("is not base64 text (an encrypted body is base64 of SM4-ECB)") from None
    if not cipher or len(cipher) % 16:
        raise DecryptError(
            f"is {len(cipher)} bytes of ciphertext, not a whole number of 16-byte SM4 blocks "
            "(truncated?)"
        )
    decryptor = Cipher(algorithms.SM4(key), modes.ECB()).decryptor()  # noqa: S305
    padded = decryptor.update(cipher) + decryptor.finalize()
    unpadder = padding.PKCS7(BLOCK_BITS).unpadder()
    try:
        return unpadder.update(padded) + unpadder.finalize()
    except ValueError:
        raise DecryptError(
            "does not decrypt with this app's SM4 key (bad PKCS#7 padding: another key?)"
        ) from None
