"""Where the shipped ``schemas/`` and ``scenarios/`` are: in the wheel, or beside the package."""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent.parent  # sandbox/


def shipped(name: str) -> Path:
    for candidate in (_PACKAGE / "_data" / name, _PACKAGE.parent / name):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"the shipped {name}/ folder is missing; reinstall lakala-sandbox")


def schemas_dir() -> Path:
    return shipped("schemas")


def scenarios_dir() -> Path:
    return shipped("scenarios")
