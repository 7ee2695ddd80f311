"""``lakala-sandbox scenarios check PATH...``: lint scenario files without serving.

Exit codes, as the other commands: 0 when every file is valid, 1 when a file has a problem, 2
when the command cannot run: a PATH that does not exist, cannot be read, or (a folder) holds no
scenario files. Nothing is checked then.
"""

from __future__ import annotations

import argparse
import stat
import sys
from pathlib import Path

from sandbox.scenarios.files import SUFFIXES, check_paths, scenario_files


def run(args: argparse.Namespace) -> int:
    paths = [Path(p) for p in args.paths]
    unusable = [why for why in map(path_problem, paths) if why]
    if unusable:
        for why in unusable:
            print(f"lakala-sandbox scenarios check: {why}", file=sys.stderr)
        return 2
    loaded, problems = check_paths(paths)
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


def path_problem(path: Path) -> str | None:
    """Why ``path``, as given on the command line, cannot be checked at all; None when it can."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        return f"{path}: no such file or folder"
    except OSError as exc:
        return f"{path}: cannot be read ({exc.strerror or exc})"
    try:
        if stat.S_ISDIR(mode):
            if not scenario_files(path):
                kinds = " or ".join(f"*{suffix}" for suffix in SUFFIXES)
                return f"{path}: is a folder without scenario files ({kinds})"
            return None
        if not stat.S_ISREG(mode):
            return f"{path}: is neither a scenario file nor a folder of them"
        with path.open("rb"):
            pass
    except OSError as exc:
        return f"{path}: cannot be read ({exc.strerror or exc})"
    return None
