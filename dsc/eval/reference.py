"""Published figures that measured results are compared against (cited, not computed here).

``PAPER_MNIST_GLS_MSE``: Table 13 of the GLS paper, GLS on MNIST right halves, per-pixel MSE
(pixels in [0, 1]) of the best of K decoders, keyed by (K, rate bits); its N and beta were
chosen on validation data (standard errors 1e-4 to 2e-4).
"""

from __future__ import annotations

PAPER_MNIST_GLS_MSE: dict[tuple[int, int], float] = {
    (1, 2): 0.1027, (1, 3): 0.0942, (1, 4): 0.0852, (1, 5): 0.0766, (1, 6): 0.0693,
    (2, 2): 0.0860, (2, 3): 0.0792, (2, 4): 0.0734, (2, 5): 0.0687, (2, 6): 0.0636,
    (3, 2): 0.0791, (3, 3): 0.0738, (3, 4): 0.0694, (3, 5): 0.0660, (3, 6): 0.0599,
    (4, 2): 0.0751, (4, 3): 0.0710, (4, 4): 0.0671, (4, 5): 0.0635, (4, 6): 0.0564,
}


def paper_comparison_table(points: list[dict]) -> str | None:
    """Markdown K x rate table of measured GLS ``mse`` vs Table 13: ``measured (paper, +x %)``.
    None when no GLS point has a published counterpart."""
    cells = {(p["num_decoders"], p["rate_bits"]): p["mse"] for p in points
             if p.get("scheme") == "gls" and "mse" in p and (p.get("num_decoders"), p.get("rate_bits")) in PAPER_MNIST_GLS_MSE}
    if not cells:
        return None
    rates = sorted({r for _, r in cells})
    lines = ["**gls vs paper Table 13**: measured MSE (paper, relative difference)", "",
             "| K \\ R bits | " + " | ".join(str(r) for r in rates) + " |", "|---" * (len(rates) + 1) + "|"]
    for k in sorted({k for k, _ in cells}):
        row = []
        for r in rates:
            if (k, r) in cells:
                paper = PAPER_MNIST_GLS_MSE[(k, r)]
                row.append(f"{cells[(k, r)]:.4f} ({paper:.4f}, {100 * (cells[(k, r)] / paper - 1):+.1f} %)")
            else:
                row.append("")
        lines.append(f"| {k} | " + " | ".join(row) + " |")
    return "\n".join(lines) + "\n"
