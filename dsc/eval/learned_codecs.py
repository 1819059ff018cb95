"""A trained learned baseline codec on MNIST right halves: real bytes from ``compress()``.

One job evaluates one checkpoint (one side-information mode, one lambda) on a split: every
right half is compressed to its own byte string (decoder 0's crop as side information where the
mode uses it) and decoded by K decoders, decoder k with its own crop where the mode gives the
decoder one (``decoder``: the learned Wyner-Ziv codec), scored like GLS by the best of K (the
same oracle) and the mean over decoders (``per_decoder_mse``); one point per K of
``num_decoders``. Mode ``both`` conditions the encoder on decoder 0's crop too, so it is a
one-decoder scheme: its points are K = 1 only. ``rate_bits`` is the mean ``len(bytes) * 8`` per image half,
``batch_stream_rate_bits`` the same with each batch coded as one stream (the coder's fixed
flush and padding, about 48 bits, paid once per batch instead of per image), and
``estimated_rate_bits`` the entropy model's estimate beside them; ``mse`` per pixel with pixels in
[0, 1], ``psnr_db`` (mean per-image PSNR) and ``ssim`` (:mod:`dsc.eval.image_metrics`); encode
and decode throughput in images per second.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import torch
from torch import Tensor

from dsc.errors import ConfigError
from dsc.eval.image_metrics import image_summary, mse_per_image, ssim_per_image, unit_pixels
from dsc.eval.image_point import check_num_decoders, split_dataset
from dsc.eval.points import point_labels
from dsc.eval.stats import standard_error
from dsc.lit.checkpoint import load_module
from dsc.lit.learned_module import LearnedCodecModule, rate_in_bits

log = logging.getLogger(__name__)


def load_learned_codec(ckpt_path: str | Path | None) -> LearnedCodecModule:
    """Load a trained learned baseline codec."""
    return load_module(LearnedCodecModule, ckpt_path, "a learned baseline codec (model=learned_codec)",
                       "python train.py model=learned_codec")


@dataclass
class LearnedCodecRateDistortion:
    """Trained learned codecs on ``split`` (val or test): ``ckpt_path`` one checkpoint, or
    ``ckpt_paths`` several (a lambda sweep, several side-information modes), one point each."""

    ckpt_path: str | None = None
    split: str = "test"
    limit: int | None = None
    batch_size: int = 500
    data: dict | None = None  # the image data module's config (``_target_`` ...; None: MNIST, embedded)
    source: str = "mnist"  # the source the points are labelled with
    ckpt_paths: list | None = None
    num_decoders: Any = 1  # K, or a list of K: one point per K (best of K decoders, each with its crop)

    def __post_init__(self) -> None:
        if self.split not in ("val", "test"):
            raise ConfigError(f"split must be val or test, got {self.split!r}")
        several = isinstance(self.num_decoders, Sequence) and not isinstance(self.num_decoders, str)
        self.ks = sorted({check_num_decoders(k) for k in (self.num_decoders if several else [self.num_decoders])})
        if not self.ks:
            raise ConfigError("num_decoders is empty: give K or a list of K, e.g. [1, 2, 4]")
        paths = list(self.ckpt_paths or []) + ([self.ckpt_path] if self.ckpt_path is not None else [])
        # nothing at all: load_learned_codec says what to pass; an explicit empty list (a
        # comparison run without learned codecs) evaluates nothing
        self.paths = [str(p) for p in paths] or ([] if self.ckpt_paths is not None else [None])

    def run(self, seed: int, device: torch.device, output_dir: Path) -> list[dict]:
        if not self.paths:
            log.info("no learned codec checkpoints given (learned_ckpt_paths=[...]): nothing to evaluate")
        return [point for path in self.paths for point in self._points(path, seed, device)]

    @torch.no_grad()
    def _points(self, ckpt_path: str | None, seed: int, device: torch.device) -> list[dict]:
        module = load_learned_codec(ckpt_path).to(device)
        codec, hp = module.codec, module.hparams
        codec.update()
        ks = [1] if hp.side_info == "both" else self.ks
        if ks != self.ks:
            log.info("side information both: the encoder uses decoder 0's crop, a one-decoder scheme: K = 1 only")
        dataset, origin = split_dataset(module, self.split, max(ks), seed, self.limit, self.data)
        log.info("data: %s, %s split, %d right halves, %d decoders | device: %s", origin, self.split, len(dataset),
                 max(ks), device)
        bits, estimated, errors, similarities, encode_s, decode_s, stream_bits = [], [], [], [], 0.0, 0.0, 0
        for start in range(0, len(dataset), self.batch_size):
            source, side = (t.to(device) for t in dataset.batch(torch.arange(start, min(start + self.batch_size,
                                                                                          len(dataset)))))
            crop = side[:, 0]
            tick = time.perf_counter()
            strings = codec.compress(source, crop)
            tock = time.perf_counter()
            reconstruction = codec.decompress(strings, crop)
            encode_s, decode_s = encode_s + tock - tick, decode_s + time.perf_counter() - tock
            decoded = [reconstruction] + [codec.decompress(strings, side[:, k]) for k in range(1, max(ks))]
            bits += [8 * len(s) for s in strings]
            stream_bits += 8 * len(codec.compress_batch(source, crop))
            estimated.append(rate_in_bits(codec(source, crop)[1]).cpu())
            truth = unit_pixels(source)  # [B, 1, 28, 14] in [0, 1]
            errors.append(torch.stack([mse_per_image(unit_pixels(r), truth).cpu() for r in decoded], dim=1))
            similarities.append(torch.stack([ssim_per_image(unit_pixels(r), truth).double().cpu() for r in decoded],
                                            dim=1))
        n = len(bits)
        bits_t, mse, ssim = torch.tensor(bits, dtype=torch.float64), torch.cat(errors), torch.cat(similarities)
        common = {
            **point_labels(self.source, "learned_codec"), "scheme": f"learned_{hp.side_info}", "lmbda": float(hp.lmbda),
            "side_information": hp.side_info, "split": self.split, "digits": n,
            "rate_bits": bits_t.mean().item(), "rate_bits_se": standard_error(bits_t),
            "estimated_rate_bits": torch.cat(estimated).double().mean().item(),
            "batch_stream_rate_bits": stream_bits / n,
            "encode_images_per_s": n / encode_s, "decode_images_per_s": n / decode_s,
            "data": origin, "ckpt_path": str(ckpt_path),
        }
        points = [{**common, "num_decoders": k, **_decoders_summary(mse[:, :k], ssim[:, :k])} for k in ks]
        for point in points:
            log.info("learned codec (side information: %s, lambda %g), K = %d: %.1f bits per image half from the "
                     "bytes (%.1f in batch streams; estimated %.1f), mse %.5f (best of K), psnr %.2f dB, ssim %.3f",
                     hp.side_info, hp.lmbda, point["num_decoders"], point["rate_bits"],
                     point["batch_stream_rate_bits"], point["estimated_rate_bits"], point["mse"], point["psnr_db"],
                     point["ssim"])
        return points


def _decoders_summary(mse: Tensor, ssim: Tensor) -> dict:
    """Best-of-K and per-decoder figures of per-image MSEs and SSIMs ``[n, K]``."""
    best = mse.min(dim=1).values
    per_decoder = mse.mean(dim=1)
    summary = image_summary(mse, ssim) if mse.shape[1] > 1 else image_summary(mse[:, 0], ssim[:, 0])
    return {"mse": best.mean().item(), "mse_se": standard_error(best), "per_decoder_mse": per_decoder.mean().item(),
            **summary}
