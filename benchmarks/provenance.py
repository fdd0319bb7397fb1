"""Where a benchmark's numbers come from: the code commit they were made with."""
from __future__ import annotations

import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def code_version() -> str:
    """The commit the benchmark runs from ("+changes" when tracked files other than results differ from
    it): a table's numbers belong to the code that made them."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                              text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", ".",
                                ":(exclude)benchmarks/results"], cwd=ROOT,
                               capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + ("+changes" if dirty else "")


def invocation() -> str:
    """The command that runs this benchmark, as a user retypes it: ``python benchmarks/NAME.py ARGS``."""
    import shlex
    import sys

    return " ".join([f"python benchmarks/{Path(sys.argv[0]).name}", *(shlex.quote(a) for a in sys.argv[1:])])


def run_header(wall_seconds: float, note: str = "") -> list[str]:
    """A table's provenance lines: the exact command (with its thread count), the machine, the wall time and
    the code commit, then ``note``."""
    import os
    import platform

    import torch

    return [f"Command: `OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', '?')} {invocation()}`", "",
            f"Machine: {platform.platform()}, {os.cpu_count()} CPU cores, {torch.get_num_threads()} torch threads, "
            f"torch {torch.__version__}. Wall time {wall_seconds / 60:.1f} min. Code: {code_version()}." + note]


RESULTS = ROOT / "benchmarks" / "results"


def write_result(name: str, lines: list[str], started: float | None = None) -> Path:
    """Write a table's ``lines`` to ``benchmarks/results/NAME.md`` and say where; ``started`` (a
    ``time.time()``): the provenance lines of :func:`run_header` follow, with the wall time since then."""
    import time

    if started is not None:
        lines = [*lines, "", *run_header(time.time() - started)]
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.md"
    path.write_text("\n".join(lines) + "\n")
    print(f"wrote {path}")
    return path
