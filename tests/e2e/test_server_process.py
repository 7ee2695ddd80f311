"""`lakala-sandbox serve` as a real process on a port: seed calls, signed v3, and a restart."""

from __future__ import annotations

import http.server
import json
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
from cryptography import x509

from sandbox.core.keys import MERCHANT_KEY, PLATFORM_CERT
from sandbox.wire import signing
from tests.servers import PortTaken, SandboxProcess, announced, loopback
from tests.support import SEED_CREATE, V1, V3, verify_v3_response

pytestmark = pytest.mark.slow


def beijing(seconds_from_now: float) -> str:
    return time.strftime("%Y%m%d%H%M%S", time.gmtime(time.time() + 8 * 3600 + seconds_from_now))


def test_served_process_keeps_orders_and_keys_across_a_restart(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    body = dict(SEED_CREATE, out_order_no="E2E-1", order_efficient_time=beijing(3600))
    with SandboxProcess(data_dir) as server:
        created = loopback.post(server.url + V1 + "create", json=body).json()
        assert created["code"] == "000000"
        counter_url = created["resp_data"]["counter_url"]
        assert counter_url.startswith(server.url + "/b/pay?")
        pay_order_no = created["resp_data"]["pay_order_no"]

        # a v3 client signs with the key the sandbox wrote to its data directory
        key = signing.load_private_key((data_dir / MERCHANT_KEY).read_bytes())
        raw = json.dumps(
            {
                "req_time": beijing(0),
                "version": "3.0",
                "req_data": {"merchant_no": "8222900701106PZ", "out_order_no": "E2E-1"},
            }
        ).encode()
        response = loopback.post(
            server.url + V3 + "query",
            content=raw,
            headers={
                "Authorization": signing.sign_request(key, "OP00000003", "00dfba8194c41b84cf", raw),
                "Content-Type": "application/json",
            },
        )
        cert = x509.load_pem_x509_certificate((data_dir / PLATFORM_CERT).read_bytes())
        verify_v3_response(response, cert)
        assert response.json()["resp_data"]["order_status"] == "0"
        # spelled on the wire as Lakala spells them, for clients that match names exactly
        sent = {name.decode() for name, _ in response.headers.raw}
        assert {*signing.RESPONSE_HEADERS, "Lklapi-Traceid"} <= sent

        paid = loopback.post(f"{server.url}/sandbox/api/orders/{pay_order_no}/pay")
        assert paid.status_code == 200
        served_cert = loopback.get(server.url + "/sandbox/keys/platform.cer").content

    with SandboxProcess(data_dir) as server:
        query = loopback.post(server.url + V1 + "query", json={"out_order_no": "E2E-1"}).json()
        assert query["resp_data"]["order_status"] == "SUCCESS"
        assert query["resp_data"]["pay_order_no"] == pay_order_no
        assert loopback.get(server.url + "/sandbox/keys/platform.cer").content == served_cert
        # an identical retry after the restart still returns the original order
        again = loopback.post(server.url + V1 + "create", json=body).json()
        assert again["resp_data"]["pay_order_no"] == pay_order_no
        health = loopback.get(server.url + "/healthz").json()
        assert health["orders"] == 1


def serve_until_it_exits(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``lakala-sandbox serve`` with ``args`` that make it stop at once."""
    return subprocess.run(
        [sys.executable, "-m", "sandbox", "serve", "--data-dir", str(data_dir), *args],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_serve_refuses_a_bad_setting_clearly(tmp_path: Path) -> None:
    result = serve_until_it_exits(tmp_path, "--apps", str(tmp_path / "missing.yaml"))
    assert result.returncode == 2
    assert "cannot read apps file" in result.stderr


def test_serve_on_a_taken_port_says_so_and_fails(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        result = serve_until_it_exits(tmp_path, "--port", str(taken.getsockname()[1]))
    assert result.returncode == 3
    assert "address already in use" in result.stderr.lower()
    assert result.stdout == ""  # no banner naming a port this server never had


def test_a_server_started_on_a_taken_port_is_not_believed_ready(tmp_path: Path) -> None:
    """The tests' ``SandboxProcess`` on a port another server holds: that server's ``/healthz``
    (it answers 200 to anything) must not pass for this one's, which never bound."""

    class Impostor(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    with http.server.ThreadingHTTPServer(("127.0.0.1", 0), Impostor) as impostor:
        threading.Thread(target=impostor.serve_forever, daemon=True).start()
        try:
            port = impostor.server_address[1]
            with pytest.raises(PortTaken, match="address already in use"):
                SandboxProcess(tmp_path / "data", port=int(port)).start()
        finally:
            impostor.shutdown()


def test_sign_command_output_is_accepted(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    with SandboxProcess(data_dir) as server:
        raw = json.dumps(
            {
                "req_time": beijing(0),
                "version": "3.0",
                "req_data": {
                    "out_order_no": "SIGN-1",
                    "merchant_no": "82229007392000A",
                    "total_amount": 1,
                    "order_efficient_time": beijing(600),
                    "order_info": "signed by the CLI",
                },
            },
            ensure_ascii=False,
        )
        header = subprocess.run(
            [sys.executable, "-m", "sandbox", "sign", "--data-dir", str(data_dir), raw],
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        ).stdout.strip()
        response = loopback.post(
            server.url + V3 + "special_create",
            content=raw.encode(),
            headers={"Authorization": header, "Content-Type": "application/json"},
        )
        assert response.json()["code"] == "000000"


def test_serve_on_port_zero_says_which_port_it_took(tmp_path: Path) -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "sandbox", "serve", "--port", "0", "--data-dir", str(tmp_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        port, _ = announced(process, 30)
        url = f"http://127.0.0.1:{port}/healthz"
        deadline = time.monotonic() + 30
        while True:
            try:
                assert loopback.get(url, timeout=2).status_code == 200
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "the port it named never answered"
                time.sleep(0.05)
    finally:
        process.terminate()
        process.wait(15)
        if process.stdout is not None:
            process.stdout.close()


def test_a_server_killed_with_clients_connected_restarts_on_the_port_zero_picked(
    tmp_path: Path,
) -> None:
    import signal
    import socket

    data_dir = tmp_path / "data"
    process = subprocess.Popen(
        [sys.executable, "-m", "sandbox", "serve", "--port", "0", "--data-dir", str(data_dir)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    clients: list[socket.socket] = []
    try:
        port, _ = announced(process, 30)
        deadline = time.monotonic() + 30
        while len(clients) < 3:  # kept-alive clients, each answered once and still connected
            try:
                client = socket.create_connection(("127.0.0.1", port), timeout=5)
            except OSError:
                assert time.monotonic() < deadline, "the port it named never answered"
                time.sleep(0.05)
                continue
            clients.append(client)
            client.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            assert client.recv(65536).startswith(b"HTTP/1.1 200")
        process.send_signal(signal.SIGKILL)
        process.wait(15)
        # the same port again, the clients still holding their ends of the old connections
        with SandboxProcess(data_dir, port=port) as again:
            assert loopback.get(again.url + "/healthz").json()["status"] == "ok"
    finally:
        for client in clients:
            client.close()
        if process.poll() is None:
            process.kill()
            process.wait(15)
        if process.stdout is not None:
            process.stdout.close()


def test_a_second_server_on_the_same_data_directory_is_refused(tmp_path: Path) -> None:
    """Two servers on one data directory would each send every notify."""
    data_dir = tmp_path / "data"
    with SandboxProcess(data_dir) as first:
        second = serve_until_it_exits(data_dir, "--port", "0")
        assert second.returncode == 2
        assert f"in use by another lakala-sandbox serve (pid {first.process.pid})" in second.stderr
        assert loopback.get(first.url + "/healthz").status_code == 200
    # once the first has stopped, the directory is free again
    with SandboxProcess(data_dir) as again:
        assert loopback.get(again.url + "/healthz").json()["status"] == "ok"
