"""The public face: ``sandbox.__all__`` is what the README documents, each name resolves, and the
client and the CLI load only what they use."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import sandbox
from tests.paths import ROOT

README = (ROOT / "README.md").read_text(encoding="utf-8")


def documented_names() -> set[str]:
    section = README.split("### What to import", 1)[1].split("\n### ", 1)[0]
    return set(re.findall(r"`([A-Za-z_]+)`", section.split("\n\n", 2)[1])) - {"sandbox"}


def test_all_is_what_the_readme_documents() -> None:
    assert set(sandbox.__all__) - {"__version__"} == documented_names()


def test_every_public_name_resolves() -> None:
    for name in sandbox.__all__:
        assert getattr(sandbox, name) is not None, name
    assert sandbox.LakalaClient.__module__.startswith("sandbox.client")
    assert issubclass(sandbox.LakalaTimeout, sandbox.LakalaError)


def test_an_unknown_name_is_an_attribute_error() -> None:
    try:
        sandbox.NoSuchThing  # noqa: B018
    except AttributeError as error:
        assert "NoSuchThing" in str(error)
    else:
        raise AssertionError("sandbox.NoSuchThing resolved")


def loaded_after(code: str) -> set[str]:
    result = subprocess.run(
        [sys.executable, "-c", f"{code}\nimport sys, json; print(json.dumps(sorted(sys.modules)))"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        cwd=ROOT,
    )
    return set(json.loads(result.stdout.strip().splitlines()[-1]))


def test_the_client_imports_without_the_server() -> None:
    for code in ("import sandbox.client", "from sandbox import LakalaClient"):
        loaded = loaded_after(code)
        assert "sandbox.client.clients" in loaded
        forbidden = {"starlette", "uvicorn", "yaml", "sandbox.core.engine", "sandbox.core.store"}
        forbidden |= {"sandbox.runtime", "sandbox.server.app", "sandbox.scenarios.runner"}
        assert not forbidden & loaded, (code, sorted(forbidden & loaded))


def test_a_sandbox_mode_app_loads_neither_the_client_nor_httpx() -> None:
    """Only real mode talks to Lakala; a sandbox-mode server starts without that code."""
    loaded = loaded_after(
        "from sandbox.core.settings import Settings\n"
        "from sandbox.server.app import create_app\n"
        "create_app(Settings(data_dir=':memory:')).state.sandbox.close()"
    )
    assert "sandbox.server.app" in loaded
    assert not {
        m for m in loaded if m.startswith(("httpx", "sandbox.client", "sandbox.server.proxy"))
    }


def test_sign_help_loads_no_server() -> None:
    loaded = loaded_after(
        "import contextlib, io\n"
        "from sandbox.tools.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):\n"
        "    main(['sign', '--help'])"
    )
    assert "sandbox.tools.cli" in loaded
    assert not {m for m in loaded if m.startswith(("sandbox.server", "starlette", "uvicorn"))}
    assert (
        not {"sandbox.tools.contract", "sandbox.tools.notify_check", "sandbox.core.engine"} & loaded
    )
