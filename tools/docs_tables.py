"""The documentation's result tables, rendered from the committed data under ``results/``.

A Markdown file marks each generated table with an opening and a closing comment::

    <!-- results mnist_paper/gls -->
    (generated: do not edit)
    <!-- end results -->

``python -m tools.docs_tables`` rewrites every such block in ``docs/*.md`` from the CSV
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
from dsc.helptext import HelpFormatter, first_paragraph
from dsc.io import atomic_write_bytes
from dsc.paper import PAPER_GAUSSIAN_GLS_DB, PAPER_MNIST_GLS_MSE
from dsc.report.paper_comparison import margin_table, paper_comparison_table
from studies.gaussian_decoders import report as gaussian_decoders
from studies.gaussian_learned import report as gaussian_study
from studies.mnist_beta_scan import report as beta_scan
from studies.mnist_decoders import report as mnist_decoders
from studies.mnist_loss_scale import report as loss_scale
from studies.mnist_side_info import report as side_info

ROOT = Path(__file__).resolve().parent.parent
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


# The schemes of results/compare_gaussian, in table order, and what their names mean.
GAUSSIAN_SCHEMES = {
    "gls": "GLS, s2 by the paper's metric",
    "gls_mse": "GLS, s2 by MSE",
    "shared_randomness": "shared randomness, s2 by the paper's metric",
    "shared_randomness_mse": "shared randomness, s2 by MSE",
    "nested_scalar": "nested scalar, step by MSE",
    "nested_scalar_paper_metric": "nested scalar, step by the paper's metric",
}
GAUSSIAN_BOUNDS = {"wyner_ziv_bound": "Wyner-Ziv bound", "no_side_information_bound": "bound without side information"}


def _operating_point(row: dict) -> str:
    if row.get("s2") is not None:
        return f"s2 {row['s2']:g}"
    return f"step {row['step']:.3g}" if row.get("step") is not None else ""


def _rate_header(rates: Sequence[int], first: str) -> list[str]:
    return [f"| {first} | " + " | ".join(f"{rate} bit{'s' * (rate != 1)}" for rate in rates) + " |",
            "|---" * (first.count("|") + 1 + len(rates)) + "|"]


def _row(label: str, values: dict, rates: Sequence[int], cell: Callable) -> str:
    return f"| {label} | " + " | ".join(cell(values[r]) if r in values else "" for r in rates) + " |"


def gaussian_scheme_table(rows: list[dict], metric: str, schemes: Sequence[str], paper: bool = False,
                          bounds: bool = False, digits: int = 2, setting: bool = True) -> str:
    """One row per (K, scheme) of ``results/compare_gaussian``, one column per rate: ``metric``,
    with the chosen operating point in brackets (``setting``); with ``paper`` also paper Table
    10's GLS row per K, with ``bounds`` the theory rows; then the range of the standard errors.
    At K = 1 the shared-randomness rows are left out where GLS's are shown (the same scheme)."""
    rates = sorted({r["rate_bits"] for r in rows})
    lines = _rate_header(rates, "K | scheme")
    errors, omitted = [], False

    def cell(row: dict) -> str:
        return f"{row[metric]:.{digits}f}" + (f" ({_operating_point(row)})" if setting else "")

    for k in sorted({r["num_decoders"] for r in rows if r["num_decoders"] is not None}):
        for scheme in schemes:
            at = {r["rate_bits"]: r for r in rows if r["scheme"] == scheme and r["num_decoders"] == k}
            if at and k == 1 and scheme.replace("shared_randomness", "gls") in set(schemes) - {scheme}:
                omitted = True
            elif at:
                errors += [r[f"{metric}_se"] for r in at.values() if r.get(f"{metric}_se") is not None]
                lines.append(_row(f"{k} | {GAUSSIAN_SCHEMES.get(scheme, scheme)}", at, rates, cell))
        published = {rate: value for (kk, rate), value in PAPER_GAUSSIAN_GLS_DB.items() if kk == k}
        if paper and published:
            lines.append(_row(f"{k} | paper Table 10 (GLS)", published, rates, lambda value: f"{value:.2f}"))
    for scheme, name in GAUSSIAN_BOUNDS.items() if bounds else ():
        at = {r["rate_bits"]: r[metric] for r in rows if r["scheme"] == scheme}
        if at:
            lines.append(_row(f"| {name}", at, rates, lambda value: f"{value:.{digits}f}"))
    notes = ([f"Standard errors {min(errors):.{digits}f} to {max(errors):.{digits}f}."] if errors else []) + (
        ["At K = 1 shared randomness is the same scheme as GLS (rows omitted)."] if omitted else [])
    return "\n".join(lines + (["", " ".join(notes)] if notes else [])) + "\n"


def gaussian_paper_gap(rows: list[dict]) -> str:
    """GLS's paper metric minus paper Table 10 per (K, rate), in dB (negative: lower distortion)."""
    gaps: dict[int, dict[int, float]] = {}
    for r in rows:
        key = (r["num_decoders"], r["rate_bits"])
        if r["scheme"] == "gls" and key in PAPER_GAUSSIAN_GLS_DB:
            gaps.setdefault(key[0], {})[key[1]] = r["distortion_db"] - PAPER_GAUSSIAN_GLS_DB[key]
    rates = sorted({rate for at in gaps.values() for rate in at})
    lines = _rate_header(rates, "K") + [_row(str(k), gaps[k], rates, lambda gap: f"{gap:+.2f}") for k in sorted(gaps)]
    return "\n".join(lines) + "\n"


def _compare_gaussian(view: Callable[[list[dict]], str]) -> Callable[[Path], str]:
    return lambda results: view(read_rows(results / "compare_gaussian" / "results.csv"))


def _loss_scale(view: Callable[[list[dict], list[dict]], str]) -> Callable[[Path], str]:
    def render(results: Path) -> str:
        study = results / "mnist_loss_scale"
        return view(read_rows(study / "results.csv"), read_rows(study / "protocol.csv"))

    return render


def _paper(view: Callable[[list[dict]], str | None], experiment: str,
           name: str = "results.csv") -> Callable[[Path], str]:
    return lambda results: view(read_rows(results / experiment / name)) or ""


def bd_rate_view(anchor: str, source: str) -> Callable[[list[dict]], str | None]:
    """The comparison aggregate's BD-rate table (:func:`dsc.report.bdrate.bd_rate_table`) against
    ``anchor`` of a results CSV's points of ``source``: rows of no source (the bounds) are left
    out, and a CSV without a source column (the MNIST protocol's) holds ``source``'s points only."""
    from dsc.report.bdrate import bd_rate_rows, bd_rate_table

    return lambda rows: bd_rate_table(bd_rate_rows([{"source": source, **r} for r in rows
                                                    if r.get("source", source) == source], anchor))


PROTOCOL_VIEWS: dict[str, Callable[[list[dict]], str | None]] = {
    "gls": lambda rows: paper_comparison_table(rows, "gls"),
    "baseline": lambda rows: paper_comparison_table(rows, "shared_randomness"),
    "margins": margin_table,
    "choices": choices_table,
    "bd_rate": bd_rate_view("gls", "mnist"),
}
# results/<run>/results.csv of the MNIST protocol
PROTOCOL_RUNS = ("mnist_paper", "mnist_paper_grid", "mnist_beta_scan")

VIEWS: dict[str, Callable[[Path], str]] = {
    **{f"{run}/{kind}": _paper(view, run) for run in PROTOCOL_RUNS for kind, view in PROTOCOL_VIEWS.items()},
    "mnist_paper/convergence": _paper(convergence_table, "mnist_paper", "convergence.csv"),
    "mnist_beta_scan/betas": _paper(beta_scan.scan_table, "mnist_beta_scan", "betas.csv"),
    "mnist_side_info/gls": _paper(side_info.side_info_table, "mnist_side_info"),
    **{f"mnist_decoders/k{k}{suffix}": _paper(lambda rows, k=k, metric=metric: mnist_decoders.decoders_table(
        rows, k, metric), "mnist_decoders") for k in (1, 2, 4)
       for suffix, metric in (("", "mse"), ("_per_decoder", "per_decoder_mse"), ("_matched_missed", "matched_missed"))},
    "mnist_loss_scale/training": _loss_scale(lambda training, protocol: loss_scale.training_table(training)),
    "mnist_loss_scale/verdict": _loss_scale(loss_scale.verdict_table),
    "compare_gaussian/paper": _compare_gaussian(lambda rows: gaussian_scheme_table(
        rows, "distortion_db", ("gls", "shared_randomness"), paper=True)),
    "compare_gaussian/paper_gap": _compare_gaussian(gaussian_paper_gap),
    "compare_gaussian/distortion_db": _compare_gaussian(lambda rows: gaussian_scheme_table(
        rows, "distortion_db", ("gls", "shared_randomness", "nested_scalar_paper_metric"))),
    "compare_gaussian/mse_db": _compare_gaussian(lambda rows: gaussian_scheme_table(
        rows, "mse_db", tuple(GAUSSIAN_SCHEMES), bounds=True)),
    "compare_gaussian/bd_rate": _compare_gaussian(lambda rows: bd_rate_view("gls_mse", "gaussian")(rows) or ""),
    "compare_gaussian/match": _compare_gaussian(lambda rows: gaussian_scheme_table(
        rows, "match_prob", ("gls", "gls_mse", "shared_randomness", "shared_randomness_mse"), digits=3,
        setting=False)),
    **{f"gaussian_decoders/k{k}": _paper(lambda rows, k=k: gaussian_decoders.decoder_table(rows, k),
                                         "gaussian_decoders") for k in (1, 2, 4)},
    **{f"gaussian_decoders/k{k}_per_decoder": _paper(lambda rows, k=k: gaussian_decoders.decoder_table(
        rows, k, "per_decoder_mse_db"), "gaussian_decoders") for k in (2, 4)},
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
    parser = argparse.ArgumentParser(prog="python -m tools.docs_tables", description=first_paragraph(__doc__),
                                     formatter_class=HelpFormatter)
    parser.add_argument("docs", nargs="*", type=Path, help="Markdown files (default: docs/*.md)")
    parser.add_argument("--results", type=Path, default=ROOT / "results", help="the committed results")
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
