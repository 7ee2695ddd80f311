"""A frontend on another origin calling the v1 API: the browser's CORS preflight, answered for
the origins ``--cors-origins`` allows (any page on this machine by default), refused clearly for
others, and never for the v3 API, the admin API or the pages."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import Route

from sandbox.client.transport import InProcessTransport
from sandbox.core.settings import Settings
from sandbox.testing.plugin import ServerThread
from tests.conftest import make_app
from tests.servers import SandboxProcess, loopback
from tests.support import V1, V3

CREATE = V1 + "create"


def preflight(http: httpx.Client, path: str, origin: str) -> httpx.Response:
    return http.options(
        path,
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization,content-type",
        },
    )


def client(**settings: Any) -> httpx.Client:
    return httpx.Client(transport=InProcessTransport(make_app(**settings)), base_url="http://s")


@pytest.mark.parametrize(
    "origin",
    ["http://localhost:3000", "http://127.0.0.1:5173", "https://localhost", "http://[::1]:8080"],
)
def test_pages_on_this_machine_may_call_the_v1_api_by_default(origin: str) -> None:
    with client() as http:
        answer = preflight(http, CREATE, origin)
        assert answer.status_code == 200
        assert answer.headers["access-control-allow-origin"] == origin
        assert "authorization" in answer.headers["access-control-allow-headers"].lower()
        created = http.post(CREATE, json={"total_amount": 1}, headers={"Origin": origin})
        # the page may read the answer, errors included
        assert created.headers["access-control-allow-origin"] == origin
        assert created.json()["code"] == "SBX10001"


@pytest.mark.parametrize("origin", ["https://shop.example.com", "http://localhost.evil.example"])
def test_another_origin_is_refused_in_the_v1_envelope(origin: str) -> None:
    with client() as http:
        answer = preflight(http, CREATE, origin)
    assert answer.status_code == 403
    body = answer.json()
    assert body["code"] == "SBX30007" and body["resp_data"] is None
    assert origin in body["msg"] and "--cors-origins" in body["msg"]
    assert "access-control-allow-origin" not in answer.headers


def test_listed_origins_replace_the_default_and_star_allows_any() -> None:
    with client(cors_origins=("https://dev.example.com",)) as http:
        assert preflight(http, CREATE, "https://dev.example.com").status_code == 200
        assert preflight(http, CREATE, "http://localhost:3000").status_code == 403
    with client(cors_origins=("*",)) as http:
        answer = preflight(http, CREATE, "https://anywhere.example")
        assert answer.status_code == 200 and answer.headers["access-control-allow-origin"] == "*"
    with client(cors_origins=("none",)) as http:
        answer = preflight(http, CREATE, "http://localhost:3000")
        assert answer.status_code == 403 and answer.json()["code"] == "SBX30007"
        assert "access-control-allow-origin" not in answer.headers


def test_a_cross_site_post_without_preflight_changes_nothing() -> None:
    """A form or a text/plain fetch from another site needs no preflight: refused all the same."""
    with client() as http:
        evil = {"Origin": "https://evil.example", "Content-Type": "text/plain"}
        body = '{"out_order_no": "EVIL-1", "total_amount": 1, "order_info": "x"}'
        created = http.post(CREATE, content=body, headers=evil)
        assert created.status_code == 403 and created.json()["code"] == "SBX30007"
        assert http.get("/sandbox/api/orders").json()["total"] == 0
        # the sandbox's own pages, and clients outside a browser (no Origin), are not affected
        own = http.post(CREATE, content=body, headers={"Origin": "http://s"})
        assert own.json()["code"] == "000000"


def test_the_scenario_header_may_be_sent_and_other_headers_are_refused_clearly() -> None:
    with client() as http:
        asked = {"Origin": "http://localhost:3000", "Access-Control-Request-Method": "POST"}
        ok = http.options(
            CREATE,
            headers={**asked, "Access-Control-Request-Headers": "content-type,x-sandbox-scenario"},
        )
        assert ok.status_code == 200
        odd = http.options(CREATE, headers={**asked, "Access-Control-Request-Headers": "x-odd"})
        assert odd.status_code == 400 and odd.json()["code"] == "SBX10001"
        assert "x-odd" in odd.json()["msg"] and "X-Sandbox-Scenario" in odd.json()["msg"]


def test_the_admin_api_refuses_a_page_on_another_site() -> None:
    with client() as http:
        no = http.post(CREATE, json={"out_order_no": "A-1", "total_amount": 1, "order_info": "x"})
        pay_order_no = no.json()["resp_data"]["pay_order_no"]
        evil = {"Origin": "https://evil.example", "Content-Type": "text/plain"}
        for path in (f"/sandbox/api/orders/{pay_order_no}/pay", "/sandbox/api/clock/speed"):
            answer = http.post(path, content='{"speed": 100}', headers=evil)
            assert answer.status_code == 403 and answer.json()["error"] == "ADMIN_FORBIDDEN"
            assert "evil.example" in answer.json()["msg"]
        order = http.get(f"/sandbox/api/orders/{pay_order_no}").json()["order"]
        assert order["order_status"] == "0"
        assert http.get("/sandbox/api/clock").json()["clock"]["speed"] == 1


def test_only_the_v1_api_takes_cross_origin_calls() -> None:
    with client() as http:
        for path in (V3 + "special_create", "/sandbox/api/clock/advance", "/b/pay/action"):
            answer = preflight(http, path, "http://localhost:3000")
            assert "access-control-allow-origin" not in answer.headers, path
        answer = http.get("/sandbox/api/clock", headers={"Origin": "http://localhost:3000"})
        assert "access-control-allow-origin" not in answer.headers


@pytest.mark.parametrize(
    "origins",
    [
        ("localhost:3000",),
        ("http://localhost:3000/app",),
        ("",),
        ("https://dev.example.com:abc",),
        ("https://dev.example.com?x=1",),
        ("none", "loopback"),
    ],
)
def test_an_origin_that_is_not_one_is_refused_at_start(origins: tuple[str, ...]) -> None:
    with pytest.raises(ValueError, match="LAKALA_SANDBOX_CORS_ORIGINS"):
        Settings(cors_origins=origins)


# -- in a real browser ----------------------------------------------------------------------
SHOP = """<!doctype html><html lang="en"><body><p id="status">ready</p><script>
async function checkout() {
  try {
    const response = await fetch(SANDBOX + '/api/v1/payment/lakala/counter/create', {
      method: 'POST',
      headers: {'Content-Type': 'application/json', 'Authorization': 'Bearer frontend-token'},
      body: JSON.stringify({out_order_no: 'CORS' + Date.now(), total_amount: 250,
                            order_info: 'cross-origin checkout'})
    });
    const result = await response.json();
    window.location.href = result.data.counter_url;
  } catch (error) {
    document.getElementById('status').textContent = 'failed: ' + error;
  }
}
</script></body></html>"""


@pytest.fixture(scope="module")
def shop() -> Iterator[str]:
    """A frontend on its own port, so its pages are of another origin than the sandbox."""

    async def page(request: Request) -> HTMLResponse:
        sandbox = request.query_params["sandbox"]
        return HTMLResponse(SHOP.replace("SANDBOX +", json.dumps(sandbox) + " +"))

    server = ServerThread(Starlette(routes=[Route("/", page)])).start(timeout=10)
    yield server.url
    server.stop()


@pytest.mark.browser
def test_a_page_on_another_port_creates_an_order_and_goes_to_the_counter(
    chromium: Any, served: SandboxProcess, shop: str
) -> None:
    context = chromium.new_context(locale="zh-CN")
    try:
        page = context.new_page()
        page.goto(f"{shop}/?sandbox={served.url}")
        # not awaited: checkout() navigates away, which would end an evaluate waiting on it
        page.evaluate("() => { checkout(); }")
        page.wait_for_url(served.url + "/b/pay?*", timeout=15_000)
        assert page.locator('[data-field="amount"]').inner_text() == "¥2.50"
    finally:
        context.close()


@pytest.mark.browser
def test_a_page_on_an_origin_not_allowed_cannot_call(
    chromium: Any, shop: str, tmp_path: Path
) -> None:
    with SandboxProcess(tmp_path / "data", "--cors-origins", "https://dev.example.com") as server:
        context = chromium.new_context()
        try:
            page = context.new_page()
            page.goto(f"{shop}/?sandbox={server.url}")
            page.evaluate("() => { checkout(); }")
            status = page.locator("#status")
            status.wait_for(state="visible")
            page.wait_for_function(
                "document.getElementById('status').textContent.startsWith('failed')",
                timeout=15_000,
            )
            assert "Failed to fetch" in status.inner_text()
        finally:
            context.close()
        orders = loopback.get(server.url + "/sandbox/api/orders").json()["orders"]
    assert orders == []  # the browser never sent the create
