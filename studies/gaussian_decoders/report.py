"""Decoder estimates on the Gaussian source: GLS's pick, shrink and Bayes decoders beside the
nested scalar quantiser, the side information alone (best of K) and the Wyner-Ziv bound.

Reads the sweeps of ``studies/gaussian_decoders/run.sh`` (``RUNS/gls`` and ``RUNS/nested``,
``evaluate.py -m experiment=gaussian_decoders``) and writes into RESULTS ``results.csv`` (one row
per decoder, K and rate), ``results.md`` and ``rd_plot.png``::

    python -m studies.gaussian_decoders.report outputs/gaussian_decoders results/gaussian_decoders
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Sequence

import torch

from dsc.errors import DscError
from dsc.helptext import first_paragraph
from dsc.io import atomic_write_bytes
from dsc.report.collect import collect_points
from dsc.report.plots import save_figure
from dsc.report.tables import to_csv
from studies.report_cli import report_main

COLUMNS = ("decoder", "num_decoders", "rate_bits", "mse_db", "mse_db_se", "s2", "num_candidates", "trials",
           "posterior_draws", "per_decoder_mse_db", "per_decoder_mse_db_se", "match_prob", "estimate_mc_se",
           "estimate_empty_rate", "noise_var")
DECODERS = ("pick", "shrink", "bayes", "nested_scalar", "side_info_only", "wyner_ziv")
SIDE_INFO_SAMPLES = 2_000_000


def decoder_rows(runs: Path) -> list[dict]:
    """One row per (decoder, K, rate) of the two sweeps, plus the side information alone and the
    Wyner-Ziv bound at every (K, rate) they cover."""
    points = []
    for sweep in ("gls", "nested"):
        if (runs / sweep).is_dir():
            points += collect_points(runs / sweep)
    if not points:
        raise DscError(f"{runs} holds no finished gls/ or nested/ sweep; run studies/gaussian_decoders/run.sh first")
    rows = []
    for p in points:
        decoder = "nested_scalar" if p["scheme"].startswith("nested_scalar") else p.get("estimate", "pick")
        rows.append({"decoder": decoder, **{c: p.get(c) for c in COLUMNS[1:]},
                     "s2": p.get("s2", p.get("step")), "trials": p.get("trials")})
    noise_var = rows[0]["noise_var"]
    for k, rate in sorted({(r["num_decoders"], r["rate_bits"]) for r in rows}):
        mse, se = side_info_only_mse(k, noise_var)
        rows.append({"decoder": "side_info_only", "num_decoders": k, "rate_bits": rate, "mse_db": _db(mse),
                     "mse_db_se": 10 / math.log(10) * se / mse, "trials": SIDE_INFO_SAMPLES, "noise_var": noise_var,
                     "per_decoder_mse_db": _db(noise_var / (1 + noise_var))})  # var(A | T_k), every decoder
        rows.append({"decoder": "wyner_ziv", "num_decoders": k, "rate_bits": rate, "noise_var": noise_var,
                     "mse_db": _db(noise_var / (1 + noise_var) * 2.0 ** (-2 * rate))})
    order = {name: i for i, name in enumerate(DECODERS)}
    return sorted(rows, key=lambda r: (r["num_decoders"], order[r["decoder"]], r["rate_bits"]))


def side_info_only_mse(num_decoders: int, noise_var: float, seed: int = 0) -> tuple[float, float]:
    """Best-of-K MSE of E[A | T_k] = T_k / (1 + noise_var) with its standard error, by Monte
    Carlo over :data:`SIDE_INFO_SAMPLES` draws (A ~ N(0, 1), T_k = A + N(0, noise_var))."""
    g = torch.Generator().manual_seed(seed)
    a = torch.randn(SIDE_INFO_SAMPLES, 1, generator=g, dtype=torch.float64)
    t = a + math.sqrt(noise_var) * torch.randn(SIDE_INFO_SAMPLES, num_decoders, generator=g, dtype=torch.float64)
    best = ((a - t / (1 + noise_var)) ** 2).min(dim=1).values
    return float(best.mean()), float(best.std() / math.sqrt(best.numel()))


def decoder_table(rows: Sequence[dict], num_decoders: int, metric: str = "mse_db") -> str:
    """``metric`` in dB (``mse_db``: best of K, +- standard error and the chosen s2;
    ``per_decoder_mse_db``: the mean over decoders, no oracle) per decoder and rate at one K."""
    chosen = [r for r in rows if r["num_decoders"] == num_decoders]
    rates = sorted({r["rate_bits"] for r in chosen})
    cells = {(r["decoder"], r["rate_bits"]): r for r in chosen}
    lines = ["| decoder | " + " | ".join(f"{rate} bits" for rate in rates) + " |", "|---|" + "---|" * len(rates)]
    for decoder in DECODERS:
        values = [_cell(cells.get((decoder, rate)), metric) for rate in rates]
        if any(values):
            lines.append(f"| {decoder} | " + " | ".join(values) + " |")
    return "\n".join(lines) + "\n"


def _cell(row: dict | None, metric: str) -> str:
    if row is None or row.get(metric) is None:
        return ""
    text = f"{row[metric]:.2f}"
    if row.get(f"{metric}_se") is not None:
        text += f" ± {row[f'{metric}_se']:.2f}"
    if metric == "mse_db" and row["decoder"] in ("pick", "shrink", "bayes") and row.get("s2") is not None:
        text += f" (s2 {row['s2']:g})"
    return text


def plot(rows: Sequence[dict], path: Path) -> Path:
    """MSE in dB against the rate, one panel per K, one curve per decoder."""
    import matplotlib.pyplot as plt

    ks = sorted({r["num_decoders"] for r in rows})
    fig, axes = plt.subplots(1, len(ks), figsize=(4.2 * len(ks), 3.6), sharey=True, squeeze=False)
    styles = {"pick": "o-", "shrink": "s-", "bayes": "D-", "nested_scalar": "^--", "side_info_only": ":",
              "wyner_ziv": "k-"}
    for ax, k in zip(axes[0], ks):
        for decoder in DECODERS:
            line = sorted((r for r in rows if r["num_decoders"] == k and r["decoder"] == decoder),
                          key=lambda r: r["rate_bits"])
            if line:
                ax.errorbar([r["rate_bits"] for r in line], [r["mse_db"] for r in line],
                            yerr=[r.get("mse_db_se") or 0 for r in line], fmt=styles[decoder], label=decoder,
                            markersize=4, capsize=2, linewidth=1.2)
        ax.set_title(f"K = {k}")
        ax.set_xlabel("rate (bits per message)")
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("best-of-K MSE (dB)")
    axes[0][-1].legend(fontsize=8)
    fig.tight_layout()
    return save_figure(fig, path)


def write_report(runs: str | Path, results: str | Path) -> Path:
    """``results.csv``, ``results.md`` and ``rd_plot.png`` of the sweeps under ``runs``."""
    rows = decoder_rows(Path(runs))
    results = Path(results)
    atomic_write_bytes(results / "results.csv", to_csv(rows, COLUMNS))
    gls = [r for r in rows if r["decoder"] in ("pick", "shrink", "bayes")]
    first = gls[0] if gls else rows[0]
    draws = next((r["posterior_draws"] for r in gls if r.get("posterior_draws")), None)
    text = ["# Decoder estimates on the Gaussian source", "",
            f"GLS at N = {first.get('num_candidates')} with three decoders (pick: the paper's; shrink; bayes: "
            f"{draws} posterior draws), each with s2 chosen by the MSE on its own selection trials and reported on "
            f"{first.get('trials')} fresh trials; the nested scalar quantiser (step chosen by the MSE), the side "
            "information alone (best of K) and the Wyner-Ziv bound var(A|T) 2^(-2R). Cells: best-of-K MSE in dB "
            "± standard error (s2). Produced by studies/gaussian_decoders/run.sh.", ""]
    for k in sorted({r["num_decoders"] for r in rows}):
        text += [f"## K = {k}", "", decoder_table(rows, k)]
        if k > 1:
            text += ["Per decoder (the mean over the K decoders' MSE, no oracle), at the same operating points:", "",
                     decoder_table(rows, k, "per_decoder_mse_db")]
    atomic_write_bytes(results / "results.md", "\n".join(text).encode())
    plot(rows, results / "rd_plot.png")
    return results


def _db(value: float) -> float:
    return 10 * math.log10(value)


def main(argv: Sequence[str] | None = None) -> None:
    report_main("python -m studies.gaussian_decoders.report", first_paragraph(__doc__), write_report,
                "the study's output folder (gls/ and nested/ sweeps)", "where results.csv/.md/.png go", argv)


if __name__ == "__main__":
    main()
