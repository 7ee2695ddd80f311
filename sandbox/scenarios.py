"""Scenario files: loaded from YAML, validated by ``schemas/scenario.schema.json``, matched to
creates.

A broken file is refused with its path, the line (from PyYAML's node marks) and the rule broken.
Running the steps on the clock is ``runner.py``'s job; this module only knows what a file says.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from jsonschema.exceptions import ValidationError

from sandbox.clock import Clock
from sandbox.engine import requested_pay_modes as engine_pay_modes
from sandbox.errors import SandboxError
from sandbox.resources import schemas_dir
from sandbox.schemas import Schemas

SCHEMA_NAME = "scenario"
HEADER = "x-sandbox-scenario"
TAG = re.compile(r"\[scenario:([A-Za-z0-9_-]+)\]")
SUFFIXES = (".yaml", ".yml")


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
        if self.out_order_no is not None and not self.out_order_no.search(view.out_order_no):
            return False
        if self.order_info is not None and self.order_info not in view.order_info:
            return False
        if self.pay_modes and not view.pay_modes & set(self.pay_modes):
            return False
        return self.dialect is None or self.dialect == view.dialect


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
        for scenario in self.scenarios:
            if any(c.matches(view) for c in scenario.match):
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
_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
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
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
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
        node = yaml.compose(text, Loader=_LOADER)
        data = yaml.load(text, Loader=_LOADER)
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
    if found:
        problems.extend(sorted(found, key=lambda p: p.line))
        return None
    match = data.get("match")
    criteria = match if isinstance(match, list) else [match] if match else []
    return Scenario(
        name=data.get("name") or path.stem,
        description=data["description"],
        path=where,
        source=source,
        match=tuple(Criteria.of(c) for c in criteria),
        create=data.get("create"),
        steps=tuple(_normal_step(s) for s in data["steps"]),
        raw=data,
    )


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
        amount = criteria.get("amount")
        if isinstance(amount, dict) and amount.get("min", 0) > amount.get("max", 10**13):
            path: list[str | int] = (
                ["match", index, "amount"] if isinstance(match, list) else ["match", "amount"]
            )
            found.append(
                FileProblem(
                    where,
                    _line(root, path),
                    _dotted(path),
                    f"min {amount['min']} is more than max {amount['max']}",
                )
            )
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
