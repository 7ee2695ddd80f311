"""The refund and encrypted-create pages' examples run against a served sandbox."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest

from tests.paths import ROOT
from tests.servers import DOCUMENTED_URL, SandboxProcess, loopback, run_shell_example

DOCS = [ROOT / "docs" / "refund-apis.md", ROOT / "docs" / "encrypted-create.md"]


def python_blocks(page: Path) -> list[str]:
    return re.findall(r"```python\n(.*?)```", page.read_text(encoding="utf-8"), flags=re.S)


def test_the_refund_and_encryption_pages_are_there_with_an_example_each() -> None:
    for page in DOCS:
        assert len(python_blocks(page)) == 1, page.name


@pytest.mark.slow
def test_each_refund_docs_example_works_against_a_served_sandbox(tmp_path: Path) -> None:
    examples = [(p.name, block) for p in DOCS for block in python_blocks(p)]
    assert examples
    with SandboxProcess(tmp_path / "data") as server:
        for name, block in examples:
            code = block.replace(DOCUMENTED_URL, server.url)
            assert server.url in code, name
            exec(compile(code, name, "exec"), {"__name__": "docs_example"})  # noqa: S102
        # the encrypted create's curl, with the sign command that encrypts
        block = re.findall(
            r"```sh\n(.*?)```", (ROOT / "docs" / "encrypted-create.md").read_text(), flags=re.S
        )[0]
        (tmp_path / "create.json").write_text(
            json.dumps(
                {
                    "req_time": time.strftime("%Y%m%d%H%M%S"),
                    "version": "3.0",
                    "req_data": {
                        "out_order_no": "DOC-CURL-1",
                        "merchant_no": "82229007392000A",
                        "total_amount": 1,
                        "order_efficient_time": an_hour_on(server),
                        "order_info": "docs",
                    },
                }
            )
        )
        out = run_shell_example(block, server, sign_data_dir=tmp_path / "data", cwd=tmp_path)
        assert '"code":"000000"' in out and "DOC-CURL-1" in out, out


def an_hour_on(server: SandboxProcess) -> str:
    """The served sandbox's time (Beijing, yyyyMMddHHmmss) an hour on."""
    import datetime as dt

    now = dt.datetime.strptime(loopback.get(server.url + "/healthz").json()["now"], "%Y%m%d%H%M%S")
    return (now + dt.timedelta(hours=1)).strftime("%Y%m%d%H%M%S")
