"""Figures of the MNIST codec: reconstructions per decoder with successes and failures marked
(drawing only; :func:`dsc.eval.image_point.save_reconstruction_grid` codes the digits shown)."""

from __future__ import annotations

import io
from pathlib import Path

import torch
from torch import Tensor

from dsc.coding import ImportanceCoder
from dsc.io import atomic_write_bytes

SUCCESS, FAILURE = "#1a9850", "#d73027"


def pick_examples(match: Tensor, count: int) -> Tensor:
    """Indices of up to ``count`` digits: the first half where some decoder matched the
    encoder's candidate, the rest where none did (topped up from either kind) -> ``[m]``."""
    any_match = match.any(dim=1)
    hits, misses = torch.nonzero(any_match).squeeze(1), torch.nonzero(~any_match).squeeze(1)
    take_misses = min(misses.numel(), count // 2)
    take_hits = min(hits.numel(), count - take_misses)
    take_misses = min(misses.numel(), count - take_hits)
    return torch.cat([hits[:take_hits], misses[:take_misses]]).sort().values


def draw_reconstruction_grid(split, coder: ImportanceCoder, index: Tensor, coded, path: Path) -> Path:
    """One row per digit of ``index`` ``[m]``: the true right half, then per decoder its crop and
    its reconstruction, framed green where the decoder picked the encoder's candidate and red
    where it did not, titled with its MSE. ``split`` holds ``source`` ``[n, 1, 28, 14]`` and
    ``side_info`` ``[n, K, 1, c, c]``; ``coded`` is those digits' :class:`dsc.pipeline.Coded`."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    recon, matched = coded.decoded.picked, coded.match
    k = coder.num_decoders
    to_image = lambda t: ((t.squeeze(0).float().cpu() + 1) / 2).clamp(0, 1).numpy()  # noqa: E731
    widths = [1.0] + [0.6, 1.0] * k
    fig, axes = plt.subplots(len(index), 1 + 2 * k, figsize=(0.75 * sum(widths) + 0.5, 1.25 * len(index) + 0.6),
                             gridspec_kw={"width_ratios": widths}, squeeze=False)
    for row, digit in enumerate(index.tolist()):
        axes[row, 0].imshow(to_image(split.source[digit]), cmap="gray", vmin=0, vmax=1)
        axes[row, 0].set_ylabel(f"#{digit}", fontsize=7)
        for j in range(k):
            crop_ax, recon_ax = axes[row, 1 + 2 * j], axes[row, 2 + 2 * j]
            crop_ax.imshow(to_image(split.side_info[digit, j]), cmap="gray", vmin=0, vmax=1)
            recon_ax.imshow(to_image(recon[row, j]), cmap="gray", vmin=0, vmax=1)
            mse = ((recon[row, j] - split.source[digit]) / 2).pow(2).mean().item()
            recon_ax.set_title(f"{mse:.3f}", fontsize=6, pad=2)
            frame(recon_ax, bool(matched[row, j]))
    title = (f"{coder.scheme.value}, K={k}, {coder.rate_bits:g} bits, N={coder.num_candidates}: "
             "green = decoder picked the encoder's candidate, red = it did not (titles: MSE)")
    return save_grid(fig, axes, [1 + 2 * j for j in range(k)], title, path)


def frame(ax, matched: bool) -> None:
    """Frame a reconstruction green where its decoder picked the encoder's candidate, red where not."""
    for spine in ax.spines.values():
        spine.set_edgecolor(SUCCESS if matched else FAILURE)
        spine.set_linewidth(2.5)


def save_grid(fig, axes, crop_columns: list[int], title: str, path: Path) -> Path:
    """Finish a grid of digits (no ticks; column 0 titled ``source``, ``crop_columns`` ``crop j``;
    ``title`` above) and write it as a PNG, atomically."""
    import matplotlib.pyplot as plt

    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    axes[0, 0].set_title("source", fontsize=7)
    for j, column in enumerate(crop_columns):
        axes[0, column].set_title(f"crop {j}", fontsize=6, pad=2)
    fig.suptitle(title, fontsize=7)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    plt.close(fig)
    return atomic_write_bytes(path, buffer.getvalue())
