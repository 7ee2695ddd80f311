"""The pages' templates and static files are read when the app is built: a package reinstalled or
removed under a running server keeps its pages, and a missing file stops `serve` at start, in one
line, instead of failing when someone clicks."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from sandbox.server.pages.common import PageFilesMissing, read_page_files
from tests.paths import ROOT
from tests.servers import SandboxProcess, loopback

PAGES = Path("sandbox") / "server" / "pages"


def copy_of_the_package(tmp_path: Path) -> Path:
    """The package and its data, as a folder `python -m sandbox` runs from."""
    home = tmp_path / "pkg"
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in ("sandbox", "schemas", "scenarios"):
        shutil.copytree(ROOT / name, home / name, ignore=ignore)
    return home


def serve(home: Path, data: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "sandbox", "serve", "--port", "0", "--data-dir", str(data)],
        cwd=home,
        env={**os.environ, "PYTHONPATH": str(home)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.parametrize("missing", ["templates/counter.html", "static/style.css"])
def test_a_missing_page_file_stops_serve_at_start_in_one_line(tmp_path: Path, missing: str) -> None:
    home = copy_of_the_package(tmp_path)
    (home / PAGES / missing).unlink()
    server = serve(home, tmp_path / "data")
    try:
        out, err = server.communicate(timeout=60)
    finally:
        server.kill()
    assert server.returncode == 2, (out, err)
    [line] = err.splitlines()
    assert line.startswith("lakala-sandbox serve: cannot read the page file ")
    assert missing.split("/")[1] in line and "reinstall" in line
    assert "Traceback" not in out + err


def test_pages_keep_working_when_the_package_files_go_away_under_the_server(
    tmp_path: Path,
) -> None:
    home = copy_of_the_package(tmp_path)
    with SandboxProcess(tmp_path / "data", cwd=home, env={"PYTHONPATH": str(home)}) as server:
        url = server.url
        # what a reinstall does to an installed package's folder, with the server still running
        shutil.rmtree(home / PAGES / "templates")
        shutil.rmtree(home / PAGES / "static")
        created = loopback.post(
            url + "/api/v1/payment/lakala/counter/create",
            json={"out_order_no": "GONE-1", "total_amount": 100, "order_info": "Still here"},
        ).json()
        page = loopback.get(created["resp_data"]["counter_url"])
        assert page.status_code == 200 and "Still here" in page.text and "¥1.00" in page.text
        dashboard = loopback.get(url + "/")
        assert dashboard.status_code == 200 and "GONE-1" in dashboard.text
        style = loopback.get(url + "/sandbox/static/style.css")
        assert style.status_code == 200 and style.headers["content-type"].startswith("text/css")
        again = loopback.get(
            url + "/sandbox/static/style.css", headers={"If-None-Match": style.headers["etag"]}
        )
        assert again.status_code == 304
        assert loopback.get(url + "/sandbox/static/nothing.js").status_code == 404


@pytest.mark.parametrize(
    ("template", "broken"),
    [("counter.html", "{% if order %}never closed"), ("base.html", "{{ unclosed ")],
)
def test_a_template_that_cannot_be_parsed_is_named_at_start(
    tmp_path: Path, template: str, broken: str
) -> None:
    folder = tmp_path / "pages"
    shutil.copytree(ROOT / PAGES, folder, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    (folder / "templates" / template).write_text(broken, encoding="utf-8")
    with pytest.raises(PageFilesMissing, match=f"the page template {template} cannot be compiled"):
        read_page_files(folder)
