"""The study's reconstruction figure: test digits coded with GLS at one (K, rate) point, and per
decoder its crop and its output under each decoder of the study (the codec's decoder on the
pick, the pick-aware decoder, the crop-only decoder), framed green where the decoder picked the
encoder's candidate and red where it did not; half the digits are ones no decoder matched.

    python -m studies.mnist_decoders.figure outputs/mnist_decoders results/mnist_decoders/reconstructions.png
"""

from __future__ import annotations

import argparse
import logging
import textwrap
from pathlib import Path
from typing import Sequence

import torch

from dsc.errors import DscError
from dsc.eval.image_figures import frame, pick_examples, save_grid
from dsc.eval.image_point import SplitFeatures, code_images, make_coder, pick_decoder_estimate, split_dataset
from dsc.helptext import HelpFormatter, first_paragraph
from dsc.lit.image_module import load_codec
from dsc.lit.pick_decoder_module import load_pick_decoder

CPU = torch.device("cpu")
TITLES = {"pick": "pick", "trained": "trained", "crop_only": "crop only"}


def decoder_outputs(codec_ckpt: str, decoders: dict[str, str | None], num_decoders: int, rate_bits: int,
                    count: int, limit: int, seed: int = 0, num_candidates: int = 128):
    """Code the first ``limit`` test digits, choose ``count`` (half with some decoder matched) and
    decode them with each of ``decoders`` (name -> pick-aware decoder checkpoint, None: the
    codec's decoder) -> (split, index ``[m]``, match ``[m, K]``, name -> outputs ``[m, K, 1, 28, 14]``)."""
    codec = load_codec(codec_ckpt)
    estimates = {name: None if ckpt is None else pick_decoder_estimate(ckpt, codec, codec_ckpt, CPU)
                 for name, ckpt in decoders.items()}
    dataset, _ = split_dataset(codec, "test", num_decoders, seed, limit)
    split = SplitFeatures.compute(codec.nets, dataset, CPU)
    coder = make_coder(seed, codec.hparams.latent_dim, "gls", num_decoders, rate_bits, num_candidates)
    index = pick_examples(code_images(codec.nets, split, coder, torch.arange(split.num_digits)).match, count)
    coded = {name: code_images(codec.nets, split, coder, index, estimate=estimate)
             for name, estimate in estimates.items()}
    match = next(iter(coded.values())).match
    return split, index, match, {name: c.decoded.picked for name, c in coded.items()}


def draw(split, index, match, outputs: dict, title: str, path: Path) -> Path:
    """One row per digit: its right half, then per decoder its crop and each output (titled with
    its MSE, framed by whether the decoder's pick was the encoder's candidate)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    k, names = match.shape[1], list(outputs)
    per_decoder = 1 + len(names)
    widths = [1.0] + ([0.6] + [1.0] * len(names)) * k
    fig, axes = plt.subplots(len(index), len(widths), figsize=(0.75 * sum(widths) + 0.5, 1.25 * len(index) + 0.7),
                             gridspec_kw={"width_ratios": widths}, squeeze=False)
    to_image = lambda t: ((t.squeeze(0).float().cpu() + 1) / 2).clamp(0, 1).numpy()  # noqa: E731
    for row, digit in enumerate(index.tolist()):
        source = split.source[digit]
        axes[row, 0].imshow(to_image(source), cmap="gray", vmin=0, vmax=1)
        axes[row, 0].set_ylabel(f"#{digit}", fontsize=7)
        for j in range(k):
            base = 1 + j * per_decoder
            axes[row, base].imshow(to_image(split.side_info[digit, j]), cmap="gray", vmin=0, vmax=1)
            for offset, name in enumerate(names, start=1):
                ax, recon = axes[row, base + offset], outputs[name][row, j]
                ax.imshow(to_image(recon), cmap="gray", vmin=0, vmax=1)
                mse = f"{((recon - source) / 2).pow(2).mean().item():.3f}"
                ax.set_title(f"{TITLES.get(name, name)}\n{mse}" if row == 0 else mse, fontsize=6, pad=2)
                frame(ax, bool(match[row, j]))
    crops = [1 + j * per_decoder for j in range(k)]
    return save_grid(fig, axes, crops, textwrap.fill(title, int(12 * sum(widths))), path)


def write_figure(runs: str | Path, path: str | Path, codec_ckpt: str | None = None, num_decoders: int = 1,
                 rate_bits: int = 4, count: int = 8, limit: int = 500) -> Path:
    """The figure of the decoders trained under ``runs/train`` (the codec: ``codec_ckpt``, or
    the one the pick-aware decoder names)."""
    runs = Path(runs)
    decoders: dict[str, str | None] = {"pick": None}
    for name in ("trained", "crop_only"):
        ckpt = runs / "train" / name / "checkpoints" / "best.ckpt"
        if not ckpt.is_file():
            raise DscError(f"no {name} decoder at {ckpt}; run studies/mnist_decoders/run.sh first")
        decoders[name] = str(ckpt)
    codec_ckpt = codec_ckpt or load_pick_decoder(decoders["trained"]).hparams.codec_ckpt
    with torch.no_grad():
        split, index, match, outputs = decoder_outputs(codec_ckpt, decoders, num_decoders, rate_bits, count, limit)
    title = (f"gls, K={num_decoders}, {rate_bits} bits, N=128: per decoder its crop and the outputs of the codec's "
             "decoder (pick), the pick-aware decoder (trained) and the crop-only decoder; green = the decoder picked "
             "the encoder's candidate, red = it did not (titles: MSE)")
    return draw(split, index, match, outputs, title, Path(path))


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m studies.mnist_decoders.figure",
                                     description=first_paragraph(__doc__), formatter_class=HelpFormatter)
    parser.add_argument("runs", help="the study's output folder (train/trained and train/crop_only runs)")
    parser.add_argument("path", help="the PNG to write")
    parser.add_argument("--codec", help="the codec's checkpoint (default: the one the pick-aware decoder names)")
    parser.add_argument("--num-decoders", type=int, default=1, help="K")
    parser.add_argument("--rate-bits", type=int, default=4, help="log2 L_max")
    parser.add_argument("--count", type=int, default=8, help="digits shown")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        print(write_figure(args.runs, args.path, args.codec, args.num_decoders, args.rate_bits, args.count))
    except DscError as error:
        parser.exit(2, f"error: {error}\n")


if __name__ == "__main__":
    main()
