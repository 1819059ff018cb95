"""The learned-codec study on Gaussian sources: one table from its evaluation runs.

Reads every ``metrics.json`` under a directory (the runs of ``studies/gaussian_learned/run.sh``: the
closed-form model and the learned codecs through :class:`dsc.eval.source_protocol.SourceProtocol`,
the nested scalar quantiser per component) and writes into RESULTS:

- ``results.csv``: one row per (scheme, d, K, rate) with ``scheme, dim, num_decoders,
  rate_bits, mse_db, mse_db_se, per_decoder_mse_db, match_prob, num_candidates,
  operating_point, messages`` (MSE per component, in dB) and the Wyner-Ziv bound's rows;
- ``results.md``: per d, a (K, rate) table of every scheme beside the bound, and the learned
  codec's distance to the closed-form model;
- ``rd_plot.png``: MSE per component against rate, one panel per d.

    python -m studies.gaussian_learned.report outputs/gaussian_learned/eval results/gaussian_learned
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from dsc.catalog.gaussian import wyner_ziv_rows
from dsc.errors import DscError
from dsc.eval.stats import db_se
from dsc.helptext import first_paragraph
from dsc.io import atomic_write_bytes
from dsc.report.collect import collect_points
from dsc.report.plots import save_figure
from dsc.report.tables import to_csv
from studies.report_cli import report_main

COLUMNS = ("scheme", "dim", "num_decoders", "rate_bits", "mse_db", "mse_db_se", "per_decoder_mse_db", "match_prob",
           "num_candidates", "operating_point", "messages")
BOUND = "wyner_ziv_bound"


def study_rows(points: list[dict]) -> list[dict]:
    """Result rows (:data:`COLUMNS`) of the study's points, and the bound at every (d, rate)."""
    rows = []
    for p in points:
        scheme = p["method"] if p["method"] != "nested_scalar" else p["scheme"]
        setting = p.get("operating_point") or (f"step {p['step']:.3g}" if "step" in p else None)
        rows.append({"scheme": scheme, "dim": p.get("dim", 1), "num_decoders": p["num_decoders"],
                     "rate_bits": p["rate_bits"], "mse_db": p["mse_db"],
                     "mse_db_se": p["mse_db_se"] if "mse_db_se" in p else db_se(p["mse"], p["mse_se"]),
                     "per_decoder_mse_db": p["per_decoder_mse_db"], "match_prob": p["match_prob"],
                     "num_candidates": p.get("num_candidates"), "operating_point": setting,
                     "messages": p.get("messages", p.get("trials"))})
    for row in wyner_ziv_rows(points):
        if row["scheme"] == "wyner_ziv_bound":
            rows.append({"scheme": BOUND, "dim": row["dim"], "rate_bits": row["rate_bits"], "mse_db": row["mse_db"]})
    order = {"gls_analytic": 0, "gls_learned": 1, "nested_scalar": 2, BOUND: 9}
    return sorted(rows, key=lambda r: (r["dim"], order.get(r["scheme"], 5), r["scheme"], r.get("num_decoders") or 0,
                                       r["rate_bits"]))


def report(rows: list[dict]) -> str:
    """Markdown: per d, one row per (scheme, K) with mse_db at each rate, and the bound."""
    parts = []
    for dim in sorted({r["dim"] for r in rows}):
        at = [r for r in rows if r["dim"] == dim]
        rates = sorted({r["rate_bits"] for r in at})
        lines = [f"**d = {dim}**: MSE per component (dB), best of K decoders; operating point in brackets", "",
                 "| scheme | K | " + " | ".join(f"{r} bits" for r in rates) + " |",
                 "|---|---" + "|---" * len(rates) + "|"]
        for scheme in dict.fromkeys(r["scheme"] for r in at if r["scheme"] != BOUND):
            for k in sorted({r["num_decoders"] for r in at if r["scheme"] == scheme}):
                cells = {r["rate_bits"]: r for r in at if r["scheme"] == scheme and r["num_decoders"] == k}
                lines.append(f"| {scheme} | {k} | " + " | ".join(
                    f"{c['mse_db']:.2f} +- {c['mse_db_se']:.2f} ({c['operating_point']})" if (c := cells.get(r)) else ""
                    for r in rates) + " |")
        bound = {r["rate_bits"]: r["mse_db"] for r in at if r["scheme"] == BOUND}
        lines.append("| Wyner-Ziv bound | | "
                     + " | ".join(f"{bound[r]:.2f}" if r in bound else "" for r in rates) + " |")
        parts.append("\n".join(lines))
    gaps = learned_gaps(rows)
    if gaps:
        lines = ["**learned codec - closed-form model** (d = 1, dB; positive: the learned codec is worse)", "",
                 "| K | rate | gap (dB) |", "|---|---|---|"]
        lines += [f"| {k} | {r} | {gap:+.2f} |" for (k, r), gap in sorted(gaps.items())]
        parts.append("\n".join(lines))
    return "\n\n".join(parts) + "\n"


def learned_gaps(rows: list[dict]) -> dict[tuple[int, int], float]:
    """mse_db of the learned codec minus the closed-form model's, per (K, rate), d = 1."""
    cells = {(r["scheme"], r["num_decoders"], r["rate_bits"]): r["mse_db"] for r in rows
             if r["dim"] == 1 and r["scheme"] != BOUND}
    return {(k, rate): value - cells[("gls_analytic", k, rate)] for (scheme, k, rate), value in cells.items()
            if scheme == "gls_learned" and ("gls_analytic", k, rate) in cells}


def plot(rows: list[dict], path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    dims = sorted({r["dim"] for r in rows})
    fig, axes = plt.subplots(1, len(dims), figsize=(4.6 * len(dims), 4), squeeze=False)
    styles = {"gls_analytic": ("-", "o"), "gls_learned": ("--", "s"), "nested_scalar": (":", "^")}
    for ax, dim in zip(axes[0], dims):
        at = [r for r in rows if r["dim"] == dim]
        for i, (scheme, k) in enumerate(sorted({(r["scheme"], r["num_decoders"]) for r in at if r["scheme"] != BOUND})):
            curve = sorted((r for r in at if r["scheme"] == scheme and r["num_decoders"] == k),
                           key=lambda r: r["rate_bits"])
            style, marker = styles.get(scheme, ("-.", "x"))
            ax.errorbar([r["rate_bits"] for r in curve], [r["mse_db"] for r in curve],
                        yerr=[2 * r["mse_db_se"] for r in curve], linestyle=style, marker=marker, markersize=4,
                        capsize=2, color=plt.cm.viridis(0.15 if k == 1 else 0.7), label=f"{scheme}, K={k}")
        bound = sorted((r for r in at if r["scheme"] == BOUND), key=lambda r: r["rate_bits"])
        ax.plot([r["rate_bits"] for r in bound], [r["mse_db"] for r in bound], color="black", linewidth=2,
                marker="_", markersize=16, label="Wyner-Ziv bound")  # the marker shows a one-rate panel
        ax.set_title(f"d = {dim}")
        ax.set_xlabel("rate (bits per source vector)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    axes[0][0].set_ylabel("MSE per component (dB), best of K")
    return save_figure(fig, path)


def write_study(runs: str | Path, results: str | Path) -> Path:
    runs, results = Path(runs), Path(results)
    points = [p for p in collect_points(runs) if p.get("source") == "gaussian" and "mse_db" in p]
    if not points:
        raise DscError(f"no Gaussian points under {runs}; run studies/gaussian_learned/run.sh first")
    rows = study_rows(points)
    results.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(results / "results.csv", to_csv(rows, COLUMNS))
    atomic_write_bytes(results / "results.md", report(rows).encode())
    plot(rows, results / "rd_plot.png")
    return results


def main(argv: Sequence[str] | None = None) -> None:
    report_main("python -m studies.gaussian_learned.report", first_paragraph(__doc__), write_study,
                "directory holding the study's evaluation runs (*/metrics.json)",
                "where results.csv, results.md and rd_plot.png go", argv)


if __name__ == "__main__":
    main()
