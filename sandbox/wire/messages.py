"""What a v3 message must satisfy, as a list of findings: signature headers, signatures, schemas.

One implementation for two readers: ``LakalaClient`` raises on the first finding that matters,
the ``contract`` command reports every check with all it found. Each finding names the field (or
header) and the rule it broke.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from cryptography import x509

from sandbox.wire import signing
from sandbox.wire.envelopes import strict_json
from sandbox.wire.resources import schemas_dir
from sandbox.wire.schemas import Schemas
from sandbox.wire.times import WallClock
from sandbox.wire.vocabulary import (
    COUNTER_PREFIX,
    ENCRYPTED_OF,
    REFUND_PATHS,
    REFUND_PREFIX,
    REQUEST_AUTH_FIELDS,
    SUCCESS,
)

# What a finding is about: the HTTP status, the answer's size, the JSON, a signature, a schema, the
# API's own code, or (in the contract's flows) what the sandbox did.
FindingKind = Literal["status", "size", "json", "signature", "schema", "api", "flow"]


@dataclass(frozen=True)
class Finding:
    """One broken rule."""

    kind: FindingKind
    field: str
    rule: str

    def __str__(self) -> str:
        return f"{self.field}: {self.rule}"


@dataclass
class Check:
    name: str
    findings: list[Finding] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.findings


@dataclass
class Audit:
    """Every check one message went through, in order; ``message`` is the parsed JSON body."""

    checks: list[Check] = field(default_factory=list)
    message: Any = None

    def add(self, name: str, findings: list[Finding]) -> list[Finding]:
        self.checks.append(Check(name, findings))
        return findings

    @property
    def findings(self) -> list[Finding]:
        return [f for c in self.checks for f in c.findings]

    def of(self, *kinds: FindingKind) -> list[Finding]:
        return [f for f in self.findings if f.kind in kinds]

    def named(self, name: str) -> list[Finding]:
        return [f for c in self.checks if c.name == name for f in c.findings]

    @property
    def ok(self) -> bool:
        return not self.findings


@functools.cache
def default_schemas() -> Schemas:
    """The shipped schemas on a wall clock, loaded once per process."""
    return Schemas(schemas_dir(), WallClock())


def operation_of(schemas: Schemas, path: str) -> str | None:
    """``special_create`` for ``…/counter/order/special_create``, ``refund`` for
    ``…/refund_front/refund``, ``trade_refund`` for ``…/lams/trade/trade_refund`` (see
    ``REFUND_PATHS``); None for paths without schemas."""
    named = next((op for op, p in REFUND_PATHS.items() if path.rstrip("/") == p), None)
    if named is not None:
        return named if f"v3/{named}.req" in schemas.documents else None
    prefix = next((p for p in (COUNTER_PREFIX, REFUND_PREFIX) if path.startswith(p)), None)
    if prefix is None:
        return None
    op = path[len(prefix) :].strip("/")
    op = ENCRYPTED_OF.get(op, op)
    return op if f"v3/{op}.req" in schemas.documents else None


def lower_headers(headers: Mapping[str, str]) -> dict[str, str]:
    return {k.lower(): v for k, v in headers.items()}


def schema_findings(schemas: Schemas, name: str, instance: Any, prefix: str = "") -> list[Finding]:
    return [Finding("schema", p.field, p.rule) for p in schemas.problems(name, instance, prefix)]


def parse_json(body: bytes, what: str) -> tuple[Any, list[Finding]]:
    try:
        value = strict_json(body.decode("utf-8"))
    except UnicodeDecodeError as exc:
        return None, [Finding("json", what, f"is not UTF-8 (byte {exc.start})")]
    except ValueError as exc:
        excerpt = body[:60].decode("utf-8", "replace")
        return None, [Finding("json", what, f"is not JSON ({exc}): {excerpt!r}")]
    if not isinstance(value, dict):
        return None, [Finding("json", what, f"must be a JSON object (got {type(value).__name__})")]
    return value, []


def audit_request(schemas: Schemas, path: str, body: bytes, authorization: str | None) -> Audit:
    audit = Audit()
    try:
        fields = signing.parse_authorization(authorization)
    except ValueError as exc:
        audit.add("request signature header", [Finding("signature", "authorization", str(exc))])
    else:
        missing = [k for k in REQUEST_AUTH_FIELDS if not fields.get(k)]
        audit.add(
            "request signature header",
            [Finding("signature", f"authorization.{k}", "is required") for k in missing],
        )
    message, problems = parse_json(body, "request body")
    audit.message = message
    if message is not None:
        problems = schema_findings(schemas, "v3/request", message)
        op = operation_of(schemas, path)
        if not problems and op is not None:
            problems = schema_findings(schemas, f"v3/{op}.req", message["req_data"], "req_data")
    audit.add("request body", problems)
    return audit


def signature_header_findings(schemas: Schemas, headers: Mapping[str, str]) -> list[Finding]:
    lowered = {k: v for k, v in lower_headers(headers).items() if k.startswith("lklapi-")}
    return [
        Finding("signature", f.field, f.rule)
        for f in schema_findings(schemas, "v3/response_headers", lowered)
    ]


def response_signature_findings(
    headers: Mapping[str, str], body: bytes, certificate: x509.Certificate
) -> list[Finding]:
    """Verify ``Lklapi-Signature`` the way Lakala's SDKs do: certificate picked by hex serial."""
    h = lower_headers(headers)
    names = [n.lower() for n in signing.RESPONSE_HEADERS]
    if any(not h.get(n) for n in names):
        return []  # the header check already named what is missing
    expected = signing.serial_hex(certificate)
    if not signing.same_serial(h["lklapi-serial"], expected):
        return [
            Finding(
                "signature",
                "lklapi-serial",
                f"is {h['lklapi-serial']}, but the platform certificate's serial is {expected}",
            )
        ]
    signed = signing.request_string(
        h["lklapi-appid"], h["lklapi-serial"], h["lklapi-timestamp"], h["lklapi-nonce"], body
    )
    if not signing.verify(
        signing.certificate_public_key(certificate), signed, h["lklapi-signature"]
    ):
        return [
            Finding(
                "signature",
                "lklapi-signature",
                f"does not verify with the platform certificate (serial {expected}) over "
                "appid\\nserial\\ntimestamp\\nnonce\\nbody\\n",
            )
        ]
    return []


def audit_response(
    schemas: Schemas,
    path: str,
    status: int,
    headers: Mapping[str, str],
    body: bytes,
    certificate: x509.Certificate,
    decrypt: Callable[[bytes], bytes] | None = None,
) -> Audit:
    """``decrypt``: an SM4-encrypted answer's, applied after its signature (over the text as
    sent) is checked; an answer that is plain JSON (an error, say) is read as it is."""
    audit = Audit()
    audit.add(
        "response status",
        []
        if 200 <= status < 300
        else [Finding("status", "status", f"is HTTP {status}, expected 200")],
    )
    audit.add("response signature headers", signature_header_findings(schemas, headers))
    audit.add("response signature", response_signature_findings(headers, body, certificate))
    if decrypt is not None and body.lstrip()[:1] != b"{":
        try:
            body = decrypt(body)
        except ValueError as exc:
            audit.add("response body", [Finding("json", "response body", str(exc))])
            return audit
    message, problems = parse_json(body, "response body")
    audit.message = message
    if message is not None:
        problems = schema_findings(schemas, "v3/response", message)
    audit.add("response envelope", problems)
    if message is None or problems:
        return audit
    code = message.get("code")
    if code != SUCCESS:
        audit.add("response code", [Finding("api", "code", f"is {code}: {message.get('msg')}")])
        return audit
    op = operation_of(schemas, path)
    if op is not None:
        audit.add(
            "response data",
            schema_findings(schemas, f"v3/{op}.resp", message.get("resp_data"), "resp_data"),
        )
    return audit


def audit_notify(
    schemas: Schemas, headers: Mapping[str, str], body: bytes, certificate: x509.Certificate
) -> Audit:
    audit = Audit()
    lowered = lower_headers(headers)
    wanted = {k: v for k, v in lowered.items() if k in ("authorization", "content-type")}
    header_problems = [
        Finding("signature", f.field, f.rule)
        for f in schema_findings(schemas, "v3/notify_headers", wanted)
    ]
    audit.add("notify signature header", header_problems)
    audit.add(
        "notify signature",
        []
        if header_problems
        else notify_signature_findings(lowered["authorization"], body, certificate),
    )
    message, problems = parse_json(body, "notify body")
    audit.message = message
    if message is not None:
        problems = schema_findings(schemas, "v3/notify", message)
    audit.add("notify body", problems)
    return audit


def notify_signature_findings(
    authorization: str, body: bytes, certificate: x509.Certificate
) -> list[Finding]:
    try:
        fields = signing.parse_authorization(authorization)
    except ValueError as exc:
        return [Finding("signature", "authorization", str(exc))]
    signed = signing.notify_string(fields.get("timestamp", ""), fields.get("nonce_str", ""), body)
    if not signing.verify(
        signing.certificate_public_key(certificate), signed, fields.get("signature", "")
    ):
        serial = signing.serial_hex(certificate)
        return [
            Finding(
                "signature",
                "authorization.signature",
                f"does not verify with the notify certificate (serial {serial}) over "
                "timestamp\\nnonce_str\\nbody\\n",
            )
        ]
    return []


def audit_ack(schemas: Schemas, body: bytes) -> Audit:
    audit = Audit()
    message, problems = parse_json(body, "notify answer")
    audit.message = message
    if message is not None:
        problems = schema_findings(schemas, "v3/notify_ack", message)
    audit.add("notify answer", problems)
    return audit
