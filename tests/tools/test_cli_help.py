"""`lakala-sandbox --help` and the `serve` banner say what a newcomer needs: every flag has help,
each subcommand's exit codes end its help, and `serve` names the dashboard, the clock, the
scenarios and the keys as it starts."""

from __future__ import annotations

import argparse
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn

from sandbox import __version__
from sandbox.tools.cli import COMMANDS, banner, build_parser, main
from tests.conftest import make_app
from tests.paths import ROOT
from tests.servers import announced, loopback


def parsers(
    parser: argparse.ArgumentParser, name: str
) -> Iterator[tuple[str, argparse.ArgumentParser]]:
    yield name, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub_name, sub in action.choices.items():
                yield from parsers(sub, f"{name} {sub_name}")


def test_every_flag_of_every_subcommand_has_help() -> None:
    missing = [
        f"{where} {'/'.join(action.option_strings) or action.dest}"
        for where, parser in parsers(build_parser(list(COMMANDS)), "lakala-sandbox")
        for action in parser._actions
        if not isinstance(action, argparse._SubParsersAction)
        and not (action.help and action.help.strip())
    ]
    assert missing == []


def help_of(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    with pytest.raises(SystemExit) as done:
        main([*argv, "--help"])
    assert done.value.code == 0
    return " ".join(capsys.readouterr().out.split())  # argparse wraps lines: compare words


@pytest.mark.parametrize(
    ("argv", "codes"),
    [
        (("contract",), ["0 no drift", "1 a check failed", "2 it cannot run"]),
        (("scenarios", "check"), ["0 every file is valid", "1 a file has a problem", "2 nothing"]),
        (("notify-check",), ["0 every check passed", "1 a check failed", "2 it cannot run"]),
        (("serve",), ["0 stopped", "2 a setting", "3 the server never started"]),
        (("sign",), ["0 printed", "2 the body or the key cannot be read"]),
    ],
)
def test_each_subcommand_help_ends_with_its_exit_codes(
    capsys: pytest.CaptureFixture[str], argv: tuple[str, ...], codes: list[str]
) -> None:
    text = help_of(capsys, *argv)
    tail = text.split("exit codes:")[-1]
    assert "exit codes:" in text
    for code in codes:
        assert code in tail, (code, tail)


def test_serve_help_says_what_the_clock_flags_and_the_log_level_do(
    capsys: pytest.CaptureFixture[str],
) -> None:
    text = help_of(capsys, "serve")
    assert "0 freezes it, so only /sandbox/api/clock calls move it" in text
    assert "with --clock-speed 0 it stays there" in text
    assert "--log-level {critical,error,warning,info,debug} the server's log level" in text


def test_sign_help_names_its_defaults(capsys: pytest.CaptureFixture[str]) -> None:
    text = help_of(capsys, "sign")
    assert "--data-dir DATA_DIR the sandbox data directory whose merchant_private_key.pem" in text
    assert "--appid APPID appid in the header (default OP00000003" in text
    assert "--serial-no SERIAL_NO serial_no in the header" in text


def test_serve_banner_names_dashboard_clock_scenarios_and_keys(tmp_path: Path) -> None:
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "big-orders.yaml").write_text(
        "description: Big orders fail.\nmatch:\n  amount: {min: 100000}\nsteps:\n  - fail: {}\n",
        encoding="utf-8",
    )
    data = tmp_path / "data"
    process = subprocess.Popen(
        [sys.executable, "-m", "sandbox", "serve", "--port", "0", "--data-dir", str(data)]
        + ["--clock-start", "20241119120135", "--clock-speed", "0", "--scenarios", str(mine)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        cwd=ROOT,
    )
    try:
        port, (first, dashboard, clock, scenarios, keys, stop) = announced(process, 30, lines=6)
        url = f"http://127.0.0.1:{port}/"
        assert dashboard.split() == ["dashboard", url]
        assert clock.split(None, 1) == [
            "clock",
            "20241119120135 Asia/Shanghai, started at 20241119120135, frozen (--clock-speed 0): "
            "only POST /sandbox/api/clock/... moves it",
        ]
        assert scenarios.startswith(f"  scenarios  17 loaded, default manual; yours ({mine}): ")
        assert "big-orders" in scenarios and "auto-success" in scenarios
        named = "(platform.cer, merchant_private_key.pem, sm4_key)"
        assert keys.startswith(f"  keys       {data} {named}")
        assert all((data / name).is_file() for name in ("platform.cer", "sm4_key"))
        assert keys.endswith(f"certificate to trust: {url}sandbox/keys/platform.cer")
        assert (
            stop
            == f"  stop       Ctrl-C; orders, keys and the clock stay in {data} for the next start"
        )
        deadline = 100
        while True:  # the banner comes before the socket answers; the dashboard it names answers
            try:
                page = loopback.get(url, timeout=2)
                break
            except httpx.TransportError:
                deadline -= 1
                assert deadline > 0
                time.sleep(0.1)
        assert page.status_code == 200 and "20241119120135" in page.text
    finally:
        process.terminate()
        process.wait(15)
        if process.stdout is not None:
            process.stdout.close()


def test_an_in_memory_serve_says_its_keys_and_orders_are_not_kept() -> None:
    app = make_app(data_dir=":memory:")
    try:
        lines = banner(app, 8090).splitlines()
    finally:
        app.state.sandbox.close()
    assert lines[3].startswith("  keys       in memory (new ones each start); ")
    assert lines[4] == "  stop       Ctrl-C; nothing is kept (--data-dir :memory:)"


@pytest.mark.parametrize(("host", "written"), [("::1", "[::1]"), ("127.0.0.1", "127.0.0.1")])
def test_serve_names_the_port_it_has_bound_as_a_url_writes_it(
    host: str, written: str, capsys: pytest.CaptureFixture[str]
) -> None:
    handed: list[socket.socket] = []

    def run(self: uvicorn.Server, sockets: list[socket.socket] | None = None) -> None:
        handed.extend(sockets or [])  # (and returns at once: the server never starts)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(uvicorn.Server, "run", run)
        main(["serve", "--host", host, "--port", "0", "--data-dir", ":memory:"])
    try:
        [bound] = handed
        port = bound.getsockname()[1]
        first = capsys.readouterr().out.splitlines()[0]
        assert first.startswith(f"lakala-sandbox {__version__} on http://{written}:{port} (")
    finally:
        for sock in handed:
            sock.close()


@pytest.mark.parametrize(("host", "written"), [("::1", "[::1]"), ("127.0.0.1", "127.0.0.1")])
def test_serve_names_a_taken_port_as_a_url_writes_it(
    host: str, written: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as taken:
        taken.bind((host, 0))
        taken.listen()
        port = taken.getsockname()[1]
        code = main(["serve", "--host", host, "--port", str(port), "--data-dir", ":memory:"])
    assert code == 3
    out, err = capsys.readouterr()
    assert out == ""  # no banner for a server that never listened
    assert err.startswith(f"lakala-sandbox serve: cannot listen on {written}:{port}: address ")
