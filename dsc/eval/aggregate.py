"""Aggregate a sweep directory into one tidy ``results.csv``, an RD plot ``rd_plot.png``,
markdown tables ``results.md`` and, where curves allow, Bjøntegaard delta rates ``bd_rate.csv``.

Runs automatically at the end of every Hydra multirun (a Hydra callback; a top-level config
key ``bd_anchor`` names the BD-rate anchor, default ``gls``) and by hand on an existing
directory; either prints the tables and the paths of the files written::

    python -m dsc.eval.aggregate multirun/evaluate/2026-01-01_12-00-00 [--anchor gls]
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import logging
import math
from pathlib import Path
from typing import NamedTuple, Sequence

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from dsc.catalog.gaussian import NO_SIDE_INFO, WYNER_ZIV
from dsc.errors import DscError, InvalidArgumentError
from dsc.eval.bjontegaard import bjontegaard
from dsc.eval.points import CODEC_METHODS
from dsc.helptext import HelpFormatter, first_paragraph
from dsc.io import atomic_write_bytes
from dsc.paper import PAPER_MNIST_MSE, PAPER_TABLES
from dsc.registry import get_source

log = logging.getLogger(__name__)

LEADING_COLUMNS = (
    "scheme", "num_decoders", "rate_bits", "num_candidates",
    "distortion_db", "distortion_db_se", "mse_db", "mse_db_se",
    "per_decoder_mse_db", "per_decoder_mse_db_se", "match_prob", "match_prob_se",
    "check_bits", "practical_mse_db", "per_decoder_practical_mse_db", "accept_rate", "false_accept_rate",
    "prop4_error_bound", "s2", "trials", "repetitions", "se_over",
)
BD_ANCHOR = "gls"


class Aggregate(NamedTuple):
    """What an aggregation wrote: the CSV, the plot and markdown tables (None without RD
    points), the CSV's row count, the jobs that failed, and the BD-rate CSV (None without
    an anchor's curves)."""

    csv_path: Path
    plot_path: Path | None
    tables_path: Path | None
    rows: int
    failed: list[str]  # "<job dir>: <error>" of the sweep's failed jobs
    bd_rate_path: Path | None = None


def _job_metrics(sweep_dir: Path):
    """``(job dir, metrics)`` for every readable ``metrics.json`` under ``sweep_dir``."""
    for path in sorted(sweep_dir.rglob("metrics.json")):
        try:
            yield str(path.parent.relative_to(sweep_dir)), json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as error:
            log.warning("skipping unreadable %s: %s", path, error)


def collect_points(sweep_dir: Path) -> list[dict]:
    """Every point of every ``metrics.json`` under ``sweep_dir``, tagged with its job dir."""
    points = [{**point, "job_dir": job} for job, metrics in _job_metrics(sweep_dir)
              for point in metrics.get("points", [])]
    return sorted(points, key=_point_order)


def _scale(point: dict) -> str | None:
    """How a point's distortions are shown, by its source: ``db`` or ``linear``; None for a point
    of no source (e.g. the coupling demo's), which only the CSV shows."""
    return get_source(point["source"]).scale if point.get("source") else None


def collect_notes(sweep_dir: Path, kind: str) -> list[str]:
    """``"<job dir>: <reason>"`` for every job whose metrics.json records ``kind``: ``skipped``
    (ran, nothing to do, e.g. a codec the installed Pillow lacks) or ``failed`` (an error)."""
    return [f"{job}: {metrics[kind]}" for job, metrics in _job_metrics(sweep_dir) if metrics.get(kind)]


def _point_order(point: dict) -> tuple:
    return (str(point.get("scheme", "")), point.get("num_decoders", 0), point.get("rate_bits", 0),
            point.get("check_bits", 0))


def theory_rows(points: list[dict]) -> list[dict]:
    """The bounds of every source among ``points`` that declares some (``Source.theory``)."""
    rows = []
    for source in sorted({p["source"] for p in points if p.get("source")}):
        theory = get_source(source).theory
        if theory is not None:
            rows += theory([p for p in points if p["source"] == source])
    return rows


def _cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, (list, dict)):
        return json.dumps(value, sort_keys=True)
    return str(value)


def to_csv(rows: list[dict], columns: Sequence[str] | None = None) -> bytes:
    """One row per point; ``columns`` in that order, or by default the leading columns first and
    the rest in order of appearance."""
    if columns is None:
        columns = [c for c in LEADING_COLUMNS if any(c in r for r in rows)]
        for row in rows:
            columns += [c for c in row if c not in columns]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([_cell(row.get(c)) for c in columns])
    return buffer.getvalue().encode()


def _curves(points: list[dict]):
    """(scheme, K, style, colour, points sorted by rate) for every curve of an RD plot; style is
    a line style and marker, distinct for up to 24 schemes."""
    import matplotlib.pyplot as plt

    schemes = sorted({p["scheme"] for p in points})
    looks = [{"linestyle": line, "marker": marker} for marker in ("o", "s", "^", "v", "D", "P")
             for line in ("-", "--", ":", "-.")]
    styles = {scheme: looks[i % len(looks)] for i, scheme in enumerate(schemes)}
    ks = sorted({p["num_decoders"] for p in points})
    colors = {k: plt.cm.viridis(i / max(1, len(ks) - 1) * 0.85) for i, k in enumerate(ks)}
    for scheme in schemes:
        for k in ks:
            curve = sorted((p for p in points if p["scheme"] == scheme and p["num_decoders"] == k),
                           key=lambda p: p["rate_bits"])
            if curve:
                yield scheme, k, styles[scheme], colors[k], curve


def save_figure(fig, path: Path) -> Path:
    """Write a matplotlib figure to ``path`` as PNG, atomically, and close it."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=120)
    plt.close(fig)
    return atomic_write_bytes(path, buffer.getvalue())


def plot_rd(points: list[dict], theory: list[dict], path: Path) -> Path | None:
    """RD plot vs rate, one curve per (scheme, K). Gaussian points (``distortion_db``): two
    panels, the paper's distortion (mean per-trial dB) and dB of the mean MSE with the
    Wyner-Ziv bound. MNIST points (``mse``): per-pixel MSE with paper Table 13 beside GLS.
    None when there are no RD points."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    gaussian = [p for p in points if _scale(p) == "db" and "rate_bits" in p and not _checked(p)]
    practical = [p for p in points if _checked(p) and "accept_rate" in p]
    mnist = [p for p in points if _scale(p) == "linear" and "rate_bits" in p]
    if gaussian:
        fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), sharex=True)
        for scheme, k, style, color, curve in _curves(gaussian):
            rates = [p["rate_bits"] for p in curve]
            for ax, key in zip(axes, ("distortion_db", "mse_db")):
                ax.errorbar(rates, [p[key] for p in curve], yerr=[2 * p.get(f"{key}_se", 0) for p in curve],
                            color=color, markersize=3, capsize=2, label=f"{scheme}, K={k}", **style)
        for scheme, color, label in ((WYNER_ZIV, "black", "Wyner-Ziv bound"),
                                     (NO_SIDE_INFO, "0.6", "bound without side information")):
            rows = [r for r in theory if r["scheme"] == scheme]
            if rows:
                axes[1].plot([r["rate_bits"] for r in rows], [r["mse_db"] for r in rows], color=color, linewidth=2.5,
                             alpha=0.8, label=label)
        _plot_practical(axes[1], practical, "practical_mse_db")
        axes[0].set_title("paper metric: mean over trials of best-of-K dB")
        axes[1].set_title("10 log10(mean best-of-K MSE)" + (" and practical selection" if practical else ""))
        ylabel, xlabel = "distortion (dB)", "rate (bits per source sample)"
    elif mnist:
        fig, ax = plt.subplots(figsize=(10, 4.6))
        axes = [ax]
        coded = [p for p in mnist if not _is_codec_sweep(p) and not _checked(p)]
        _plot_practical(ax, practical, "practical_mse")
        for scheme, k, style, color, curve in _curves(coded):
            rates = [p["rate_bits"] for p in curve]
            ax.errorbar(rates, [p["mse"] for p in curve], yerr=[2 * p.get("mse_se", 0) for p in curve],
                        color=color, markersize=3, capsize=2, label=f"{scheme}, K={k}", **style)
            table = PAPER_MNIST_MSE.get(scheme, {})
            paper = [(r, table[(k, r)]) for r in rates if (k, r) in table]
            if paper and not (scheme != "gls" and k == 1):  # at K = 1 the baseline is GLS
                ax.plot(*zip(*paper), linestyle="none", marker="x" if scheme == "gls" else "+", color=color,
                        markersize=6, label=f"paper {PAPER_TABLES[scheme]}, {scheme}, K={k}")
        codecs = [p for p in mnist if _is_codec_sweep(p)]
        for i, scheme in enumerate(sorted({p["scheme"] for p in codecs})):
            curve = sorted((p for p in codecs if p["scheme"] == scheme), key=lambda p: p["rate_bits"])
            side = curve[0].get("side_information", "none")
            ax.plot([p["rate_bits"] for p in curve], [p["mse"] for p in curve], marker="s", markersize=3,
                    color=plt.cm.tab10(i % 10), label=f"{scheme} (side information: {side})")
            streamed = sorted((p for p in curve if "batch_stream_rate_bits" in p),
                              key=lambda p: p["batch_stream_rate_bits"])
            if streamed:  # the same learned codecs, 500 halves per entropy-coder stream
                ax.plot([p["batch_stream_rate_bits"] for p in streamed], [p["mse"] for p in streamed],
                        marker="s", markersize=3, linestyle="--", color=plt.cm.tab10(i % 10),
                        label=f"{scheme}, batch streams")
        ax.set_title("MNIST right halves: best-of-K MSE (error bars: 2 SE)")
        ylabel, xlabel = "MSE per pixel (pixels in [0, 1])", "rate (bits per image half)"
        rates = [p["rate_bits"] for p in mnist]
        if max(rates) > 10 * min(rates):  # GLS's few bits beside codecs' thousands
            ax.set_xscale("log")
    else:
        return None
    for ax in axes:
        if ax.get_xscale() == "linear":
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
    if gaussian:
        axes[-1].legend(fontsize=7, ncol=2)
    else:  # many curves: the legend beside the plot
        axes[-1].legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))
    return save_figure(fig, path)


TABLE_METRICS = (  # (key, description, digits): Gaussian points have the first two, MNIST the rest
    ("distortion_db", "distortion dB (mean over trials of best-of-K per-trial dB)", 2),
    ("mse_db", "10 log10 of the mean best-of-K squared error", 2),
    ("mse", "MSE per pixel, best of K", 4),
    ("psnr_db", "PSNR dB (mean over digits of per-digit PSNR, peak 1), best of K by MSE", 2),
    ("ssim", "SSIM (mean over digits, single-scale, 11x11 Gaussian window), best of K by MSE", 4),
)


def _setting(point: dict) -> str:
    """What was chosen for a point, for the tables: the operating point a protocol chose, the
    quantiser step (nested quantiser), s2 (GLS on the Gaussian source), or N and beta."""
    if "operating_point" in point:
        return str(point["operating_point"])
    if point.get("method") == "nested_scalar":
        return f"step {point['step']:.3g}"
    if point.get("source") == "gaussian" and "s2" in point:
        return f"s2 {point['s2']:g}"
    beta = f", beta {point['beta']:g}" if "beta" in point else ""
    return f"N {point.get('num_candidates', '')}{beta}"


def _chosen_by(points: list[dict]) -> str:
    """`` (chosen by <metric>)`` for points whose operating point was chosen by a metric, else ''."""
    metrics = sorted({p.get("select_by") or p.get("selection_metric") for p in points
                      if p.get("selection_trials", 1) and (p.get("select_by") or p.get("selection_metric"))})
    return f" (chosen by {' / '.join(metrics)})" if metrics else ""


def _checked(point: dict) -> bool:
    """A point coded with check bits (practical decoder selection); its oracle figures equal
    the same point without them, so curves and K x rate tables show the c = 0 points."""
    return bool(point.get("check_bits"))


def practical_table(points: list[dict]) -> str | None:
    """Oracle best-of-K vs practical selection for every point with check bits (Gaussian: MSE
    in dB; MNIST: MSE per pixel), or None."""
    rows = sorted((p for p in points if _checked(p) and "accept_rate" in p),
                  key=lambda p: (p["scheme"], p["num_decoders"], p["rate_bits"], p["check_bits"]))
    if not rows:
        return None
    lines = ["**practical decoder selection** (c check bits per message; any-pass: the first decoder whose "
             "check passes, else decoder 0's fallback from its side information alone)", "",
             "| scheme | K | label bits | c | total bits | oracle best-of-K MSE | any-pass MSE | "
             "per-decoder MSE (with fallback) | picks accepted | wrong picks accepted |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for p in rows:
        db = _scale(p) == "db"
        keys = ("mse_db", "practical_mse_db", "per_decoder_practical_mse_db") if db else \
            ("mse", "practical_mse", "per_decoder_practical_mse")
        cells = " | ".join(f"{p[key]:.2f} dB" if db else f"{p[key]:.4f}" for key in keys)
        lines.append(f"| {p['scheme']} | {p['num_decoders']} | {p['rate_bits']} | {p['check_bits']} | "
                     f"{p['rate_bits'] + p['check_bits']} | {cells} | {p['accept_rate']:.3f} | "
                     f"{p['false_accept_rate']:.4f} |")
    return "\n".join(lines)


def _plot_practical(ax, points: list[dict], key: str) -> None:
    """Any-pass curves at rate = label bits + c, one per (scheme, K, c)."""
    import matplotlib.pyplot as plt

    for i, c in enumerate(sorted({p["check_bits"] for p in points})):
        for scheme, k, _, _, curve in _curves([p for p in points if p["check_bits"] == c]):
            ax.plot([p["rate_bits"] + c for p in curve], [p[key] for p in curve], linestyle=":", marker="x",
                    color=plt.cm.autumn(i / max(1, len({p["check_bits"] for p in points}) - 1) * 0.8),
                    label=f"{scheme}, K={k}, {c} check bits: any-pass")


def _is_codec_sweep(point: dict) -> bool:
    """A point of a classical or learned image codec (any rate, not a K x rate grid)."""
    return point.get("method") in CODEC_METHODS


def _codec_setting(point: dict) -> str:
    if point["method"] == "learned_codec":
        return f"lambda {point['lmbda']:g}"
    return "" if point.get("quality") is None else str(point["quality"])


def markdown_tables(points: list[dict]) -> str | None:
    """Per metric and scheme, a K x rate table with what was chosen in brackets (Gaussian:
    ``distortion_db`` and ``mse_db``; MNIST: ``mse``). None without RD points."""
    parts = []
    for key, description, digits in TABLE_METRICS:
        rd = [p for p in points if key in p and "rate_bits" in p and "num_decoders" in p and not _is_codec_sweep(p)
              and not _checked(p)]
        rates = sorted({p["rate_bits"] for p in rd})
        for scheme in sorted({p["scheme"] for p in rd}):
            cells = {(p["num_decoders"], p["rate_bits"]): p for p in rd if p["scheme"] == scheme}
            lines = [
                f"**{scheme}**: {description}, chosen setting in brackets{_chosen_by(list(cells.values()))}",
                "",
                "| K \\ R bits | " + " | ".join(str(r) for r in rates) + " |",
                "|---" * (len(rates) + 1) + "|",
            ]
            for k in sorted({key_[0] for key_ in cells}):
                row = ["" if (k, r) not in cells else f"{cells[(k, r)][key]:.{digits}f} ({_setting(cells[(k, r)])})"
                       for r in rates]
                lines.append(f"| {k} | " + " | ".join(row) + " |")
            parts.append("\n".join(lines))
    practical = practical_table(points)
    if practical:
        parts.append(practical)
    codecs = sorted((p for p in points if _is_codec_sweep(p) and "mse" in p),
                    key=lambda p: (p["scheme"], p["rate_bits"]))
    if codecs:
        lines = ["**image codecs** (classical: no side information; learned: as named), bits per image half "
                 "from the real bytes; PSNR: mean per-image PSNR (peak 1)", "",
                 "| codec | quality or lambda | bits | MSE | PSNR dB | SSIM |", "|---|---|---|---|---|---|"]
        lines += [f"| {p['scheme']} | {_codec_setting(p)} | {p['rate_bits']:.1f} | {p['mse']:.5f} | "
                  f"{_number(p.get('psnr_db'), 2)} | {_number(p.get('ssim'), 4)} |" for p in codecs]
        parts.append("\n".join(lines))
    return "\n\n".join(parts) + "\n" if parts else None


def _number(value, digits: int) -> str:
    """A table cell: the value to ``digits`` decimals, empty where a point lacks it (old results)."""
    return "" if value is None else f"{value:.{digits}f}"


def quality_db(point: dict) -> float | None:
    """The quality BD-rates compare, ``-10 log10`` of the point's mean best-of-K MSE in dB: minus
    ``mse_db`` on ``db``-scale sources (Gaussian), from ``mse`` on ``linear`` ones (for MNIST
    pixels in [0, 1] the PSNR of the mean MSE, peak 1; infinite for a lossless point); None
    without either."""
    if _scale(point) == "db":
        return None if point.get("mse_db") is None else -point["mse_db"]
    mse = point.get("mse")
    return None if mse is None else (math.inf if mse == 0 else -10 * math.log10(mse))


def bd_rate_rows(points: list[dict], anchor: str = BD_ANCHOR) -> list[dict]:
    """Per source with ``anchor`` points, per other scheme and per K (every K of the anchor or
    the scheme): the Bjøntegaard delta rate (:mod:`dsc.eval.bjontegaard`) of the scheme's curve
    against the anchor's at that K, rate ``rate_bits``, quality :func:`quality_db`; points with
    check bits are left out. Each row has ``bd_rate_percent``, ``bd_psnr_db`` and the shared dB
    interval, or empty numbers and a ``note`` saying why (too few points, not monotone, no overlap,
    no points at that K)."""
    curves: dict[tuple[str, str, int], list[tuple[float, float]]] = {}
    for p in points:
        if p.get("source") and "rate_bits" in p and "num_decoders" in p and not _checked(p) and \
                quality_db(p) is not None:
            curves.setdefault((p["source"], p["scheme"], p["num_decoders"]), []).append((p["rate_bits"],
                                                                                         quality_db(p)))
    rows = []
    for source in sorted({key[0] for key in curves if key[1] == anchor}):
        schemes = sorted({s for src, s, _ in curves if src == source and s != anchor})
        ks = sorted({k for src, _, k in curves if src == source})
        for scheme in schemes:
            for k in ks:
                base, test = curves.get((source, anchor, k), []), curves.get((source, scheme, k), [])
                row = {"source": source, "anchor": anchor, "scheme": scheme, "num_decoders": k,
                       "anchor_points": len(base), "points": len(test), "bd_rate_percent": None,
                       "bd_psnr_db": None, "overlap_low_db": None, "overlap_high_db": None, "note": ""}
                if not base or not test:
                    row["note"] = f"{anchor if not base else scheme} has no points at K={k}"
                else:
                    try:
                        delta = bjontegaard(*zip(*base), *zip(*test))
                    except InvalidArgumentError as error:
                        row["note"] = str(error)
                    else:
                        row.update(bd_rate_percent=delta.rate_percent, bd_psnr_db=delta.psnr_db,
                                   overlap_low_db=delta.low_db, overlap_high_db=delta.high_db)
                        if delta.psnr_db is None:
                            row["note"] = "BD-PSNR: the curves share no rate range"
                rows.append(row)
    return rows


def bd_rate_table(rows: list[dict]) -> str | None:
    """Markdown of :func:`bd_rate_rows`: per source a scheme x K table, cells ``BD-rate (BD-PSNR)``
    or why the cell is missing. None without rows."""
    parts = []
    for source in sorted({r["source"] for r in rows}):
        mine = [r for r in rows if r["source"] == source]
        anchor, ks = mine[0]["anchor"], sorted({r["num_decoders"] for r in mine})
        quality = "-10 log10(mean best-of-K MSE)" if get_source(source).scale == "db" else \
            "PSNR of the mean best-of-K MSE (peak 1)"
        lines = [f"**BD-rate against {anchor}** ({source}; quality: {quality} in dB): Bjøntegaard delta rate "
                 "(VCEG-M33 cubic fits of log-rate on quality, averaged over the dB range both curves cover); "
                 f"negative: fewer bits than {anchor} for the same quality; BD-PSNR in brackets", "",
                 "| scheme | " + " | ".join(f"K={k}" for k in ks) + " |", "|---" * (len(ks) + 1) + "|"]
        for scheme in sorted({r["scheme"] for r in mine}):
            cells = {r["num_decoders"]: r for r in mine if r["scheme"] == scheme}
            lines.append(f"| {scheme} | " + " | ".join(_bd_cell(cells[k]) for k in ks) + " |")
        parts.append("\n".join(lines))
    return "\n\n".join(parts) + "\n" if parts else None


def _bd_cell(row: dict) -> str:
    if row["bd_rate_percent"] is None:
        return "n/a: " + row["note"].split(";")[0]
    gain = "" if row["bd_psnr_db"] is None else f" ({round(row['bd_psnr_db'], 2) or 0.0:+.2f} dB)"  # no -0.00
    return f"{round(row['bd_rate_percent'], 1) or 0.0:+.1f} %{gain}"


BD_COLUMNS = ("source", "anchor", "scheme", "num_decoders", "bd_rate_percent", "bd_psnr_db", "overlap_low_db",
              "overlap_high_db", "anchor_points", "points", "note")


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
    return Aggregate(csv_path, plot_path, tables_path, len(points) + len(theory), notes["failed"], bd_path)


def report(result: Aggregate) -> str:
    """What an aggregation shows at its end: the tables of ``results.md`` (when written), then
    the paths of every file written."""
    paths = [f"results: {result.csv_path} ({result.rows} rows)"]
    paths += [f"{name}: {path}" for name, path in (("tables", result.tables_path), ("RD plot", result.plot_path),
                                                   ("BD-rates", result.bd_rate_path)) if path is not None]
    tables = [] if result.tables_path is None else [result.tables_path.read_text().rstrip("\n"), ""]
    return "\n".join(tables + paths)


class AggregateOnMultirunEnd(Callback):
    """Hydra callback: aggregate the sweep directory when a multirun ends and print its tables
    and paths."""

    def on_multirun_end(self, config: DictConfig, **kwargs) -> None:
        if not any(Path(config.hydra.sweep.dir).rglob("metrics.json")):
            log.info("no metrics.json in %s (not an evaluation sweep): nothing to aggregate", config.hydra.sweep.dir)
            return
        result = aggregate(config.hydra.sweep.dir, OmegaConf.select(config, "bd_anchor", default=None))
        print(report(result), flush=True)
        if result.failed:  # Hydra turns a callback's exceptions into warnings: exit non-zero ourselves
            raise SystemExit(f"error: {len(result.failed)} job(s) of the sweep failed (the others' results are "
                             f"in {result.csv_path}): " + "; ".join(result.failed))


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m dsc.eval.aggregate", description=first_paragraph(__doc__),
                                     formatter_class=HelpFormatter)
    parser.add_argument("sweep_dir", help="a multirun directory holding */metrics.json")
    parser.add_argument("--anchor", default=None, help=f"the scheme BD-rates are measured against (default "
                        f"{BD_ANCHOR})")
    args = parser.parse_args(argv)
    try:
        result = aggregate(args.sweep_dir, args.anchor)
    except DscError as error:
        parser.exit(2, f"error: {error}\n")
    print(report(result))


if __name__ == "__main__":
    main()
