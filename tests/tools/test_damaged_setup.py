"""A damaged data directory, apps file or setting: `lakala-sandbox serve` stops at once with one
line naming what is wrong and exit code 2, never a traceback and never new keys over old ones."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import httpx
import pytest
import uvicorn
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from sandbox.client.transport import InProcessTransport
from sandbox.core.keys import MERCHANT_CERT, MERCHANT_KEY, PLATFORM_CERT, PLATFORM_KEY, KeyStore
from sandbox.core.schema import SCHEMA_VERSION
from sandbox.runtime import DB_FILE
from sandbox.tools.cli import main
from tests.conftest import make_app
from tests.support import database, self_signed

pytestmark = pytest.mark.slow(seconds=0.5)  # cases start `lakala-sandbox serve` or make an app

Damage = Callable[[Path], list[str]]  # breaks the data directory, returns extra serve arguments


@pytest.fixture(scope="module")
def good_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data directory as a first start leaves it: four key files and a store."""
    path = tmp_path_factory.mktemp("good") / "data"
    KeyStore.load(path, appid="OP00000003", serial_no="00dfba8194c41b84cf")
    sb = make_app(data_dir=str(path)).state.sandbox
    sb.close()
    sb.store.close()  # now, not whenever the connection is collected: that removes the -wal
    # and -shm files, and a copy of the folder made meanwhile failed on their disappearing
    return path


def write(name: str, content: bytes) -> Damage:
    def damage(data: Path) -> list[str]:
        target = data / name
        for journal in data.glob(name + "-*"):  # SQLite's -wal and -shm beside the store
            journal.unlink()
        if target.is_dir():
            shutil.rmtree(target)
        else:
            target.unlink(missing_ok=True)
        target.write_bytes(content)
        return []

    return damage


def replace_with_dir(name: str) -> Damage:
    def damage(data: Path) -> list[str]:
        (data / name).unlink()
        (data / name).mkdir()
        return []

    return damage


def remove(name: str) -> Damage:
    def damage(data: Path) -> list[str]:
        (data / name).unlink()
        return []

    return damage


def foreign_store(data: Path) -> list[str]:
    (data / DB_FILE).unlink()
    with database(data / DB_FILE) as conn:
        conn.execute("CREATE TABLE orders (id INTEGER PRIMARY KEY, customer TEXT)")
    return []


def alias_bomb(data: Path) -> list[str]:
    lines = ['x0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    lines += [f"x{n}: &a{n} [{', '.join([f'*a{n - 1}'] * 9)}]" for n in range(1, 10)]
    lines.append("apps: [{appid: X, extra: *a9}]")
    (data.parent / "apps.yaml").write_text("\n".join(lines))
    return ["--apps", str(data.parent / "apps.yaml")]


def ec_certificate(data: Path) -> list[str]:
    cert = self_signed(ec.generate_private_key(ec.SECP256R1()), "not rsa")
    (data.parent / "ec.cer").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (data.parent / "apps.yaml").write_text("apps: [{appid: EC1, certificate: ec.cer}]")
    return ["--apps", str(data.parent / "apps.yaml")]


def store_of_a_newer_sandbox(data: Path) -> list[str]:
    with database(data / DB_FILE) as conn:
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    return []


def data_dir_is_a_file(data: Path) -> list[str]:
    shutil.rmtree(data)
    data.write_text("not a folder")
    return []


def flags(*args: str) -> Damage:
    return lambda data: list(args)


CASES: list[tuple[str, Damage, str]] = [
    ("store-random-bytes", write(DB_FILE, os.urandom(4096)), "cannot open the sandbox's store"),
    ("store-truncated", write(DB_FILE, b"SQLite format 3\x00"), "cannot open the sandbox's store"),
    ("store-is-a-folder", replace_with_dir(DB_FILE), "cannot open the sandbox's store"),
    ("store-of-another-program", foreign_store, "its orders table is not the sandbox's"),
    ("store-of-a-newer-sandbox", store_of_a_newer_sandbox, "made by a newer lakala-sandbox"),
    ("data-dir-is-a-file", data_dir_is_a_file, "cannot open the sandbox's store"),
    ("a-key-file-missing", remove(PLATFORM_CERT), "platform.cer missing while the other"),
    ("a-key-file-garbage", write(MERCHANT_KEY, b"garbage"), "merchant_private_key.pem: cannot"),
    ("a-key-file-is-a-folder", replace_with_dir(PLATFORM_KEY), "platform_private_key.pem: cannot"),
    ("a-certificate-truncated", write(MERCHANT_CERT, b"-----BEGIN CERT"), "merchant.cer: cannot"),
    ("apps-alias-bomb", alias_bomb, "anchors and aliases are not allowed"),
    ("apps-ec-certificate", ec_certificate, "certificate does not hold an RSA key"),
    ("port-out-of-range", flags("--port", "99999"), "port (LAKALA_SANDBOX_PORT) must be from 0"),
    ("ladder-infinite", flags("--notify-ladder", "1,inf"), "notify_ladder"),
    ("clock-start-year-0", flags("--clock-start", "00000000000000"), "year 0 is out of range"),
]


class Refused(NamedTuple):
    code: int
    stderr: str


def serve_in_process(args: list[str], capsys: pytest.CaptureFixture[str]) -> Refused:
    """``lakala-sandbox serve ARGS`` run by the same ``main`` as the command, in this process
    (a process each took most of this module's time; one case below still starts one)."""

    def never(*_: object, **__: object) -> None:
        raise AssertionError("serve got as far as starting the server")

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(uvicorn.Server, "run", never)
        code = main(["serve", *args])
    return Refused(code, capsys.readouterr().err)


def serve_process(args: list[str], env: dict[str, str] | None = None) -> Refused:
    done = subprocess.run(
        [sys.executable, "-m", "sandbox", "serve", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    return Refused(done.returncode, done.stderr)


def damaged_copy(good_dir: Path, tmp_path: Path, damage: Damage) -> tuple[Path, list[str]]:
    data = tmp_path / "data"
    shutil.copytree(good_dir, data)
    return data, ["--data-dir", str(data), "--port", "0", *damage(data)]


def assert_refused(refused: Refused, says: str, data: Path, keys_before: dict[str, bytes]) -> None:
    assert refused.code == 2, refused.stderr
    assert says in refused.stderr
    assert "Traceback" not in refused.stderr and len(refused.stderr.strip().splitlines()) == 1
    if data.is_dir():  # no key file was made anew over an old one
        for name, content in keys_before.items():
            path = data / name
            assert not path.is_file() or path.read_bytes() == content


def key_files(data: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in data.glob("*.pem") if p.is_file()}


@pytest.mark.parametrize(("damage", "says"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_serve_stops_naming_what_is_wrong(
    good_dir: Path, tmp_path: Path, damage: Damage, says: str, capsys: pytest.CaptureFixture[str]
) -> None:
    data, args = damaged_copy(good_dir, tmp_path, damage)
    keys_before = key_files(data)
    assert_refused(serve_in_process(args, capsys), says, data, keys_before)


def test_the_serve_process_stops_with_one_line_and_exit_code_2(
    good_dir: Path, tmp_path: Path
) -> None:
    """One of the cases above as the command itself, a process of its own."""
    _, damage, says = CASES[0]
    data, args = damaged_copy(good_dir, tmp_path, damage)
    keys_before = key_files(data)
    assert_refused(serve_process(args), says, data, keys_before)


def test_bad_environment_settings_are_named(tmp_path: Path) -> None:
    env = dict(os.environ, LAKALA_SANDBOX_TIMEZONE="Mars/Olympus")
    result = serve_process(["--data-dir", str(tmp_path / "d")], env)
    assert result.code == 2 and "LAKALA_SANDBOX_TIMEZONE" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    "saved",
    ['{"anchor_virtual": NaN, "anchor_wall": 1, "speed": 1}', "{}", "[]", "null", "garbage"],
)
def test_an_unreadable_saved_clock_is_set_aside(good_dir: Path, tmp_path: Path, saved: str) -> None:
    data = tmp_path / "data"
    shutil.copytree(good_dir, data)
    with database(data / DB_FILE) as conn:
        conn.execute("UPDATE meta SET value = ? WHERE key = 'clock'", (saved,))
    app = make_app(data_dir=str(data))
    try:
        with httpx.Client(transport=InProcessTransport(app), base_url="http://s") as http:
            health = http.get("/healthz")
    finally:
        app.state.sandbox.close()
    assert health.status_code == 200 and len(health.json()["now"]) == 14


def test_sign_says_what_it_cannot_read(tmp_path: Path) -> None:
    encrypted = tmp_path / "enc.pem"
    key = ec.generate_private_key(ec.SECP256R1())  # any key: it is the password that matters
    encrypted.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"secret"),
        )
    )
    for args, says in [
        (["@" + str(tmp_path / "missing.json")], "cannot read the body"),
        (["@" + str(tmp_path)], "cannot read the body"),
        (["{}", "--key", str(encrypted)], "the key is encrypted"),
    ]:
        result = subprocess.run(
            [sys.executable, "-m", "sandbox", "sign", *args],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 2 and says in result.stderr, result.stderr
        assert "Traceback" not in result.stderr
