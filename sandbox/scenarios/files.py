"""Scenario files: loaded from YAML, validated by ``schemas/scenario.schema.json``, matched to
creates.

A broken file is refused with its path, the line (from PyYAML's node marks) and the rule broken.
So is a hostile one, quickly and before it can hang or crash the sandbox: too big, nested too
deep, expanding to too much through YAML aliases, or with an ``out_order_no`` pattern that could
backtrack for seconds (see "Limits" below). Running the steps on the clock is ``runner.py``'s
job; this module only knows what a file says.
"""

from __future__ import annotations

import functools
import importlib
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from jsonschema.exceptions import ValidationError

from sandbox.core.clock import Clock
from sandbox.core.engine import requested_pay_modes as engine_pay_modes
from sandbox.wire.errors import SandboxError
from sandbox.wire.resources import schemas_dir
from sandbox.wire.schemas import Schemas

SCHEMA_NAME = "scenario"
HEADER = "x-sandbox-scenario"
TAG = re.compile(r"\[scenario:([A-Za-z0-9_-]+)\]")
SUFFIXES = (".yaml", ".yml")

# -- Limits ------------------------------------------------------------------------------------
# A scenario file is a few hundred bytes, about five levels deep and a few dozen values; these
# bounds are far above that and far below what hangs or crashes the loader.
MAX_FILE_BYTES = 64 * 1024
# libyaml's composer recurses in C: some 50,000 nested brackets overflow its stack (a segfault)
# and 1,000 overflow Python's; the depth is checked on the event stream, which is not recursive.
MAX_DEPTH = 20
# Aliases share nodes, so nine anchors of nine aliases each make 9**10 values that anything
# walking the document (duplicate keys, the schema, json.dumps) would visit one by one.
MAX_VALUES = 10_000
# out_order_no is at most 32 characters in both dialects (schemas/v1, schemas/v3), which is what
# makes a backtracking bound on a pattern possible (see regex_cost).
OUT_ORDER_NO_MAX = 32
# Python's re tries roughly 10**8 to 10**9 of these ways a second, and no time limit can stop it
# (it holds the GIL on the event loop): 10**7 keeps the worst create within tens of milliseconds.
REGEX_BUDGET = 10**7


@dataclass(frozen=True)
class FileProblem:
    path: str
    line: int
    where: str
    message: str

    def __str__(self) -> str:
        where = f" {self.where}:" if self.where else ""
        return f"{self.path}:{self.line}:{where} {self.message}"


class ScenarioFileError(ValueError):
    """One or more scenario files break the schema; ``str()`` lists ``file:line: where: rule``."""

    def __init__(self, problems: Sequence[FileProblem]) -> None:
        self.problems = list(problems)
        super().__init__("bad scenario file(s):\n" + "\n".join(f"  {p}" for p in self.problems))


@dataclass(frozen=True)
class CreateView:
    """What matching looks at in a create call, whichever dialect it came in."""

    dialect: str
    total_amount: int | None
    out_order_no: str
    order_info: str
    counter_remark: str
    pay_modes: frozenset[str]
    headers: Mapping[str, str]

    @classmethod
    def of(
        cls, dialect: str, req: Mapping[str, Any], headers: Mapping[str, str] | None
    ) -> CreateView:
        """From a validated create body (v1 flat or v3 ``req_data``) or an order's stored data."""
        try:
            amount: int | None = int(req.get("total_amount"))  # type: ignore[arg-type]
        except (TypeError, ValueError):
            amount = None
        return cls(
            dialect,
            amount,
            str(req.get("out_order_no") or ""),
            str(req.get("order_info") or ""),
            str(req.get("counter_remark") or ""),
            frozenset(requested_pay_modes(req)),
            {str(k).lower(): str(v) for k, v in (headers or {}).items()},
        )


def requested_pay_modes(req: Mapping[str, Any]) -> set[str]:
    """Payment methods a create named: v1 payment_method, counter_param, busi_type_param."""
    return engine_pay_modes(req)[0]


@dataclass(frozen=True)
class Criteria:
    amount: int | None = None
    amount_min: int | None = None
    amount_max: int | None = None
    out_order_no: re.Pattern[str] | None = None
    order_info: str | None = None
    pay_modes: tuple[str, ...] = ()
    dialect: str | None = None

    @classmethod
    def of(cls, raw: Mapping[str, Any]) -> Criteria:
        amount = raw.get("amount")
        pay_mode = raw.get("pay_mode")
        return cls(
            amount=amount if isinstance(amount, int) else None,
            amount_min=amount.get("min") if isinstance(amount, dict) else None,
            amount_max=amount.get("max") if isinstance(amount, dict) else None,
            out_order_no=re.compile(raw["out_order_no"]) if raw.get("out_order_no") else None,
            order_info=raw.get("order_info"),
            pay_modes=tuple(
                pay_mode if isinstance(pay_mode, list) else [pay_mode] if pay_mode else []
            ),
            dialect=raw.get("dialect"),
        )

    def matches(self, view: CreateView) -> bool:
        amount = view.total_amount
        if self.amount is not None and amount != self.amount:
            return False
        if self.amount_min is not None and (amount is None or amount < self.amount_min):
            return False
        if self.amount_max is not None and (amount is None or amount > self.amount_max):
            return False
        if self.out_order_no is not None and not self._searched(view.out_order_no):
            return False
        if self.order_info is not None and self.order_info not in view.order_info:
            return False
        if self.pay_modes and not view.pay_modes & set(self.pay_modes):
            return False
        return self.dialect is None or self.dialect == view.dialect

    def _searched(self, out_order_no: str) -> bool:
        # the pattern's backtracking was bounded for OUT_ORDER_NO_MAX characters at load; the
        # schemas refuse longer ones before a create gets here, so this only keeps the bound true
        assert self.out_order_no is not None
        return len(out_order_no) <= OUT_ORDER_NO_MAX and bool(
            self.out_order_no.search(out_order_no)
        )


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    path: str
    source: str  # "shipped" or "user"
    match: tuple[Criteria, ...] = ()
    create: dict[str, Any] | None = None
    steps: tuple[dict[str, Any], ...] = ()
    raw: dict[str, Any] = field(default_factory=dict)

    @functools.cached_property
    def steps_json(self) -> str:
        """The steps as a run stores them, encoded once per scenario instead of once per order."""
        return json.dumps(list(self.steps), ensure_ascii=False)

    def magic_amounts(self) -> list[int]:
        return sorted(c.amount for c in self.match if c.amount is not None)

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "source": self.source,
            "file": self.path,
            "match": self.raw.get("match"),
            "create": self.create,
            "steps": list(self.steps),
            "magic_amounts": self.magic_amounts(),
        }


class Catalog:
    """Loaded scenarios in matching order: the user's folder first, then the shipped ones."""

    def __init__(self, scenarios: Iterable[Scenario]) -> None:
        self.scenarios = list(scenarios)
        self._by_name = {s.name: s for s in self.scenarios}
        # every scenario's criteria in matching order, one list: the first that matches wins
        self._criteria = [(c, s) for s in self.scenarios for c in s.match]

    def names(self) -> list[str]:
        return [s.name for s in self.scenarios]

    def get(self, name: str) -> Scenario | None:
        return self._by_name.get(name)

    def __len__(self) -> int:
        return len(self.scenarios)

    def choose(self, view: CreateView, default: str) -> tuple[Scenario, str]:
        """(scenario, why): named by header or tag, else the first match, else the default.

        A name that is not loaded is refused (INVALID_PARAM naming where it was given), so a
        typo never silently falls back to the default."""
        named, where = view.headers.get(HEADER, "").strip().lower(), "X-Sandbox-Scenario"
        if not named:
            for field_name in ("counter_remark", "order_info"):
                found = TAG.search(getattr(view, field_name))
                if found:
                    named, where = found.group(1).lower(), field_name
                    break
        if named:
            scenario = self.get(named)
            if scenario is None:
                raise SandboxError(
                    "INVALID_PARAM",
                    field=where,
                    rule=f"names scenario {named!r}, which is not loaded "
                    f"(known: {', '.join(self.names())})",
                )
            return scenario, f"named by {where}"
        for criteria, scenario in self._criteria:
            if criteria.matches(view):
                return scenario, "matched"
        return self._by_name[default], "default"


# -- loading ---------------------------------------------------------------------------------
@functools.cache
def validator() -> Any:
    return Schemas(schemas_dir(), Clock()).validator(SCHEMA_NAME)


def scenario_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix in SUFFIXES)


def load_catalog(
    user_dir: str | Path | None, shipped_dir: Path, default: str | None = None
) -> Catalog:
    """Shipped scenarios, overridden and extended by ``user_dir``; ScenarioFileError if any is
    bad."""
    check = validator()
    problems: list[FileProblem] = []
    user: list[Scenario] = []
    if user_dir is not None:
        folder = Path(user_dir).expanduser()
        if not folder.is_dir():
            raise ScenarioFileError(
                [FileProblem(str(folder), 0, "", "is not a folder of scenario files")]
            )
        user = _load_folder(folder, "user", check, problems)
    shipped = _load_folder(shipped_dir, "shipped", check, problems)
    if problems:
        raise ScenarioFileError(problems)
    taken = {s.name for s in user}
    catalog = Catalog([*user, *(s for s in shipped if s.name not in taken)])
    if default is not None and catalog.get(default) is None:
        raise ValueError(
            f"the default scenario {default!r} is not loaded (known: {', '.join(catalog.names())})"
        )
    return catalog


def check_paths(paths: Iterable[Path]) -> tuple[list[Scenario], list[FileProblem]]:
    """Lint files or folders without serving: (scenarios that loaded, problems)."""
    check = validator()
    problems: list[FileProblem] = []
    loaded: list[Scenario] = []
    for path in paths:
        if path.is_dir():
            loaded += _load_folder(path, "user", check, problems)
        elif path.is_file():
            scenario = load_file(path, "user", check, problems)
            if scenario is not None:
                loaded.append(scenario)
        else:
            problems.append(FileProblem(str(path), 0, "", "no such file or folder"))
    return loaded, problems


def _load_folder(
    folder: Path, source: str, check: Any, problems: list[FileProblem]
) -> list[Scenario]:
    loaded: list[Scenario] = []
    seen: dict[str, str] = {}
    for path in scenario_files(folder):
        before = len(problems)
        scenario = load_file(path, source, check, problems)
        if scenario is None or len(problems) > before:
            continue
        if scenario.name in seen:
            problems.append(
                FileProblem(
                    str(path),
                    _name_line(path),
                    "name",
                    f"scenario {scenario.name!r} is also defined in {seen[scenario.name]}",
                )
            )
            continue
        seen[scenario.name] = str(path)
        loaded.append(scenario)
    return loaded


# libyaml's loader when PyYAML has it: parsing every shipped file for every sandbox made in a
# test session was most of the in-process fixture's cost
_FAST_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
# Numbers in a scenario file are amounts and seconds; one of thousands of digits (1:59:59:… is
# base 60) cannot even be printed in the schema's message (Python's int digit limit).
MAX_NUMBER_DIGITS = 100


class _Loader(_FAST_LOADER):  # type: ignore[misc]
    """The loader, reporting a value it cannot turn into data (a 13th month, a number of 5,000
    digits) as a YAML error on its line, not as a bare ValueError that names no file; and
    refusing NaN."""

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        try:
            value = super().construct_object(node, deep)
        except (ValueError, OverflowError) as exc:
            raise yaml.constructor.ConstructorError(
                None, None, f"cannot read this value: {exc}", node.start_mark
            ) from exc
        if isinstance(value, int) and value.bit_length() > MAX_NUMBER_DIGITS * 10 // 3:
            raise yaml.constructor.ConstructorError(
                None, None, f"a number has more than {MAX_NUMBER_DIGITS} digits", node.start_mark
            )
        if isinstance(value, float) and value != value:
            # JSON has no NaN, and NaN passes every minimum and maximum of the schema
            raise yaml.constructor.ConstructorError(
                None, None, ".nan is not a number a scenario can use", node.start_mark
            )
        return value


_LOADER: Any = _Loader
# Files that loaded cleanly, by path, modification time and size: a pytest session makes a
# sandbox per test, and the shipped files do not change between them.
_LOADED: dict[tuple[str, int, int, str], Scenario] = {}


def load_file(path: Path, source: str, check: Any, problems: list[FileProblem]) -> Scenario | None:
    """One file; its problems are appended to ``problems`` (and None returned)."""
    where = str(path)
    try:
        stat = path.stat()
        key = (where, stat.st_mtime_ns, stat.st_size, source)
        if key in _LOADED:
            return _LOADED[key]
        with path.open("rb") as file:
            # one byte more than allowed tells a file that is too big (even one that grew since
            # stat) without reading all of it
            raw = file.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        problems.append(FileProblem(where, 0, "", f"cannot read: {exc}"))
        return None
    if len(raw) > MAX_FILE_BYTES:
        problems.append(
            FileProblem(
                where,
                0,
                "",
                f"is larger than {MAX_FILE_BYTES} bytes, the most a scenario file may be",
            )
        )
        return None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        problems.append(FileProblem(where, 0, "", f"cannot read: {exc}"))
        return None
    scenario = _parse_file(path, text, source, check, problems)
    if scenario is not None:
        _LOADED[key] = scenario
    return scenario


def _parse_file(
    path: Path, text: str, source: str, check: Any, problems: list[FileProblem]
) -> Scenario | None:
    where = str(path)
    try:
        # the shape is checked on the event stream first: composing a hostile document is what
        # crashes or hangs
        shape = _shape_problem(text, where)
        if shape is not None:
            problems.append(shape)
            return None
        node, data = _compose_and_construct(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        line = mark.line + 1 if mark is not None else 1
        reason = getattr(exc, "problem", None) or str(exc)
        problems.append(FileProblem(where, line, "", f"not valid YAML: {reason}"))
        return None
    if node is None:
        problems.append(
            FileProblem(
                where, 1, "", "the file is empty; expected a mapping with description and steps"
            )
        )
        return None
    found = _duplicate_keys(node, where)
    found += [_problem(where, node, error) for error in check.iter_errors(data)]
    if not found and isinstance(data, dict):
        found += _semantic_problems(where, node, data)
        found += _file_name_problems(path, data)
    if found:
        problems.extend(sorted(found, key=lambda p: p.line))
        return None
    match = data.get("match")
    criteria = match if isinstance(match, list) else [match] if match else []
    return Scenario(
        name=data.get("name") or default_name(path),
        description=data["description"],
        path=where,
        source=source,
        match=tuple(Criteria.of(c) for c in criteria),
        create=data.get("create"),
        steps=tuple(_normal_step(s) for s in data["steps"]),
        raw=data,
    )


def _compose_and_construct(text: str) -> tuple[yaml.Node | None, Any]:
    """The node tree (for lines) and the data it makes, parsing the text once."""
    loader = _LOADER(text)
    try:
        node = loader.get_single_node()
        return node, (loader.construct_document(node) if node is not None else None)
    finally:
        loader.dispose()


def default_name(path: Path) -> str:
    """A file without ``name:`` is named after its file, in lower case: the header and the tag
    are looked up in lower case, so ``BigOrders.yaml`` is ``bigorders`` wherever it is named."""
    return path.stem.lower()


@functools.cache
def _name_rule() -> tuple[re.Pattern[str], str]:
    # the schema's own rule for names, so that a name from a file name obeys the same one
    rule = json.loads((schemas_dir() / f"{SCHEMA_NAME}.schema.json").read_text(encoding="utf-8"))
    name = rule["$defs"]["name"]
    return re.compile(name["pattern"]), str(name["description"])


def _file_name_problems(path: Path, data: dict[str, Any]) -> list[FileProblem]:
    if data.get("name") is not None:
        return []
    pattern, description = _name_rule()
    name = default_name(path)
    if pattern.fullmatch(name):
        return []
    return [
        FileProblem(
            str(path),
            1,
            "name",
            f"the file name makes the scenario name {name!r}, which breaks the name rule "
            f"({description.rstrip('.')}; at most 64, first a letter or digit): "
            "rename the file or give a name: key",
        )
    ]


def _normal_step(step: dict[str, Any]) -> dict[str, Any]:
    """``{pay: null}`` and ``{pay: {}}`` mean the same; store the second."""
    ((key, value),) = step.items()
    if key not in ("wait", "notify", "fault") and value is None:
        return {key: {}}
    return {key: value}


def _semantic_problems(where: str, root: yaml.Node, data: dict[str, Any]) -> list[FileProblem]:
    found = []
    match = data.get("match")
    for index, criteria in enumerate(
        match if isinstance(match, list) else [match] if match else []
    ):
        at: list[str | int] = ["match", index] if isinstance(match, list) else ["match"]
        amount = criteria.get("amount")
        if isinstance(amount, dict) and amount.get("min", 0) > amount.get("max", 10**13):
            path = [*at, "amount"]
            found.append(
                FileProblem(
                    where,
                    _line(root, path),
                    _dotted(path),
                    f"min {amount['min']} is more than max {amount['max']}",
                )
            )
        pattern = criteria.get("out_order_no")
        refused = regex_problem(pattern) if isinstance(pattern, str) else None
        if refused:
            path = [*at, "out_order_no"]
            found.append(FileProblem(where, _line(root, path), _dotted(path), refused))
    if data.get("name") is not None and not isinstance(data.get("name"), str):
        found.append(FileProblem(where, _line(root, ["name"]), "name", "must be a string"))
    return found


def _duplicate_keys(node: yaml.Node, where: str) -> list[FileProblem]:
    # PyYAML keeps the last of two equal keys silently; a scenario must not lose a step that way
    found = []
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key, value in node.value:
            if key.value in seen:
                found.append(
                    FileProblem(
                        where, key.start_mark.line + 1, str(key.value), "this key is given twice"
                    )
                )
            seen.add(key.value)
            found += _duplicate_keys(value, where)
    elif isinstance(node, yaml.SequenceNode):
        for item in node.value:
            found += _duplicate_keys(item, where)
    return found


def _problem(where: str, root: yaml.Node, error: ValidationError) -> FileProblem:
    path: list[str | int] = list(error.absolute_path)
    message = rule_text(error)
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        allowed = set(error.schema.get("properties", {}))
        extra = [k for k in error.instance if k not in allowed]
        if extra:
            key_line = _key_line(root, path, extra[0])
            return FileProblem(
                where,
                key_line,
                _dotted([*path, extra[0]]),
                f"unknown key; allowed here: {', '.join(sorted(allowed))}",
            )
    if error.validator == "required" and isinstance(error.instance, dict):
        missing = [k for k in error.validator_value if k not in error.instance]
        return FileProblem(where, _line(root, path), _dotted([*path, *missing[:1]]), "is required")
    return FileProblem(where, _line(root, path), _dotted(path), message)


def rule_text(error: ValidationError) -> str:
    v, value, instance = error.validator, error.validator_value, error.instance
    got = json.dumps(instance, ensure_ascii=False, default=str)
    if v == "maxProperties" and isinstance(instance, dict):
        return f"a step has exactly one key, got {len(instance)}: {', '.join(map(str, instance))}"
    if v == "minProperties":
        return "must not be empty"
    if v == "enum":
        return f"must be one of {', '.join(map(str, value))} (got {got})"
    if v == "anyOf" and all(isinstance(s, dict) and list(s) == ["required"] for s in value):
        return "needs one of " + ", ".join(s["required"][0] for s in value)
    if v in ("anyOf", "oneOf"):
        description = error.schema.get("description") if isinstance(error.schema, dict) else None
        parent = error.parent
        description = description or (parent.schema.get("description") if parent else None)
        return f"invalid value {got}" + (f": expected {description}" if description else "")
    if v == "type":
        return f"must be of type {value} (got {got})"
    if v == "maxLength" and isinstance(instance, str):
        # not the text itself: it may be pages long
        return f"must be at most {value} characters (got {len(instance)})"
    if v == "format" and value == "regex":
        return f"{got} is not a valid regular expression"
    return str(error.message)


def _walk(root: yaml.Node, path: Sequence[str | int]) -> yaml.Node:
    node = root
    for part in path:
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                if key.value == str(part):
                    node = value
                    break
            else:
                return node
        elif (
            isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value)
        ):
            node = node.value[part]
        else:
            return node
    return node


def _line(root: yaml.Node, path: Sequence[str | int]) -> int:
    return int(_walk(root, path).start_mark.line) + 1


def _key_line(root: yaml.Node, path: Sequence[str | int], key: Any) -> int:
    node = _walk(root, path)
    if isinstance(node, yaml.MappingNode):
        for key_node, _ in node.value:
            if key_node.value == str(key):
                return int(key_node.start_mark.line) + 1
    return int(node.start_mark.line) + 1


def _name_line(path: Path) -> int:
    try:
        return _key_line(yaml.compose(path.read_text(encoding="utf-8"), Loader=_LOADER), [], "name")
    except (OSError, yaml.YAMLError, AttributeError):
        return 1


def _dotted(path: Sequence[str | int]) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


# -- the shape of a document -------------------------------------------------------------------
@dataclass
class _Open:
    """A collection whose end event has not come yet."""

    anchor: str | None
    values: int = 1  # itself and everything in it so far, aliases expanded
    height: int = 1  # levels of collections from it down, itself included


def _shape_problem(text: str, where: str) -> FileProblem | None:
    """The first way the document breaks MAX_DEPTH or MAX_VALUES, counting what each alias
    stands for, read from the event stream so that nothing deep or big is ever built."""
    try:
        return _walk_shape(text, where)
    except yaml.MarkedYAMLError as exc:
        # newer PyYAML parsers stop deep nesting themselves (about 1,000 levels), in words of
        # their own: say it as this module does, whichever PyYAML is installed
        if "nesting depth" not in str(exc.problem) or exc.problem_mark is None:
            raise
        return FileProblem(where, exc.problem_mark.line + 1, "", _too_deep())


def _walk_shape(text: str, where: str) -> FileProblem | None:
    finished: dict[str, tuple[int, int]] = {}  # anchor -> (values, height) of its node
    stack: list[_Open] = []
    for event in yaml.parse(text, Loader=_LOADER):
        line = event.start_mark.line + 1
        if isinstance(event, yaml.CollectionStartEvent):
            if len(stack) >= MAX_DEPTH:
                return FileProblem(where, line, "", _too_deep())
            stack.append(_Open(event.anchor))
            continue
        if isinstance(event, yaml.CollectionEndEvent):
            done = stack.pop()
            anchor, values, height = done.anchor, done.values, done.height
        elif isinstance(event, yaml.AliasEvent):
            if any(item.anchor == event.anchor for item in stack):
                return FileProblem(
                    where, line, "", f"alias *{event.anchor} is inside the node it names"
                )
            # an undefined alias is left for the composer to report in its own words
            anchor, (values, height) = None, finished.get(str(event.anchor), (1, 0))
        elif isinstance(event, yaml.ScalarEvent):
            anchor, values, height = event.anchor, 1, 0
        else:
            continue
        if anchor is not None:
            finished[anchor] = (values, height)
        if not stack:
            continue
        parent = stack[-1]
        parent.values += values
        parent.height = max(parent.height, height + 1)
        if len(stack) - 1 + parent.height > MAX_DEPTH:
            return FileProblem(where, line, "", _too_deep(" through aliases"))
        if parent.values > MAX_VALUES:
            return FileProblem(
                where,
                line,
                "",
                f"the document grows past {MAX_VALUES} values here, counting each alias as the "
                "whole node it names; a scenario file may hold at most that many",
            )
    return None


def _too_deep(how: str = "") -> str:
    return (
        f"lists and mappings are nested more than {MAX_DEPTH} deep here{how}; "
        "a scenario file needs about five levels"
    )


# -- out_order_no patterns -----------------------------------------------------------------------
# Python's re backtracks, has no time limit, and runs on the event loop holding the GIL: one
# pattern like ^(a+)+$ against 31 a's and a ! freezes the whole sandbox. So a pattern is refused
# at load unless a bound on the ways it can try to match, over every out_order_no of at most
# OUT_ORDER_NO_MAX characters and from every start, stays within REGEX_BUDGET. The bound is
# counted on Python's own parse of the pattern: a sequence multiplies the ways of its parts, an
# alternation adds them, a repeat sums the ways of each count. Unambiguous patterns stay small
# (^AUTOPAY: about 300); a repeat over something that matches the same text in several ways
# grows exponentially with the length (^(a+)+$: about 5e12).
_re_parser: Any = importlib.import_module("re._parser")  # the parser re.compile itself uses
_CAP = 10**15  # counts stop here: big enough to refuse, small enough to stay cheap
# counts of a repeat are followed one by one; past this many (only a repeat of something that
# can match nothing gets here without running out of characters) the pattern is refused
_MAX_COUNT = 2 * (OUT_ORDER_NO_MAX + 1)
_ONE_CHAR = ("LITERAL", "NOT_LITERAL", "ANY", "IN", "CATEGORY")
_REPEATS = ("MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT")


@dataclass(frozen=True)
class _Ways:
    """A piece of a pattern: ``by_length[n]`` ways of consuming exactly n characters, and the
    steps (``work``) that trying all of them once takes, dead ends included."""

    by_length: tuple[int, ...]
    work: int


def _only(length: int, ways: int = 1) -> tuple[int, ...]:
    return tuple(ways if n == length else 0 for n in range(OUT_ORDER_NO_MAX + 1))


def _then(first: Sequence[int], second: Sequence[int]) -> tuple[int, ...]:
    """Ways of consuming n characters with one piece and then another (cut at the maximum)."""
    out = [0] * (OUT_ORDER_NO_MAX + 1)
    right = [(j, b) for j, b in enumerate(second) if b]
    for i, a in enumerate(first):
        for j, b in right if a else ():
            if i + j > OUT_ORDER_NO_MAX:
                break
            out[i + j] += a * b
    return tuple(min(_CAP, n) for n in out)


def _plus(*vectors: Sequence[int]) -> tuple[int, ...]:
    return tuple(min(_CAP, sum(column)) for column in zip(*vectors, strict=True))


def _either(pieces: Sequence[_Ways]) -> _Ways:
    by_length = _plus(*(p.by_length for p in pieces))
    return _Ways(by_length, min(_CAP, sum(p.work for p in pieces)))


def _sequence(items: Iterable[tuple[Any, Any]]) -> _Ways:
    by_length, work = _only(0), 0
    for op, av in items:
        piece = _piece(str(op), av)
        # every way of what came before tries every way of this piece
        work = min(_CAP, work + sum(by_length) * piece.work)
        by_length = _then(by_length, piece.by_length)
    return _Ways(by_length, max(work, 1))


def _repeat(least: int, most: int, inner: _Ways) -> _Ways:
    # past the least count re stops a repeat whose turn matched nothing, so those turns consume
    later = (0, *inner.by_length[1:])
    total, current, work = _only(0, 0), _only(0), 0
    for count in range(_MAX_COUNT + 1):
        if count >= least:
            total = _plus(total, current)
        if count == most or not any(current):
            return _Ways(total, max(work, 1))
        work = min(_CAP, work + sum(current) * inner.work)
        if work == _CAP:
            break  # past any budget already: counting on would only cost time
        current = _then(current, inner.by_length if count < least else later)
    return _Ways(tuple(_CAP for _ in total), _CAP)


def _piece(op: str, av: Any) -> _Ways:
    if op in _ONE_CHAR:
        return _Ways(_only(1), 1)
    if op == "AT":
        return _Ways(_only(0), 1)
    if op == "SUBPATTERN":
        return _sequence(av[3])
    if op == "ATOMIC_GROUP":
        return _sequence(av)
    if op == "BRANCH":
        return _either([_sequence(branch) for branch in av[1]])
    if op in _REPEATS:
        return _repeat(av[0], av[1], _sequence(av[2]))
    if op in ("ASSERT", "ASSERT_NOT"):
        # a lookaround consumes nothing and is not backtracked into, but is tried in full
        return _Ways(_only(0), _sequence(av[1]).work)
    if op == "GROUPREF":
        # the group's text, whatever its length
        return _Ways(tuple(1 for _ in range(OUT_ORDER_NO_MAX + 1)), 1)
    if op == "GROUPREF_EXISTS":
        return _either([_sequence(av[1]), _sequence(av[2] or [])])
    raise ValueError(f"the pattern uses {op}, which the backtracking bound does not know")


def regex_cost(pattern: str) -> int:
    """A bound on the ways ``re.search(pattern, s)`` can try, for any s of at most
    OUT_ORDER_NO_MAX characters (``_CAP`` when larger)."""
    starts = OUT_ORDER_NO_MAX + 1
    return min(_CAP, starts * _sequence(_re_parser.parse(pattern)).work)


def regex_problem(pattern: str) -> str | None:
    """Why an out_order_no pattern is refused, or None."""
    try:
        cost = regex_cost(pattern)
    except re.error as exc:
        return f"{json.dumps(pattern, ensure_ascii=False)} is not a valid regular expression: {exc}"
    except (ValueError, RecursionError) as exc:
        return f"{json.dumps(pattern, ensure_ascii=False)} is refused: {exc}"
    if cost <= REGEX_BUDGET:
        return None
    return (
        f"{json.dumps(pattern, ensure_ascii=False)} is refused: Python's re, which has no time "
        f"limit, could backtrack through up to about {cost:.0e} ways searching a "
        f"{OUT_ORDER_NO_MAX}-character out_order_no (the limit is {REGEX_BUDGET:.0e}) and freeze "
        "the sandbox; a repeated group with a quantifier or alternatives inside, as in (a+)+ "
        "or (a|ab)*, is what multiplies them: repeat a single character or class instead"
    )
