"""What the benches share: the banner, the load line, medians, PASS/FAIL lines and an older commit's tree.

Benches run as scripts (``.venv/bin/python bench/x.py``), so this directory is on ``sys.path``: ``from _common
import ...``. Nothing here imports the project.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
from collections.abc import Hashable, Iterable, Sequence
from pathlib import Path

RULE = "=" * 100


def banner(title: str, *, runs: str, load: tuple[float, float]) -> None:
    """The report's head: a rule, the title, a rule, how it was run and the load average around the runs."""
    print(RULE)
    print(title)
    print(RULE)
    print(f"runs        {runs}")
    print(f"load        {load_line(*load)}")
    print()


def load_line(before: float, after: float) -> str:
    return f"{before:.1f} before, {after:.1f} after (1-min load average, {os.cpu_count()} CPUs)"


def load_now() -> float:
    return os.getloadavg()[0]


def medians(runs: dict[Hashable, Sequence[Sequence[float]]]) -> dict[Hashable, tuple[float, ...]]:
    """Per key, the median of each figure of its runs (each run a tuple of figures)."""
    return {key: tuple(statistics.median(column) for column in zip(*rows, strict=True)) for key, rows in runs.items()}


def verdicts(results: Iterable[tuple[bool, str]]) -> None:
    """PASS/FAIL lines (a FAIL also on stderr) and the closing rule. Benches exit 0 whatever the figures."""
    print("-" * 100)
    for ok, text in results:
        print(f"{'PASS' if ok else 'FAIL'}  {text}")
        if not ok:
            print(f"FAIL  {text}", file=sys.stderr)
    print(RULE)


def old_ref(ref: str) -> str:
    """The commit to compare with: ``ref``, else /work/main's HEAD, else HEAD~1."""
    if ref:
        return ref
    main_head = subprocess.run(
        ["git", "-C", "/work/main", "rev-parse", "HEAD"], capture_output=True, text=True, check=False
    ).stdout.strip()
    return main_head or "HEAD~1"


def tree_export(root: Path, commit: str, dest: Path) -> str:
    """The tree of ``commit`` in ``dest`` (``git archive``: the repository is not changed). Returns the short sha."""
    sha = subprocess.run(
        ["git", "-C", str(root), "rev-parse", "--short", commit], capture_output=True, text=True, check=True
    ).stdout.strip()
    dest.mkdir(parents=True, exist_ok=True)
    archive = subprocess.Popen(["git", "-C", str(root), "archive", sha], stdout=subprocess.PIPE)
    subprocess.run(["tar", "-x", "-C", str(dest)], stdin=archive.stdout, check=True)
    archive.wait()
    return sha
