"""Aggregate a sweep directory into one tidy ``results.csv``, an RD plot ``rd_plot.png``,
markdown tables ``results.md`` and, where curves allow, Bjøntegaard delta rates ``bd_rate.csv``.

Runs automatically at the end of every Hydra multirun (a Hydra callback; a top-level config
key ``bd_anchor`` names the BD-rate anchor, default ``gls``, and a configured tracker,
``logger=wandb|csv|tensorboard``, gets the table and the plot) and by hand on an existing
directory; either prints the tables and the paths of the files written::

    python -m dsc.report.sweep multirun/evaluate/2026-01-01_12-00-00 [--anchor gls]
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import NamedTuple, Sequence

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from dsc.errors import DscError
from dsc.helptext import HelpFormatter, first_paragraph
from dsc.io import atomic_write_bytes
from dsc.report.bdrate import BD_ANCHOR, BD_COLUMNS, bd_rate_rows, bd_rate_table
from dsc.report.collect import collect_notes, collect_points, theory_rows
from dsc.report.plots import plot_rd
from dsc.report.tables import markdown_tables, to_csv
from dsc.report.tracker import log_sweep, sweep_loggers

log = logging.getLogger(__name__)


class Aggregate(NamedTuple):
    """What an aggregation wrote: the CSV, the plot and markdown tables (None without RD
    points), the CSV's row count, the jobs that failed, the BD-rate CSV (None without an
    anchor's curves), and the CSV's rows themselves (points, then the sources' bounds)."""

    csv_path: Path
    plot_path: Path | None
    tables_path: Path | None
    rows: int
    failed: list[str]  # "<job dir>: <error>" of the sweep's failed jobs
    bd_rate_path: Path | None = None
    table: tuple[dict, ...] = ()


def aggregate(sweep_dir: str | Path, anchor: str | None = None) -> Aggregate:
    """Write ``results.csv``, for RD points ``rd_plot.png`` and ``results.md``, and where the
    sweep has ``anchor``'s curves (default :data:`BD_ANCHOR`) ``bd_rate.csv``, its table also in
    ``results.md``, into ``sweep_dir``."""
    sweep_dir = Path(sweep_dir)
    if not sweep_dir.is_dir():
        raise DscError(f"no sweep directory at {sweep_dir}; pass the folder of a multirun")
    points = collect_points(sweep_dir)
    failed = collect_notes(sweep_dir, "failed")
    if not points:
        detail = f"; failed jobs: {'; '.join(failed)}" if failed else "; did the sweep's jobs finish?"
        raise DscError(f"no metrics.json with points under {sweep_dir}{detail}")
    theory = theory_rows(points)
    csv_path = atomic_write_bytes(sweep_dir / "results.csv", to_csv(points + theory))
    plot_path = plot_rd(points, theory, sweep_dir / "rd_plot.png")
    tables = markdown_tables(points)
    bd_rows = bd_rate_rows(points, anchor or BD_ANCHOR)
    bd_path = atomic_write_bytes(sweep_dir / "bd_rate.csv", to_csv(bd_rows, BD_COLUMNS)) if bd_rows else None
    if bd_rows and tables is not None:
        tables += "\n" + bd_rate_table(bd_rows)
    elif anchor and not bd_rows:
        missing = f"no BD-rate table: the sweep has no curves of the anchor {anchor!r} beside other schemes"
        log.warning(missing)
        tables = None if tables is None else tables + f"\n{missing}\n"
    notes = {kind: collect_notes(sweep_dir, kind) for kind in ("skipped", "failed")}
    for kind, lines in notes.items():
        for note in lines:
            log.warning("%s job %s", kind, note)
        if lines and tables is not None:
            tables += f"\n**{kind} jobs**\n\n" + "".join(f"- {note}\n" for note in lines)
    tables_path = None if tables is None else atomic_write_bytes(sweep_dir / "results.md", tables.encode())
    return Aggregate(csv_path, plot_path, tables_path, len(points) + len(theory), notes["failed"], bd_path,
                     tuple(points + theory))


def summary(result: Aggregate) -> str:
    """What an aggregation shows at its end: the tables of ``results.md`` (when written), then
    the paths of every file written."""
    paths = [f"results: {result.csv_path} ({result.rows} rows)"]
    paths += [f"{name}: {path}" for name, path in (("tables", result.tables_path), ("RD plot", result.plot_path),
                                                   ("BD-rates", result.bd_rate_path)) if path is not None]
    tables = [] if result.tables_path is None else [result.tables_path.read_text().rstrip("\n"), ""]
    return "\n".join(tables + paths)


class AggregateOnMultirunEnd(Callback):
    """Hydra callback: aggregate the sweep directory when a multirun ends, print its tables and
    paths, and log the table and the plot to the configured tracker."""

    def on_multirun_end(self, config: DictConfig, **kwargs) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        if not any(sweep_dir.rglob("metrics.json")):
            log.info("no metrics.json in %s (not an evaluation sweep): nothing to aggregate", sweep_dir)
            return
        result = aggregate(sweep_dir, OmegaConf.select(config, "bd_anchor", default=None))
        print(summary(result), flush=True)
        if config.get("logger"):
            tables = None if result.tables_path is None else result.tables_path.read_text()
            log_sweep(sweep_loggers(config, sweep_dir), list(result.table), tables, result.plot_path)
        if result.failed:  # Hydra turns a callback's exceptions into warnings: exit non-zero ourselves
            raise SystemExit(f"error: {len(result.failed)} job(s) of the sweep failed (the others' results are "
                             f"in {result.csv_path}): " + "; ".join(result.failed))


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m dsc.report.sweep", description=first_paragraph(__doc__),
                                     formatter_class=HelpFormatter)
    parser.add_argument("sweep_dir", help="a multirun directory holding */metrics.json")
    parser.add_argument("--anchor", default=None, help=f"the scheme BD-rates are measured against (default "
                        f"{BD_ANCHOR})")
    args = parser.parse_args(argv)
    try:
        result = aggregate(args.sweep_dir, args.anchor)
    except DscError as error:
        parser.exit(2, f"error: {error}\n")
    print(summary(result))


if __name__ == "__main__":
    main()
