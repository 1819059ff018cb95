"""Measured MNIST results beside the paper's published tables (:mod:`dsc.paper`): K x rate
Markdown tables of the measured MSE against Tables 13 and 14, and of GLS's gain over the
shared-randomness baseline."""

from __future__ import annotations

from dsc.paper import PAPER_GLS_MARGINS, PAPER_MNIST_GLS_MSE, PAPER_MNIST_MSE, PAPER_TABLES


def _table(title: str, cells: dict[tuple[int, int], str]) -> str:
    rates = sorted({r for _, r in cells})
    lines = [title, "", "| K \\ R bits | " + " | ".join(str(r) for r in rates) + " |", "|---" * (len(rates) + 1) + "|"]
    for k in sorted({k for k, _ in cells}):
        lines.append(f"| {k} | " + " | ".join(cells.get((k, r), "") for r in rates) + " |")
    return "\n".join(lines) + "\n"


def _mnist_mse(points: list[dict], scheme: str) -> dict[tuple[int, int], float]:
    return {(p["num_decoders"], p["rate_bits"]): p["mse"] for p in points
            if p.get("scheme") == scheme and "mse" in p
            and (p.get("num_decoders"), p.get("rate_bits")) in PAPER_MNIST_GLS_MSE}


def paper_comparison_table(points: list[dict], scheme: str = "gls") -> str | None:
    """Markdown K x rate table of measured ``mse`` of ``scheme`` (gls or shared_randomness) vs
    the paper's table: ``measured (paper, +x %)``. None when no point has a published counterpart."""
    measured = _mnist_mse(points, scheme)
    if not measured:
        return None
    paper = PAPER_MNIST_MSE[scheme]
    cells = {key: f"{mse:.4f} ({paper[key]:.4f}, {100 * (mse / paper[key] - 1):+.1f} %)"
             for key, mse in measured.items()}
    return _table(f"**{scheme} vs paper {PAPER_TABLES[scheme]}**: measured MSE (paper, relative difference)", cells)


def gls_margins(points: list[dict]) -> dict[tuple[int, int], float]:
    """GLS's relative gain over the baseline, ``1 - mse_gls / mse_baseline``, per (K, rate)
    where both were measured."""
    gls, base = _mnist_mse(points, "gls"), _mnist_mse(points, "shared_randomness")
    return {key: 1 - gls[key] / base[key] for key in gls if key in base}


def margin_table(points: list[dict]) -> str | None:
    """Markdown K x rate table of GLS's gain over the baseline, measured (paper) in percent."""
    margins = {key: value for key, value in gls_margins(points).items() if key[0] > 1}
    if not margins:
        return None
    cells = {key: f"{100 * value:.1f} % ({100 * PAPER_GLS_MARGINS[key]:.1f} %)" for key, value in margins.items()}
    return _table("**GLS's gain over the shared-randomness baseline**: 1 - MSE(gls) / MSE(baseline), measured "
                  "(paper Tables 13 and 14)", cells)
