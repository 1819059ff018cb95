"""The documentation's result tables, rendered from the committed data under ``results/``.

A Markdown file marks each generated table with an opening and a closing comment::

    <!-- results mnist_paper/gls -->
    (generated: do not edit)
    <!-- end results -->

``python -m dsc.eval.docs_tables`` rewrites every such block in ``docs/*.md`` from the CSV
files the view reads; ``--check`` only reports blocks that are out of date (exit status 1), so
a test keeps the prose and the data from drifting apart.
"""

from __future__ import annotations

import argparse
import csv
import io
import re
from pathlib import Path
from typing import Callable, Sequence

from dsc.errors import DscError
from dsc.eval import beta_scan, gaussian_study, loss_scale
from dsc.eval.reference import PAPER_MNIST_GLS_MSE, margin_table, paper_comparison_table
from dsc.io import atomic_write_bytes

ROOT = Path(__file__).resolve().parent.parent.parent
BLOCK = re.compile(r"(<!-- results (?P<view>[\w/.-]+) -->\n)(?P<body>.*?)(<!-- end results -->)", re.DOTALL)


def read_rows(path: Path) -> list[dict]:
    """A results CSV with numbers parsed (int, then float, else the string; empty -> None)."""
    def parse(value: str):
        if value == "":
            return None
        for kind in (int, float):
            try:
                return kind(value)
            except ValueError:
                pass
        return value

    try:
        text = path.read_text()
    except OSError as error:
        raise DscError(f"cannot read {path}: {error}; produce it with the script its results.md names") from error
    return [{key: parse(value) for key, value in row.items()} for row in csv.DictReader(io.StringIO(text))]


def choices_table(rows: list[dict]) -> str:
    """K x rate table per scheme of what the protocol chose: ``beta, N``."""
    parts = []
    for scheme in ("gls", "shared_randomness"):
        cells = {(r["num_decoders"], r["rate_bits"]): f"{r['beta']:g}, {r['num_candidates']}" for r in rows
                 if r["scheme"] == scheme}
        if not cells:
            continue
        rates = sorted({rate for _, rate in cells})
        lines = [f"**{scheme}**: beta, N chosen on validation", "",
                 "| K \\ R bits | " + " | ".join(map(str, rates)) + " |", "|---" * (len(rates) + 1) + "|"]
        lines += [f"| {k} | " + " | ".join(cells.get((k, r), "") for r in rates) + " |"
                  for k in sorted({k for k, _ in cells})]
        parts.append("\n".join(lines) + "\n")
    return "\n".join(parts)


def convergence_table(rows: list[dict]) -> str:
    """Per snapshot epoch: GLS's mean and worst relative difference to Table 13 over the points,
    and the test MSE at K = 1 and K = 4 at the lowest and highest rate."""
    rates = sorted({r["rate_bits"] for r in rows})
    shown = [(k, rate) for k in (1, 4) for rate in (rates[0], rates[-1])]
    lines = ["| epochs | mean vs Table 13 | worst vs Table 13 | " + " | ".join(f"K={k}, {r} bits" for k, r in shown)
             + " |", "|---" * (3 + len(shown)) + "|"]
    for epoch in sorted({r["epoch"] for r in rows}):
        at = {(r["num_decoders"], r["rate_bits"]): r["mse"] for r in rows if r["epoch"] == epoch}
        rel = [at[key] / PAPER_MNIST_GLS_MSE[key] - 1 for key in at if key in PAPER_MNIST_GLS_MSE]
        cells = [f"{at[key]:.4f}" if key in at else "" for key in shown]
        lines.append(f"| {epoch} | {100 * sum(rel) / len(rel):+.1f} % | {100 * max(rel):+.1f} % | "
                     + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _loss_scale(view: Callable[[list[dict], list[dict]], str]) -> Callable[[Path], str]:
    def render(results: Path) -> str:
        study = results / "mnist_loss_scale"
        return view(read_rows(study / "results.csv"), read_rows(study / "protocol.csv"))

    return render


def _paper(view: Callable[[list[dict]], str | None], experiment: str,
           name: str = "results.csv") -> Callable[[Path], str]:
    return lambda results: view(read_rows(results / experiment / name)) or ""


PROTOCOL_VIEWS: dict[str, Callable[[list[dict]], str | None]] = {
    "gls": lambda rows: paper_comparison_table(rows, "gls"),
    "baseline": lambda rows: paper_comparison_table(rows, "shared_randomness"),
    "margins": margin_table,
    "choices": choices_table,
}
# results/<run>/results.csv of the MNIST protocol
PROTOCOL_RUNS = ("mnist_paper", "mnist_paper_grid", "mnist_beta_scan")

VIEWS: dict[str, Callable[[Path], str]] = {
    **{f"{run}/{kind}": _paper(view, run) for run in PROTOCOL_RUNS for kind, view in PROTOCOL_VIEWS.items()},
    "mnist_paper/convergence": _paper(convergence_table, "mnist_paper", "convergence.csv"),
    "mnist_beta_scan/betas": _paper(beta_scan.scan_table, "mnist_beta_scan", "betas.csv"),
    "mnist_loss_scale/training": _loss_scale(lambda training, protocol: loss_scale.training_table(training)),
    "mnist_loss_scale/verdict": _loss_scale(loss_scale.verdict_table),
    "gaussian_learned/report": lambda results: gaussian_study.report(
        read_rows(results / "gaussian_learned" / "results.csv")),
    **{f"mnist_loss_scale/{name}": _loss_scale(lambda training, protocol, name=name:
                                               loss_scale.choices_table(protocol, name) or "")
       for name in ("sum_01", "sum_pm1", "mean_01", "mean_pm1")},
}


def printout(path: Path) -> str:
    """A committed file: a benchmark's printout (``.txt``) as a fenced block, a study's own
    Markdown report (``.md``) as it is."""
    try:
        text = path.read_text().rstrip("\n")
    except OSError as error:
        raise DscError(f"cannot read {path}: {error}") from error
    return text + "\n" if path.suffix == ".md" else "```text\n" + text + "\n```\n"


def render(text: str, results: Path) -> str:
    """``text`` with every results block regenerated from ``results``: a view of :data:`VIEWS`, or
    ``<dir>/<name>.txt`` or ``.md``, a file under ``results`` shown verbatim; an unknown view raises."""
    def block(match: re.Match) -> str:
        view = match["view"]
        if view.endswith((".txt", ".md")):
            return match.group(1) + printout(results / view) + match.group(4)
        if view not in VIEWS:
            raise DscError(f"unknown results view {view!r}; known: {', '.join(sorted(VIEWS))}")
        return match.group(1) + VIEWS[view](results).rstrip("\n") + "\n" + match.group(4)

    return BLOCK.sub(block, text)


def render_docs(docs: Sequence[Path], results: Path, check: bool = False) -> list[Path]:
    """Regenerate the blocks of ``docs`` (or, with ``check``, only compare): the stale files."""
    stale = []
    for path in docs:
        text = path.read_text()
        fresh = render(text, results)
        if fresh != text:
            stale.append(path)
            if not check:
                atomic_write_bytes(path, fresh.encode())
    return stale


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m dsc.eval.docs_tables", description=__doc__.splitlines()[0])
    parser.add_argument("docs", nargs="*", type=Path, help="Markdown files (default: docs/*.md)")
    parser.add_argument("--results", type=Path, default=ROOT / "results")
    parser.add_argument("--check", action="store_true", help="only report out-of-date files (exit status 1)")
    args = parser.parse_args(argv)
    docs = args.docs or sorted((ROOT / "docs").glob("*.md"))
    try:
        stale = render_docs(docs, args.results, args.check)
    except DscError as error:
        parser.exit(2, f"error: {error}\n")
    for path in stale:
        print(f"{'out of date' if args.check else 'rewritten'}: {path}")
    if args.check and stale:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
