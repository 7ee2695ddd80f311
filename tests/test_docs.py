"""The README is a path and the docs/ pages are its reference: links resolve, the first screen
reaches the quick start, and what the pages claim (refund_amount, LAKALA_BASE_URL) is so."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from sandbox import LakalaClient, LakalaSandbox
from tests.paths import DOCS, ROOT
from tests.servers import SandboxProcess, loopback, run_shell_example

PAGES = [ROOT / "README.md", *sorted(DOCS.glob("*.md"))]


def slug(heading: str) -> str:
    """The anchor GitHub gives a heading."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower().replace("`", ""))
    return text.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    text = page.read_text(encoding="utf-8")
    text = re.sub(r"```.*?```", "", text, flags=re.S)
    return {slug(h) for h in re.findall(r"^#+ (.+)$", text, flags=re.M)}


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_link_between_the_pages_resolves(page: Path) -> None:
    text = re.sub(r"```.*?```", "", page.read_text(encoding="utf-8"), flags=re.S)
    broken = []
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if target.startswith(("http://", "https://")):
            continue
        path, _, anchor = target.partition("#")
        found = (page.parent / path).resolve() if path else page
        if not found.exists():
            broken.append(target)
        elif anchor and found.suffix == ".md" and anchor not in anchors(found):
            broken.append(target)
    assert broken == []


def test_the_readme_reaches_the_quick_start_first_order_and_fixture_first() -> None:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    lines = text.splitlines()
    assert lines.index("## Quick start") < 15  # on the first screen
    order = [
        "## Quick start",
        "## Your first order: create, pay, notify",
        "## My backend's integration tests",
        "### Pick a fixture",
        "## My frontend clicks through payments",
        "## My CI checks the contract",
        "## Reference",
    ]
    assert [lines.index(h) for h in order] == sorted(lines.index(h) for h in order)
    assert len(lines) < 300  # the reference lives in docs/
    every_page = {p.name for p in DOCS.glob("*.md")} - {"README.md"}
    index = (DOCS / "README.md").read_text(encoding="utf-8")
    assert all(f"]({name})" in index for name in every_page)


def test_v1_refund_amount_is_null_until_refunded_as_the_api_page_says(
    lakala_sandbox: LakalaSandbox,
) -> None:
    api = " ".join((DOCS / "api.md").read_text(encoding="utf-8").split())
    assert (
        "The v1 query and notify always carry `refund_amount`: the fen refunded so far (a digit "
        "string) once the order is `REFUNDED`, and `null` on an order never refunded." in api
    )
    http = lakala_sandbox.http
    created = http.post(
        "/api/v1/payment/lakala/counter/create",
        json={
            "out_order_no": "DOC-RFD",
            "total_amount": 300,
            "order_info": "r",
            "support_refund": 1,
        },
    ).json()
    assert created["code"] == "000000", created
    no = created["resp_data"]["pay_order_no"]

    def refund_amount() -> object:
        query = http.post("/api/v1/payment/lakala/counter/query", json={"out_order_no": "DOC-RFD"})
        data = query.json()["resp_data"]
        assert "refund_amount" in data
        return data["refund_amount"]

    assert refund_amount() is None
    lakala_sandbox.pay(no)
    assert refund_amount() is None
    lakala_sandbox.act(no, "refund", amount=100)
    assert refund_amount() == "100"


def test_from_env_reaches_a_sandbox_on_another_port_through_lakala_base_url(
    lakala_sandbox_server: LakalaSandbox,
) -> None:
    client_page = (DOCS / "client.md").read_text(encoding="utf-8")
    assert "LAKALA_BASE_URL for another port" in client_page
    assert not lakala_sandbox_server.base_url.endswith(":8090")
    client = LakalaClient.from_env({"LAKALA_BASE_URL": lakala_sandbox_server.base_url})
    order = client.create(out_order_no="DOC-ENV", total_amount=100, order_info="Tea")
    assert client.query(out_order_no="DOC-ENV")["pay_order_no"] == order["pay_order_no"]
    assert loopback.get(lakala_sandbox_server.base_url + "/healthz").json()["orders"] == 1


@pytest.mark.slow
def test_the_readme_first_order_is_created_and_paid_as_written(tmp_path: Path) -> None:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    [create] = [b for b in re.findall(r"```sh\n(.*?)```", text, flags=re.S) if "/api/v1/" in b]
    [pay] = re.findall(
        r"`(curl -s -X POST http://127\.0\.0\.1:8090/sandbox/api/orders/[^`]+)`", text
    )
    with SandboxProcess(tmp_path / "data") as server:
        created = json.loads(run_shell_example(create, server))
        no = created["resp_data"]["pay_order_no"]
        paid = json.loads(run_shell_example(pay.replace("PAY_ORDER_NO", no), server))
        assert paid["order"]["v1_status"] == "SUCCESS"
        query = loopback.post(
            server.url + "/api/v1/payment/lakala/counter/query",
            json={"out_order_no": created["resp_data"]["out_order_no"]},
        ).json()
        assert query["resp_data"]["order_status"] == "SUCCESS"
