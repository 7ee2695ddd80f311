"""Browsers ask every host for /favicon.ico: the sandbox has one, so its pages log no 404 (a
frontend test that fails on console errors would trip over it)."""

from __future__ import annotations

from typing import Any
from xml.etree import ElementTree

import httpx
import pytest

from tests.servers import SandboxProcess, loopback
from tests.support import V1


def test_the_icon_is_an_svg() -> None:
    from sandbox.client.transport import InProcessTransport
    from sandbox.core.settings import Settings
    from sandbox.server.app import create_app

    app = create_app(Settings(data_dir=":memory:"))
    with httpx.Client(transport=InProcessTransport(app), base_url="http://s") as http:
        icon = http.get("/favicon.ico")
    app.state.sandbox.close()
    assert icon.status_code == 200 and icon.headers["content-type"] == "image/svg+xml"
    assert ElementTree.fromstring(icon.content).tag == "{http://www.w3.org/2000/svg}svg"


@pytest.mark.browser
def test_the_counter_page_and_the_dashboard_log_no_errors(
    chromium: Any, served: SandboxProcess
) -> None:
    created = loopback.post(
        served.url + V1 + "create",
        json={"out_order_no": "ICON-1", "total_amount": 100, "order_info": "icon"},
    ).json()
    context = chromium.new_context()
    try:
        page = context.new_page()
        errors: list[str] = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        for url in (created["resp_data"]["counter_url"], served.url + "/"):
            page.goto(url, wait_until="networkidle")
        assert errors == []
    finally:
        context.close()
