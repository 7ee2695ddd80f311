"""``LakalaClient`` / ``AsyncLakalaClient``: the v3 counter API, signed, verified and validated.

The same schemas and signing code (``sandbox.wire``) as the server:
requests are checked before they leave, responses are verified (``Lklapi-*`` signature with the
platform certificate) and checked after they arrive, and every problem is a typed exception from
``sandbox.client.errors``.

    client = LakalaClient.from_env()                    # LAKALA_* variables, sandbox by default
    order = client.create(out_order_no="A1", total_amount=100, order_info="Tea")
    client.query(out_order_no="A1")["order_status"]     # "0"
    client.close(out_order_no="A1")

``environment`` picks the host: ``sandbox`` (http://127.0.0.1:8090), ``lakala-test``
(https://test.wsmsd.cn/sit) or ``lakala-production`` (https://s2.lakala.com); ``base_url`` overrides
it. Against a sandbox, keys not given are downloaded from its ``/sandbox/keys/…`` on first use.
"""

from __future__ import annotations

import functools
import json
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self

import httpx
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa

from sandbox.client.errors import (
    LakalaAPIError,
    LakalaConfigError,
    LakalaError,
    LakalaHTTPError,
    LakalaResponseError,
    LakalaSchemaError,
    LakalaSignatureError,
    LakalaTimeout,
    LakalaTransportError,
)
from sandbox.client.transport import (
    MAX_ANSWER_BYTES,
    NO_KEEPALIVE,
    Answer,
    AnswerTooLarge,
    AnswerTooSlow,
    asend_bounded,
    send_bounded,
)
from sandbox.wire import messages as checks
from sandbox.wire import signing, sm4
from sandbox.wire.messages import Finding
from sandbox.wire.resources import schemas_dir
from sandbox.wire.schemas import Schemas
from sandbox.wire.times import WallClock
from sandbox.wire.tls import verify_for
from sandbox.wire.vocabulary import COUNTER_PREFIX, ENCRYPTED_CREATE, REFUND_PATHS, SUCCESS

__all__ = [
    "ENVIRONMENTS",
    "ENV_VARS",
    "AsyncLakalaClient",
    "ClientSettings",
    "Exchange",
    "LakalaClient",
    "LakalaResponse",
    "LakalaAPIError",
    "LakalaConfigError",
    "LakalaError",
    "LakalaHTTPError",
    "LakalaResponseError",
    "LakalaSchemaError",
    "LakalaSignatureError",
    "LakalaTimeout",
    "LakalaTransportError",
]

REMEMBERED_EXPIRIES = 4096  # default expiries kept for repeated creates, newest first

ENVIRONMENTS = {
    "sandbox": "http://127.0.0.1:8090",
    "lakala-test": "https://test.wsmsd.cn/sit",
    "lakala-production": "https://s2.lakala.com",
}
# Lakala's public test identifiers: what a sandbox registers out of the box.
SANDBOX_IDENTITY = {
    "appid": "OP00000003",
    "serial_no": "00dfba8194c41b84cf",
    "merchant_no": "82229007392000A",
    "term_no": "D9296400",
}
SANDBOX_KEY_PATHS = {
    "private_key": "/sandbox/keys/merchant_private_key.pem",
    "certificate": "/sandbox/keys/platform.cer",
}
PATHS = {op: COUNTER_PREFIX + op for op in ("special_create", "create", "query", "close")}
ENCRYPTED = ENCRYPTED_CREATE  # special_create with the whole body SM4-encrypted
PATHS[ENCRYPTED] = COUNTER_PREFIX + ENCRYPTED
SM4_KEY_PATH = "/sandbox/keys/sm4_key"
# every key a sandbox hands out, and what to say when one is wanted but cannot be fetched
KEY_PATHS = {**SANDBOX_KEY_PATHS, "sm4_key": SM4_KEY_PATH}
KEY_HINTS = {"sm4_key": " (pass sm4_key=, base64)"}
# the refund APIs with a typed method here (REFUND_PATHS), by operation
REQUEST_IP = "127.0.0.1"  # location_info.request_ip when not given

# The variables from_env() reads, and what each sets (the README prints the same list).
ENV_VARS = {
    "LAKALA_ENV": "sandbox (default), lakala-test or lakala-production",
    "LAKALA_BASE_URL": "overrides the environment's host, e.g. http://127.0.0.1:8090",
    "LAKALA_APPID": "your appid (sandbox: OP00000003)",
    "LAKALA_SERIAL_NO": "your merchant certificate's serial number (sandbox: 00dfba8194c41b84cf)",
    "LAKALA_PRIVATE_KEY_FILE": "your merchant private key, PEM "
    "(or LAKALA_PRIVATE_KEY: the PEM text)",
    "LAKALA_CERTIFICATE_FILE": "Lakala's platform certificate that signs responses "
    "(or LAKALA_CERTIFICATE: the PEM text)",
    "LAKALA_NOTIFY_CERTIFICATE_FILE": "the certificate that signs notifies, if not the "
    "platform one (or LAKALA_NOTIFY_CERTIFICATE)",
    "LAKALA_MERCHANT_NO": "merchant_no used when a call gives none (sandbox: 82229007392000A)",
    "LAKALA_TERM_NO": "term_no added to creates that give none",
    "LAKALA_TIMEOUT": "seconds to wait for an answer (default 10)",
}

PrivateKeyInput = rsa.RSAPrivateKey | bytes | str | Path
CertificateInput = x509.Certificate | bytes | str | Path


@dataclass(frozen=True)
class ClientSettings:
    """Resolved settings; keys never appear in its repr."""

    environment: str
    base_url: str
    appid: str | None
    serial_no: str | None
    private_key: rsa.RSAPrivateKey | None = field(repr=False)
    certificate: x509.Certificate | None = field(repr=False)
    notify_certificate: x509.Certificate | None = field(repr=False)
    merchant_no: str | None
    term_no: str | None
    timeout: float
    sm4_key: bytes | None = field(default=None, repr=False)

    @property
    def fetches_keys(self) -> bool:
        """A sandbox hands out its keys; real Lakala never does."""
        return self.environment == "sandbox"

    @classmethod
    def build(
        cls,
        *,
        environment: str = "sandbox",
        base_url: str | None = None,
        appid: str | None = None,
        serial_no: str | None = None,
        private_key: PrivateKeyInput | None = None,
        certificate: CertificateInput | None = None,
        notify_certificate: CertificateInput | None = None,
        merchant_no: str | None = None,
        term_no: str | None = None,
        timeout: float = 10.0,
        sm4_key: str | bytes | None = None,
    ) -> ClientSettings:
        if environment not in ENVIRONMENTS:
            raise LakalaConfigError(
                f"environment must be one of {', '.join(ENVIRONMENTS)}, not {environment!r}"
            )
        if timeout <= 0:
            raise LakalaConfigError(f"timeout must be positive seconds, not {timeout!r}")
        defaults = SANDBOX_IDENTITY if environment == "sandbox" else {}
        settings = cls(
            environment=environment,
            base_url=(base_url or ENVIRONMENTS[environment]).rstrip("/"),
            appid=appid or defaults.get("appid"),
            serial_no=serial_no or defaults.get("serial_no"),
            private_key=None if private_key is None else load_private_key(private_key),
            certificate=None
            if certificate is None
            else load_certificate(certificate, "certificate"),
            notify_certificate=None
            if notify_certificate is None
            else load_certificate(notify_certificate, "notify_certificate"),
            merchant_no=merchant_no or defaults.get("merchant_no"),
            term_no=term_no or defaults.get("term_no"),
            timeout=float(timeout),
            sm4_key=None if sm4_key is None else _sm4_key(sm4_key),
        )
        missing = [
            name
            for name in ("appid", "serial_no", "private_key", "certificate")
            if getattr(settings, name) is None
            and not (settings.fetches_keys and name in SANDBOX_KEY_PATHS)
        ]
        if missing:
            raise LakalaConfigError(
                f"the {environment} environment needs {', '.join(missing)} "
                f"(set {', '.join(_env_name(m) for m in missing)}, "
                "or in Python pass them to the client)"
            )
        return settings


def _sm4_key(value: str | bytes) -> bytes:
    """An SM4 key as Lakala hands it over (base64 text), or its 16 raw bytes."""
    if isinstance(value, bytes) and len(value) == sm4.KEY_BYTES:
        return value
    try:
        return sm4.parse_key(value)
    except ValueError as exc:
        raise LakalaConfigError(f"sm4_key: {exc}") from None


def _env_name(setting: str) -> str:
    return {"private_key": "LAKALA_PRIVATE_KEY_FILE", "certificate": "LAKALA_CERTIFICATE_FILE"}.get(
        setting, "LAKALA_" + setting.upper()
    )


def settings_from_env(environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Constructor arguments from ``LAKALA_*`` variables: the one place the client reads them."""
    env = os.environ if environ is None else environ
    kwargs: dict[str, Any] = {}
    for name in ("environment", "base_url", "appid", "serial_no", "merchant_no", "term_no"):
        variable = "LAKALA_ENV" if name == "environment" else "LAKALA_" + name.upper()
        if env.get(variable):
            kwargs[name] = env[variable]
    for name in ("private_key", "certificate", "notify_certificate"):
        text, path = env.get("LAKALA_" + name.upper()), env.get(f"LAKALA_{name.upper()}_FILE")
        if text:
            kwargs[name] = text.encode()
        elif path:
            kwargs[name] = Path(path)
    if env.get("LAKALA_TIMEOUT"):
        try:
            kwargs["timeout"] = float(env["LAKALA_TIMEOUT"])
        except ValueError:
            raise LakalaConfigError(
                f"LAKALA_TIMEOUT must be seconds, not {env['LAKALA_TIMEOUT']!r}"
            ) from None
    return kwargs


def load_private_key(value: PrivateKeyInput) -> rsa.RSAPrivateKey:
    """An RSA key object, PEM bytes/text, or a path to a PEM file; errors never echo the key."""
    if isinstance(value, rsa.RSAPrivateKey):
        return value
    data, where = _read(value, "private_key")
    try:
        return signing.load_private_key(data)
    except (ValueError, TypeError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise LakalaConfigError(
            f"private_key: cannot load an RSA private key from {where} ({reason[:120]})"
        ) from None


def load_certificate(value: CertificateInput, name: str = "certificate") -> x509.Certificate:
    """A certificate object, PEM (``.cer`` as Lakala ships it) or DER bytes/text, or a path."""
    if isinstance(value, x509.Certificate):
        return value
    data, where = _read(value, name)
    try:
        return signing.load_certificate(data)
    except ValueError as exc:
        raise LakalaConfigError(
            f"{name}: cannot load a certificate from {where} ({str(exc)[:120]})"
        ) from None


def _read(value: bytes | str | Path, name: str) -> tuple[bytes, str]:
    if isinstance(value, bytes):
        return value, "the PEM text given" if b"-----BEGIN" in value else "the bytes given"
    if isinstance(value, str) and "-----BEGIN" in value:
        return value.encode(), "the PEM text given"
    path = Path(value).expanduser()
    try:
        return path.read_bytes(), str(path)
    except OSError as exc:
        raise LakalaConfigError(f"{name}: cannot read {path}: {exc.strerror}") from None


@dataclass(frozen=True)
class Exchange:
    """One request and its answer, byte for byte (what the contract command records)."""

    path: str
    url: str
    request_headers: dict[str, str]
    request_body: bytes
    status: int
    response_headers: dict[str, str]
    response_body: bytes
    elapsed_ms: float


@dataclass(frozen=True)
class LakalaResponse:
    code: str
    msg: str
    resp_time: str
    resp_data: dict[str, Any] | None
    exchange: Exchange


class _Core:
    """Everything but the I/O, shared by the sync and the async client."""

    def __init__(self, settings: ClientSettings, clock: WallClock | None) -> None:
        self.settings = settings
        self.clock = clock or WallClock()
        self.schemas = checks.default_schemas() if clock is None else Schemas(schemas_dir(), clock)
        self.private_key = settings.private_key
        self.certificate = settings.certificate
        self.notify_cert = settings.notify_certificate
        self.sm4_key = settings.sm4_key
        # the expiry filled in for each order created without one, so that repeating the create
        # (a retry after a timeout) sends the same request and gets the same order back
        self._expiries: OrderedDict[tuple[str, str], str] = OrderedDict()
        self._expiries_lock = threading.Lock()

    def missing_keys(self, path: str | None = None) -> dict[str, str]:
        """The keys a call to ``path`` needs and this client lacks, with where a sandbox serves
        each (the encrypted create needs the SM4 key too)."""
        wanted: dict[str, object] = {
            "private_key": self.private_key,
            "certificate": self.certificate,
        }
        if path == PATHS[ENCRYPTED]:
            wanted["sm4_key"] = self.sm4_key
        return {name: KEY_PATHS[name] for name, have in wanted.items() if have is None}

    def absorb_key(self, name: str, response: Answer) -> None:
        url = str(response.url)
        if response.status_code != 200:
            raise LakalaConfigError(
                f"{name}: the sandbox at {self.settings.base_url} did not "
                f"hand out {url} (HTTP {response.status_code}); "
                f"pass {name}= instead"
            )
        if name == "private_key":
            self.private_key = load_private_key(response.content)
        elif name == "sm4_key":
            self.sm4_key = _sm4_key(response.content)
        else:
            self.certificate = load_certificate(response.content, name)

    def merchant(self, given: str | None) -> str:
        merchant_no = given or self.settings.merchant_no
        if not merchant_no:
            raise LakalaConfigError("merchant_no: pass merchant_no= or set LAKALA_MERCHANT_NO")
        return merchant_no

    def create_data(
        self,
        out_order_no: str,
        total_amount: int | str,
        order_info: str,
        order_efficient_time: str | None,
        merchant_no: str | None,
        fields: dict[str, Any],
    ) -> dict[str, Any]:
        merchant_no = self.merchant(merchant_no)
        data: dict[str, Any] = {
            "out_order_no": out_order_no,
            "merchant_no": merchant_no,
            "total_amount": total_amount,
            "order_efficient_time": order_efficient_time
            or self.default_expiry(merchant_no, out_order_no),
            "order_info": order_info,
        }
        if self.settings.term_no and "term_no" not in fields:
            data["term_no"] = self.settings.term_no
        data.update({k: v for k, v in fields.items() if v is not None})
        return data

    def forget(self) -> None:
        """Forget the expiries remembered for retries, as a new client knows none (the
        pytest fixture's client, used again by the next test on a sandbox reset for it)."""
        with self._expiries_lock:
            self._expiries.clear()

    def default_expiry(
        self, merchant_no: str, out_order_no: str, fresh: Callable[[], str] | None = None
    ) -> str:
        """An hour from now (or ``fresh()``), or what an earlier create of this order was given:
        the same."""
        key = (merchant_no, out_order_no)
        with self._expiries_lock:
            expiry = self._expiries.get(key)
            if expiry is None:
                expiry = fresh() if fresh else self.clock.format(self.clock.timestamp() + 3600)
            self._expiries[key] = expiry
            self._expiries.move_to_end(key)
            while len(self._expiries) > REMEMBERED_EXPIRIES:
                self._expiries.popitem(last=False)
            return expiry

    def lookup_data(
        self,
        out_order_no: str | None,
        pay_order_no: str | None,
        merchant_no: str | None,
        channel_id: str | None,
    ) -> dict[str, Any]:
        data = {
            "merchant_no": self.merchant(merchant_no),
            "out_order_no": out_order_no,
            "pay_order_no": pay_order_no,
            "channel_id": channel_id,
        }
        return {k: v for k, v in data.items() if v is not None}

    def refund_data(self, operation: str, fields: dict[str, Any]) -> dict[str, Any]:
        """``req_data`` for a refund API: the merchant and terminal from the settings unless
        given, a ``location_info`` for those that need one, amounts as digit strings."""
        fields = dict(fields)
        data: dict[str, Any] = {"merchant_no": self.merchant(fields.pop("merchant_no", None))}
        term_no = fields.pop("term_no", None) or self.settings.term_no
        if term_no:
            data["term_no"] = term_no
        if not operation.endswith("query"):
            data["location_info"] = fields.pop("location_info", None) or {"request_ip": REQUEST_IP}
        if fields.get("refund_amount") is not None:
            fields["refund_amount"] = str(fields["refund_amount"])
        if fields.get("origin_biz_type") is not None:
            fields["origin_biz_type"] = str(fields["origin_biz_type"])
        data.update({k: v for k, v in fields.items() if v is not None})
        return data

    def request_data(self, operation: str, kwargs: dict[str, Any]) -> dict[str, Any]:
        if operation == "create":
            fields = dict(kwargs)
            return self.create_data(
                fields.pop("out_order_no"),
                fields.pop("total_amount"),
                fields.pop("order_info"),
                fields.pop("order_efficient_time", None),
                fields.pop("merchant_no", None),
                fields,
            )
        if operation in ("query", "close"):
            return self.lookup_data(
                kwargs.get("out_order_no"),
                kwargs.get("pay_order_no"),
                kwargs.get("merchant_no"),
                kwargs.get("channel_id"),
            )
        if operation in REFUND_PATHS:
            return self.refund_data(operation, kwargs)
        raise ValueError(
            f"operation must be create, query, close or one of {', '.join(REFUND_PATHS)}, "
            f"not {operation!r}"
        )

    def prepare(self, path: str, req_data: Mapping[str, Any]) -> tuple[bytes, dict[str, str]]:
        """The exact body and headers to send; refuses a request that breaks its schema."""
        op = checks.operation_of(self.schemas, path)
        if op is not None:
            problems = checks.schema_findings(
                self.schemas, f"v3/{op}.req", dict(req_data), "req_data"
            )
            if problems:
                raise LakalaSchemaError("request", f"v3/{op}.req", problems)
        assert self.private_key is not None and self.settings.appid and self.settings.serial_no
        body = json.dumps(
            {"req_time": self.clock.now14(), "version": "3.0", "req_data": dict(req_data)},
            ensure_ascii=False,
            separators=(",", ":"),
        ).encode()
        if path == PATHS[ENCRYPTED]:  # 全报文加密: what is signed is the text as sent
            assert self.sm4_key is not None
            body = sm4.encrypt(self.sm4_key, body)
        authorization = signing.sign_request(
            self.private_key, self.settings.appid, self.settings.serial_no, body
        )
        return body, {
            "Authorization": authorization,
            "Content-Type": "application/json",
            "Accept": "application/json",
        }

    def exchange(
        self,
        path: str,
        body: bytes,
        headers: dict[str, str],
        response: Answer,
        started: float,
    ) -> Exchange:
        return Exchange(
            path=path,
            url=str(response.url),
            request_headers=headers,
            request_body=body,
            status=response.status_code,
            response_headers=dict(response.headers),
            response_body=response.content,
            elapsed_ms=round((time.perf_counter() - started) * 1000, 1),
        )

    def interpret(self, ex: Exchange) -> LakalaResponse:
        assert self.certificate is not None
        key = self.sm4_key if ex.path == PATHS[ENCRYPTED] else None
        audit = checks.audit_response(
            self.schemas,
            ex.path,
            ex.status,
            ex.response_headers,
            ex.response_body,
            self.certificate,
            decrypt=None if key is None else functools.partial(sm4.decrypt, key),
        )
        message = audit.message
        not_envelope = bool(audit.of("json") or audit.named("response envelope"))
        if ex.status >= 500 or (not 200 <= ex.status < 300 and not_envelope):
            code = message.get("code") if isinstance(message, dict) else None
            detail = (
                f"{code}: {message.get('msg')}"
                if code
                else repr(ex.response_body[:200].decode("utf-8", "replace"))
            )
            raise LakalaHTTPError(ex.status, f"{ex.url} answered {detail}", code=code)
        if audit.of("signature"):
            raise LakalaSignatureError("response signature", audit.of("signature"))
        if audit.of("json"):
            raise LakalaResponseError("response body", audit.of("json"))
        if audit.named("response envelope"):
            raise LakalaSchemaError("response", "v3/response", audit.named("response envelope"))
        assert isinstance(message, dict)
        if message["code"] != SUCCESS:
            raise LakalaAPIError(str(message["code"]), str(message.get("msg")), status=ex.status)
        if not 200 <= ex.status < 300:
            raise LakalaHTTPError(ex.status, f"{ex.url} answered code 000000 with this status")
        op = checks.operation_of(self.schemas, ex.path)
        if audit.named("response data"):
            raise LakalaSchemaError("response", f"v3/{op}.resp", audit.named("response data"))
        return LakalaResponse(
            code=message["code"],
            msg=str(message.get("msg", "")),
            resp_time=str(message.get("resp_time", "")),
            resp_data=message.get("resp_data"),
            exchange=ex,
        )

    def verify_notify(self, headers: Mapping[str, str], body: bytes | str) -> dict[str, Any]:
        cert = self.notify_cert or self.certificate
        assert cert is not None
        raw = body.encode() if isinstance(body, str) else bytes(body)
        audit = checks.audit_notify(self.schemas, headers, raw, cert)
        if audit.of("signature"):
            raise LakalaSignatureError("notify signature", audit.of("signature"))
        if audit.of("json"):
            raise LakalaResponseError("notify body", audit.of("json"))
        if audit.of("schema"):
            raise LakalaSchemaError("notify", "v3/notify", audit.of("schema"))
        return dict(audit.message)

    def transport_error(self, path: str, exc: httpx.RequestError) -> LakalaError:
        url = self.settings.base_url + path
        if isinstance(exc, AnswerTooLarge):
            rule = f"is larger than {MAX_ANSWER_BYTES} bytes; reading stopped, connection closed"
            return LakalaResponseError("response", [Finding("size", "response body", rule)])
        if isinstance(exc, AnswerTooSlow):
            return LakalaTimeout(
                f"no complete answer from {url} within {self.settings.timeout:g}s "
                "(the timeout covers the whole answer); connection closed"
            )
        if isinstance(exc, httpx.DecodingError):
            rule = f"cannot be decoded ({exc})"
            return LakalaResponseError("response", [Finding("json", "response body", rule)])
        if isinstance(exc, httpx.TimeoutException):
            return LakalaTimeout(
                f"no answer from {url} within {self.settings.timeout:g}s ({type(exc).__name__})"
            )
        return LakalaTransportError(f"cannot reach {url}: {type(exc).__name__}: {exc}")


def _settings_and_clock(kwargs: dict[str, Any]) -> tuple[ClientSettings, WallClock | None, Any]:
    transport = kwargs.pop("transport", None)
    clock = kwargs.pop("clock", None)
    return ClientSettings.build(**kwargs), clock, transport


class _ClientBase:
    """What the sync and the async client share beyond ``_Core``: construction and read-outs."""

    _core: _Core

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Self:
        """Settings from ``LAKALA_*`` variables (``ENV_VARS``); keyword arguments win."""
        return cls(**{**settings_from_env(environ), **overrides})

    @property
    def settings(self) -> ClientSettings:
        return self._core.settings

    @property
    def base_url(self) -> str:
        return self._core.settings.base_url

    @property
    def merchant_no(self) -> str | None:
        return self._core.settings.merchant_no

    @property
    def certificate(self) -> x509.Certificate | None:
        """The platform certificate responses are verified with (once known)."""
        return self._core.certificate

    @property
    def notify_certificate(self) -> x509.Certificate | None:
        return self._core.notify_cert or self._core.certificate

    def request_data(self, operation: str, **kwargs: Any) -> dict[str, Any]:
        """The ``req_data`` that ``create`` / ``query`` / ``close`` send for these arguments."""
        return self._core.request_data(operation, kwargs)

    def default_expiry(
        self, merchant_no: str, out_order_no: str, fresh: Callable[[], str] | None = None
    ) -> str:
        """The ``order_efficient_time`` a create that gives none sends: an hour from now (or
        ``fresh()``) the first time, the same value for every repeat of that order's create."""
        return self._core.default_expiry(merchant_no, out_order_no, fresh)


class LakalaClient(_ClientBase):
    """Synchronous client. Keyword-only settings (all optional for the sandbox):

    ``environment`` (sandbox | lakala-test | lakala-production), ``base_url``, ``appid``,
    ``serial_no``, ``private_key`` (key object, PEM, or path), ``certificate`` (Lakala's platform
    certificate, verifies responses), ``notify_certificate`` (verifies notifies; defaults to
    ``certificate``), ``merchant_no``, ``term_no``, ``timeout`` (seconds), ``transport`` (any
    ``httpx.BaseTransport``, e.g. ``InProcessTransport(app)`` or ``httpx.MockTransport``) and
    ``clock`` (a ``WallClock``, or the sandbox's ``Clock``: ``req_time`` and the default expiry).
    """

    def __init__(self, **kwargs: Any) -> None:
        settings, clock, transport = _settings_and_clock(kwargs)
        self._core = _Core(settings, clock)
        self._http = httpx.Client(
            base_url=settings.base_url,
            transport=transport,
            timeout=settings.timeout,
            limits=NO_KEEPALIVE,  # so that the whole-answer deadline can always cut a read
            verify=verify_for(transport),
        )

    def __enter__(self) -> LakalaClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()

    def shutdown(self) -> None:
        """Release the connection pool (``close`` is the order API)."""
        self._http.close()

    def _ensure_keys(self, path: str | None = None) -> None:
        for name, key_path in self._core.missing_keys(path).items():
            if not self._core.settings.fetches_keys:
                raise LakalaConfigError(f"{name} is not set{KEY_HINTS.get(name, '')}")
            self._core.absorb_key(name, self._fetch("GET", key_path))

    def _fetch(self, method: str, path: str, **kwargs: Any) -> Answer:
        """The whole answer, within the timeout and ``MAX_ANSWER_BYTES``, or a typed error."""
        request = self._http.build_request(method, path, **kwargs)
        try:
            return send_bounded(self._http, request, timeout=self._core.settings.timeout)
        except httpx.RequestError as exc:
            raise self._core.transport_error(path, exc) from None

    def send(self, path: str, req_data: Mapping[str, Any]) -> Exchange:
        """Sign and send; the answer is returned unchecked (``call`` checks it)."""
        self._ensure_keys(path)
        body, headers = self._core.prepare(path, req_data)
        started = time.perf_counter()
        answer = self._fetch("POST", path, content=body, headers=headers)
        return self._core.exchange(path, body, headers, answer, started)

    def call(self, path: str, req_data: Mapping[str, Any]) -> LakalaResponse:
        """Any v3 API: signed request, verified and validated answer, typed errors."""
        return self._core.interpret(self.send(path, req_data))

    def create(
        self,
        *,
        out_order_no: str,
        total_amount: int | str,
        order_info: str,
        order_efficient_time: str | None = None,
        merchant_no: str | None = None,
        **fields: Any,
    ) -> dict[str, Any]:
        """``special_create``; other ``req_data`` fields (notify_url, counter_param, …) as
        keywords."""
        data = self.request_data(
            "create",
            out_order_no=out_order_no,
            total_amount=total_amount,
            order_info=order_info,
            order_efficient_time=order_efficient_time,
            merchant_no=merchant_no,
            **fields,
        )
        return self.call(PATHS["special_create"], data).resp_data or {}

    def create_encrypted(
        self,
        *,
        out_order_no: str,
        total_amount: int | str,
        order_info: str,
        order_efficient_time: str | None = None,
        merchant_no: str | None = None,
        **fields: Any,
    ) -> dict[str, Any]:
        """``special_create_encry``: ``create`` with the whole body SM4-encrypted with
        ``sm4_key`` (a sandbox's own is fetched); an encrypted answer is decrypted."""
        data = self.request_data(
            "create",
            out_order_no=out_order_no,
            total_amount=total_amount,
            order_info=order_info,
            order_efficient_time=order_efficient_time,
            merchant_no=merchant_no,
            **fields,
        )
        return self.call(PATHS[ENCRYPTED], data).resp_data or {}

    def query(
        self,
        *,
        out_order_no: str | None = None,
        pay_order_no: str | None = None,
        merchant_no: str | None = None,
        channel_id: str | None = None,
    ) -> dict[str, Any]:
        data = self.request_data(
            "query",
            out_order_no=out_order_no,
            pay_order_no=pay_order_no,
            merchant_no=merchant_no,
            channel_id=channel_id,
        )
        return self.call(PATHS["query"], data).resp_data or {}

    def close(
        self,
        *,
        out_order_no: str | None = None,
        pay_order_no: str | None = None,
        merchant_no: str | None = None,
        channel_id: str | None = None,
    ) -> dict[str, Any]:
        data = self.request_data(
            "close",
            out_order_no=out_order_no,
            pay_order_no=pay_order_no,
            merchant_no=merchant_no,
            channel_id=channel_id,
        )
        return self.call(PATHS["close"], data).resp_data or {}

    # -- refunds (the refund APIs of Lakala's SDKs' typed classes) ---------------------------
    def relation_refund(
        self,
        *,
        out_trade_no: str,
        refund_amount: int | str,
        origin_out_trade_no: str | None = None,
        origin_trade_no: str | None = None,
        origin_log_no: str | None = None,
        **fields: Any,
    ) -> dict[str, Any]:
        """``labs/relation/refund`` (聚合扫码-退款): refund all or part of a payment, named by
        the order's out_order_no (``origin_out_trade_no``) or the payment's trade_no / log_no."""
        return self._refund(
            "relation_refund",
            out_trade_no=out_trade_no,
            refund_amount=refund_amount,
            origin_out_trade_no=origin_out_trade_no,
            origin_trade_no=origin_trade_no,
            origin_log_no=origin_log_no,
            **fields,
        )

    def trade_refund(
        self,
        *,
        out_trade_no: str,
        refund_amount: int | str,
        origin_trade_date: str,
        origin_biz_type: int | str = "3",
        origin_trade_no: str | None = None,
        origin_log_no: str | None = None,
        **fields: Any,
    ) -> dict[str, Any]:
        """``lams/trade/trade_refund`` (统一退货): ``origin_trade_date`` is the payment's
        yyyyMMdd in Beijing time; ``origin_biz_type`` 3 (scan) or 4 (online) for a counter one."""
        return self._refund(
            "trade_refund",
            out_trade_no=out_trade_no,
            refund_amount=refund_amount,
            origin_trade_date=origin_trade_date,
            origin_biz_type=origin_biz_type,
            origin_trade_no=origin_trade_no,
            origin_log_no=origin_log_no,
            **fields,
        )

    def trade_refund_query(
        self,
        *,
        out_trade_no: str,
        origin_trade_date: str,
        origin_biz_type: int | str = "3",
        origin_trade_no: str | None = None,
        origin_trade_ref_no: str | None = None,
        **fields: Any,
    ) -> dict[str, Any]:
        """``lams/trade/trade_refund_query`` (退货查询): the refund numbered ``out_trade_no``."""
        return self._refund(
            "trade_refund_query",
            out_trade_no=out_trade_no,
            origin_trade_date=origin_trade_date,
            origin_biz_type=origin_biz_type,
            origin_trade_no=origin_trade_no,
            origin_trade_ref_no=origin_trade_ref_no,
            **fields,
        )

    def idm_refund(
        self,
        *,
        out_refund_order_no: str,
        refund_amount: int | str,
        origin_out_trade_no: str | None = None,
        origin_trade_no: str | None = None,
        origin_log_no: str | None = None,
        **fields: Any,
    ) -> dict[str, Any]:
        """``labs/relation/idmrefund`` (商户订单退款), numbered by ``out_refund_order_no``."""
        return self._refund(
            "idmrefund",
            out_refund_order_no=out_refund_order_no,
            refund_amount=refund_amount,
            origin_out_trade_no=origin_out_trade_no,
            origin_trade_no=origin_trade_no,
            origin_log_no=origin_log_no,
            **fields,
        )

    def idm_refund_query(self, *, out_refund_order_no: str, **fields: Any) -> dict[str, Any]:
        """``labs/query/idmrefundquery``: the refund numbered ``out_refund_order_no`` (by any
        refund API)."""
        return self._refund("idmrefundquery", out_refund_order_no=out_refund_order_no, **fields)

    def _refund(self, operation: str, **fields: Any) -> dict[str, Any]:
        data = self._core.refund_data(operation, fields)
        return self.call(REFUND_PATHS[operation], data).resp_data or {}

    def verify_notify(self, headers: Mapping[str, str], body: bytes | str) -> dict[str, Any]:
        """For your notify handler: the verified, validated notify, or a typed exception."""
        self._ensure_keys()
        return self._core.verify_notify(headers, body)


class AsyncLakalaClient(_ClientBase):
    """The same as ``LakalaClient``, awaitable; ``transport`` is an ``httpx.AsyncBaseTransport``
    (e.g. ``httpx.ASGITransport(app=create_app(...))``)."""

    def __init__(self, **kwargs: Any) -> None:
        settings, clock, transport = _settings_and_clock(kwargs)
        self._core = _Core(settings, clock)
        self._http = httpx.AsyncClient(
            base_url=settings.base_url,
            transport=transport,
            timeout=settings.timeout,
            verify=verify_for(transport),
        )

    async def __aenter__(self) -> AsyncLakalaClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _ensure_keys(self, path: str | None = None) -> None:
        for name, key_path in self._core.missing_keys(path).items():
            if not self._core.settings.fetches_keys:
                raise LakalaConfigError(f"{name} is not set{KEY_HINTS.get(name, '')}")
            self._core.absorb_key(name, await self._fetch("GET", key_path))

    async def _fetch(self, method: str, path: str, **kwargs: Any) -> Answer:
        request = self._http.build_request(method, path, **kwargs)
        try:
            return await asend_bounded(self._http, request, timeout=self._core.settings.timeout)
        except httpx.RequestError as exc:
            raise self._core.transport_error(path, exc) from None

    async def send(self, path: str, req_data: Mapping[str, Any]) -> Exchange:
        await self._ensure_keys(path)
        body, headers = self._core.prepare(path, req_data)
        started = time.perf_counter()
        answer = await self._fetch("POST", path, content=body, headers=headers)
        return self._core.exchange(path, body, headers, answer, started)

    async def call(self, path: str, req_data: Mapping[str, Any]) -> LakalaResponse:
        return self._core.interpret(await self.send(path, req_data))

    async def create(
        self,
        *,
        out_order_no: str,
        total_amount: int | str,
        order_info: str,
        order_efficient_time: str | None = None,
        merchant_no: str | None = None,
        **fields: Any,
    ) -> dict[str, Any]:
        data = self.request_data(
            "create",
            out_order_no=out_order_no,
            total_amount=total_amount,
            order_info=order_info,
            order_efficient_time=order_efficient_time,
            merchant_no=merchant_no,
            **fields,
        )
        return (await self.call(PATHS["special_create"], data)).resp_data or {}

    async def create_encrypted(
        self,
        *,
        out_order_no: str,
        total_amount: int | str,
        order_info: str,
        order_efficient_time: str | None = None,
        merchant_no: str | None = None,
        **fields: Any,
    ) -> dict[str, Any]:
        """``special_create_encry``: ``create`` with the whole body SM4-encrypted with
        ``sm4_key`` (a sandbox's own is fetched); an encrypted answer is decrypted."""
        data = self.request_data(
            "create",
            out_order_no=out_order_no,
            total_amount=total_amount,
            order_info=order_info,
            order_efficient_time=order_efficient_time,
            merchant_no=merchant_no,
            **fields,
        )
        return (await self.call(PATHS[ENCRYPTED], data)).resp_data or {}

    async def query(
        self,
        *,
        out_order_no: str | None = None,
        pay_order_no: str | None = None,
        merchant_no: str | None = None,
        channel_id: str | None = None,
    ) -> dict[str, Any]:
        data = self.request_data(
            "query",
            out_order_no=out_order_no,
            pay_order_no=pay_order_no,
            merchant_no=merchant_no,
            channel_id=channel_id,
        )
        return (await self.call(PATHS["query"], data)).resp_data or {}

    async def close(
        self,
        *,
        out_order_no: str | None = None,
        pay_order_no: str | None = None,
        merchant_no: str | None = None,
        channel_id: str | None = None,
    ) -> dict[str, Any]:
        data = self.request_data(
            "close",
            out_order_no=out_order_no,
            pay_order_no=pay_order_no,
            merchant_no=merchant_no,
            channel_id=channel_id,
        )
        return (await self.call(PATHS["close"], data)).resp_data or {}

    # -- refunds (the refund APIs of Lakala's SDKs' typed classes) ---------------------------
    async def relation_refund(
        self,
        *,
        out_trade_no: str,
        refund_amount: int | str,
        origin_out_trade_no: str | None = None,
        origin_trade_no: str | None = None,
        origin_log_no: str | None = None,
        **fields: Any,
    ) -> dict[str, Any]:
        """``labs/relation/refund`` (聚合扫码-退款): refund all or part of a payment, named by
        the order's out_order_no (``origin_out_trade_no``) or the payment's trade_no / log_no."""
        return await self._refund(
            "relation_refund",
            out_trade_no=out_trade_no,
            refund_amount=refund_amount,
            origin_out_trade_no=origin_out_trade_no,
            origin_trade_no=origin_trade_no,
            origin_log_no=origin_log_no,
            **fields,
        )

    async def trade_refund(
        self,
        *,
        out_trade_no: str,
        refund_amount: int | str,
        origin_trade_date: str,
        origin_biz_type: int | str = "3",
        origin_trade_no: str | None = None,
        origin_log_no: str | None = None,
        **fields: Any,
    ) -> dict[str, Any]:
        """``lams/trade/trade_refund`` (统一退货): ``origin_trade_date`` is the payment's
        yyyyMMdd in Beijing time; ``origin_biz_type`` 3 (scan) or 4 (online) for a counter one."""
        return await self._refund(
            "trade_refund",
            out_trade_no=out_trade_no,
            refund_amount=refund_amount,
            origin_trade_date=origin_trade_date,
            origin_biz_type=origin_biz_type,
            origin_trade_no=origin_trade_no,
            origin_log_no=origin_log_no,
            **fields,
        )

    async def trade_refund_query(
        self,
        *,
        out_trade_no: str,
        origin_trade_date: str,
        origin_biz_type: int | str = "3",
        origin_trade_no: str | None = None,
        origin_trade_ref_no: str | None = None,
        **fields: Any,
    ) -> dict[str, Any]:
        """``lams/trade/trade_refund_query`` (退货查询): the refund numbered ``out_trade_no``."""
        return await self._refund(
            "trade_refund_query",
            out_trade_no=out_trade_no,
            origin_trade_date=origin_trade_date,
            origin_biz_type=origin_biz_type,
            origin_trade_no=origin_trade_no,
            origin_trade_ref_no=origin_trade_ref_no,
            **fields,
        )

    async def idm_refund(
        self,
        *,
        out_refund_order_no: str,
        refund_amount: int | str,
        origin_out_trade_no: str | None = None,
        origin_trade_no: str | None = None,
        origin_log_no: str | None = None,
        **fields: Any,
    ) -> dict[str, Any]:
        """``labs/relation/idmrefund`` (商户订单退款), numbered by ``out_refund_order_no``."""
        return await self._refund(
            "idmrefund",
            out_refund_order_no=out_refund_order_no,
            refund_amount=refund_amount,
            origin_out_trade_no=origin_out_trade_no,
            origin_trade_no=origin_trade_no,
            origin_log_no=origin_log_no,
            **fields,
        )

    async def idm_refund_query(self, *, out_refund_order_no: str, **fields: Any) -> dict[str, Any]:
        """``labs/query/idmrefundquery``: the refund numbered ``out_refund_order_no`` (by any
        refund API)."""
        return await self._refund(
            "idmrefundquery", out_refund_order_no=out_refund_order_no, **fields
        )

    async def _refund(self, operation: str, **fields: Any) -> dict[str, Any]:
        data = self._core.refund_data(operation, fields)
        return (await self.call(REFUND_PATHS[operation], data)).resp_data or {}

    async def verify_notify(self, headers: Mapping[str, str], body: bytes | str) -> dict[str, Any]:
        await self._ensure_keys()
        return self._core.verify_notify(headers, body)
