"""The sandbox's own keys: a platform key + certificate, a merchant test key pair, and apps.

Made on first start and kept in the data directory; ``:memory:`` sandboxes share one set made
once per process (RSA key generation is the slow part of starting).
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from sandbox.wire import signing, sm4

T = TypeVar("T")

PLATFORM_KEY = "platform_private_key.pem"
PLATFORM_CERT = "platform.cer"
MERCHANT_KEY = "merchant_private_key.pem"
MERCHANT_CERT = "merchant.cer"
SM4_KEY = "sm4_key"  # the default app's SM4 key for 全报文加密, base64 text


@dataclass
class App:
    """``sm4_key``: for ``special_create_encry``; ``encrypt_answers``: answer it encrypted too."""

    appid: str
    certificates: dict[str, x509.Certificate] = field(default_factory=dict)
    sm4_key: bytes | None = field(default=None, repr=False)
    encrypt_answers: bool = False

    def find(self, serial_no: str) -> x509.Certificate | None:
        for serial, cert in self.certificates.items():
            if signing.same_serial(serial, serial_no):
                return cert
        return None


@dataclass
class KeyStore:
    platform_key: rsa.RSAPrivateKey
    platform_cert: x509.Certificate
    merchant_key: rsa.RSAPrivateKey
    merchant_cert: x509.Certificate
    apps: dict[str, App] = field(default_factory=dict)
    sm4_key: bytes = field(default_factory=lambda: secrets.token_bytes(sm4.KEY_BYTES), repr=False)

    @property
    def platform_serial(self) -> str:
        return signing.serial_hex(self.platform_cert)

    def register(self, appid: str, cert: x509.Certificate) -> None:
        self.apps.setdefault(appid, App(appid)).certificates[signing.serial_hex(cert)] = cert

    def find(self, appid: str, serial_no: str) -> x509.Certificate | None:
        app = self.apps.get(appid)
        return app.find(serial_no) if app else None

    def app(self, appid: str) -> App | None:
        return self.apps.get(appid)

    def pem(self, name: str) -> bytes:
        """The downloadable files: the two certificates and the merchant test private key."""
        if name == PLATFORM_CERT:
            return self.platform_cert.public_bytes(serialization.Encoding.PEM)
        if name == MERCHANT_CERT:
            return self.merchant_cert.public_bytes(serialization.Encoding.PEM)
        if name == MERCHANT_KEY:
            return _key_pem(self.merchant_key)
        if name == SM4_KEY:
            return sm4.key_text(self.sm4_key).encode("ascii")
        raise KeyError(name)

    @classmethod
    def load(
        cls, data_dir: Path | None, *, appid: str, serial_no: str, apps_file: str | None = None
    ) -> KeyStore:
        if data_dir is None:
            store = cls(*_ephemeral(serial_no), sm4_key=_ephemeral_sm4())
        else:
            store = cls(*_on_disk(data_dir, serial_no), sm4_key=_sm4_on_disk(data_dir))
        store.register(appid, store.merchant_cert)
        store.apps[appid].sm4_key = store.sm4_key
        if apps_file:
            for app_id, cert in load_apps_file(Path(apps_file)):
                store.register(app_id, cert)
            for app_id, key, encrypt in load_apps_sm4(Path(apps_file)):
                app = store.apps[app_id]
                app.sm4_key = key or app.sm4_key
                app.encrypt_answers = encrypt
        return store


class _PlainLoader(yaml.SafeLoader):
    """YAML without anchors and aliases: an apps file has no use for them, and a few nested
    aliases expand to gigabytes (a "billion laughs")."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent) or getattr(self.peek_event(), "anchor", None):
            event = self.peek_event()
            raise yaml.YAMLError(
                f"anchors and aliases are not allowed (line {event.start_mark.line + 1})"
            )
        return super().compose_node(parent, index)


def load_apps_file(path: Path) -> list[tuple[str, x509.Certificate]]:
    """``apps: [{appid, certificate}]`` in YAML or JSON.

    Certificate paths are relative to the file.
    """
    try:
        doc = yaml.load(path.read_text(encoding="utf-8"), Loader=_PlainLoader)
    except (OSError, ValueError, yaml.YAMLError) as exc:  # (UnicodeDecodeError is a ValueError)
        raise ValueError(f"{path}: cannot read apps file: {exc}") from None
    except RecursionError:
        raise ValueError(f"{path}: cannot read apps file: nested too deeply") from None
    apps = (doc or {}).get("apps") if isinstance(doc, dict) else None
    if not isinstance(apps, list):
        raise ValueError(f"{path}: expected a mapping with a list 'apps: [{{appid, certificate}}]'")
    result = []
    for i, entry in enumerate(apps):
        if not isinstance(entry, dict) or not {"appid", "certificate"} <= entry.keys():
            raise ValueError(
                f"{path}: apps[{i}] needs appid and certificate, got {json.dumps(entry)[:200]}"
            )
        cert_path = (path.parent / str(entry["certificate"])).resolve()
        try:
            cert = signing.load_certificate(cert_path.read_bytes())
            signing.certificate_public_key(cert)  # an RSA key, or no request could verify
        except (OSError, ValueError) as exc:
            raise ValueError(
                f"{path}: apps[{i}]: cannot load certificate {cert_path}: {exc}"
            ) from exc
        result.append((str(entry["appid"]), cert))
    return result


def load_apps_sm4(path: Path) -> list[tuple[str, bytes | None, bool]]:
    """Each app's optional ``sm4_key`` (base64 of 16 bytes) and ``encrypt_answers`` (a bool),
    from an apps file ``load_apps_file`` has read."""
    doc = yaml.load(path.read_text(encoding="utf-8"), Loader=_PlainLoader)
    result = []
    for i, entry in enumerate(doc["apps"]):
        key = entry.get("sm4_key")
        encrypt = entry.get("encrypt_answers", False)
        if key is not None:
            try:
                key = sm4.parse_key(str(key))
            except ValueError as exc:
                raise ValueError(f"{path}: apps[{i}].sm4_key: {exc}") from None
        if not isinstance(encrypt, bool):
            raise ValueError(f"{path}: apps[{i}].encrypt_answers must be true or false")
        result.append((str(entry["appid"]), key, encrypt))
    return result


@functools.cache
def _ephemeral_sm4() -> bytes:
    return secrets.token_bytes(sm4.KEY_BYTES)


def _sm4_on_disk(data_dir: Path) -> bytes:
    """The default app's SM4 key, made beside the other keys the first time it is wanted."""
    path = data_dir / SM4_KEY
    if path.exists():
        try:
            return sm4.parse_key(path.read_bytes())
        except (OSError, ValueError) as exc:
            raise ValueError(f"{path}: cannot load it: {exc}") from None
    key = secrets.token_bytes(sm4.KEY_BYTES)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(sm4.key_text(key), encoding="ascii")
    tmp.chmod(0o600)
    tmp.replace(path)
    return key


def _read(path: Path, load: Callable[[bytes], T]) -> T:
    try:
        return load(path.read_bytes())
    except (OSError, ValueError) as exc:
        raise ValueError(f"{path}: cannot load it: {exc}") from None


def _key_pem(key: rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _certificate(key: rsa.RSAPrivateKey, common_name: str, serial: int) -> x509.Certificate:
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "CN"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "lakala-sandbox"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )
    now = dt.datetime.now(dt.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(serial)
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=3650))
        .sign(key, hashes.SHA256())
    )


def _generate(
    serial_no: str,
) -> tuple[rsa.RSAPrivateKey, x509.Certificate, rsa.RSAPrivateKey, x509.Certificate]:
    platform_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    merchant_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    # a 64-bit serial, printed in hex like Lakala's own serials
    platform_cert = _certificate(
        platform_key, "lakala-sandbox platform", secrets.randbits(63) | (1 << 62)
    )
    merchant_cert = _certificate(merchant_key, "lakala-sandbox merchant", int(serial_no, 16))
    return platform_key, platform_cert, merchant_key, merchant_cert


@functools.cache
def _ephemeral(
    serial_no: str,
) -> tuple[rsa.RSAPrivateKey, x509.Certificate, rsa.RSAPrivateKey, x509.Certificate]:
    return _generate(serial_no)


def _on_disk(
    data_dir: Path, serial_no: str
) -> tuple[rsa.RSAPrivateKey, x509.Certificate, rsa.RSAPrivateKey, x509.Certificate]:
    files = [data_dir / n for n in (PLATFORM_KEY, PLATFORM_CERT, MERCHANT_KEY, MERCHANT_CERT)]
    present = [f for f in files if f.exists()]
    if len(present) == len(files):
        return (
            _read(files[0], signing.load_private_key),
            _read(files[1], signing.load_certificate),
            _read(files[2], signing.load_private_key),
            _read(files[3], signing.load_certificate),
        )
    if present:
        # making new keys would silently replace the ones every configured SDK trusts
        missing = ", ".join(f.name for f in files if f not in present)
        raise ValueError(
            f"{data_dir}: {missing} missing while the other key files are there. Restore it, "
            "or remove all four to make new keys (then set up every SDK with the new ones)"
        )
    data_dir.mkdir(parents=True, exist_ok=True)
    platform_key, platform_cert, merchant_key, merchant_cert = _generate(serial_no)
    contents = [
        _key_pem(platform_key),
        platform_cert.public_bytes(serialization.Encoding.PEM),
        _key_pem(merchant_key),
        merchant_cert.public_bytes(serialization.Encoding.PEM),
    ]
    for path, content in zip(files, contents, strict=True):
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_bytes(content)
        if path.name.endswith(".pem"):
            tmp.chmod(0o600)
        tmp.replace(path)
    return platform_key, platform_cert, merchant_key, merchant_cert
