"""Convergence of the MNIST protocol over training: the paper's protocol run on the weights-only
snapshots that training keeps every few epochs (``checkpoint_every_n_epochs``), so one can see
whether more epochs would still change the rate-distortion figures.

    python -m studies.mnist_paper.convergence outputs/mnist_paper/train/beta_0.15 outputs/mnist_paper/train/beta_0.35 \\
        --out outputs/mnist_paper/convergence --results results/mnist_paper

For every epoch E at which every run has ``checkpoints/epoch_E.ckpt``, beta (and N) are chosen on
validation digits and GLS is reported on test digits, as in :class:`ImageProtocol`; writes
``convergence.csv`` (one row per epoch, K and rate) and ``convergence.png`` into ``--results``.
"""

from __future__ import annotations

import argparse
import logging
import re
from pathlib import Path
from typing import Sequence

import torch

from dsc.environment import resolve_device
from dsc.errors import DscError
from dsc.eval.image_protocol import ImageProtocol
from dsc.helptext import HelpFormatter, first_paragraph
from dsc.io import atomic_write_bytes
from dsc.paper import PAPER_MNIST_GLS_MSE
from dsc.progress import progress_bar
from dsc.report.plots import save_figure
from dsc.report.tables import to_csv

log = logging.getLogger(__name__)
SNAPSHOT = re.compile(r"epoch_(\d+)\.ckpt")


def snapshot_epochs(run_dirs: Sequence[Path]) -> list[int]:
    """Epochs with a snapshot in every run (``<run>/checkpoints/epoch_<E>.ckpt``), ascending."""
    found = [{int(m.group(1)) for p in (run / "checkpoints").glob("epoch_*.ckpt") if (m := SNAPSHOT.fullmatch(p.name))}
             for run in run_dirs]
    common = sorted(set.intersection(*found)) if found else []
    if not common:
        raise DscError(f"no epoch has a snapshot in every run of {[str(r) for r in run_dirs]}: train with "
                       "checkpoint_every_n_epochs=N (studies/mnist_paper/run.sh does)")
    return common


def convergence_rows(run_dirs: Sequence[Path], out_dir: Path, device: torch.device, seed: int = 0,
                     **protocol: object) -> list[dict]:
    """The protocol (GLS; ``protocol`` overrides its settings) at every common snapshot epoch ->
    rows ``epoch, num_decoders, rate_bits, mse, mse_se, beta, num_candidates, paper_mse``."""
    rows = []
    for epoch in progress_bar(snapshot_epochs(run_dirs), desc="epochs", unit="epoch"):
        job = ImageProtocol(ckpt_paths=[str(run / "checkpoints" / f"epoch_{epoch}.ckpt") for run in run_dirs],
                                 **{"schemes": ["gls"], "progress": False, **protocol})
        for point in job.run(seed, device, out_dir / f"epoch_{epoch}"):
            key = (point["num_decoders"], point["rate_bits"])
            rows.append({"epoch": epoch, "num_decoders": key[0], "rate_bits": key[1], "mse": point["mse"],
                         "mse_se": point["mse_se"], "beta": point["beta"], "num_candidates": point["num_candidates"],
                         "digits": point["digits"], "paper_mse": PAPER_MNIST_GLS_MSE.get(key)})
    return rows


def plot_convergence(rows: list[dict], path: Path) -> Path:
    """Test MSE against epochs, one line per (K, rate), Table 13 as dotted levels."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = sorted({(r["num_decoders"], r["rate_bits"]) for r in rows})
    ks, rates = sorted({k for k, _ in keys}), sorted({r for _, r in keys})
    fig, axes = plt.subplots(1, len(ks), figsize=(3.2 * len(ks), 3.6), sharey=True, squeeze=False)
    for ax, k in zip(axes[0], ks):
        for i, rate in enumerate(rates):
            curve = sorted((r for r in rows if (r["num_decoders"], r["rate_bits"]) == (k, rate)),
                           key=lambda r: r["epoch"])
            if not curve:
                continue
            color = plt.cm.viridis(i / max(1, len(rates) - 1) * 0.85)
            ax.errorbar([r["epoch"] for r in curve], [r["mse"] for r in curve], yerr=[2 * r["mse_se"] for r in curve],
                        marker="o", markersize=3, capsize=2, color=color, label=f"{rate} bits")
            if curve[0]["paper_mse"]:
                ax.axhline(curve[0]["paper_mse"], color=color, linestyle=":", linewidth=1)
        ax.set_title(f"GLS, K = {k}")
        ax.set_xlabel("epochs trained")
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("best-of-K test MSE (dotted: Table 13)")
    axes[0][-1].legend(fontsize=7)
    return save_figure(fig, path)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m studies.mnist_paper.convergence",
                                     description=first_paragraph(__doc__), formatter_class=HelpFormatter)
    parser.add_argument("runs", nargs="+", type=Path, help="training run directories (one per beta)")
    parser.add_argument("--out", type=Path, required=True, help="working directory (per-epoch protocol caches)")
    parser.add_argument("--results", type=Path, required=True, help="where convergence.csv and .png go")
    parser.add_argument("--num-candidates", type=int, nargs="+", default=[128], help="N values tried on validation")
    parser.add_argument("--selection-limit", type=int, default=1000, help="validation digits for the choice")
    parser.add_argument("--limit", type=int, default=2000, help="test digits reported")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    parser.add_argument("--seed", type=int, default=0, help="shared-randomness seed")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        device = resolve_device(args.device)
        rows = convergence_rows(args.runs, args.out, device, args.seed, num_candidates=args.num_candidates,
                                selection_limit=args.selection_limit, limit=args.limit)
    except DscError as error:
        parser.exit(2, f"error: {error}\n")
    args.results.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(args.results / "convergence.csv", to_csv(rows))
    print(plot_convergence(rows, args.results / "convergence.png"))


if __name__ == "__main__":
    main()
