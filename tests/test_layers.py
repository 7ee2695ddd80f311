"""The package's layers, held: each folder imports only the layers below it (``sandbox/__init__.py``
draws the map), Starlette only in ``server/``, and the client never reaches the sandbox."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.paths import ROOT

PACKAGE = ROOT / "sandbox"

# layer -> the layers it may import (itself always included)
ALLOWED: dict[str, set[str]] = {
    "wire": set(),
    "core": {"wire"},
    "scenarios": {"wire", "core"},
    "notify": {"wire", "core"},
    "runtime": {"wire", "core", "scenarios", "notify"},
    "client": {"wire"},
    "server": {"wire", "core", "scenarios", "notify", "runtime", "client"},
    "testing": {"wire", "core", "scenarios", "notify", "runtime", "client", "server"},
    "tools": {"wire", "core", "scenarios", "notify", "runtime", "client", "server", "testing"},
    "face": {
        "wire",
        "core",
        "scenarios",
        "notify",
        "runtime",
        "client",
        "server",
        "testing",
        "tools",
    },
}
# within a layer that may import the client, these modules alone do
CLIENT_IMPORTERS = {"server": {"sandbox.server.proxy"}}
# third-party packages that belong to one layer's job
ONLY_IN = {"starlette": {"server"}, "uvicorn": {"server", "testing", "tools"}}


def layer_of(module: str) -> str:
    parts = module.split(".")
    if len(parts) == 1 or parts[1] in ("__main__",):
        return "face"
    return parts[1]


def module_name(path: Path) -> str:
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported(module: str, source: str) -> list[tuple[int, str]]:
    """Every module ``source`` imports, wherever the import stands (TYPE_CHECKING and function
    bodies included: a cycle hidden there is still a cycle in the design)."""
    found = []
    package = module if module.count(".") == 0 else module.rsplit(".", 1)[0]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1])
                base = f"{base}.{node.module}" if node.module else base
            found.append((node.lineno, base))
            if base == "sandbox":  # from sandbox import x: x may be a module
                found += [(node.lineno, f"sandbox.{a.name}") for a in node.names]
    return found


def problems(module: str, source: str) -> list[str]:
    layer = layer_of(module)
    allowed = ALLOWED[layer] | {layer}
    out = []
    for line, target in imported(module, source):
        top = target.split(".")[0]
        if top in ONLY_IN and layer not in ONLY_IN[top]:
            out.append(f"{module}:{line} imports {target}: {top} belongs to {sorted(ONLY_IN[top])}")
        if top != "sandbox" or target in ("sandbox", "sandbox.__version__"):
            continue
        if target.split(".")[1] in ("__version__",):
            continue
        target_layer = layer_of(target)
        if target_layer not in allowed:
            out.append(f"{module}:{line} imports {target}: {layer} may not import {target_layer}")
        elif target_layer == "client" and layer in CLIENT_IMPORTERS:
            if module not in CLIENT_IMPORTERS[layer]:
                out.append(f"{module}:{line} imports {target}: only the proxy uses the client")
    return out


def package_modules() -> list[tuple[str, str]]:
    return [(module_name(p), p.read_text()) for p in sorted(PACKAGE.rglob("*.py"))]


def test_every_module_imports_only_the_layers_below_it() -> None:
    found = [
        problem for module, source in package_modules() for problem in problems(module, source)
    ]
    assert found == []


def test_every_module_stands_in_a_known_layer() -> None:
    assert {layer_of(module) for module, _ in package_modules()} <= set(ALLOWED)


@pytest.mark.parametrize(
    ("module", "source", "expected"),
    [
        (
            "sandbox.wire.signing",
            "from sandbox.core.engine import Engine",
            "wire may not import core",
        ),
        ("sandbox.core.engine", "import sandbox.runtime", "core may not import runtime"),
        (
            "sandbox.notify.notifier",
            "if TYPE_CHECKING:\n    from sandbox.runtime import Sandbox",
            "notify may not import runtime",
        ),
        (
            "sandbox.notify.notifier",
            "from sandbox.scenarios import runner",
            "may not import scenarios",
        ),
        (
            "sandbox.client.clients",
            "from sandbox.core.clock import Clock",
            "client may not import core",
        ),
        ("sandbox.server.api_v3", "from sandbox.client import LakalaClient", "only the proxy"),
        ("sandbox.core.store", "def f():\n    from starlette.requests import Request", "starlette"),
        ("sandbox.runtime", "from sandbox import server", "runtime may not import server"),
    ],
)
def test_a_forbidden_import_is_caught(module: str, source: str, expected: str) -> None:
    found = problems(module, source)
    assert len(found) == 1 and expected in found[0], found


def test_allowed_imports_pass() -> None:
    assert problems("sandbox.server.proxy", "from sandbox.client import LakalaClient") == []
    assert problems("sandbox.core.engine", "from sandbox.wire.errors import SandboxError") == []
    assert problems("sandbox.server.openapi", "from sandbox import __version__") == []
