"""Learned image codecs on CompressAI's factorised entropy model, for MNIST right halves.

Shapes: source ``[B, 1, 28, 14]`` in [-1, 1]; crop ``[B, 1, c, c]``; latent ``y``
``[B, M, 7, 4]`` (two stride-2 convolutions), coded with an ``EntropyBottleneck``. The side
information mode says who sees the crop (through a projection, broadcast over the latent grid):

- ``none``: nobody (a plain learned codec);
- ``decoder``: the decoder only (the learned Wyner-Ziv setting);
- ``both``: encoder and decoder (conditional coding; an upper reference for ``decoder``).
"""

from __future__ import annotations

import torch
from compressai.entropy_models import EntropyBottleneck
from torch import Tensor, nn

from dsc.errors import ConfigError, ShapeMismatchError
from dsc.models.image_codec import Projection

SIDE_INFO_MODES = ("none", "decoder", "both")
LATENT_GRID = (7, 4)


class LearnedImageCodec(nn.Module):
    """Encoder, entropy bottleneck and decoder (see the module docstring)."""

    def __init__(self, side_info: str = "none", latent_channels: int = 16, channels: int = 64, crop_size: int = 7,
                 features: int = 64) -> None:
        super().__init__()
        if side_info not in SIDE_INFO_MODES:
            raise ConfigError(f"side_info must be one of {', '.join(SIDE_INFO_MODES)}, got {side_info!r}")
        self.side_info = side_info
        side = features if side_info != "none" else 0
        self.projection = Projection((1, crop_size, crop_size), features) if side else None
        self.analysis = nn.Sequential(
            nn.Conv2d(1, channels, 3, 2, 1), nn.GELU(),
            nn.Conv2d(channels, channels, 3, 2, 1), nn.GELU(),
        )
        self.to_latent = nn.Conv2d(channels + (side if side_info == "both" else 0), latent_channels, 1)
        self.entropy_bottleneck = EntropyBottleneck(latent_channels)
        self.synthesis = nn.Sequential(
            nn.Conv2d(latent_channels + side, channels, 3, 1, 1), nn.GELU(),
            nn.ConvTranspose2d(channels, channels, 3, 2, 1, output_padding=(1, 0)), nn.GELU(),
            nn.ConvTranspose2d(channels, 1, 3, 2, 1, output_padding=(1, 1)),
        )

    def _side_map(self, side_info: Tensor | None, batch: int) -> Tensor | None:
        """Crops ``[B, 1, c, c]`` -> projected features broadcast over the latent grid ``[B, F, 7, 4]``."""
        if self.projection is None:
            return None
        if side_info is None or side_info.shape[0] != batch:
            raise ShapeMismatchError(f"side_info={self.side_info!r} needs one crop per image, got "
                                     f"{None if side_info is None else tuple(side_info.shape)} for {batch} images")
        return self.projection(side_info)[:, :, None, None].expand(-1, -1, *LATENT_GRID)

    def _latent(self, source: Tensor, side: Tensor | None) -> Tensor:
        if source.dim() != 4 or tuple(source.shape[1:]) != (1, 28, 14):
            raise ShapeMismatchError(f"source must be [B, 1, 28, 14], got {tuple(source.shape)}")
        h = self.analysis(source)
        return self.to_latent(h if self.side_info != "both" else torch.cat([h, side], dim=1))

    def _synthesise(self, y_hat: Tensor, side: Tensor | None) -> Tensor:
        """A linear output (a tanh can saturate for good and stop training), clamped to the
        pixel range [-1, 1] outside training."""
        x = self.synthesis(y_hat if side is None else torch.cat([y_hat, side], dim=1))
        return x if self.training else x.clamp(-1.0, 1.0)

    def forward(self, source: Tensor, side_info: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """Reconstruction ``[B, 1, 28, 14]`` and latent likelihoods ``[B, M, 7, 4]`` (noisy
        quantisation in training mode, rounding in eval mode)."""
        side = self._side_map(side_info, source.shape[0])
        y_hat, likelihoods = self.entropy_bottleneck(self._latent(source, side))
        return self._synthesise(y_hat, side), likelihoods

    @torch.no_grad()
    def compress(self, source: Tensor, side_info: Tensor | None = None) -> list[bytes]:
        """One byte string per image (call ``update()`` after training first)."""
        side = self._side_map(side_info, source.shape[0])
        return self.entropy_bottleneck.compress(self._latent(source, side))

    @torch.no_grad()
    def decompress(self, strings: list[bytes], side_info: Tensor | None = None) -> Tensor:
        """Byte strings (and the decoder's crops) -> reconstructions ``[B, 1, 28, 14]``."""
        side = self._side_map(side_info, len(strings))
        return self._synthesise(self.entropy_bottleneck.decompress(strings, LATENT_GRID), side)

    @torch.no_grad()
    def compress_batch(self, source: Tensor, side_info: Tensor | None = None) -> bytes:
        """All images of a batch in one byte string (one entropy-coder stream, so the coder's
        fixed flush and padding are paid once, not per image)."""
        side = self._side_map(side_info, source.shape[0])
        y = self._latent(source, side)  # [B, M, 7, 4] -> [1, M, 7, B * 4]
        return self.entropy_bottleneck.compress(y.permute(1, 2, 0, 3).reshape(1, y.shape[1], LATENT_GRID[0], -1))[0]

    @torch.no_grad()
    def decompress_batch(self, string: bytes, count: int, side_info: Tensor | None = None) -> Tensor:
        """The inverse of :meth:`compress_batch` for ``count`` images -> ``[count, 1, 28, 14]``."""
        rows, cols = LATENT_GRID
        y_hat = self.entropy_bottleneck.decompress([string], (rows, cols * count))  # [1, M, 7, count * 4]
        y_hat = y_hat.view(y_hat.shape[1], rows, count, cols).permute(2, 0, 1, 3)
        return self._synthesise(y_hat, self._side_map(side_info, count))

    def update(self) -> None:
        """Build the entropy coder's CDF tables from the trained density."""
        self.entropy_bottleneck.update(force=True)
