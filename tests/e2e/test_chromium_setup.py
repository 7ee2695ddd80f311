"""The browser tests' own Chromium: Playwright's settings kept, none of the window's own UI built.

A headless window of Debian's chromium is a whole browser window, omnibox and all; each new
context opens one. Its WebUI omnibox popup cost half the CPU of the browser tests, so
``launch_args`` turns it off, which means giving Chromium a ``--disable-features`` of our own:
Chromium keeps only the last one, so ours must carry Playwright's too. And since every new page is
a new window, a module's tests share one tab (``Tab``), handed to each as a new one would be."""

from __future__ import annotations

import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from tests.browser_support import (
    DISABLED_FEATURES,
    VIEWPORT,
    Tab,
    disabled_features,
    launch_args,
    shared_launch_args,
)

pytestmark = pytest.mark.browser


def test_the_last_disable_features_keeps_playwrights_and_adds_ours(page: Any) -> None:
    given = [set(features) for features in disabled_features(page)]
    assert given, "no --disable-features at all"
    playwrights, last = given[0], given[-1]  # (the first is Playwright's own)
    assert set(DISABLED_FEATURES) <= last, f"not turned off: {set(DISABLED_FEATURES) - last}"
    assert playwrights <= last, f"Playwright's, turned back on: {sorted(playwrights - last)}"


def test_a_new_context_builds_no_browser_ui(chromium: Any, page: Any) -> None:
    page.goto("about:blank")
    session = chromium.new_browser_cdp_session()
    try:
        deadline = time.monotonic() + 1  # the window's UI, when built, comes with it
        while True:
            targets = session.send("Target.getTargets")["targetInfos"]
            built = [t["url"] for t in targets if t["type"] == "browser_ui"]
            assert built == [], f"the window built its own UI: {built}"
            if time.monotonic() > deadline:
                break
            time.sleep(0.2)
    finally:
        session.detach()
    assert [t["url"] for t in targets if t["type"] == "page"] == ["about:blank"]


def test_each_test_gets_the_shared_tab_as_a_new_one(chromium: Any) -> None:
    tab = Tab(chromium)
    try:
        page = tab.take()
        page.context.add_cookies([{"name": "left", "value": "behind", "url": "http://127.0.0.1/"}])
        page.set_viewport_size({"width": 1280, "height": 900})
        page.evaluate("setTimeout(() => { throw new Error('left behind') }, 0)")
        deadline = time.monotonic() + 5
        while not tab.errors and time.monotonic() < deadline:
            page.wait_for_timeout(50)
        assert any("left behind" in error for error in tab.give_back(reuse=True))

        again = tab.take()  # the same tab, as new
        assert again is page
        assert again.url == "about:blank"
        assert again.viewport_size == VIEWPORT
        assert again.context.cookies() == []
        assert tab.errors == []

        tab.give_back(reuse=False)  # as after a test that failed: closed, and a new one made
        assert page.is_closed()
        fresh = tab.take()
        assert fresh is not page
        assert fresh.viewport_size == VIEWPORT and fresh.context.cookies() == []
    finally:
        tab.close()


def test_a_sessions_workers_launch_one_browser_to_find_the_arguments(
    chromium: Any, tmp_path: Path
) -> None:
    playwright = SimpleNamespace(chromium=chromium.browser_type)
    first = shared_launch_args(playwright, tmp_path)  # the first to ask launches one
    assert first == launch_args(playwright)  # (this process's own answer)

    class NoLaunch:
        def launch(self, **options: Any) -> Any:
            raise AssertionError("a second browser launched to find the same arguments")

    assert shared_launch_args(SimpleNamespace(chromium=NoLaunch()), tmp_path) == first
