"""`lakala-sandbox notify-check`: a careful handler passes every row, a naive one fails the rows
it should have refused, one that acknowledges nothing has its refusals not judged, and the output
says which certificate to trust."""

from __future__ import annotations

import shutil
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from sandbox.core.keys import PLATFORM_CERT, KeyStore
from sandbox.testing.receiver import NotifyReceiver
from sandbox.tools import cli
from sandbox.wire import signing
from tests.notify_receiver import Receiver


@pytest.fixture(scope="module")
def keyed_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data directory with a sandbox's keys, made once (two RSA keys: a quarter second)."""
    folder = tmp_path_factory.mktemp("keys")
    KeyStore.load(folder, appid="OP00000003", serial_no="00dfba8194c41b84cf")
    return folder


@pytest.fixture
def data_dir(keyed_dir: Path, tmp_path: Path) -> Path:
    """Each test's own copy of it."""
    return Path(shutil.copytree(keyed_dir, tmp_path / "data"))


@pytest.fixture
def careful(data_dir: Path) -> Iterator[Receiver]:
    with Receiver((data_dir / PLATFORM_CERT).read_bytes()) as rx:
        yield rx


def check(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict[str, str], str]:
    code = cli.main(["notify-check", *args])
    out = capsys.readouterr().out
    rows = {}
    for line in out.splitlines():
        for name in ("signed", "bad signature", "stale timestamp", "tampered amount", "duplicate"):
            if line.startswith(name + " "):
                rows[name] = line
    return code, rows, out


@pytest.mark.parametrize("dialect", ["v3", "v1"])
def test_a_careful_handler_passes_every_check(
    capsys: pytest.CaptureFixture[str], data_dir: Path, careful: Receiver, dialect: str
) -> None:
    code, rows, out = check(
        capsys, "--url", careful.url(), "--data-dir", str(data_dir), "--dialect", dialect
    )
    assert code == 0, out
    assert len(rows) == 5 and all(" PASS " in row for row in rows.values()), out
    assert "5 of 5 checks passed." in out
    cert = signing.load_certificate((data_dir / PLATFORM_CERT).read_bytes())
    assert str(data_dir / PLATFORM_CERT) in out and signing.serial_hex(cert) in out
    assert "/sandbox/keys/platform.cer" in out
    assert len(careful.deliveries) == 5
    assert careful.deliveries[0].body == careful.deliveries[4].body  # the duplicate
    assert sum(d.verified and d.fresh for d in careful.deliveries) == 2


def test_a_handler_that_skips_verification_fails_the_bad_rows(
    capsys: pytest.CaptureFixture[str], data_dir: Path
) -> None:
    with Receiver((data_dir / PLATFORM_CERT).read_bytes(), checks=False) as naive:
        code, rows, out = check(capsys, "--url", naive.url(), "--data-dir", str(data_dir))
    assert code == 1
    assert " FAIL " in rows["bad signature"]
    assert "acknowledged although its signature does not verify" in rows["bad signature"]
    assert " FAIL " in rows["stale timestamp"] and " FAIL " in rows["tampered amount"]
    assert " PASS " in rows["signed"] and " PASS " in rows["duplicate"]
    assert "2 of 5 checks passed." in out


def test_a_handler_that_refuses_everything_fails_the_good_rows_and_judges_no_bad_one(
    capsys: pytest.CaptureFixture[str], data_dir: Path, careful: Receiver
) -> None:
    careful.fail_next(100)
    code, rows, out = check(capsys, "--url", careful.url(), "--data-dir", str(data_dir))
    assert code == 1
    assert " FAIL " in rows["signed"]
    assert (
        'a correctly signed notify must be acknowledged with {"code":"SUCCESS",...}'
        in rows["signed"]
    )
    assert " FAIL " in rows["duplicate"]
    for name in ("bad signature", "stale timestamp", "tampered amount"):
        assert " NOT JUDGED " in rows[name] and " PASS " not in rows[name], out
        assert "did not acknowledge the correctly signed notify either" in rows[name]
        assert "--dialect" not in rows[name]  # FAIL is no other dialect's ack
    assert "0 of 5 checks passed; 3 not judged, because the handler did not acknowledge" in out


@pytest.mark.parametrize(
    ("dialect", "answer", "other"),
    [("v3", {"code": "000000"}, "v1"), ("v1", {"code": "SUCCESS", "message": "ok"}, "v3")],
)
def test_a_handler_answering_the_other_dialects_ack_is_told_to_switch_dialect(
    dialect: str,
    answer: dict[str, str],
    other: str,
    capsys: pytest.CaptureFixture[str],
    data_dir: Path,
) -> None:
    with NotifyReceiver(answer=answer) as handler:  # acknowledges everything, in `other`
        code, rows, out = check(
            capsys, "--url", handler.url, "--data-dir", str(data_dir), "--dialect", dialect
        )
    assert code == 1
    switch = f"its answer is the {other} ack"
    assert " FAIL " in rows["signed"] and switch in rows["signed"]
    assert f"run with --dialect {other}" in rows["signed"]
    for name in ("bad signature", "stale timestamp", "tampered amount"):
        row = rows[name]
        assert " NOT JUDGED " in row and " PASS " not in row and "refused (" not in row, out
        assert "did not acknowledge the correctly signed notify either" in row
        assert switch in row
    assert "0 of 5 checks passed; 3 not judged" in out
    assert out.rstrip().endswith(f"run with --dialect {other}.")


def test_an_unreachable_handler_exits_2_before_any_check(
    capsys: pytest.CaptureFixture[str], data_dir: Path
) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{s.getsockname()[1]}/notify"  # nothing listens once closed
    code = cli.main(["notify-check", "--url", url, "--data-dir", str(data_dir), "--timeout", "2"])
    out, err = capsys.readouterr()
    assert code == 2
    assert err.strip() == (
        f"lakala-sandbox notify-check: cannot reach {url} (Connection refused): is your handler "
        "running, and is --url right (host, port, path, http or https)?"
    )
    assert out == ""  # no table, no certificate lecture


def test_without_a_platform_key_it_says_how_to_get_one(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code = cli.main(["notify-check", "--url", "http://127.0.0.1:9/", "--data-dir", str(tmp_path)])
    assert code == 2
    assert "no platform key in" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("notaurl", "must start with http:// or https://"),
        ("ftp://127.0.0.1/notify", "must start with http:// or https://"),
        ("http://", "has no host"),
    ],
)
def test_a_url_that_is_not_http_is_a_usage_error(
    url: str, problem: str, capsys: pytest.CaptureFixture[str], data_dir: Path
) -> None:
    code = cli.main(["notify-check", "--url", url, "--data-dir", str(data_dir)])
    out, err = capsys.readouterr()
    assert code == 2
    assert err.strip() == f"lakala-sandbox notify-check: --url {url!r} {problem}"
    assert out == ""  # nothing was sent


def test_a_timeout_that_is_not_positive_is_a_usage_error(
    capsys: pytest.CaptureFixture[str], data_dir: Path
) -> None:
    args = ["--url", "http://127.0.0.1:9/", "--data-dir", str(data_dir), "--timeout", "0"]
    assert cli.main(["notify-check", *args]) == 2
    out, err = capsys.readouterr()
    assert "--timeout must be positive seconds" in err and out == ""
