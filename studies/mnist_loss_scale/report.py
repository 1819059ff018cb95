"""The loss-scale study's report: one table of training outcomes per (normalisation, beta) and
the paper protocol's choices per normalisation, beside paper Tables 13 and 14.

Reads the layout that ``studies/mnist_loss_scale/run.sh`` writes::

    STUDY/train/<normalisation>/beta_<beta>/train_summary.json   (one short training run each)
    STUDY/rd/<normalisation>/metrics.json                        (the protocol over its betas)

and writes into RESULTS: ``results.csv`` (one row per training run), ``protocol.csv`` (one row
per normalisation, scheme, K and rate), ``results.md`` and ``loss_scale.png``.

    python -m studies.mnist_loss_scale.report outputs/mnist_loss_scale results/mnist_loss_scale
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Sequence

from dsc.errors import DscError
from dsc.helptext import first_paragraph
from dsc.io import atomic_write_bytes
from dsc.models.distortion import DEFAULT, NORMALISATIONS, equivalent_beta
from dsc.paper import PAPER_GLS_MARGINS, PAPER_MNIST_MSE
from dsc.report.paper_comparison import gls_margins
from dsc.report.plots import save_figure
from dsc.report.tables import to_csv
from studies.report_cli import report_main

log = logging.getLogger(__name__)


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise DscError(f"cannot read {path}: {error}; did that run finish? "
                       "(rerun the study script to resume)") from error


def training_rows(study: Path) -> list[dict]:
    """One row per training run under ``study/train``: normalisation, beta, the same beta under
    the default normalisation, validation KL (nats per digit) and MSE (per pixel, [0, 1])."""
    rows = []
    for summary_path in sorted(study.glob("train/*/beta_*/train_summary.json")):
        run = summary_path.parent
        name, beta = run.parent.name, float(run.name.removeprefix("beta_"))
        if name not in NORMALISATIONS:
            continue
        summary = _read_json(summary_path)
        config = _read_json(run / "run_config.json")["config"]
        metrics = summary["metrics"]
        rows.append({
            "distortion_normalisation": name, "beta": beta,
            f"beta_as_{DEFAULT}": round(equivalent_beta(beta, name), 6),
            "beta_reached": metrics.get("train/beta", beta),
            "kl_nats": metrics["val/kl"], "val_mse": metrics["val/mse"], "epochs": summary["epochs"],
            "train_digits": config["data"]["limit"], "precision": summary.get("precision"),
            "seconds_per_epoch": summary["seconds_per_epoch"],
        })
    if not rows:
        raise DscError(f"no finished training runs under {study}/train; run studies/mnist_loss_scale/run.sh first")
    return sorted(rows, key=lambda r: (list(NORMALISATIONS).index(r["distortion_normalisation"]), r["beta"]))


def protocol_rows(study: Path) -> list[dict]:
    """One row per (normalisation, scheme, K, rate) chosen by the protocol, beside the paper."""
    rows = []
    for name in NORMALISATIONS:
        path = study / "rd" / name / "metrics.json"
        if not path.is_file():
            continue
        for p in _read_json(path)["points"]:
            paper = PAPER_MNIST_MSE.get(p["scheme"], {}).get((p["num_decoders"], p["rate_bits"]))
            rows.append({
                "distortion_normalisation": name, "scheme": p["scheme"], "num_decoders": p["num_decoders"],
                "rate_bits": p["rate_bits"], "mse": p["mse"], "mse_se": p["mse_se"], "beta": p["beta"],
                "num_candidates": p["num_candidates"], "match_prob": p["match_prob"], "digits": p["digits"],
                "paper_mse": paper, "relative_to_paper": None if paper is None else p["mse"] / paper - 1,
            })
    return rows


def _summary_line(name: str, rows: list[dict], betas: list[float]) -> str:
    gls = [r for r in rows if r["scheme"] == "gls" and r["relative_to_paper"] is not None]
    if not gls:
        return f"| {name} | | | | | |"
    worst = max(r["relative_to_paper"] for r in gls)
    lowest = sum(r["beta"] == min(betas) for r in gls)
    n128 = sum(r["num_candidates"] == 128 for r in gls)
    margins = [m for (k, _), m in gls_margins(rows).items() if k > 1]
    margin = f"{100 * min(margins):.1f} to {100 * max(margins):.1f} %" if margins else ""
    return (f"| {name} | {100 * min(r['relative_to_paper'] for r in gls):+.1f} to {100 * worst:+.1f} % | "
            f"{sum(r['relative_to_paper'] <= 0.05 for r in gls)} / {len(gls)} | {lowest} / {len(gls)} | "
            f"{n128} / {len(gls)} | {margin} |")


def training_table(training: list[dict]) -> str:
    """Markdown: KL and validation MSE per (normalisation, beta), with the KL weight the warm-up
    had reached when training stopped (``model.kl_warmup_steps``)."""
    lines = ["| normalisation | beta | same optimum as beta under " + DEFAULT + " | KL weight reached | KL (nats) | "
             "val MSE |", "|---|---|---|---|---|---|"]
    lines += [f"| {r['distortion_normalisation']} | {r['beta']:g} | {r[f'beta_as_{DEFAULT}']:g} | "
              f"{r.get('beta_reached', r['beta']):.3g} | {r['kl_nats']:.2f} | {r['val_mse']:.4f} |" for r in training]
    return "\n".join(lines) + "\n"


def verdict_table(training: list[dict], protocol: list[dict]) -> str:
    """Markdown: per normalisation, GLS against Table 13 and the paper's pattern of choices."""
    lines = ["| normalisation | GLS vs Table 13 | points at most 5 % above | lowest beta chosen | N = 128 chosen | "
             "GLS gain over baseline (K >= 2) |", "|---|---|---|---|---|---|"]
    for name in NORMALISATIONS:
        rows = [r for r in protocol if r["distortion_normalisation"] == name]
        if rows:
            betas = sorted({r["beta"] for r in training if r["distortion_normalisation"] == name})
            lines.append(_summary_line(name, rows, betas))
    return "\n".join(lines) + "\n"


def choices_table(protocol: list[dict], name: str) -> str | None:
    """Markdown K x rate table of GLS under normalisation ``name``: test MSE (chosen beta, N;
    paper Table 13). None when the protocol did not run for it."""
    cells = {(r["num_decoders"], r["rate_bits"]): r for r in protocol
             if r["distortion_normalisation"] == name and r["scheme"] == "gls"}
    if not cells:
        return None
    rates = sorted({r for _, r in cells})
    lines = ["| K \\ R bits | " + " | ".join(map(str, rates)) + " |", "|---" * (len(rates) + 1) + "|"]
    for k in sorted({k for k, _ in cells}):
        row = [f"{c['mse']:.4f} ({c['beta']:g}, {c['num_candidates']}; {c['paper_mse']:.4f})"
               if (c := cells.get((k, r))) else "" for r in rates]
        lines.append(f"| {k} | " + " | ".join(row) + " |")
    return "\n".join(lines) + "\n"


def report(training: list[dict], protocol: list[dict]) -> str:
    """Markdown: the training table, the verdict per normalisation and its GLS choices."""
    paper_margins = [m for (k, _), m in PAPER_GLS_MARGINS.items() if k > 1]
    parts = ["**Training runs**: validation KL (nats per digit) and MSE (per pixel, [0, 1]) after the study's "
             "short schedule\n\n" + training_table(training),
             "**The protocol per normalisation** (GLS at the 20 (K, rate) points of paper Table 13; the paper: "
             f"lowest beta and N = 128 at most points, GLS {100 * min(paper_margins):.1f} to "
             f"{100 * max(paper_margins):.1f} % below its baseline at K >= 2)\n\n" + verdict_table(training, protocol)]
    for name in NORMALISATIONS:
        table = choices_table(protocol, name)
        if table:
            parts.append(f"**{name}**, GLS: test MSE (chosen beta, N; paper Table 13)\n\n" + table)
    return "\n".join(parts)


def plot(training: list[dict], protocol: list[dict], path: Path) -> Path:
    """Left: KL against the KL weight (in default-normalisation units); right: GLS MSE against
    rate at K = 1 and 4 per normalisation, paper Table 13 as crosses."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    colors = dict(zip(NORMALISATIONS, plt.cm.tab10.colors))
    for name in NORMALISATIONS:
        rows = [r for r in training if r["distortion_normalisation"] == name]
        if rows:
            left.plot([r[f"beta_as_{DEFAULT}"] for r in rows], [r["kl_nats"] for r in rows], marker="o",
                      color=colors[name], label=f"{name}, paper betas")
        for k, style in ((1, "-"), (4, "--")):
            curve = sorted((r for r in protocol if r["distortion_normalisation"] == name and r["scheme"] == "gls"
                            and r["num_decoders"] == k), key=lambda r: r["rate_bits"])
            if curve:
                right.plot([r["rate_bits"] for r in curve], [r["mse"] for r in curve], linestyle=style, marker="o",
                           markersize=3, color=colors[name], label=f"{name}, K={k}")
    for k in (1, 4):
        paper = sorted((r, v) for (kk, r), v in PAPER_MNIST_MSE["gls"].items() if kk == k)
        right.plot(*zip(*paper), linestyle="none", marker="x", color="black", markersize=7,
                   label="paper Table 13" if k == 1 else None)
    left.set_xscale("log")
    left.axhline(4.85, color="0.5", linewidth=1, linestyle=":", label="log 128 (N = 2^7)")
    left.set_xlabel(f"KL weight in {DEFAULT} units (log scale)")
    left.set_ylabel("KL per digit (nats), validation")
    left.set_title("posterior information vs KL weight")
    right.set_xlabel("rate (bits per image half)")
    right.set_ylabel("best-of-K MSE per pixel, test")
    right.set_title("GLS with the protocol's choices")
    for ax in (left, right):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    return save_figure(fig, path)


def write_study(study: str | Path, results: str | Path) -> Path:
    """Read the study under ``study`` and write the four result files into ``results``."""
    study, results = Path(study), Path(results)
    training, protocol = training_rows(study), protocol_rows(study)
    results.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(results / "results.csv", to_csv(training))
    if protocol:
        atomic_write_bytes(results / "protocol.csv", to_csv(protocol))
    atomic_write_bytes(results / "results.md", report(training, protocol).encode())
    plot(training, protocol, results / "loss_scale.png")
    log.info("loss-scale study: %d training runs, %d protocol points -> %s", len(training), len(protocol), results)
    return results


def main(argv: Sequence[str] | None = None) -> None:
    report_main("python -m studies.mnist_loss_scale.report", first_paragraph(__doc__), write_study,
                "the study's output directory (studies/mnist_loss_scale/run.sh OUT_DIR)",
                "where results.csv, protocol.csv, results.md and loss_scale.png go", argv)


if __name__ == "__main__":
    main()
