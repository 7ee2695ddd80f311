"""The JSON rules every surface reads by, and each surface's envelope, errors included."""

from __future__ import annotations

import json
import math
import re
from typing import Any

from sandbox.wire.errors import SandboxError
from sandbox.wire.vocabulary import V1_PREFIX, V3_PREFIX

MAX_DIGITS = 100  # in one JSON integer; no field holds more than 12
# arrays and objects within one another in one JSON text (no field nests more than 3). Python's
# own parser gives out near 1,000 on 3.11 and far deeper on later versions: the limit is the
# sandbox's, so the same text is refused on every one
MAX_NESTING = 512


# json.dumps with these options makes an encoder each call; one made once writes the same text
_ENCODE = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def dumps(value: Any) -> bytes:
    return _ENCODE(value).encode()


def whole_number(text: str, maximum: int) -> int | None:
    """``text`` as an integer 0..maximum if it is plain ASCII digits, else None (never raises:
    ``"²".isdigit()`` is true, and ``int()`` of 5,000 digits is refused)."""
    if not text.isascii() or not text.isdigit() or len(text) > len(str(maximum)):
        return None
    value = int(text)
    return value if value <= maximum else None


def parse_object(body: bytes) -> dict[str, Any]:
    if not body.strip():
        raise SandboxError("NOT_JSON", reason="the body is empty")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SandboxError("NOT_JSON", reason=f"not UTF-8 (byte {exc.start})") from None
    try:
        value = strict_json(text)
    except ValueError as exc:
        raise SandboxError("NOT_JSON", reason=str(exc)) from None
    if not isinstance(value, dict):
        raise SandboxError("NOT_JSON", reason=f"expected a JSON object, got {type(value).__name__}")
    return value


class JsonFloat(float):
    """A JSON number written with a fraction or exponent: never an integer, even ``1.0``."""

    def is_integer(self) -> bool:
        return False


def strict_json(text: str) -> Any:
    """``json.loads`` holding to JSON: no NaN or Infinity, no number too large for a float or
    of more than 100 digits, nothing nested more than ``MAX_NESTING`` deep (a ValueError, not
    a RecursionError, however deep), no key twice in one object (the last one won:
    ``{"total_amount":100,"total_amount":1}`` made a 1-fen order) and no lone surrogate
    (``"\\ud800"`` is no character: it cannot be stored, hashed or sent, and was a 500). Each
    ValueError names the field."""
    try:
        value = json.loads(
            text,
            parse_constant=_reject_constant,
            parse_float=_finite_float,
            parse_int=_short_int,
            object_pairs_hook=_unique_keys,
        )
    except RecursionError:
        raise ValueError(TOO_DEEP) from None
    # (as many brackets as that, strings' included, before the cost of looking)
    if text.count("[") + text.count("{") > MAX_NESTING and _deeper_than(value, MAX_NESTING):
        raise ValueError(TOO_DEEP)
    if _ESCAPED_SURROGATE.search(text):  # only an escape can make one: UTF-8 text holds none
        where = _surrogate_at(value, "")
        if where is not None:
            raise ValueError(
                f"{where or 'the value'} holds a lone surrogate (a \\uD800-\\uDFFF escape "
                "that is not half of a pair), which is no Unicode character"
            )
    return value


TOO_DEEP = f"arrays and objects are nested more than {MAX_NESTING} deep"


def _deeper_than(value: Any, limit: int) -> bool:
    """Whether arrays and objects in ``value`` nest more than ``limit`` deep (``[]`` is 1)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False


_ESCAPED_SURROGATE = re.compile(r"\\u[dD][89a-fA-F]")
_SURROGATE = re.compile(r"[\ud800-\udfff]")


class DuplicateKey(ValueError):
    pass


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    value = dict(pairs)
    if len(value) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                shown = key.encode("ascii", "backslashreplace").decode()
                raise DuplicateKey(
                    f"the key {shown!r} appears twice in one object; each field may be given once"
                )
            seen.add(key)
    return value


def _surrogate_at(value: Any, path: str) -> str | None:
    """The field (``req_data.out_order_no``, ``items[2]``) whose key or text holds a lone
    surrogate, or None."""
    if isinstance(value, str):
        return path if _SURROGATE.search(value) else None
    if isinstance(value, dict):
        for key, item in value.items():
            inner = f"{path}.{key}" if path else key
            if _SURROGATE.search(key):
                return inner.encode("ascii", "backslashreplace").decode()
            found = _surrogate_at(item, inner)
            if found is not None:
                return found
    elif isinstance(value, list):
        for i, item in enumerate(value):
            found = _surrogate_at(item, f"{path}[{i}]")
            if found is not None:
                return found
    return None


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _finite_float(text: str) -> JsonFloat:
    value = JsonFloat(text)
    if not math.isfinite(value):
        raise ValueError(f"the number {text[:20]} is too large")
    return value


def _short_int(text: str) -> int:
    if len(text) > MAX_DIGITS:
        raise ValueError(f"a number of {len(text)} digits is too long (at most {MAX_DIGITS})")
    return int(text)


def dialect_of(path: str) -> str:
    if path.startswith(V3_PREFIX):
        return "v3"
    if path.startswith(V1_PREFIX):
        return "v1"
    return "admin"


def envelope(
    dialect: str,
    code: str,
    msg: str,
    resp_time: str,
    resp_data: dict[str, Any] | None,
    *,
    data_alias: bool = True,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "code": code,
        "msg": msg,
        "resp_time": resp_time,
        "resp_data": resp_data,
    }
    if dialect == "v1" and data_alias:
        body["data"] = resp_data
    return body


def error_body(
    dialect: str, error: SandboxError, resp_time: str, *, data_alias: bool = True
) -> tuple[int, dict[str, Any]]:
    """(HTTP status, body) for ``error`` as the surface at ``dialect`` answers it."""
    if dialect == "admin":
        return error.kind.http_status, {
            "code": error.code,
            "msg": error.message,
            "error": error.kind.name,
        }
    return error.kind.status_for_api(), envelope(
        dialect, error.code, error.message, resp_time, None, data_alias=data_alias
    )
