"""DNS rebinding: a page whose name now resolves to 127.0.0.1 calls the sandbox with its own name
in Host (and a matching Origin). The sandbox answers only its own names, on every surface."""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from sandbox.client.transport import InProcessTransport
from sandbox.runtime import Sandbox
from sandbox.server.api_v3 import PATHS as V3_PATHS
from sandbox.wire import signing
from sandbox.wire.envelopes import dumps
from tests.conftest import make_app
from tests.servers import SandboxProcess, loopback
from tests.support import V1, seed_create, snapshot, v3_req_data, verify_v3_response

EVIL = "rebind.evil.example"


def raw(
    port: int, method: str, path: str, host: str, body: bytes = b"", *, origin: bool = True
) -> tuple[int, bytes]:
    """One request as a browser on the attacker's page sends it: its own name in Host, and its
    own origin (the same, so the sandbox's same-origin checks alone would let it through)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.putrequest(method, path, skip_host=True)
        conn.putheader("Host", host)
        if origin:
            conn.putheader("Origin", f"http://{host}")
        conn.putheader("Content-Type", "application/json")
        conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxProcess]:
    args = ("--public-url", "http://pay.example.test:9000", "--allowed-hosts", "lan.example.test")
    data = tmp_path_factory.mktemp("hosts") / "data"
    with SandboxProcess(data, *args, env={"LAKALA_SANDBOX_ALLOWED_HOSTS": "x"}) as server:
        yield server


@pytest.mark.slow
@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "/sandbox/api/orders", b""),
        ("POST", "/sandbox/api/clock/advance", b'{"seconds": 86400}'),
        ("POST", "/sandbox/api/reset", b""),
        ("POST", V1 + "create", b'{"out_order_no":"EVIL-1","total_amount":1,"order_info":"x"}'),
        ("GET", "/", b""),
        ("GET", "/healthz", b""),
        ("GET", "/sandbox/keys/merchant_private_key.pem", b""),
    ],
)
def test_a_rebound_name_is_refused_on_every_surface(
    served: SandboxProcess, method: str, path: str, body: bytes
) -> None:
    for host in (EVIL, f"{EVIL}:{served.port}", f"{EVIL}.", "127.0.0.1.nip.io"):
        status, answer = raw(served.port, method, path, host, body)
        assert status == 403, answer[:300]
        if path == "/":
            assert b"rebind.evil.example" in answer or b"nip.io" in answer
            assert b"--allowed-hosts" in answer and b"DNS rebinding" in answer
        else:
            out = json.loads(answer)
            assert out["code"] == "SBX30008", out
            assert "--allowed-hosts" in out["msg"]
    orders = loopback.get(served.url + "/sandbox/api/orders", timeout=10).json()
    assert orders["total"] == 0
    clock = loopback.get(served.url + "/sandbox/api/clock", timeout=10).json()["clock"]
    assert clock["advanced_seconds"] == 0


@pytest.mark.slow
def test_own_names_are_answered(served: SandboxProcess) -> None:
    port = served.port
    for host in (
        f"127.0.0.1:{port}",
        f"localhost:{port}",
        "LOCALHOST",
        f"app.localhost:{port}",
        "127.0.0.2",
        "pay.example.test:9000",  # --public-url's host
        "lan.example.test",  # --allowed-hosts
    ):
        status, answer = raw(port, "GET", "/sandbox/api/clock", host, origin=False)
        assert status == 200, (host, answer[:200])


@pytest.mark.slow
def test_the_allowed_hosts_variable_is_read(tmp_path: Path) -> None:
    env = {"LAKALA_SANDBOX_ALLOWED_HOSTS": "ci-runner.internal, other.internal"}
    with SandboxProcess(tmp_path / "data", env=env) as server:
        assert raw(server.port, "GET", "/healthz", "ci-runner.internal")[0] == 200
        assert raw(server.port, "GET", "/healthz", "other.internal:80")[0] == 200
        assert raw(server.port, "GET", "/healthz", EVIL)[0] == 403


def test_in_process_clients_keep_working_whatever_their_base_url() -> None:
    """No DNS there: the host the client called is the address the connection reached."""
    app = make_app()
    sb: Sandbox = app.state.sandbox
    try:
        for base in ("http://testserver", "http://sandbox.test", "http://t", "http://[::1]:8"):
            with httpx.Client(transport=InProcessTransport(app), base_url=base) as client:
                assert client.get("/sandbox/api/orders").status_code == 200
                out = client.post(V1 + "create", json=seed_create(sb, f"IN-{base[-2:]}")).json()
                assert out["code"] == "000000"
                assert out["resp_data"]["counter_url"].startswith(base)
    finally:
        sb.close()


def test_a_foreign_host_in_process_is_refused_in_each_envelope(
    http: httpx.Client, sb: Sandbox
) -> None:
    before = snapshot(sb)
    headers = {"Host": EVIL, "Origin": f"http://{EVIL}"}
    admin = http.post("/sandbox/api/reset", headers=headers)
    assert (admin.status_code, admin.json()["error"]) == (403, "HOST_NOT_ALLOWED")
    v1 = http.post(V1 + "create", json=seed_create(sb, "EVIL-1"), headers=headers)
    assert (v1.status_code, v1.json()["code"], v1.json()["data"]) == (403, "SBX30008", None)
    body = dumps({"req_time": "20261126120000", "version": "3.0", "req_data": v3_req_data(sb, "E")})
    auth = signing.sign_request(
        sb.keys.merchant_key, sb.settings.appid, sb.settings.serial_no, body
    )
    v3 = http.post(
        V3_PATHS["special_create"], content=body, headers={**headers, "Authorization": auth}
    )
    assert (v3.status_code, v3.json()["code"]) == (403, "SBX30008")
    verify_v3_response(v3, sb.keys.platform_cert)  # signed, as every v3 answer is
    page = http.get("/", headers=headers)
    assert page.status_code == 403 and "text/html" in page.headers["content-type"]
    assert snapshot(sb) == before


def test_decisions_stay_right_when_many_hosts_have_been_seen(
    http: httpx.Client, sb: Sandbox
) -> None:
    """Each Host's decision and link base are remembered, at most 256 of them: a caller that
    sends hundreds of different Host headers gets each judged as if it were the first."""
    for n in range(600):
        foreign = http.get("/sandbox/api/clock", headers={"Host": f"h{n}.{EVIL}"})
        assert foreign.status_code == 403, n
        if n % 150 == 0:
            for base in ("http://127.0.0.1:8090", "http://localhost:9"):
                host = base.removeprefix("http://")
                out = http.post(
                    V1 + "create",
                    json=seed_create(sb, f"MANY-{n}-{host[-1]}"),
                    headers={"Host": host},
                ).json()
                assert out["code"] == "000000", out
                assert out["resp_data"]["counter_url"].startswith(base + "/")


@pytest.mark.parametrize("host", ["[zz", "a:b:c", "x:99999999", "ex ample", "\xb2:80"])
def test_a_host_header_that_does_not_parse_is_refused_not_a_500(
    http: httpx.Client, host: str
) -> None:
    response = http.get("/sandbox/api/orders", headers={"Host": host.encode("latin-1")})
    assert (response.status_code, response.json()["code"]) == (403, "SBX30008")


def test_a_star_answers_any_name() -> None:
    app = make_app(allowed_hosts=("*",))
    try:
        with httpx.Client(transport=InProcessTransport(app), base_url="http://t") as client:
            assert client.get("/healthz", headers={"Host": EVIL}).status_code == 200
    finally:
        app.state.sandbox.close()


def test_allowed_hosts_must_be_names() -> None:
    with pytest.raises(ValueError, match="allowed_hosts .* takes host names"):
        make_app(allowed_hosts=("http://x.example:80",))
