"""When a served sandbox makes its payer-name generator (Faker: a fifth of a second to import and
make): not at start-up, but once the first order is created, on a thread of its own; at start-up
only when the store already holds orders to pay."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import httpx

from sandbox.client.transport import InProcessTransport
from tests.conftest import make_app
from tests.paths import ROOT

# sandboxes served as the plugin serves one (uvicorn in a thread, start-up and shutdown run), in a
# Python of its own so that what it imports can be seen: one started on a fresh data directory,
# given an order and a payment, then another started over the same directory
PROBE = """
import json, sys, threading
import httpx
from sandbox.core.settings import Settings
from sandbox.server.app import create_app
from sandbox.testing.plugin import ServerThread

warmups = []
start = threading.Thread.start
def recording(self):
    if self.name == "lakala-sandbox-warm":
        warmups.append(self)
    start(self)
threading.Thread.start = recording

def step():  # warm-ups started so far, once finished, and whether Faker is imported
    for thread in warmups:
        thread.join(30)
    return [len(warmups), "faker" in sys.modules]

seen = {}
http = httpx.Client(trust_env=False)  # (loopback: no proxy the environment names)
app = create_app(Settings(data_dir=sys.argv[1], seed=7))
server = ServerThread(app).start()
http.get(server.url + "/healthz").raise_for_status()
seen["started"] = step()
body = {"out_order_no": "NAMES-1", "total_amount": 100, "order_info": "names"}
answer = http.post(server.url + "/api/v1/payment/lakala/counter/create", json=body).json()
seen["created"] = [answer["code"], *step()]
paid = app.state.sandbox.engine.apply(answer["resp_data"]["pay_order_no"], "pay", pay_mode="ALIPAY")
seen["payer"] = {k: paid.last_trade("PAY")[k] for k in ("payer_name", "user_id1")}
server.stop()
app.state.sandbox.close()
again = ServerThread(create_app(Settings(data_dir=sys.argv[1], seed=7))).start()
seen["started again"] = step()
again.stop()
print(json.dumps(seen))
"""


def test_a_served_sandbox_makes_payer_names_after_its_first_order(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-c", PROBE, str(tmp_path / "data")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout.strip().splitlines()[-1])
    assert seen["started"] == [0, False]  # a start-up alone makes nothing
    assert seen["created"] == ["000000", 1, True]  # the first order starts it
    assert seen["started again"] == [2, True]  # a store holding orders: at start-up

    # the names a seeded sandbox gives are the same whenever the generator was made
    reference = make_app(seed=7)
    sb = reference.state.sandbox
    with httpx.Client(transport=InProcessTransport(reference), base_url="http://t") as http:
        body = {"out_order_no": "NAMES-1", "total_amount": 100, "order_info": "names"}
        created = http.post("/api/v1/payment/lakala/counter/create", json=body).json()
    paid = sb.engine.apply(created["resp_data"]["pay_order_no"], "pay", pay_mode="ALIPAY")
    sb.close()
    payer = {k: paid.last_trade("PAY")[k] for k in ("payer_name", "user_id1")}
    assert seen["payer"] == payer
    assert str(payer["payer_name"]).startswith("*")
