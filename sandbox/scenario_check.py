"""``lakala-sandbox scenarios check PATH...``: lint scenario files without serving."""

from __future__ import annotations

import argparse
from pathlib import Path

from sandbox.scenarios import check_paths


def run(args: argparse.Namespace) -> int:
    loaded, problems = check_paths(Path(p) for p in args.paths)
    for scenario in loaded:
        amounts = ", ".join(map(str, scenario.magic_amounts()))
        print(
            f"ok    {scenario.name:<32} {scenario.path}"
            + (f"  (amounts {amounts})" if amounts else "")
        )
    for problem in problems:
        print(f"error {problem}")
    if problems:
        print(f"{len(problems)} problem(s); scenario files with problems are refused at start.")
        return 1
    print(f"{len(loaded)} scenario(s) OK.")
    return 0
