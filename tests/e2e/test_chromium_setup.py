"""The browser tests' own Chromium: Playwright's settings kept, none of the window's own UI built.

A headless window of Debian's chromium is a whole browser window, omnibox and all; each new
context opens one. Its WebUI omnibox popup cost half the CPU of the browser tests, so
``launch_args`` turns it off, which means giving Chromium a ``--disable-features`` of our own:
Chromium keeps only the last one, so ours must carry Playwright's too."""

from __future__ import annotations

import time
from typing import Any

import pytest

from tests.browser_support import DISABLED_FEATURES, disabled_features

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
