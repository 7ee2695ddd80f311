"""Scenario files: every shipped one loads; a broken one is refused naming its file, line and rule,
at start and by `lakala-sandbox scenarios check`."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from sandbox.scenarios.files import ScenarioFileError, check_paths, load_catalog, scenario_files
from sandbox.tools import cli
from sandbox.wire.resources import scenarios_dir
from tests.conftest import make_app
from tests.paths import ROOT

README = ROOT / "docs" / "scenarios.md"  # where the README sends scenario readers
SHIPPED = scenario_files(scenarios_dir())


@pytest.mark.parametrize("path", SHIPPED, ids=[p.stem for p in SHIPPED])
def test_shipped_scenario_file_is_valid(path: Path) -> None:
    loaded, problems = check_paths([path])
    assert problems == []
    assert [s.name for s in loaded] == [path.stem]
    assert loaded[0].description


def test_the_default_is_shipped_and_has_no_steps() -> None:
    catalog = load_catalog(None, scenarios_dir(), "manual")
    manual = catalog.get("manual")
    assert manual is not None and manual.steps == () and manual.match == ()


def test_readme_magic_amounts_are_the_shipped_ones() -> None:
    section = README.read_text(encoding="utf-8").split("## Scenarios, the clock and notifies")[1]
    rows = re.findall(r"^\| (\d+) \| [\d.]+ \| `([a-z-]+)` \|", section, flags=re.M)
    shipped = {
        (str(amount), s.name)
        for s in load_catalog(None, scenarios_dir()).scenarios
        for amount in s.magic_amounts()
    }
    assert set(rows) == shipped
    assert len(rows) == len(SHIPPED) - 2
    # every one has its amount but manual and the one matched by its out_order_no prefix
    without = {
        s.name for s in load_catalog(None, scenarios_dir()).scenarios if not s.magic_amounts()
    }
    assert without == {"manual", "refund-processing-then-fails"}


BROKEN = [
    (
        "unknown-step",
        "description: x\nsteps:\n  - wait: 3\n  - pya: {}\n",
        4,
        "steps[1].pya: unknown key",
    ),
    (
        "bad-policy",
        "description: x\nsteps:\n  - pay: {notify: sometimes}\n",
        3,
        "steps[0].pay.notify: must be one of now, never, twice",
    ),
    (
        "policy-typo",
        "description: x\nsteps:\n  - pay:\n      notify:\n        aftr: 3\n",
        5,
        "steps[0].pay.notify.aftr: unknown key; allowed here: after, copies, signature, tamper",
    ),
    (
        "negative-wait",
        "description: x\nsteps:\n  - wait: -1\n",
        3,
        "steps[0].wait: invalid value -1",
    ),
    (
        "two-keys",
        "description: x\nsteps:\n  - {wait: 1, pay: {}}\n",
        3,
        "steps[0]: a step has exactly one key, got 2: wait, pay",
    ),
    (
        "empty-fault",
        "description: x\nsteps:\n  - fault: {call: query}\n",
        3,
        "steps[0].fault: needs one of latency, error, http_status, drop",
    ),
    (
        "bad-pay-mode",
        "description: x\nsteps:\n  - pay: {pay_mode: PAYPAL}\n",
        3,
        "steps[0].pay.pay_mode: must be one of ALIPAY",
    ),
    (
        "range",
        "description: x\nmatch:\n  amount: {min: 5, max: 2}\nsteps: []\n",
        3,
        "match.amount: min 5 is more than max 2",
    ),
    (
        "regex",
        "description: x\nmatch: {out_order_no: '(['}\nsteps: []\n",
        2,
        'match.out_order_no: "([" is not a valid regular expression',
    ),
    ("no-description", "steps: []\n", 1, "description: is required"),
    (
        "twice-given",
        "description: x\ndescription: y\nsteps: []\n",
        2,
        "description: this key is given twice",
    ),
    ("not-yaml", "description: x\nsteps: [\n", 3, "not valid YAML"),
    ("empty", "", 1, "the file is empty"),
    ("a-list", "- wait: 1\n", 1, "must be of type object"),
    (
        "top-typo",
        "description: x\nstep: []\nsteps: []\n",
        2,
        "step: unknown key; allowed here: create, description, match, name, steps",
    ),
    (
        "bad-error",
        "description: x\ncreate: {error: {code: 'BBS 1'}}\nsteps: []\n",
        2,
        "create.error",
    ),
]


@pytest.mark.parametrize(("name", "text", "line", "message"), BROKEN, ids=[b[0] for b in BROKEN])
def test_broken_file_is_refused_with_file_line_and_rule(
    tmp_path: Path, name: str, text: str, line: int, message: str
) -> None:
    path = tmp_path / f"{name}.yaml"
    path.write_text(text, encoding="utf-8")
    loaded, problems = check_paths([path])
    assert loaded == []
    rendered = [str(p) for p in problems]
    assert any(r.startswith(f"{path}:{line}:") and message in r for r in rendered), rendered


def test_two_files_with_one_name_are_refused(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text("name: same\ndescription: a\nsteps: []\n", encoding="utf-8")
    (tmp_path / "b.yaml").write_text("description: b\nname: same\nsteps: []\n", encoding="utf-8")
    _, problems = check_paths([tmp_path])
    assert [str(p) for p in problems] == [
        f"{tmp_path / 'b.yaml'}:2: name: scenario 'same' is also defined in {tmp_path / 'a.yaml'}"
    ]


def test_a_file_name_is_the_scenario_name_in_lower_case(tmp_path: Path) -> None:
    (tmp_path / "BigOrders.yaml").write_text("description: big\nsteps: []\n", encoding="utf-8")
    loaded, problems = check_paths([tmp_path])
    assert problems == [] and [s.name for s in loaded] == ["bigorders"]


def test_two_file_names_that_differ_in_case_are_one_name(tmp_path: Path) -> None:
    (tmp_path / "BigOrders.yaml").write_text("description: a\nsteps: []\n", encoding="utf-8")
    (tmp_path / "bigorders.yaml").write_text("description: b\nsteps: []\n", encoding="utf-8")
    _, problems = check_paths([tmp_path])
    assert [str(p) for p in problems] == [
        f"{tmp_path / 'bigorders.yaml'}:1: name: scenario 'bigorders' is also defined in "
        f"{tmp_path / 'BigOrders.yaml'}"
    ]


@pytest.mark.parametrize("stem", ["big.orders", "big orders", "-big", "大单", "x" * 65])
def test_a_file_name_that_cannot_be_a_name_is_refused_unless_named(
    tmp_path: Path, stem: str
) -> None:
    path = tmp_path / f"{stem}.yaml"
    path.write_text("description: big\nsteps: []\n", encoding="utf-8")
    _, problems = check_paths([path])
    assert [str(p) for p in problems] == [
        f"{path}:1: name: the file name makes the scenario name {stem.lower()!r}, which breaks "
        "the name rule (Lower-case letters, digits, - and _; at most 64, first a letter or digit):"
        " rename the file or give a name: key"
    ]
    path.write_text("name: big\ndescription: big\nsteps: []\n", encoding="utf-8")
    loaded, problems = check_paths([path])
    assert problems == [] and loaded[0].name == "big"


def test_the_lint_names_a_capitalised_file_as_orders_name_it(tmp_path: Path) -> None:
    path = tmp_path / "BigOrders.yaml"
    path.write_text("description: big\nsteps: []\n", encoding="utf-8")
    result = subprocess.run(
        [sys.executable, "-m", "sandbox", "scenarios", "check", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=20,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"ok    {'bigorders':<32} {path}" in result.stdout


def test_a_sandbox_with_a_broken_folder_does_not_start(tmp_path: Path) -> None:
    (tmp_path / "ok.yaml").write_text("description: fine\nsteps: []\n", encoding="utf-8")
    (tmp_path / "bad.yaml").write_text(
        "description: x\nsteps:\n  - pay: {notify: soon}\n", encoding="utf-8"
    )
    with pytest.raises(ScenarioFileError) as raised:
        make_app(scenarios_dir=str(tmp_path))
    assert f"{tmp_path / 'bad.yaml'}:3: steps[0].pay.notify" in str(raised.value)


def test_serve_refuses_a_broken_folder_before_listening(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "bad.yaml").write_text("description: x\nsteps:\n  - wait: soon\n", encoding="utf-8")
    code = cli.main(["serve", "--data-dir", ":memory:", "--scenarios", str(tmp_path)])
    assert code == 2
    err = capsys.readouterr().err
    assert "lakala-sandbox serve: bad scenario file(s)" in err
    assert f"{tmp_path / 'bad.yaml'}:3: steps[0].wait" in err


def test_a_missing_scenarios_folder_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ScenarioFileError, match="is not a folder of scenario files"):
        make_app(scenarios_dir=str(tmp_path / "nowhere"))


def test_an_unknown_default_scenario_is_refused() -> None:
    with pytest.raises(ValueError, match="the default scenario 'sometimes' is not loaded"):
        make_app(default_scenario="sometimes")


def test_scenarios_check_command_lints_without_serving(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["scenarios", "check", str(scenarios_dir())]) == 0
    out = capsys.readouterr().out
    assert f"{len(SHIPPED)} scenario(s) OK." in out and "auto-success" in out
    (tmp_path / "bad.yaml").write_text("description: x\nsteps:\n  - pya: {}\n", encoding="utf-8")
    assert cli.main(["scenarios", "check", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert f"error {tmp_path / 'bad.yaml'}:3: steps[0].pya: unknown key" in out


def test_readme_scenario_example_loads(tmp_path: Path) -> None:
    section = README.read_text(encoding="utf-8").split("## Scenarios, the clock and notifies")[1]
    example = re.findall(r"```yaml\n(.*?)```", section, flags=re.S)[0]
    (tmp_path / "big-orders-fail.yaml").write_text(example, encoding="utf-8")
    loaded, problems = check_paths([tmp_path])
    assert problems == [] and loaded[0].match[0].amount_min == 100000


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("missing", "no such file or folder"),
        ("x" * 300, "cannot be read (File name too long)"),
        ("empty", "is a folder without scenario files (*.yaml or *.yml)"),
        ("/dev/null", "is neither a scenario file nor a folder of them"),
    ],
    ids=["missing", "name too long", "empty folder", "device"],
)
def test_scenarios_check_of_a_path_it_cannot_check_exits_2_before_checking(
    name: str, problem: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "empty").mkdir()
    path = tmp_path / name
    # a good folder beside it is not checked either: the command did not run as asked
    assert cli.main(["scenarios", "check", str(scenarios_dir()), str(path)]) == 2
    out, err = capsys.readouterr()
    assert err.strip() == f"lakala-sandbox scenarios check: {path}: {problem}"
    assert out == ""


def test_scenarios_check_run_by_a_user_on_a_missing_path_exits_2(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    result = subprocess.run(
        [sys.executable, "-m", "sandbox", "scenarios", "check", str(missing)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2  # a usage error; 1 is kept for files that exist and are wrong
    assert result.stdout == ""
    assert result.stderr == f"lakala-sandbox scenarios check: {missing}: no such file or folder\n"
