"""LKLAPI-SHA256withRSA: the signing strings, the Authorization header, sign and verify.

Shared by the server (verify requests, sign responses and notifies) and the client.
"""

from __future__ import annotations

import base64
import functools
import hmac
import os
import re
import secrets
import string
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

SCHEME = "LKLAPI-SHA256withRSA"
RESPONSE_HEADERS = (
    "Lklapi-Appid",
    "Lklapi-Serial",
    "Lklapi-Timestamp",
    "Lklapi-Nonce",
    "Lklapi-Signature",
)
_PAIR = re.compile(r'\s*([A-Za-z_]+)\s*=\s*"([^"]*)"\s*(?:,|$)')
# what an Authorization header of the scheme may carry: a request's five, a notify's three
AUTHORIZATION_FIELDS = ("appid", "serial_no", "timestamp", "nonce_str", "signature")
_HEX = re.compile(r"[0-9A-Fa-f]{1,64}")
_NONCE_CHARS = string.ascii_letters + string.digits


def request_string(appid: str, serial_no: str, timestamp: str, nonce: str, body: bytes) -> bytes:
    head = f"{appid}\n{serial_no}\n{timestamp}\n{nonce}\n".encode()
    return head + body + b"\n"


def notify_string(timestamp: str, nonce: str, body: bytes) -> bytes:
    return f"{timestamp}\n{nonce}\n".encode() + body + b"\n"


@functools.cache
def executor() -> ThreadPoolExecutor:
    """The process's signing threads, one per core beyond the event loop's. RSA signing releases
    the interpreter lock, so v3 answers and notifies signed here use the other cores while the
    event loops go on. A plain executor: a generic worker-thread helper cost more per hand-off
    than the signature itself."""
    return ThreadPoolExecutor(
        max_workers=max(1, (os.cpu_count() or 2) - 1), thread_name_prefix="lakala-sandbox-sign"
    )


def sign(key: rsa.RSAPrivateKey, message: bytes) -> str:
    return base64.b64encode(key.sign(message, padding.PKCS1v15(), hashes.SHA256())).decode()


def verify(public_key: rsa.RSAPublicKey, message: bytes, signature: str) -> bool:
    try:
        raw = base64.b64decode(signature, validate=True)
    except ValueError:
        return False
    try:
        public_key.verify(raw, message, padding.PKCS1v15(), hashes.SHA256())
    except InvalidSignature:
        return False
    return True


def new_nonce(length: int = 12) -> str:
    """``length`` letters and digits, uniformly random. One read of the system's randomness per
    nonce: ``secrets.choice`` per character made one syscall each, a fifth of a v3 answer."""
    chars: list[str] = []
    while len(chars) < length:
        # bytes below 248 (4 * 62) map evenly onto the 62 characters; the rest are dropped
        chars += [_NONCE_CHARS[b % 62] for b in secrets.token_bytes(length + 8) if b < 248]
    return "".join(chars[:length])


def wall_timestamp() -> str:
    return str(int(time.time()))


def parse_authorization(header: str | None) -> dict[str, str]:
    """``LKLAPI-SHA256withRSA k="v",k="v"`` to a dict, in any key order; ValueError says why,
    naming a parameter given twice (the last one won) or one the scheme has not (``alg``)."""
    if not header:
        raise ValueError("no Authorization header")
    scheme, _, rest = header.strip().partition(" ")
    if scheme != SCHEME:
        raise ValueError(f"scheme must be {SCHEME}, got {scheme!r}")
    fields: dict[str, str] = {}
    pos = 0
    rest = rest.strip()
    while pos < len(rest):
        match = _PAIR.match(rest, pos)
        if not match:
            raise ValueError(f'cannot parse {rest[pos : pos + 40]!r}; expected key="value" pairs')
        name = match.group(1)
        if name not in AUTHORIZATION_FIELDS:
            raise ValueError(
                f"unknown parameter {name!r}; the scheme has {', '.join(AUTHORIZATION_FIELDS)}"
            )
        if name in fields:
            raise ValueError(f"parameter {name!r} is given twice; give each once")
        fields[name] = match.group(2)
        pos = match.end()
    return fields


def build_authorization(fields: Mapping[str, str]) -> str:
    return SCHEME + " " + ",".join(f'{k}="{v}"' for k, v in fields.items())


def sign_request(
    key: rsa.RSAPrivateKey,
    appid: str,
    serial_no: str,
    body: bytes,
    *,
    timestamp: str | None = None,
    nonce: str | None = None,
) -> str:
    """The Authorization header value a merchant sends with ``body``."""
    timestamp = timestamp or wall_timestamp()
    nonce = nonce or new_nonce(32)
    signature = sign(key, request_string(appid, serial_no, timestamp, nonce, body))
    return build_authorization(
        {
            "appid": appid,
            "serial_no": serial_no,
            "timestamp": timestamp,
            "nonce_str": nonce,
            "signature": signature,
        }
    )


def response_headers(
    key: rsa.RSAPrivateKey, appid: str, serial_hex: str, body: bytes
) -> dict[str, str]:
    timestamp, nonce = wall_timestamp(), new_nonce(32)
    signature = sign(key, request_string(appid, serial_hex, timestamp, nonce, body))
    return {
        "Lklapi-Appid": appid,
        "Lklapi-Serial": serial_hex,
        "Lklapi-Timestamp": timestamp,
        "Lklapi-Nonce": nonce,
        "Lklapi-Signature": signature,
        "Lklapi-Traceid": new_nonce(16),
    }


def notify_authorization(
    key: rsa.RSAPrivateKey, body: bytes, *, timestamp: str | None = None, nonce: str | None = None
) -> tuple[str, bytes]:
    """The notify Authorization header and the string it signs."""
    timestamp = timestamp or wall_timestamp()
    nonce = nonce or new_nonce(12)
    signed = notify_string(timestamp, nonce, body)
    header = build_authorization(
        {"timestamp": timestamp, "nonce_str": nonce, "signature": sign(key, signed)}
    )
    return header, signed


KEY_PROBE = b"lakala-sandbox key check"


@functools.lru_cache(maxsize=32)
def load_private_key(pem: bytes) -> rsa.RSAPrivateKey:
    """An RSA private key from PEM, checked by use: a signature it makes must verify with its
    own public key, and numbers that do not fit together (p*q not the modulus) are refused on
    loading. cryptography's full check, which also tests that the primes are prime, cost 60 ms
    a key, a sixth of a server's start."""
    try:
        key = serialization.load_pem_private_key(
            pem, password=None, unsafe_skip_rsa_key_validation=True
        )
    except TypeError:  # what cryptography raises for a key that needs a password
        raise ValueError("the key is encrypted: give an unencrypted PEM") from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError("not an RSA private key")
    try:
        key.public_key().verify(
            key.sign(KEY_PROBE, padding.PKCS1v15(), hashes.SHA256()),
            KEY_PROBE,
            padding.PKCS1v15(),
            hashes.SHA256(),
        )
    except (InvalidSignature, ValueError):
        raise ValueError("the key is damaged: a signature it makes does not verify") from None
    return key


def load_certificate(data: bytes) -> x509.Certificate:
    """A PEM (``.cer`` as Lakala ships it) or DER certificate."""
    if b"-----BEGIN" in data:
        return x509.load_pem_x509_certificate(data)
    return x509.load_der_x509_certificate(data)


def certificate_public_key(cert: x509.Certificate) -> rsa.RSAPublicKey:
    key = cert.public_key()
    if not isinstance(key, rsa.RSAPublicKey):
        raise ValueError("certificate does not hold an RSA key")
    return key


def serial_hex(cert: x509.Certificate) -> str:
    """The certificate serial as the hex string Lakala puts in ``serial_no`` / ``Lklapi-Serial``."""
    return format(cert.serial_number, "x")


def same_secret(given: str, expected: str) -> bool:
    """Constant-time comparison of a token someone sent with ours; any text may be sent
    (``hmac.compare_digest`` refuses str that is not ASCII)."""
    return hmac.compare_digest(given.encode("utf-8", "surrogatepass"), expected.encode())


def same_serial(a: str, b: str) -> bool:
    """Whether two serials name one certificate, as Lakala's SDKs write them: hex digits in
    either case, leading zeros or not. ``int(x, 16)`` alone also took ``0x``, ``_`` between
    digits and surrounding spaces, which no SDK sends."""
    if not (_HEX.fullmatch(a) and _HEX.fullmatch(b)):
        return False
    return int(a, 16) == int(b, 16)
