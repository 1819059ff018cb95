"""Classical image codecs through Pillow, on grayscale images, with rates from the real bytes.

``PillowCodec(format, quality)`` encodes ``uint8`` images ``[n, H, W]`` to one byte string
each and decodes them back. ``quality`` means what the format's encoder means by it:

- ``PNG``: lossless, no quality;
- ``JPEG``: 1 .. 95 (Pillow's quality scale);
- ``WEBP``, ``AVIF``: 0 .. 100 (lossy mode);
- ``JPEG2000``: the target PSNR in dB, 10 .. 80 (OpenJPEG's "dB" quality mode).
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from dsc.errors import ConfigError, InvalidArgumentError

QUALITY_RANGES: dict[str, tuple[int, int] | None] = {
    "PNG": None, "JPEG": (1, 95), "WEBP": (0, 100), "AVIF": (0, 100), "JPEG2000": (10, 80),
}
DEFAULT_QUALITIES: dict[str, list[int | None]] = {
    "PNG": [None], "JPEG": [5, 10, 20, 35, 50, 75, 95], "WEBP": [0, 10, 25, 50, 75, 100],
    "AVIF": [0, 10, 25, 50, 75, 100], "JPEG2000": [15, 20, 25, 30, 40, 50],
}
_FEATURES = {"WEBP": "webp", "AVIF": "avif", "JPEG2000": "jpg_2000", "JPEG": "jpg", "PNG": "zlib"}


def available_codecs() -> list[str]:
    """The formats of :data:`QUALITY_RANGES` that the installed Pillow can write."""
    from PIL import Image, features

    Image.init()
    return [name for name in QUALITY_RANGES if name in Image.SAVE and features.check(_FEATURES[name])]


@dataclass(frozen=True)
class PillowCodec:
    """One Pillow format at one quality (see the module docstring)."""

    format: str
    quality: int | None = None

    def __post_init__(self) -> None:
        name = str(self.format).upper()
        object.__setattr__(self, "format", name)
        if name not in QUALITY_RANGES:
            raise ConfigError(f"unknown image codec {self.format!r}; choose one of {', '.join(QUALITY_RANGES)}")
        if name not in available_codecs():
            raise ConfigError(f"this Pillow cannot write {name}; available here: {', '.join(available_codecs())}")
        limits = QUALITY_RANGES[name]
        if limits is None:
            if self.quality is not None:
                raise ConfigError(f"{name} is lossless and takes no quality (got {self.quality!r}); use null")
            return
        low, high = limits
        if isinstance(self.quality, bool) or not isinstance(self.quality, int) or not low <= self.quality <= high:
            raise ConfigError(f"{name} quality must be an integer in [{low}, {high}], got {self.quality!r}")

    @property
    def name(self) -> str:
        return self.format if self.quality is None else f"{self.format} q={self.quality}"

    def _options(self) -> dict:
        if self.format == "PNG":
            return {"optimize": True}
        if self.format == "JPEG2000":
            return {"quality_mode": "dB", "quality_layers": [float(self.quality)]}
        if self.format == "WEBP":
            return {"quality": self.quality, "method": 6}
        return {"quality": self.quality}

    def encode(self, images: Tensor) -> list[bytes]:
        """``uint8`` images ``[n, H, W]`` -> one byte string per image."""
        from PIL import Image

        if not isinstance(images, Tensor) or images.dtype != torch.uint8 or images.dim() != 3:
            raise InvalidArgumentError("images must be a uint8 tensor [n, H, W]")
        streams = []
        for image in images.cpu().numpy():
            buffer = io.BytesIO()
            Image.fromarray(image, mode="L").save(buffer, format=self.format, **self._options())
            streams.append(buffer.getvalue())
        return streams

    def decode(self, streams: list[bytes]) -> Tensor:
        """Byte strings -> ``uint8`` images ``[n, H, W]``; a stream that is not a valid image of
        this format raises InvalidArgumentError."""
        from PIL import Image, UnidentifiedImageError

        images = []
        for i, data in enumerate(streams):
            try:
                with Image.open(io.BytesIO(data), formats=[self.format]) as image:
                    images.append(np.asarray(image.convert("L")))
            except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as error:
                raise InvalidArgumentError(f"stream {i} is not a valid {self.format} image: {error}") from error
        return torch.from_numpy(np.stack(images)) if images else torch.zeros(0, 0, 0, dtype=torch.uint8)
