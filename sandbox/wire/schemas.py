"""The JSON Schemas in ``schemas/`` are the contract: requests are validated here, responses in
strict mode, and the client and contract checker use the same files.

Beyond plain 2020-12 this validator asserts a few things the files mark:
``contentMediaType: application/json`` + ``contentSchema`` (a JSON string holding a document),
``format: lakala-datetime`` (a real ``yyyyMMddHHmmss``), ``x-time-window`` (later than the
sandbox clock, at most N days ahead) and ``x-split-sum`` (split amounts add up to the total).
``x-coerce: integer`` marks values accepted as a number or a digit string, made ints afterwards;
``x-pattern-rule`` words what a ``pattern`` beside it asks, for the error message.
"""

from __future__ import annotations

import functools
import json
import numbers
import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from jsonschema import Draft202012Validator, FormatChecker, validators
from jsonschema.exceptions import ValidationError, best_match
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from sandbox.wire.envelopes import strict_json
from sandbox.wire.errors import SandboxError
from sandbox.wire.times import WallClock, duration_text

BASE_URI = "https://lakala-sandbox/schemas/"
SUFFIX = ".schema.json"


@dataclass(frozen=True)
class Problem:
    """One broken rule: where (``req_data.total_amount``) and what."""

    field: str
    rule: str
    validator: str

    def __str__(self) -> str:
        return f"{self.field}: {self.rule}"


@dataclass
class _Folder:
    """What reading a schemas folder gives; shared (read-only) by every sandbox of a process."""

    documents: dict[str, dict[str, Any]]
    registry: Registry[Any]
    inlined: dict[str, dict[str, Any]]


@functools.lru_cache(maxsize=8)
def _read_folder(root: str, stamp: tuple[tuple[str, int], ...]) -> _Folder:
    documents: dict[str, dict[str, Any]] = {}
    resources = []
    for path_text, _ in stamp:
        path = Path(path_text)
        name = path.relative_to(root).as_posix()[: -len(SUFFIX)]
        doc = json.loads(path.read_text(encoding="utf-8"))
        documents[name] = doc
        resources.append(
            (
                doc.get("$id", BASE_URI + name + SUFFIX),
                Resource.from_contents(doc, default_specification=DRAFT202012),
            )
        )
    return _Folder(documents, Registry().with_resources(resources), {})


def _stamp(root: Path) -> tuple[tuple[str, int], ...]:
    """Each schema file under ``root`` with its modification time: what ``_read_folder``'s
    memory is keyed on, so an edited file is read again."""
    found = []
    for folder, _, names in os.walk(root):
        for name in names:
            if name.endswith(SUFFIX):
                path = os.path.join(folder, name)
                found.append((Path(path).as_posix(), os.stat(path).st_mtime_ns))
    return tuple(sorted(found, key=lambda entry: entry[0].split("/")))  # pathlib's order


class _ClockChecker(FormatChecker):
    """The formats, with the sandbox clock that ``x-time-window`` and ``lakala-datetime`` read:
    the validator class is made once per process, and each validator reaches its sandbox's
    clock through its format checker."""

    def __init__(self, clock: WallClock) -> None:
        super().__init__()
        self.clock = clock


class Schemas:
    def __init__(self, root: Path, clock: WallClock) -> None:
        self.root = root
        self.clock = clock
        loaded = _read_folder(root.as_posix(), _stamp(root))
        self.documents: dict[str, dict[str, Any]] = loaded.documents
        self.registry: Registry[Any] = loaded.registry
        self._inlined = loaded.inlined
        checker = _ClockChecker(clock)
        checker.checks("lakala-datetime", raises=ValueError)(self._check_datetime)
        checker.checks("http-url", raises=ValueError)(_check_http_url)
        self._format_checker = checker
        self._validators: dict[str, Any] = {}
        self._holds: dict[str, Holds] = {}

    def names(self) -> list[str]:
        return sorted(self.documents)

    def validator(self, name: str) -> Any:
        found = self._validators.get(name)
        if found is None:
            found = _Validator(
                self.inlined(name), registry=self.registry, format_checker=self._format_checker
            )
            self._validators[name] = found
        return found

    def inlined(self, name: str) -> dict[str, Any]:
        """The schema with every ``$ref`` replaced by what it points to, resolved once, so that
        validating a request walks plain dicts instead of looking references up each time."""
        found = self._inlined.get(name)
        if found is None:
            if name not in self.documents:
                raise KeyError(f"no schema {name!r} in {self.root}")
            doc = self.documents[name]
            resolver = self.registry.resolver(base_uri=doc.get("$id", BASE_URI + name + SUFFIX))
            found = _inline(doc, resolver, ())
            found["$schema"] = doc.get("$schema", "https://json-schema.org/draft/2020-12/schema")
            self._inlined[name] = found
        return found

    def problems(self, name: str, instance: Any, prefix: str = "") -> list[Problem]:
        holds = self._holds.get(name)
        if holds is None:
            holds = self._holds[name] = _holds(self.validator(name))
        if holds(instance):
            return []  # nearly every request: no need to build errors to find there are none
        validator = self.validator(name)
        errors = list(validator.iter_errors(instance))
        if not errors:
            return []
        ordered = [best_match(errors)] + [e for e in errors if e is not best_match(errors)]
        return [_problem(e, prefix) for e in ordered]

    def refuse_broken(self, name: str, body: Any) -> None:
        """What the sandbox is about to send, held to its own schema (strict-responses mode)."""
        problems = self.problems(name, body)
        if problems:
            raise SandboxError("INTERNAL", reason=f"response breaks schema {name}: {problems[0]}")

    def check(self, name: str, instance: Any, prefix: str = "") -> None:
        """Raise INVALID_PARAM naming the first broken field and rule."""
        problems = self.problems(name, instance, prefix)
        if problems:
            first = problems[0]
            if first.validator == "x-time-window-clock":
                raise SandboxError(
                    "EFFICIENT_TIME_BEFORE_CLOCK",
                    field=first.field,
                    value=_value_at(instance, first.field, prefix),
                    now=self.clock.now14(),
                    ahead=duration_text(self.clock.offset()),
                )
            raise SandboxError("INVALID_PARAM", field=first.field, rule=first.rule)

    def documented(self, name: str, instance: dict[str, Any]) -> dict[str, Any]:
        """Only the fields schema ``name`` describes: an order keeps what Lakala would, not
        whatever else a caller sent along."""
        known = self.documents[name].get("properties", {})
        return {k: v for k, v in instance.items() if k in known}

    def coerce(self, name: str, instance: Any) -> Any:
        """A copy with every ``x-coerce: integer`` value turned into an int."""
        return _coerce(self.inlined(name), instance)

    def _check_datetime(self, instance: object) -> bool:
        if isinstance(instance, str):
            self.clock.parse(instance)
        return True


Holds = Callable[[Any], bool]


def _holds(validator: Any) -> Holds:
    """Whether an instance is valid against ``validator``'s schema, exactly as ``validator``
    would find it, at a fraction of the cost: the schema is turned once into a tree of small
    functions. jsonschema builds a validator object and a generator for every node it visits;
    this tree walks the applicators (properties, items, allOf, anyOf, oneOf, not, if/then/else)
    itself, tests the commonest keywords (type, lengths, pattern, bounds, required) inline with
    jsonschema's own meaning of them, and calls jsonschema's own function for every other
    keyword it knows (keywords jsonschema ignores are ignored), in the schema's order."""
    return _compile(validator, validator.schema)


def _always(instance: Any) -> bool:
    return True


def _never(instance: Any) -> bool:
    return False


_DRAFT = Draft202012Validator.VALIDATORS
# draft 2020-12's types as jsonschema's type checker defines them (bools are not numbers)
_TYPES: dict[str, Holds] = {
    "array": lambda i: isinstance(i, list),
    "boolean": lambda i: isinstance(i, bool),
    "integer": lambda i: (
        (isinstance(i, int) and not isinstance(i, bool))
        or (isinstance(i, float) and i.is_integer())
    ),
    "null": lambda i: i is None,
    "number": lambda i: isinstance(i, numbers.Number) and not isinstance(i, bool),
    "object": lambda i: isinstance(i, dict),
    "string": lambda i: isinstance(i, str),
}


def _compile(validator: Any, schema: Any) -> Holds:
    if schema is True:
        return _always
    if schema is False:
        return _never
    checks = _checks(validator, schema)
    if not checks:
        return _always
    if len(checks) == 1:
        return checks[0]

    def every(instance: Any) -> bool:
        for check in checks:
            if not check(instance):
                return False
        return True

    return every


def _checks(validator: Any, schema: dict[str, Any]) -> list[Holds]:
    """One function per keyword of ``schema``, in its order (an ``allOf``'s in its place)."""
    keywords = validator.VALIDATORS
    own_types = validator.TYPE_CHECKER is Draft202012Validator.TYPE_CHECKER
    checks: list[Holds] = []
    for key, value in schema.items():
        if key == "properties":
            checks.append(_properties([(p, _compile(validator, s)) for p, s in value.items()]))
        elif key == "items" and "prefixItems" not in schema:
            checks.append(_items(_compile(validator, value)))
        elif key == "allOf":
            for sub in value:  # (all of them hold if each of their keywords holds)
                if isinstance(sub, dict):
                    checks.extend(_checks(validator, sub))
                else:
                    checks.append(_compile(validator, sub))
        elif key == "anyOf":
            checks.append(_any_of([_compile(validator, sub) for sub in value]))
        elif key == "oneOf":
            checks.append(_one_of([_compile(validator, sub) for sub in value]))
        elif key == "not":
            checks.append(_not(_compile(validator, value)))
        elif key == "if":
            then, otherwise = schema.get("then"), schema.get("else")
            checks.append(
                _if(
                    _compile(validator, value),
                    None if then is None else _compile(validator, then),
                    None if otherwise is None else _compile(validator, otherwise),
                )
            )
        elif key not in keywords:
            continue
        elif own_types and keywords[key] is _DRAFT["type"] and _known_types(value):
            checks.append(_type(value))
        elif own_types and key in _INLINE and keywords[key] is _DRAFT[key]:
            checks.append(_INLINE[key](value))
        elif keywords[key] is _ecma_pattern:
            checks.append(_pattern(_ecma(value)))
        else:
            checks.append(_keyword(validator, keywords[key], value, schema))
    return checks


def _min_length(n: Any) -> Holds:
    return lambda i: not (isinstance(i, str) and len(i) < n)


def _max_length(n: Any) -> Holds:
    return lambda i: not (isinstance(i, str) and len(i) > n)


def _minimum(n: Any) -> Holds:
    return lambda i: not (_TYPES["number"](i) and i < n)


def _maximum(n: Any) -> Holds:
    return lambda i: not (_TYPES["number"](i) and i > n)


def _required(names: Any) -> Holds:
    names = tuple(names)
    return lambda i: not isinstance(i, dict) or all(n in i for n in names)


def _pattern(pattern: re.Pattern[str]) -> Holds:
    search = pattern.search
    return lambda i: not isinstance(i, str) or search(i) is not None


# keywords tested inline with jsonschema's meaning, when the validator has jsonschema's own
_INLINE: dict[str, Callable[[Any], Holds]] = {
    "minLength": _min_length,
    "maxLength": _max_length,
    "minimum": _minimum,
    "maximum": _maximum,
    "required": _required,
}


def _known_types(value: Any) -> bool:
    names = [value] if isinstance(value, str) else value
    return isinstance(names, list) and all(isinstance(n, str) and n in _TYPES for n in names)


def _type(value: Any) -> Holds:
    if isinstance(value, str):
        return _TYPES[value]
    tests = [_TYPES[name] for name in value]
    return lambda i: any(test(i) for test in tests)


def _keyword(validator: Any, function: Any, value: Any, schema: dict[str, Any]) -> Holds:
    def check(instance: Any) -> bool:
        for _ in function(validator, value, instance, schema):
            return False
        return True

    return check


def _properties(subs: list[tuple[str, Holds]]) -> Holds:
    def check(instance: Any) -> bool:
        if isinstance(instance, dict):
            for prop, holds in subs:
                if prop in instance and not holds(instance[prop]):
                    return False
        return True

    return check


def _items(holds: Holds) -> Holds:
    return lambda i: not isinstance(i, list) or all(holds(item) for item in i)


def _any_of(subs: list[Holds]) -> Holds:
    return lambda i: any(holds(i) for holds in subs)


def _one_of(subs: list[Holds]) -> Holds:
    return lambda i: sum(1 for holds in subs if holds(i)) == 1


def _not(holds: Holds) -> Holds:
    return lambda i: not holds(i)


def _if(condition: Holds, then: Holds | None, otherwise: Holds | None) -> Holds:
    def check(instance: Any) -> bool:
        branch = then if condition(instance) else otherwise
        return branch is None or branch(instance)

    return check


def _time_window(
    validator: Any, window: dict[str, Any], instance: Any, schema: dict[str, Any]
) -> Iterator[ValidationError]:
    clock = validator.format_checker.clock
    if not isinstance(instance, str):
        return
    try:
        ts = clock.parse(instance)
    except ValueError:
        return
    now = clock.timestamp()
    if window.get("future") and ts <= now:
        if clock.offset() > 1:
            error = ValidationError("before the advanced sandbox clock")
            error.validator = "x-time-window-clock"  # type: ignore[assignment]
            yield error
            return
        yield ValidationError(f"must be later than the current time {clock.format(now)}")
    days = window.get("max_days")
    if days is not None and ts > now + days * 86400:
        yield ValidationError(
            f"must be at most {days} days after the current time "
            f"{clock.format(now)} (latest {clock.format(now + days * 86400)})"
        )


def _check_http_url(instance: object) -> bool:
    """An http(s) URL that parses, with a host and a valid port (the pattern alone let
    ``http://[zz]/`` through, which no page could link to and no notify could reach)."""
    if isinstance(instance, str):
        parts = urlsplit(instance)  # ValueError for a bracketed host that is no IPv6 address
        if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
            raise ValueError("not an http(s) URL with a host")
        _ = parts.port  # ValueError for a port that is not a number from 0 to 65535
    return True


def _ecma_pattern(
    validator: Any, pattern: str, instance: Any, schema: dict[str, Any]
) -> Iterator[ValidationError]:
    if isinstance(instance, str) and not _ecma(pattern).search(instance):
        yield ValidationError(f"{instance!r} does not match {pattern!r}")


@functools.cache
def _ecma(pattern: str) -> re.Pattern[str]:
    """``pattern`` with JSON Schema's (ECMA-262) meaning of ``$``: the end of the text. Python's
    ``$`` also matches before a final newline, so ``^[0-9]+$`` took ``"100\\n"``."""
    out, i, in_class = [], 0, False
    while i < len(pattern):
        c = pattern[i]
        if c == "\\":
            out.append(pattern[i : i + 2])
            i += 2
            continue
        if in_class:
            in_class = c != "]"
        elif c == "[":
            in_class = True
        elif c == "$":
            c = r"\Z"
        out.append(c)
        i += 1
    return re.compile("".join(out))


def _content_schema(
    validator: Any, content_schema: Any, instance: Any, schema: dict[str, Any]
) -> Iterator[ValidationError]:
    if not isinstance(instance, str) or schema.get("contentMediaType") != "application/json":
        return
    try:
        parsed = strict_json(instance)
    except json.JSONDecodeError as exc:
        yield ValidationError(f"must be a JSON string ({exc.msg} at character {exc.pos})")
        return
    except ValueError as exc:  # not JSON as JSON means it (NaN, nested too deeply, ...)
        yield ValidationError(f"must be a JSON string ({exc})")
        return
    for error in validator.descend(parsed, content_schema):
        problem = _problem(error, "")
        where = problem.field if error.absolute_path or error.validator == "required" else ""
        yield ValidationError(
            f"holds JSON where {where or 'the value'} {problem.rule}", validator="contentSchema"
        )


def _split_sum(
    validator: Any, spec: dict[str, str], instance: Any, schema: dict[str, Any]
) -> Iterator[ValidationError]:
    if not isinstance(instance, dict) or str(instance.get(spec["flag"])) != "1":
        return
    items = instance.get(spec["items"])
    if not isinstance(items, list):
        return
    try:
        parts = [int(item[spec["amount"]]) for item in items]
        total = int(instance[spec["total"]])
    except (KeyError, TypeError, ValueError, OverflowError):
        return
    if any(part < 1 for part in parts):
        return  # the amount's own rule says what is wrong; a sum of bad parts means nothing
    if sum(parts) != total:
        error = ValidationError(f"amounts add up to {sum(parts)}, not {spec['total']} {total}")
        error.path.append(spec["items"])
        yield error


def _inline(node: Any, resolver: Any, stack: tuple[str, ...]) -> Any:
    if isinstance(node, list):
        return [_inline(item, resolver, stack) for item in node]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in ("$ref", "$defs", "$id", "$schema"):
            continue  # $defs are reached through the references that use them
        out[key] = _inline(value, resolver, stack)
    ref = node.get("$ref")
    if ref is None:
        return out
    resolved = resolver.lookup(ref)
    where = f"{resolved.resolver._base_uri}|{ref}"
    if where in stack:
        raise ValueError(f"schema reference cycle through {ref}")
    target = _inline(resolved.contents, resolved.resolver, (*stack, where))
    if not out:
        return target
    out["allOf"] = [target, *out.get("allOf", [])]
    return out


def _coerce(schema: Any, instance: Any) -> Any:
    if not isinstance(schema, dict):
        return instance
    if (
        schema.get("x-coerce") == "integer"
        and isinstance(instance, str)
        and instance.isascii()
        and instance.isdigit()
    ):
        return int(instance)
    for sub in schema.get("allOf", []):
        instance = _coerce(sub, instance)
    if isinstance(instance, dict):
        props = schema.get("properties", {})
        return {k: _coerce(props[k], v) if k in props else v for k, v in instance.items()}
    if isinstance(instance, list) and isinstance(schema.get("items"), dict):
        return [_coerce(schema["items"], v) for v in instance]
    return instance


FORMAT_NAMES = {"http-url": "http(s) URL (a scheme, a host, a port from 0 to 65535)"}


_RULES: dict[str, Callable[[ValidationError], str]] = {
    "maxLength": lambda e: (
        f"must be at most {e.validator_value} characters (got {len(e.instance)})"
    ),
    "minLength": lambda e: (
        "must not be empty"
        if e.validator_value == 1
        else f"must be at least {e.validator_value} characters"
    ),
    "type": lambda e: f"must be of type {e.validator_value} (got {type(e.instance).__name__})",
    "enum": lambda e: (
        "must be one of "
        + _choices(e.validator_value)
        + f" (got {json.dumps(e.instance, ensure_ascii=False)})"
    ),
    "const": lambda e: f"must be {e.validator_value!r} (got {e.instance!r})",
    "pattern": lambda e: (
        f"{e.schema['x-pattern-rule']} (got {e.instance!r})"
        if isinstance(e.schema, dict) and "x-pattern-rule" in e.schema
        else f"{e.instance!r} does not match {e.validator_value}"
    ),
    "format": lambda e: (
        f"{e.instance!r} is not a valid {FORMAT_NAMES.get(e.validator_value, e.validator_value)}"
    ),
    "minimum": lambda e: f"must be at least {e.validator_value} (got {e.instance})",
    "maximum": lambda e: f"must be at most {e.validator_value} (got {e.instance})",
    "minItems": lambda e: f"must have at least {e.validator_value} entries",
    "maxItems": lambda e: f"must have at most {e.validator_value} entries",
}


def _choices(values: list[Any]) -> str:
    if all(isinstance(v, str) for v in values):
        return ", ".join(values)
    return ", ".join(json.dumps(v) for v in values)


def _rule(error: ValidationError) -> str:
    render = _RULES.get(str(error.validator))
    if render:
        return render(error)
    if error.validator in ("anyOf", "oneOf"):
        description = error.schema.get("description") if isinstance(error.schema, dict) else None
        got = json.dumps(error.instance, ensure_ascii=False)[:60]
        return f"invalid value {got}" + (f": expected {description}" if description else "")
    return error.message


def _problem(error: ValidationError, prefix: str) -> Problem:
    path = [str(p) for p in error.absolute_path]
    if error.validator == "required":
        missing = [k for k in error.validator_value if k not in (error.instance or {})]
        return Problem(_join(prefix, path + missing[:1]), "is required", "required")
    if error.validator in ("anyOf", "oneOf") and isinstance(error.instance, dict):
        # "out_order_no or pay_order_no": name the alternatives
        alternatives = [
            " + ".join(s.get("required", []))
            for s in error.validator_value
            if isinstance(s, dict) and s.get("required")
        ]
        if alternatives:
            return Problem(
                _join(prefix, path + [" or ".join(alternatives)]), "is required", "required"
            )
    if error.validator == "additionalProperties":
        return Problem(_join(prefix, path), error.message, "additionalProperties")
    return Problem(_join(prefix, path), _rule(error), str(error.validator))


def _join(prefix: str, parts: list[str]) -> str:
    dotted = ".".join(parts)
    if prefix and dotted:
        return f"{prefix}.{dotted}"
    return prefix or dotted or "body"


def _value_at(instance: Any, field: str, prefix: str) -> Any:
    parts = field.split(".")
    if prefix and parts[: len(prefix.split("."))] == prefix.split("."):
        parts = parts[len(prefix.split(".")) :]
    for part in parts:
        if isinstance(instance, dict):
            instance = instance.get(part)
    return instance


_Validator = validators.extend(
    Draft202012Validator,
    {
        "contentSchema": _content_schema,
        "pattern": _ecma_pattern,
        "x-time-window": _time_window,
        "x-split-sum": _split_sum,
    },
)
