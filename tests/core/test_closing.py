"""A closed sandbox lets its store go: no file of its data directory stays open, so the directory
can be removed on any system and nothing is left for the garbage collector to find open (Python
3.13 warns of every SQLite connection it finds so, which a test suite run with warnings as errors
reports as a failure of whichever test is running). A sandbox that could not be made, and a served
one after its shutdown, keep nothing open either."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import httpx
import pytest

from sandbox.client.transport import InProcessTransport
from sandbox.core.keys import PLATFORM_KEY
from sandbox.core.settings import Settings
from sandbox.core.store import CHECKPOINT_EVERY
from sandbox.runtime import Sandbox
from sandbox.scenarios.files import ScenarioFileError
from sandbox.server.app import create_app
from sandbox.testing.plugin import ServerThread
from sandbox.wire.vocabulary import V1_COUNTER_PREFIX as V1
from tests.conftest import make_app


def open_files(folder: Path) -> list[str]:
    """The files under ``folder`` this process holds open."""
    held = []
    for fd in Path("/proc/self/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:  # (closed meanwhile: the listing's own descriptor, say)
            continue
        if target.startswith(str(folder)):
            held.append(target)
    return held


def create(http: httpx.Client, out_order_no: str) -> None:
    answer = http.post(
        V1 + "create",
        json={"out_order_no": out_order_no, "total_amount": 100, "order_info": "closing"},
    )
    assert answer.json()["code"] == "000000", answer.text


def test_a_closed_sandbox_holds_no_file_of_its_data_directory(tmp_path: Path) -> None:
    app = make_app(data_dir=str(tmp_path / "data"))
    sb = app.state.sandbox
    with httpx.Client(transport=InProcessTransport(app), base_url="http://t") as http:
        create(http, "CLOSE-1")
    assert any(name.endswith("sandbox.sqlite3") for name in open_files(tmp_path))
    sb.close()
    assert open_files(tmp_path) == []
    with pytest.raises(sqlite3.ProgrammingError):
        sb.store.execute("SELECT 1")
    sb.close()  # a second close does nothing


def test_a_sandbox_closed_as_its_store_checkpoints_holds_no_file(tmp_path: Path) -> None:
    app = make_app(data_dir=str(tmp_path / "data"), strict_responses=False)
    with httpx.Client(transport=InProcessTransport(app), base_url="http://t") as http:
        for n in range(CHECKPOINT_EVERY):  # enough writes to start a checkpoint on its thread
            create(http, f"CHECKPOINT-{n}")
    app.state.sandbox.close()  # at once: it waits for the checkpoint and its connection
    assert open_files(tmp_path) == []


def test_a_served_sandbox_lets_its_files_go_at_shutdown(tmp_path: Path) -> None:
    server = ServerThread(make_app(data_dir=str(tmp_path / "data"))).start()
    try:
        with httpx.Client(base_url=server.url, trust_env=False) as http:
            create(http, "CLOSE-2")
        assert open_files(tmp_path) != []
    finally:
        server.stop()
    assert open_files(tmp_path) == []


def test_a_sandbox_that_cannot_be_made_keeps_nothing_open(tmp_path: Path) -> None:
    data = tmp_path / "data"
    make_app(data_dir=str(data)).state.sandbox.close()  # a store and keys to start over
    (data / PLATFORM_KEY).unlink()  # the keys are then refused, after the store has opened
    with pytest.raises(ValueError, match="missing while the other key files are there"):
        Sandbox(Settings(data_dir=str(data)))
    assert open_files(tmp_path) == []

    scenarios = tmp_path / "scenarios"
    scenarios.mkdir()
    (scenarios / "broken.yaml").write_text("steps: [{pay: {}}, {wait: forever}]\n")
    again = tmp_path / "again"
    with pytest.raises(ScenarioFileError):
        Sandbox(Settings(data_dir=str(again), scenarios_dir=str(scenarios)))
    assert open_files(tmp_path) == []


def test_a_real_mode_app_without_lakala_settings_keeps_nothing_open(
    tmp_path: Path, no_lakala_settings: None
) -> None:
    with pytest.raises(ValueError, match="LAKALA_"):
        create_app(Settings(data_dir=str(tmp_path / "data"), mode="real"))
    assert open_files(tmp_path) == []
