"""Hostile scenario files are refused quickly, naming the file and line, by the lint and at start:
an alias bomb, deep nesting, a huge file, numbers Python cannot print, and out_order_no patterns
that would backtrack for ever on the event loop. Driven as a user would: a file in a folder, then
`lakala-sandbox scenarios check` in a subprocess, `serve` in a subprocess, or make_app."""

from __future__ import annotations

import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from sandbox.scenarios.files import (
    MAX_DEPTH,
    MAX_FILE_BYTES,
    MAX_VALUES,
    REGEX_BUDGET,
    ScenarioFileError,
    regex_cost,
    regex_problem,
)
from tests.conftest import make_app
from tests.notify_receiver import LiveSandbox
from tests.paths import ROOT
from tests.support import V1

LINT_FAILED = 1  # scenario_check.run: 1 when any file has a problem
SERVE_REFUSED = 2  # cli: a bad --scenarios folder stops serve before it listens
WALL = 20.0  # a subprocess that takes this long has hung: the bug these tests are about


def alias_bomb() -> str:
    # x-aN holds nine aliases of x-aN-1: 9**10 strings once expanded, about 1 KB of text
    lines = ["x-a0: &a0 [" + ", ".join(['"lol"'] * 9) + "]"]
    lines += [f"x-a{n}: &a{n} [" + ", ".join([f"*a{n - 1}"] * 9) + "]" for n in range(1, 10)]
    return "\n".join([*lines, "description: a bomb", "steps: []", ""])


def brackets(levels: int) -> str:
    return "description: deep\nsteps: " + "[" * levels + "]" * levels + "\n"


def write(folder: Path, name: str, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def lint(folder: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sandbox", "scenarios", "check", str(folder)],
        capture_output=True,
        text=True,
        timeout=WALL,
        cwd=ROOT,
    )


def serve(folder: Path) -> subprocess.CompletedProcess[str]:
    # refused before it binds, so no port is ever opened; a hang or a crash shows as the bug
    return subprocess.run(
        [sys.executable, "-m", "sandbox", "serve", "--data-dir", ":memory:"]
        + ["--port", "0", "--scenarios", str(folder)],
        capture_output=True,
        text=True,
        timeout=WALL,
        cwd=ROOT,
    )


def error_lines(out: str) -> list[str]:
    return [line for line in out.splitlines() if line.startswith("error ")]


def assert_lint_refuses(path: Path, line: int, message: str) -> None:
    started = time.monotonic()
    result = lint(path.parent)
    # a process start included, on cores shared with the suite's parallel workers
    assert time.monotonic() - started < 20
    assert result.returncode == LINT_FAILED, (result.returncode, result.stderr[-2000:])
    assert result.stderr == ""
    assert error_lines(result.stdout) == [f"error {path}:{line}: {message}"]


def start(folder: Path) -> BaseException | None:
    """What make_app raised for the folder, or None; in a thread so that a hang fails the test
    after a few seconds instead of stalling the run (the thread is then left to the process)."""
    outcome: list[BaseException | None] = []

    def run() -> None:
        try:
            make_app(scenarios_dir=str(folder)).state.sandbox.close()
            outcome.append(None)
        except BaseException as exc:  # handed to the test, whatever it is
            outcome.append(exc)

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(5)
    assert outcome, "make_app was still loading the folder after 5 s"
    return outcome[0]


def assert_start_refuses(path: Path, line: int, message: str) -> None:
    started = time.monotonic()
    raised = start(path.parent)
    assert time.monotonic() - started < 2
    assert isinstance(raised, ScenarioFileError), repr(raised)
    assert raised.problems[0].line == line
    assert f"{path}:{line}: {message}" in str(raised)


BOMB_MESSAGE = (
    f"the document grows past {MAX_VALUES} values here, counting each alias as the whole node it "
    "names; a scenario file may hold at most that many"
)
DEEP_MESSAGE = (
    f"lists and mappings are nested more than {MAX_DEPTH} deep here; "
    "a scenario file needs about five levels"
)


# -- an alias bomb ------------------------------------------------------------------------------
def test_the_lint_refuses_an_alias_bomb_at_once(tmp_path: Path) -> None:
    # line 5 is x-a4, the first node past the limit (9**5 strings)
    assert_lint_refuses(write(tmp_path / "s", "bomb.yaml", alias_bomb()), 5, BOMB_MESSAGE)


def test_a_sandbox_refuses_an_alias_bomb_at_start(tmp_path: Path) -> None:
    assert_start_refuses(write(tmp_path / "s", "bomb.yaml", alias_bomb()), 5, BOMB_MESSAGE)


def test_serve_refuses_an_alias_bomb_before_listening(tmp_path: Path) -> None:
    path = write(tmp_path / "s", "bomb.yaml", alias_bomb())
    result = serve(path.parent)
    assert result.returncode == SERVE_REFUSED
    assert f"{path}:5: {BOMB_MESSAGE}" in result.stderr


def test_aliases_within_the_limit_still_load(tmp_path: Path) -> None:
    text = "description: one policy, twice\nsteps:\n  - pay: &p {notify: twice}\n  - refund: *p\n"
    path = write(tmp_path / "s", "reuse.yaml", text)
    result = lint(path.parent)
    assert result.returncode == 0 and "ok    reuse" in result.stdout


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("description: r\nx: &a [1, *a]\nsteps: []\n", 2, "alias *a is inside the node it names"),
        (
            # each alias is one level deeper than the node it names, with no bracket in sight
            "x0: &a0 [1]\n"
            + "".join(f"x{n}: &a{n} [*a{n - 1}]\n" for n in range(1, 40))
            + "description: c\nsteps: []\n",
            MAX_DEPTH,
            DEEP_MESSAGE.replace(" here;", " here through aliases;"),
        ),
    ],
    ids=["recursive", "a-chain-of-aliases"],
)
def test_aliases_cannot_nest_without_end(
    tmp_path: Path, text: str, line: int, message: str
) -> None:
    path = write(tmp_path / "s", "alias.yaml", text)
    assert_start_refuses(path, line, message)


# -- nesting and size ---------------------------------------------------------------------------
@pytest.mark.parametrize("levels", [1_000, 30_000], ids=["python-recursion", "libyaml-stack"])
def test_the_lint_refuses_deep_nesting_without_crashing(tmp_path: Path, levels: int) -> None:
    # 30,000 levels fit in the size limit: they reach the nesting check, not the size one
    assert len(brackets(levels)) <= MAX_FILE_BYTES
    assert_lint_refuses(write(tmp_path / "s", "deep.yaml", brackets(levels)), 2, DEEP_MESSAGE)


def test_a_sandbox_refuses_deep_nesting_at_start(tmp_path: Path) -> None:
    # in process only as deep as Python's recursion limit: libyaml's crash would end the run
    assert_start_refuses(write(tmp_path / "s", "deep.yaml", brackets(1_000)), 2, DEEP_MESSAGE)


def test_deep_block_nesting_is_refused_too(tmp_path: Path) -> None:
    text = "description: deep\nsteps:\n" + "".join("  " * n + "-\n" for n in range(1, 40))
    # the 21st collection: the root mapping, then the sequences, one a line from line 3
    assert_start_refuses(write(tmp_path / "s", "block.yaml", text), 22, DEEP_MESSAGE)


@pytest.mark.parametrize(
    ("levels", "line", "message"),
    [
        (30_000, 2, DEEP_MESSAGE),
        (50_000, 0, f"is larger than {MAX_FILE_BYTES} bytes, the most a scenario file may be"),
    ],
    ids=["nested", "too-big-as-well"],
)
def test_serve_refuses_deep_brackets_without_a_segfault(
    tmp_path: Path, levels: int, line: int, message: str
) -> None:
    path = write(tmp_path / "s", "deep.yaml", brackets(levels))
    result = serve(path.parent)
    assert result.returncode == SERVE_REFUSED  # not -11 (SIGSEGV) nor a traceback's 1
    assert f"{path}:{line}: {message}" in result.stderr


def test_the_lint_refuses_a_file_over_the_size_limit(tmp_path: Path) -> None:
    text = "description: " + "x" * MAX_FILE_BYTES + "\nsteps: []\n"
    path = write(tmp_path / "s", "huge.yaml", text)
    size = f"is larger than {MAX_FILE_BYTES} bytes, the most a scenario file may be"
    assert_lint_refuses(path, 0, size)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("1" * 5000, "cannot read this value: Exceeds the limit (4300 digits)"),
        ("1:" + ":".join(["59"] * 3000), "a number has more than 100 digits"),  # base 60
        (".nan", ".nan is not a number a scenario can use"),
        ("2001-13-45", "cannot read this value: month must be in 1..12"),
    ],
    ids=["5000-digits", "sexagesimal", "nan", "13th-month"],
)
def test_a_value_python_cannot_use_names_its_line(tmp_path: Path, value: str, message: str) -> None:
    path = write(tmp_path / "s", "value.yaml", f"description: x\nsteps:\n  - wait: {value}\n")
    result = lint(path.parent)
    assert result.returncode == LINT_FAILED and result.stderr == ""
    [line] = error_lines(result.stdout)
    assert line.startswith(f"error {path}:3: not valid YAML: {message}")


# -- out_order_no patterns ----------------------------------------------------------------------
HOSTILE = "a" * 30 + "!"  # 31 characters: an out_order_no the schemas allow
EXPONENTIAL = ["^(a+)+$", "(a|a)*$", "^(a|aa)+$", r"^(\w+\s?)*$", "(x+x+)+y", "(.*a){12}"]
# what people write: prefixes, digits, ranges, alternatives that do not overlap
REALISTIC = [
    "^AUTOPAY",
    r"^ORD-\d{8}-\d+$",
    r"^[A-Z]{2,8}-\d{4,10}-.*$",
    r"^(AUTO|TEST)-\d+$",
    r"(\w+)-\1",
    r"\d+.*\d+",
    r"^[\w.-]+$",
    "a*a*a*a*b",
]


def regex_file(pattern: str) -> str:
    return f"description: r\nmatch: {{out_order_no: '{pattern}'}}\nsteps: []\n"


def test_the_lint_refuses_a_catastrophic_pattern_and_says_why(tmp_path: Path) -> None:
    path = write(tmp_path / "s", "greedy.yaml", regex_file("^(a+)+$"))
    result = lint(path.parent)
    assert result.returncode == LINT_FAILED and result.stderr == ""
    [line] = error_lines(result.stdout)
    assert line.startswith(f'error {path}:2: match.out_order_no: "^(a+)+$" is refused: ')
    assert "could backtrack through up to about 5e+12 ways" in line
    assert "repeat a single character or class instead" in line


def test_a_sandbox_refuses_a_catastrophic_pattern_at_start(tmp_path: Path) -> None:
    path = write(tmp_path / "s", "greedy.yaml", regex_file("(a|a)*$"))
    assert_start_refuses(path, 2, 'match.out_order_no: "(a|a)*$" is refused: ')


@pytest.mark.parametrize("pattern", EXPONENTIAL)
def test_exponential_patterns_are_over_the_budget(pattern: str) -> None:
    assert regex_cost(pattern) > REGEX_BUDGET
    assert "is refused" in str(regex_problem(pattern))


@pytest.mark.parametrize("pattern", REALISTIC)
def test_realistic_patterns_pass_and_search_a_hostile_number_quickly(pattern: str) -> None:
    assert regex_problem(pattern) is None
    compiled = re.compile(pattern)
    started = time.monotonic()
    for text in (HOSTILE, "a" * 32, "1" * 31 + "!", "ab" * 16, "AUTO-" + "1" * 27):
        compiled.search(text)
    assert time.monotonic() - started < 0.5


def test_a_pattern_too_long_to_parse_safely_is_refused_by_length(tmp_path: Path) -> None:
    # re.compile recurses once per nested group: thousands overflow the stack inside the schema
    path = write(tmp_path / "s", "nested.yaml", regex_file("(" * 3000 + "a" + ")" * 3000))
    assert_lint_refuses(path, 2, "match.out_order_no: must be at most 256 characters (got 6001)")


def test_a_served_sandbox_answers_a_hostile_out_order_no_at_once(tmp_path: Path) -> None:
    folder = tmp_path / "s"
    write(folder, "a-then-b.yaml", regex_file("^a+b$"))
    write(folder, "ab-runs.yaml", regex_file(r"^(ab)+\d*$"))
    body = {"out_order_no": HOSTILE, "total_amount": 100, "order_info": "hostile"}
    with LiveSandbox(scenarios_dir=str(folder)) as live:
        started = time.monotonic()
        answer = live.http.post(V1 + "create", json=body, timeout=5)
        assert time.monotonic() - started < 1
        assert answer.json()["code"] == "000000"
