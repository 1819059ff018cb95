"""How the MNIST codec responds to the KL weight: per trained beta, the posterior's information
and GLS's MSE at every (K, rate) point of paper Table 13, beta held fixed (not chosen).

Reads a run of the paper's protocol (``evaluate.py experiment=mnist_rd``, whose
``evaluations.csv`` caches every (checkpoint, scheme, K, rate, N) evaluation on the validation
split) and each checkpoint's training run (``<run>/train_summary.json``, two levels above the
checkpoint), and writes into RESULTS ``betas.csv`` (one row per beta, scheme, K and rate) and
``betas.png``::

    python -m studies.mnist_beta_scan.report outputs/mnist_beta_scan/rd results/mnist_beta_scan
"""

from __future__ import annotations

import csv
import io
import json
import logging
from pathlib import Path
from typing import Sequence

from dsc.errors import DscError
from dsc.helptext import first_paragraph
from dsc.io import atomic_write_bytes
from dsc.paper import PAPER_MNIST_GLS_MSE, PAPER_MNIST_MSE
from dsc.report.paper_comparison import gls_margins
from dsc.report.plots import save_figure
from dsc.report.tables import to_csv
from studies.report_cli import report_main

log = logging.getLogger(__name__)


def _training(ckpt_path: Path) -> dict:
    """Epochs, validation KL (nats per digit) and MSE of the run that wrote ``ckpt_path``."""
    summary = ckpt_path.parent.parent / "train_summary.json"
    try:
        data = json.loads(summary.read_text())
    except (OSError, ValueError) as error:
        raise DscError(f"cannot read {summary} (the training summary of {ckpt_path}): {error}") from error
    metrics = data.get("metrics", {})
    return {"epochs": data.get("epochs"), "kl_nats": metrics.get("val/kl"), "val_mse": metrics.get("val/mse")}


def scan_rows(protocol_dir: Path, num_candidates: int = 128, split: str = "val") -> list[dict]:
    """Rows ``beta, epochs, kl_nats, val_mse, scheme, num_decoders, rate_bits, num_candidates,
    mse, mse_se, match_prob, digits, paper_mse, relative_to_paper`` for every beta the protocol
    evaluated at ``num_candidates`` on ``split``, sorted by beta, scheme, K and rate."""
    path = protocol_dir / "evaluations.csv"
    try:
        evaluations = list(csv.DictReader(io.StringIO(path.read_text())))
    except OSError as error:
        raise DscError(f"cannot read {path}: {error}; run evaluate.py experiment=mnist_rd first") from error
    rows, training = [], {}
    for e in evaluations:
        if e["split"] != split or int(e["num_candidates"]) != num_candidates:
            continue
        ckpt = Path(e["ckpt_path"])
        if ckpt not in training:
            training[ckpt] = _training(ckpt)
        key = (int(e["num_decoders"]), int(e["rate_bits"]))
        mse, paper = float(e["mse"]), PAPER_MNIST_MSE.get(e["scheme"], {}).get(key)
        rows.append({"beta": float(e["beta"]), **training[ckpt], "scheme": e["scheme"], "num_decoders": key[0],
                     "rate_bits": key[1], "num_candidates": num_candidates, "mse": mse, "mse_se": float(e["mse_se"]),
                     "match_prob": float(e["match_prob"]), "digits": int(e["digits"]), "paper_mse": paper,
                     "relative_to_paper": None if paper is None else mse / paper - 1})
    if not rows:
        raise DscError(f"{path} has no {split} evaluations at N = {num_candidates}")
    betas = [r["beta"] for r in rows if r["scheme"] == "gls" and (r["num_decoders"], r["rate_bits"]) == (1, 2)]
    if len(betas) != len(set(betas)):
        raise DscError(f"{path} holds two checkpoints with the same beta; scan one checkpoint per beta")
    return sorted(rows, key=lambda r: (r["beta"], r["scheme"], r["num_decoders"], r["rate_bits"]))


def scan_table(rows: list[dict]) -> str:
    """Markdown, one line per beta: training, GLS against Table 13 over its points, four corner
    points and GLS's gain over the baseline at K >= 2."""
    corners = [(1, 2), (1, 6), (4, 2), (4, 6)]
    lines = ["| beta | epochs | KL (nats) | GLS vs Table 13 | points at most 5 % above | "
             + " | ".join(f"K={k}, {r} bits" for k, r in corners) + " | gain over baseline (K >= 2) |",
             "|---" * (6 + len(corners)) + "|"]
    for beta in sorted({r["beta"] for r in rows}):
        at = [r for r in rows if r["beta"] == beta]
        gls = {(r["num_decoders"], r["rate_bits"]): r for r in at if r["scheme"] == "gls"}
        rel = [r["relative_to_paper"] for r in gls.values() if r["relative_to_paper"] is not None]
        margins = [m for (k, _), m in gls_margins(at).items() if k > 1]
        first = at[0]
        cells = [f"{gls[key]['mse']:.4f}" if key in gls else "" for key in corners]
        lines.append(
            f"| {beta:g} | {first['epochs']} | {first['kl_nats']:.2f} | "
            + (f"{100 * min(rel):+.1f} to {100 * max(rel):+.1f} % | {sum(x <= 0.05 for x in rel)} / {len(rel)} | "
               if rel else "| | ")
            + " | ".join(cells) + " | "
            + (f"{100 * min(margins):.1f} to {100 * max(margins):.1f} % |" if margins else " |"))
    return "\n".join(lines) + "\n"


def plot_scan(rows: list[dict], path: Path) -> Path:
    """GLS MSE against beta (log scale), one panel per rate shown, one line per K; Table 13 as
    dotted levels in the line's colour."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    gls = [r for r in rows if r["scheme"] == "gls"]
    ks = sorted({r["num_decoders"] for r in gls})
    rates = sorted({r["rate_bits"] for r in gls})
    shown = sorted({rates[0], rates[len(rates) // 2], rates[-1]})
    fig, axes = plt.subplots(1, len(shown), figsize=(3.6 * len(shown), 3.6), sharey=True, squeeze=False)
    for ax, rate in zip(axes[0], shown):
        for i, k in enumerate(ks):
            curve = sorted((r for r in gls if (r["num_decoders"], r["rate_bits"]) == (k, rate)),
                           key=lambda r: r["beta"])
            color = plt.cm.viridis(i / max(1, len(ks) - 1) * 0.85)
            ax.errorbar([r["beta"] for r in curve], [r["mse"] for r in curve], yerr=[2 * r["mse_se"] for r in curve],
                        marker="o", markersize=3, capsize=2, color=color, label=f"K = {k}")
            if (k, rate) in PAPER_MNIST_GLS_MSE:
                ax.axhline(PAPER_MNIST_GLS_MSE[(k, rate)], color=color, linestyle=":", linewidth=1)
        ax.set_xscale("log")
        betas = sorted({r["beta"] for r in gls})
        ax.set_xticks(betas, [f"{b:g}" for b in betas], fontsize=7, rotation=60)
        ax.minorticks_off()
        ax.set_title(f"GLS, {rate} bits, N = {gls[0]['num_candidates']}")
        ax.set_xlabel("beta (KL weight, log scale)")
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel(f"best-of-K MSE, {gls[0]['digits']} digits (dotted: Table 13)")
    axes[0][-1].legend(fontsize=7)
    return save_figure(fig, path)


def write_scan(protocol_dir: str | Path, results: str | Path) -> Path:
    """Read the protocol run ``protocol_dir`` and write ``betas.csv`` and ``betas.png`` into ``results``."""
    rows = scan_rows(Path(protocol_dir))
    results = Path(results)
    results.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(results / "betas.csv", to_csv(rows))
    plot_scan(rows, results / "betas.png")
    log.info("beta scan: %d betas -> %s", len({r["beta"] for r in rows}), results)
    return results


def main(argv: Sequence[str] | None = None) -> None:
    report_main("python -m studies.mnist_beta_scan.report", first_paragraph(__doc__), write_scan,
                "a protocol run directory (with evaluations.csv)", "where betas.csv and betas.png go", argv)


if __name__ == "__main__":
    main()
