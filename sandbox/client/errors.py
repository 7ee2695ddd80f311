"""What ``LakalaClient`` raises: one base class, one subclass per way a call can go wrong.

Every message says what went wrong and where (the field and the rule, the header, the status),
and never carries key material.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sandbox.wire.messages import Finding


class LakalaError(Exception):
    """Base of every client error."""


class LakalaConfigError(LakalaError, ValueError):
    """The client is missing a setting (or got one it cannot load); the message names it."""


class LakalaTransportError(LakalaError):
    """The request never got an HTTP answer (connection refused, reset, DNS, TLS)."""


class LakalaTimeout(LakalaTransportError):
    """No answer within the client's ``timeout``."""


class LakalaHTTPError(LakalaError):
    """An HTTP status that is not a Lakala answer: 5xx, or a non-2xx without a signed envelope."""

    def __init__(self, status: int, detail: str, *, code: str | None = None) -> None:
        self.status = status
        self.code = code
        super().__init__(f"HTTP {status}: {detail}")


class LakalaFindingsError(LakalaError):
    """An error made of the checks a message failed (see ``sandbox.wire.messages``)."""

    def __init__(self, what: str, findings: Sequence[Finding]) -> None:
        self.findings = list(findings)
        first = self.findings[0] if self.findings else None
        self.field = first.field if first else None
        self.rule = first.rule if first else None
        more = f" (and {len(self.findings) - 1} more)" if len(self.findings) > 1 else ""
        super().__init__(f"{what}: {first}{more}" if first else what)


class LakalaSignatureError(LakalaFindingsError):
    """A response or notify whose signature headers are missing, malformed or do not verify."""


class LakalaResponseError(LakalaFindingsError):
    """A response body that is not a JSON object."""


class LakalaSchemaError(LakalaFindingsError):
    """A request (before sending) or a response/notify (after receiving) breaks ``schemas/``.

    ``direction`` is ``request``, ``response`` or ``notify``; ``field`` and ``rule`` name the
    first broken rule.
    """

    def __init__(self, direction: str, schema: str, findings: Sequence[Finding]) -> None:
        self.direction = direction
        self.schema = schema
        super().__init__(f"{direction} breaks schema {schema}", findings)


class LakalaAPIError(LakalaError):
    """Lakala answered, signed and well-formed, with a code other than ``000000``."""

    def __init__(self, code: str, msg: str, *, status: int = 200) -> None:
        self.code = code
        self.msg = msg
        self.status = status
        super().__init__(f"Lakala answered {code}: {msg}")
