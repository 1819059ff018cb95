"""What the studies' report writers share: their command line (``python -m <module> RUNS RESULTS``)
and reading a run's JSON records."""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path
from typing import Callable, Sequence

from dsc.errors import DscError
from dsc.helptext import HelpFormatter


def report_main(prog: str, description: str, write: Callable[[str, str], Path], runs_help: str, results_help: str,
                argv: Sequence[str] | None = None) -> None:
    """Parse ``RUNS RESULTS``, call ``write(runs, results)``, print where it wrote; a DscError
    exits with status 2 and its message."""
    parser = argparse.ArgumentParser(prog=prog, description=description, formatter_class=HelpFormatter)
    parser.add_argument("runs", help=runs_help)
    parser.add_argument("results", help=results_help)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        print(write(args.runs, args.results))
    except DscError as error:
        parser.exit(2, f"error: {error}\n")


def read_json(path: Path, what: str, script: str) -> dict:
    """The JSON record at ``path`` (``what`` it is, for the message); a missing or unreadable one
    is a DscError saying to run ``script`` first."""
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise DscError(f"cannot read {path} ({what}): {error}; run {script} first") from error
