"""Start-up time of the dsc command line: ``dsc --help`` and ``dsc compress --help`` against
``python -c "import torch"``, each a fresh interpreter, in the same run.

Run from the repository root::

    python -m benchmarks.bench_cli                # 7 runs of each command
    python -m benchmarks.bench_cli --repeats 15

The commands run in turn (round robin), so a change in the machine's load touches all of them
alike; the printout gives each one's median wall-clock seconds and its ratio to the reference.
Listing the commands and options needs torch and the registered sources only (no Lightning,
matplotlib, transformers or scipy): about the reference's time.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import time
from typing import Sequence

import torch

from dsc.helptext import HelpFormatter, first_paragraph

REFERENCE = ("python -c 'import torch'", [sys.executable, "-c", "import torch"])
COMMANDS = (
    REFERENCE,
    ("dsc --help", [sys.executable, "-m", "dsc", "--help"]),
    ("dsc compress --help", [sys.executable, "-m", "dsc", "compress", "--help"]),
)


def seconds(argv: list[str]) -> float:
    """Wall-clock seconds of one run of ``argv``; a failing run or a help without its usage line raises."""
    start = time.perf_counter()
    run = subprocess.run(argv, capture_output=True, text=True, timeout=300)
    elapsed = time.perf_counter() - start
    if run.returncode != 0 or ("--help" in argv and "usage: dsc" not in run.stdout):
        raise SystemExit(f"{' '.join(argv)} failed ({run.returncode}): {run.stderr[-1000:]}")
    return elapsed


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_cli", description=first_paragraph(__doc__),
                                     formatter_class=HelpFormatter)
    parser.add_argument("--repeats", type=int, default=7, help="runs of each command; the median is quoted")
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "n/a"
    times: dict[str, list[float]] = {name: [] for name, _ in COMMANDS}
    for _ in range(args.repeats):
        for name, command in COMMANDS:
            times[name].append(seconds(command))
    medians = {name: statistics.median(values) for name, values in times.items()}
    print(f"[cpu] {platform.machine()}, {os.cpu_count()} cores, python {platform.python_version()}, torch "
          f"{torch.__version__}: median of {args.repeats} runs each, in turn (load average at start {load})")
    width = max(len(name) for name in medians)
    print(f"{'command':<{width}}  median s  min s  vs import torch")
    for name, median in medians.items():
        print(f"{name:<{width}}  {median:8.2f}  {min(times[name]):5.2f}  {median / medians[REFERENCE[0]]:14.2f}x")


if __name__ == "__main__":
    main()
