"""RD plots of a sweep's points (``rd_plot.png``), and figures written atomically as PNG."""

from __future__ import annotations

import io
from pathlib import Path

from dsc.catalog.gaussian import NO_SIDE_INFO, WYNER_ZIV
from dsc.io import atomic_write_bytes
from dsc.paper import PAPER_MNIST_MSE, PAPER_TABLES
from dsc.report.collect import distortion_label, is_checked, is_codec_point, point_scale


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

    gaussian = [p for p in points if point_scale(p) == "db" and "rate_bits" in p and not is_checked(p)]
    practical = [p for p in points if is_checked(p) and "accept_rate" in p]
    mnist = [p for p in points if point_scale(p) == "linear" and "rate_bits" in p]
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
        coded = [p for p in mnist if not is_codec_point(p) and not is_checked(p)]
        _plot_practical(ax, practical, "practical_mse")
        for scheme, k, style, color, curve in _curves(coded):
            rates = [p["rate_bits"] for p in curve]
            ax.errorbar(rates, [p["mse"] for p in curve], yerr=[2 * p.get("mse_se", 0) for p in curve],
                        color=color, markersize=3, capsize=2, label=f"{scheme}, K={k}", **style)
            table = PAPER_MNIST_MSE.get(scheme, {}) if curve[0].get("source") == "mnist" else {}
            paper = [(r, table[(k, r)]) for r in rates if (k, r) in table]
            if paper and not (scheme != "gls" and k == 1):  # at K = 1 the baseline is GLS
                ax.plot(*zip(*paper), linestyle="none", marker="x" if scheme == "gls" else "+", color=color,
                        markersize=6, label=f"paper {PAPER_TABLES[scheme]}, {scheme}, K={k}")
        codecs = [p for p in mnist if is_codec_point(p)]
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
        names = sorted({str(p.get("source", "mnist")) for p in mnist})
        ax.set_title(f"{', '.join(names)} right halves: best-of-K MSE (error bars: 2 SE)")
        ylabel, xlabel = distortion_label(mnist, "MSE per pixel (pixels in [0, 1])"), "rate (bits per image half)"
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


def _plot_practical(ax, points: list[dict], key: str) -> None:
    """Any-pass curves at rate = label bits + c, one per (scheme, K, c)."""
    import matplotlib.pyplot as plt

    for i, c in enumerate(sorted({p["check_bits"] for p in points})):
        for scheme, k, _, _, curve in _curves([p for p in points if p["check_bits"] == c]):
            ax.plot([p["rate_bits"] + c for p in curve], [p[key] for p in curve], linestyle=":", marker="x",
                    color=plt.cm.autumn(i / max(1, len({p["check_bits"] for p in points}) - 1) * 0.8),
                    label=f"{scheme}, K={k}, {c} check bits: any-pass")
