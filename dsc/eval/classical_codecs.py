"""Classical image codecs on the right halves of grey images (MNIST's by default): a quality
sweep, rates from the real bytes.

Each point is one (codec, quality): every right half of the split (28x14, 8 bits per pixel,
exactly the dataset's pixels) is encoded on its own; ``rate_bits`` is the mean of
``len(bytes) * 8`` per image half (headers included: that is what a user would store or send),
``mse`` the per-pixel squared error with pixels in [0, 1] as for GLS, ``psnr_db`` (mean
per-image PSNR) and ``ssim`` (:mod:`dsc.eval.image_metrics`), and the encode and decode
throughput in images per second. No side information is used (K = 1).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from dsc.baselines import image_codecs
from dsc.baselines.image_codecs import DEFAULT_QUALITIES, QUALITY_RANGES, PillowCodec
from dsc.config import build
from dsc.errors import ConfigError
from dsc.eval.image_metrics import image_summary, mse_per_image, ssim_per_image
from dsc.eval.points import point_labels
from dsc.eval.stats import standard_error
from dsc.progress import progress_bar
from dsc.sources.datamodules import DEFAULT_IMAGE_DATA, SPLITS

log = logging.getLogger(__name__)


def right_halves(split: str, seed: int, limit: int | None, data: dict | None = None) -> tuple[torch.Tensor, str]:
    """``uint8`` right halves ``[n, H, W/2]`` of the val or test split of the grey image data
    ``data`` (a data module config; None: MNIST, embedded), and the data's origin."""
    if split not in SPLITS:
        raise ConfigError(f"split must be val or test, got {split!r}")
    module = build({**(data or DEFAULT_IMAGE_DATA), "num_decoders": 1, "seed": seed, "limit": limit}, "data")
    module.setup()
    dataset = module.test_set if split == "test" else module.val_set
    if dataset.image_shape[0] != 1:
        raise ConfigError(f"the classical codecs code grey images; {module.origin} has {dataset.image_shape[0]} "
                          "channels (source.channels=1 reads them as grey)")
    half = dataset.image_shape[2] // 2
    images = ((dataset.images[:, 0, :, half:] + 1) * 127.5).round().to(torch.uint8)
    return images, module.origin


@dataclass
class ClassicalImageRateDistortion:
    """A quality sweep of one Pillow codec (``PNG``, ``JPEG``, ``WEBP``, ``AVIF``, ``JPEG2000``).

    ``skip_if_unavailable``: a format the installed Pillow cannot write yields no points and a
    ``skipped`` reason (saved in metrics.json, listed by the aggregator) instead of an error, so
    that a comparison sweep still covers every other codec.
    """

    codec: str = "JPEG"
    qualities: list | None = None
    split: str = "test"
    limit: int | None = None
    data: dict | None = None  # the image data module's config (``_target_`` ...; None: MNIST, embedded)
    source: str = "mnist"  # the source the points are labelled with
    progress: bool = True
    skip_if_unavailable: bool = False

    def __post_init__(self) -> None:
        name = str(self.codec).upper()
        self.skipped = None
        available = image_codecs.available_codecs()
        if self.skip_if_unavailable and name in QUALITY_RANGES and name not in available:
            self.skipped = f"this Pillow cannot write {name} (available: {', '.join(available)})"
            self.codecs = []
            return
        qualities = list(self.qualities) if self.qualities is not None else DEFAULT_QUALITIES.get(name, [None])
        self.codecs = [PillowCodec(name, q) for q in qualities]  # validates codec and qualities
        if self.split not in ("val", "test"):
            raise ConfigError(f"split must be val or test, got {self.split!r}")

    def run(self, seed: int, device: torch.device, output_dir: Path) -> list[dict]:
        if self.skipped:
            log.warning("skipped: %s", self.skipped)
            return []
        images, origin = right_halves(self.split, seed, self.limit, self.data)
        log.info("data: %s, %s split, %d right halves; codecs run on the CPU (Pillow)", origin, self.split,
                 images.shape[0])
        points = []
        for codec in progress_bar(self.codecs, desc=f"{self.codecs[0].format} qualities", unit="quality",
                          disable=not self.progress):
            start = time.perf_counter()
            streams = codec.encode(images)
            encoded = time.perf_counter()
            decoded = codec.decode(streams)
            done = time.perf_counter()
            bits = torch.tensor([8 * len(s) for s in streams], dtype=torch.float64)
            pixels = [(t.double() / 255)[:, None] for t in (decoded, images)]  # [n, 1, 28, 14] in [0, 1]
            mse, ssim = mse_per_image(*pixels), ssim_per_image(*pixels)
            n = images.shape[0]
            points.append({
                **point_labels(self.source, "classical_codec"), "scheme": codec.format.lower(), "codec": codec.format,
                "quality": codec.quality,
                "num_decoders": 1, "side_information": "none", "split": self.split, "digits": n,
                "rate_bits": bits.mean().item(), "rate_bits_se": standard_error(bits),
                "bits_per_pixel": bits.mean().item() / images[0].numel(),
                "mse": mse.mean().item(), "mse_se": standard_error(mse), **image_summary(mse, ssim),
                "encode_images_per_s": n / (encoded - start), "decode_images_per_s": n / (done - encoded),
                "data": origin,
            })
            log.info("%s: %.1f bits per image half, mse %.5f, psnr %.2f dB, ssim %.3f, encode %.0f / decode %.0f "
                     "images/s", codec.name, points[-1]["rate_bits"], points[-1]["mse"], points[-1]["psnr_db"],
                     points[-1]["ssim"], points[-1]["encode_images_per_s"], points[-1]["decode_images_per_s"])
        return points
