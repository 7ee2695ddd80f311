"""The store's tables come from one registry, with a recorded version: a new store is made whole
at once, an older one is brought forward keeping its data, a newer one is refused untouched."""

from __future__ import annotations

from pathlib import Path

import pytest

from sandbox import Settings, create_app
from sandbox.core import schema
from sandbox.core.store import Store
from sandbox.runtime import DB_FILE
from tests.support import database

ALL_TABLES = {
    "orders",
    "trades",
    "meta",
    "notifies",
    "notify_attempts",
    "scenario_runs",
    "scenario_faults",
    "refunds",
    "refund_outcomes",
}


def _tables(path: Path) -> set[str]:
    with database(path) as conn:
        rows = conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
    return {name for (name,) in rows} - {"sqlite_sequence"}


def _version(path: Path) -> int:
    with database(path) as conn:
        return int(conn.execute("PRAGMA user_version").fetchone()[0])


def test_a_new_store_has_every_table_and_records_its_version(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    Store(path).close()  # no service built: the store alone makes every table
    assert _tables(path) == ALL_TABLES
    assert _version(path) == schema.SCHEMA_VERSION


def test_every_create_statement_lives_in_the_registry() -> None:
    package = Path(schema.__file__).resolve().parent.parent
    makers = [
        p.relative_to(package).as_posix()
        for p in package.rglob("*.py")
        if "CREATE TABLE" in p.read_text(encoding="utf-8") or "ALTER TABLE" in p.read_text()
    ]
    assert makers == ["core/schema.py"]


def test_a_store_from_before_versions_keeps_its_orders(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    with database(path) as conn:  # what a sandbox made before it recorded versions
        conn.executescript(schema.ORDERS)
        conn.execute(
            "INSERT INTO orders (pay_order_no, merchant_no, out_order_no, dialect, status, "
            "request_hash, created_ts, efficient_ts, updated_ts, data) "
            "VALUES ('P1', 'M', 'A1', 'v3', 2, 'h', 1, 2, 1, '{}')"
        )
    assert _version(path) == 0
    store = Store(path)
    try:
        assert [r["pay_order_no"] for r in store.execute("SELECT * FROM orders")] == ["P1"]
    finally:
        store.close()
    assert _tables(path) == ALL_TABLES
    assert _version(path) == schema.SCHEMA_VERSION


def test_a_store_of_a_newer_sandbox_is_refused_and_left_as_it_was(tmp_path: Path) -> None:
    path = tmp_path / "new.db"
    with database(path) as conn:
        conn.execute("CREATE TABLE orders (pay_order_no TEXT, data TEXT, future TEXT)")
        conn.execute(f"PRAGMA user_version = {schema.SCHEMA_VERSION + 1}")
    before = path.read_bytes()
    with pytest.raises(ValueError, match="made by a newer lakala-sandbox"):
        Store(path)
    assert path.read_bytes() == before


def test_another_programs_database_is_refused_and_left_as_it_was(tmp_path: Path) -> None:
    path = tmp_path / "theirs.db"
    with database(path) as conn:
        conn.execute("CREATE TABLE orders (id INTEGER PRIMARY KEY, customer TEXT)")
    before = path.read_bytes()
    with pytest.raises(ValueError, match="its orders table is not the sandbox's"):
        Store(path)
    assert path.read_bytes() == before
    assert _tables(path) == {"orders"}


def test_a_version_1_outbox_gains_its_receivers(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    path = data / DB_FILE
    before_receivers = "\n".join(
        line
        for line in schema.NOTIFY_OUTBOX.splitlines()
        if not line.strip().startswith("receiver")
    )
    with database(path) as conn:
        conn.executescript(schema.ORDERS + before_receivers)
        conn.execute(
            "INSERT INTO orders (pay_order_no, merchant_no, out_order_no, dialect, status, "
            "request_hash, created_ts, efficient_ts, updated_ts, data) "
            "VALUES ('P1', 'M', 'A1', 'v3', 2, 'h', 1, 2, 1, '{}')"
        )
        conn.execute(
            "INSERT INTO notifies (pay_order_no, sequence, kind, dialect, url, body, policy, "
            "retry, created_ts) VALUES ('P1', 1, 'pay', 'v3', 'http://Shop.example:8080/n', "
            "'{}', '{}', 1, 1)"
        )
        conn.execute("PRAGMA user_version = 1")
    app = create_app(Settings(data_dir=str(data)))
    try:
        rows = app.state.sandbox.store.execute("SELECT receiver FROM notifies")
    finally:
        app.state.sandbox.close()
    assert [r["receiver"] for r in rows] == ["http://shop.example:8080"]
    assert _version(path) == schema.SCHEMA_VERSION == 3  # (2 -> 3 moved refunds, none here)
