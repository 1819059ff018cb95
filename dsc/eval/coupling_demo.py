"""Coupling demonstration: empirical GLS matching probability next to the list matching lemma.

For a few random pairs (p, q) on a small alphabet and K = 1..max_rows, it draws shared
exponentials from the counter-based generator, runs GLS and reports Pr[Y in X^(1..K)] with its
standard error beside the LML bound (and, at K = 1, the exact Gumbel-coupling value and
Daliri's (1 - TV) / (1 + TV) bound).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from dsc.coding import (
    CounterRandomness,
    daliri_bound,
    gls,
    gumbel_coupling_match_prob,
    list_matching_bound,
    shared_exponentials,
    total_variation,
)
from dsc.coding.validation import check_positive_int
from dsc.errors import ConfigError
from dsc.eval.stats import binomial_se
from dsc.progress import progress_bar

log = logging.getLogger(__name__)


@dataclass
class CouplingDemo:
    """Configuration of the demonstration (all sizes per point)."""

    alphabet_size: int = 16
    max_rows: int = 8
    pairs: int = 3
    trials: int = 100_000
    concentration: float = 1.0
    batch_trials: int = 25_000

    def __post_init__(self) -> None:
        for name in ("alphabet_size", "max_rows", "pairs", "trials", "batch_trials"):
            check_positive_int(getattr(self, name), f"job.{name}")
        if not self.concentration > 0:
            raise ConfigError(f"job.concentration must be > 0, got {self.concentration}")

    def distributions(self, seed: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """The random (p, q) pairs, Dirichlet(concentration) over the alphabet, float64."""
        rng = np.random.default_rng(seed)
        alpha = np.full(self.alphabet_size, self.concentration)
        return [
            (torch.from_numpy(rng.dirichlet(alpha)), torch.from_numpy(rng.dirichlet(alpha)))
            for _ in range(self.pairs)
        ]

    def match_rate(self, p, q, num_rows, rng, first_message, device) -> float:
        matches = 0
        for start in range(0, self.trials, self.batch_trials):
            stop = min(start + self.batch_trials, self.trials)
            messages = torch.arange(first_message + start, first_message + stop, device=device)
            noise = shared_exponentials(rng, messages, num_rows, self.alphabet_size, torch.float32)
            matches += int(gls(p.to(device), q.to(device), noise).match.sum())
        return matches / self.trials

    def run(self, seed: int, device: torch.device, output_dir: Path) -> list[dict]:
        rng = CounterRandomness(seed)
        points = []
        grid = [(i, k) for i in range(self.pairs) for k in range(1, self.max_rows + 1)]
        pairs = self.distributions(seed)
        for pair, num_rows in progress_bar(grid, desc="coupling demo (pair, K)", unit="point"):
            p, q = pairs[pair]
            first_message = (pair * self.max_rows + num_rows - 1) * self.trials
            rate = self.match_rate(p, q, num_rows, rng, first_message, device)
            point = {
                "pair": pair,
                "num_rows": num_rows,
                "alphabet_size": self.alphabet_size,
                "trials": self.trials,
                "total_variation": total_variation(p, q).item(),
                "match_prob": rate,
                "match_prob_se": binomial_se(rate, self.trials),
                "lml_bound": list_matching_bound(p, q, num_rows).item(),
            }
            if num_rows == 1:
                point["exact_k1"] = gumbel_coupling_match_prob(p, q).item()
                point["daliri_bound"] = daliri_bound(p, q).item()
            points.append(point)
        log.info("GLS matching probability vs the list matching lemma bound\n%s", format_table(points))
        plot_path = plot_points(points, output_dir / "coupling_demo.png")
        log.info("plot: %s", plot_path)
        return points


def format_table(points: list[dict]) -> str:
    header = (f"{'pair':>4} {'TV':>6} {'K':>3} {'Pr[match]':>10} {'+-se':>7} {'LML bound':>10} {'exact K=1':>10} "
              f"{'Daliri':>7}")
    lines = [header, "-" * len(header)]
    for pt in points:
        exact = f"{pt['exact_k1']:10.4f}" if "exact_k1" in pt else " " * 10
        daliri = f"{pt['daliri_bound']:7.4f}" if "daliri_bound" in pt else " " * 7
        lines.append(
            f"{pt['pair']:>4} {pt['total_variation']:6.3f} {pt['num_rows']:>3} {pt['match_prob']:10.4f} "
            f"{pt['match_prob_se']:7.4f} {pt['lml_bound']:10.4f} {exact} {daliri}"
        )
    return "\n".join(lines)


def plot_points(points: list[dict], path: Path) -> Path:
    """One curve per pair: empirical matching probability (error bars) and the LML bound."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from dsc.io import atomic_write_bytes

    fig, ax = plt.subplots(figsize=(6, 4))
    for pair in sorted({pt["pair"] for pt in points}):
        rows = [pt for pt in points if pt["pair"] == pair]
        ks = [pt["num_rows"] for pt in rows]
        line = ax.errorbar(
            ks, [pt["match_prob"] for pt in rows], yerr=[2 * pt["match_prob_se"] for pt in rows],
            marker="o", capsize=3, label=f"pair {pair} (TV {rows[0]['total_variation']:.2f}) GLS",
        )
        ax.plot(ks, [pt["lml_bound"] for pt in rows], "--", color=line[0].get_color(), label=f"pair {pair} LML bound")
    ax.set_xlabel("K (list size)")
    ax.set_ylabel("Pr[Y in X^(1..K)]")
    ax.set_title("GLS matching probability vs list matching lemma")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    import io

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=120)
    plt.close(fig)
    return atomic_write_bytes(path, buffer.getvalue())
