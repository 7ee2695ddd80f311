"""Where the checkout's files are, for tests at any depth of ``tests/``."""

from pathlib import Path

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent
DOCS = ROOT / "docs"  # the reference pages the README links to
