"""The store's write-ahead log stays bounded however long creates keep coming: checkpoints copy
it into the database file beside the commits, and once it is large one of them makes it start
over, so a sandbox that serves all day holds its orders and a log of some twenty megabytes, not
every commit it ever made."""

from __future__ import annotations

import time
from pathlib import Path

import httpx

from sandbox.client.transport import InProcessTransport
from sandbox.core.store import LOG_LIMIT, RESTART_AFTER, Store
from sandbox.runtime import DB_FILE
from sandbox.wire.vocabulary import V1_COUNTER_PREFIX as V1
from tests.conftest import make_app

CREATES = 1_600  # each commits about nine 4 KiB pages: 55 MB of log if it never started over


def test_the_log_starts_over_while_creates_keep_coming_and_every_order_stays(
    tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    app = make_app(data_dir=str(data), strict_responses=False)  # (the answers are not its point)
    log = data / (DB_FILE + "-wal")
    page = int(app.state.sandbox.store.execute("PRAGMA page_size")[0][0])
    largest = 0
    with httpx.Client(transport=InProcessTransport(app), base_url="http://t") as http:
        for n in range(CREATES):
            answer = http.post(
                V1 + "create",
                json={"out_order_no": f"LOG-{n}", "total_amount": 100, "order_info": "log"},
            )
            assert answer.json()["code"] == "000000", answer.text
            if n % 50 == 0:
                largest = max(largest, log.stat().st_size)
    # the log started over: it never held more than the restart mark and the commits that came
    # while a checkpoint ran, where all 1,600 commits would be several times that
    assert largest < 2 * RESTART_AFTER * page, f"the log reached {largest:,} bytes"
    app.state.sandbox.close()

    again = make_app(data_dir=str(data))  # every order is in the store, read afresh
    with httpx.Client(transport=InProcessTransport(again), base_url="http://t") as http:
        for n in (0, 1, CREATES // 2, CREATES - 1):
            found = http.post(V1 + "query", json={"out_order_no": f"LOG-{n}"}).json()
            assert found["code"] == "000000", found
            assert found["resp_data"]["out_order_no"] == f"LOG-{n}"
    assert again.state.sandbox.engine.count() == CREATES


def test_a_log_a_burst_left_large_is_cut_back_once_it_starts_over(tmp_path: Path) -> None:
    """A reset of tens of thousands of orders writes its pages to the log in one transaction;
    the log file stays that large only until it next starts over (here the burst is one
    transaction of large values, and small writes come after it as orders would)."""
    store = Store(tmp_path / DB_FILE)
    log = tmp_path / (DB_FILE + "-wal")
    try:
        with store.transaction() as conn:
            for n in range(LOG_LIMIT // 100_000 + 50):  # about 5 MB past the limit
                conn.execute(
                    "INSERT INTO meta (key, value) VALUES (?, ?)", (f"burst-{n}", "x" * 100_000)
                )
        assert log.stat().st_size > LOG_LIMIT
        deadline = time.monotonic() + 30
        for n in range(20_000):  # (bounded; it takes about 170)
            if log.stat().st_size <= LOG_LIMIT or time.monotonic() > deadline:
                break
            store.set_meta(f"small-{n % 50}", str(n))
            time.sleep(0.001)
        size = log.stat().st_size
        assert size <= LOG_LIMIT, f"the log still {size:,} bytes after {n:,} writes"
        assert store.get_meta("small-0") is not None  # (what was written is there)
        assert len(store.execute("SELECT key FROM meta WHERE key LIKE 'burst-%'")) > 300
    finally:
        store.close()
