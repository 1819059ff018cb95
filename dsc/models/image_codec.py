"""The image codec's networks (the paper's Table 12, sized from the shapes): encoder,
side-information projection, decoder and estimator, for images ``(C, H, W)`` whose right half is
the source and side information of any shape ``(C_s, h, w)`` (dsc.sources.images).

Shapes: source ``[B, C, H, W/2]`` in [-1, 1]; side information ``[B, C_s, h, w]``; latent
``[B, latent_dim]``. The encoder sees the half placed on the right of an H x W canvas filled with
-1 (the background), and two stride-2 convolutions bring it to ``ceil(H/4) x ceil(W/4)``; the
decoder draws a canvas of that size times 4 and its right half (cut to H x W/2) is the
reconstruction. For MNIST (1, 28, 28) with 7 x 7 crops these are exactly the paper's layers.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dsc.coding.validation import check_positive_int
from dsc.errors import ConfigError
from dsc.models.network_model import EstimatorLogRatio, NetworkCodingModel
from dsc.models.posterior import INITIAL_LOG_VAR, Posterior, PosteriorLogRatio

MNIST_IMAGE = (1, 28, 28)


def halved(size: int, times: int = 1) -> int:
    """The size after ``times`` stride-2 convolutions of kernel 3, padding 1."""
    for _ in range(times):
        size = math.ceil(size / 2)
    return size


def to_canvas(source: Tensor) -> Tensor:
    """``[B, C, H, W/2]`` -> ``[B, C, H, W]`` with the half on the right, -1 on the left."""
    return torch.cat([torch.full_like(source, -1.0), source], dim=-1)


class Encoder(nn.Module):
    """Right half ``[B, C, H, W/2]`` -> :class:`Posterior` over ``latent_dim`` dims."""

    def __init__(self, latent_dim: int = 4, channels: int = 128, hidden: int = 512,
                 image_shape: tuple[int, int, int] = MNIST_IMAGE) -> None:
        super().__init__()
        colours, height, width = image_shape
        self.net = nn.Sequential(
            nn.Conv2d(colours, channels, 3, 1, 1), nn.ReLU(),
            nn.Conv2d(channels, channels, 3, 2, 1), nn.ReLU(),
            nn.Conv2d(channels, channels, 3, 2, 1), nn.ReLU(),
            nn.Flatten(), nn.Linear(channels * halved(height, 2) * halved(width, 2), hidden), nn.ReLU(),
            nn.Linear(hidden, 2 * latent_dim),
        )
        # Start with small posterior variances (log_var about -6), so that w carries the
        # source from the first step: with unit variances w starts as noise, the decoder
        # learns to ignore it and the posterior can collapse onto the prior for good.
        with torch.no_grad():
            self.net[-1].bias[latent_dim:].fill_(INITIAL_LOG_VAR)

    def forward(self, source: Tensor) -> Posterior:
        mean, log_var = self.net(to_canvas(source)).chunk(2, dim=-1)
        return Posterior(mean, log_var.clamp(-12.0, 6.0))


class Projection(nn.Module):
    """Side information ``[B, C_s, h, w]`` -> features ``[B, features]``."""

    def __init__(self, side_shape: tuple[int, int, int] = (1, 7, 7), features: int = 128, channels: int = 32) -> None:
        super().__init__()
        colours, height, width = side_shape
        self.net = nn.Sequential(
            nn.Conv2d(colours, channels, 3, 1, 1), nn.ReLU(),
            nn.Conv2d(channels, 2 * channels, 3, 2, 1), nn.ReLU(),
            nn.Flatten(), nn.Linear(2 * channels * halved(height) * halved(width), features), nn.ReLU(),
        )

    def forward(self, side_info: Tensor) -> Tensor:
        return self.net(side_info)


class Decoder(nn.Module):
    """``w`` ``[B, latent_dim]`` and projected side information ``[B, features]`` -> right
    half ``[B, C, H, W/2]`` in [-1, 1]."""

    def __init__(self, latent_dim: int = 4, features: int = 128, channels: int = 128, hidden: int = 512,
                 dropout: float = 0.5, image_shape: tuple[int, int, int] = MNIST_IMAGE) -> None:
        super().__init__()
        colours, self.height, self.width = image_shape
        self.channels, self.grid = channels, (halved(self.height, 2), halved(self.width, 2))
        self.fc = nn.Sequential(
            nn.Linear(latent_dim + features, hidden), nn.ReLU(),
            nn.Linear(hidden, channels * self.grid[0] * self.grid[1]), nn.ReLU(),
        )
        self.up = nn.Sequential(
            nn.ConvTranspose2d(channels, channels // 2, 3, 2, 1, 1), nn.ReLU(),
            nn.ConvTranspose2d(channels // 2, channels // 4, 3, 2, 1, 1), nn.Dropout(dropout), nn.ReLU(),
            nn.ConvTranspose2d(channels // 4, colours, 3, 1, 1, 0), nn.Tanh(),
        )

    def forward(self, w: Tensor, features: Tensor) -> Tensor:
        x = self.fc(torch.cat([w, features], dim=-1)).view(-1, self.channels, *self.grid)
        if x.device.type == "cpu" and not torch.is_grad_enabled():
            # CPU inference: transposed convolutions run about 1.7x faster channels-last (the
            # same values up to rounding); training's backward pass is slower that way
            x = x.contiguous(memory_format=torch.channels_last)
        canvas = self.up(x)
        if canvas.shape[-2:] != (self.height, self.width):  # sizes not multiples of 4: the canvas is larger
            canvas = canvas[..., : self.height, : self.width]
        return canvas[..., self.width // 2 :]


class Estimator(nn.Module):
    """Classifier of joint vs product pairs (w, side information): its logit
    ``log h / (1 - h)`` estimates ``log p(w | t) / p(w)``, the decoder's log importance weight.

    ``forward`` takes ``w`` ``[B, n, latent_dim]`` and side information ``[B, C_s, h, w]`` ->
    ``[B, n]``. The first layer is split so that a side information's share of it,
    :meth:`crop_bias`, is computed once and reused for every candidate scored against it
    (:meth:`logits`).
    """

    def __init__(self, latent_dim: int = 4, side_shape: tuple[int, int, int] = (1, 7, 7), features: int = 128,
                 hidden: int = 256) -> None:
        super().__init__()
        self.latent_dim = latent_dim
        self.projection = Projection(side_shape, features)
        self.net = nn.Sequential(
            nn.Linear(latent_dim + features, hidden), nn.ReLU(),
            nn.Linear(hidden, hidden), nn.ReLU(),
            nn.Linear(hidden, 1),
        )

    def crop_bias(self, side_info: Tensor) -> Tensor:
        """Side informations ``[..., C_s, h, w]`` -> their first-layer share ``[..., hidden]``."""
        lead = side_info.shape[:-3]
        features = self.projection(side_info.reshape(-1, *side_info.shape[-3:]))
        first = self.net[0]
        return F.linear(features, first.weight[:, self.latent_dim:], first.bias).view(*lead, -1)

    def logits(self, w: Tensor, crop_bias: Tensor) -> Tensor:
        """``w`` ``[B, n, latent_dim]`` against side biases ``[B, hidden]`` -> ``[B, n]``, or
        against ``[B, K, hidden]`` (K decoders per image) -> ``[B, K, n]``."""
        pre = F.linear(w, self.net[0].weight[:, : self.latent_dim])  # [B, n, hidden]
        if crop_bias.dim() == 3:
            pre = pre[:, None] + crop_bias[:, :, None, :]
        else:
            pre = pre + crop_bias[:, None, :]
        return self.net[1:](pre).squeeze(-1)

    def forward(self, w: Tensor, side_info: Tensor) -> Tensor:
        return self.logits(w, self.crop_bias(side_info))


class ImageCodecNetworks(nn.Module):
    """All networks of the image codec for images ``image_shape`` and side information
    ``side_shape`` (both ``(C, H, W)``), built from config values."""

    def __init__(self, latent_dim: int = 4, image_shape: tuple[int, int, int] = MNIST_IMAGE,
                 side_shape: tuple[int, int, int] = (1, 7, 7), features: int = 128, channels: int = 128,
                 hidden: int = 512, estimator_hidden: int = 256, dropout: float = 0.5) -> None:
        super().__init__()
        for name, value in (("latent_dim", latent_dim), ("features", features), ("hidden", hidden),
                            ("estimator_hidden", estimator_hidden)):
            check_positive_int(value, f"model.{name}")
        if not (isinstance(channels, int) and channels >= 4 and channels % 4 == 0):
            raise ConfigError(f"model.channels must be a positive multiple of 4, got {channels!r}")
        for name, shape in (("image_shape", image_shape), ("side_shape", side_shape)):
            if len(shape) != 3 or any(not isinstance(s, int) or s < 1 for s in shape):
                raise ConfigError(f"model.{name} must be three positive sizes (C, H, W), got {tuple(shape)}")
        self.latent_dim = latent_dim
        self.image_shape, self.side_shape = tuple(image_shape), tuple(side_shape)
        self.encoder = Encoder(latent_dim, channels, hidden, self.image_shape)
        self.projection = Projection(self.side_shape, features)
        self.decoder = Decoder(latent_dim, features, channels, hidden, dropout, self.image_shape)
        self.estimator = Estimator(latent_dim, self.side_shape, features, estimator_hidden)


class FeatureDecoding:
    """Reconstructions of an image coding model from its ``side_features`` (side information
    ``[B, K', ...]`` -> ``[B, K', features]``), ``nets.decoder`` and ``prior``: a pick
    ``[B, K', d]`` -> ``[B, K', C, H, W/2]``; the fallback decodes the prior mean (w = 0)."""

    def reconstruct(self, candidates: Tensor, side_information: Tensor) -> Tensor:
        features = self.side_features(side_information)
        recon = self.nets.decoder(candidates.flatten(0, 1).to(features.dtype), features.flatten(0, 1))
        return recon.view(*candidates.shape[:2], *recon.shape[1:])

    def fallback(self, side_information: Tensor) -> Tensor:
        zeros = torch.zeros(*side_information.shape[:2], self.prior.dim, device=side_information.device)
        return self.reconstruct(zeros, side_information)


class ImageModel(FeatureDecoding, NetworkCodingModel):
    """A trained image codec's networks as a :class:`dsc.pipeline.CodingModel`: sources are
    right halves ``[B, C, H, W/2]`` in [-1, 1], side information ``[B, K', C_s, h, w]``,
    reconstructions ``[B, K', C, H, W/2]``; the fallback decodes the prior mean (w = 0) with
    each decoder's side information."""

    def identity(self) -> dict:
        return {"model": "image", "latent_dim": self.prior.dim, "weights_sha256": self.weights_sha256}

    def encoder_log_weight(self, sources: Tensor) -> PosteriorLogRatio:
        return PosteriorLogRatio(self.nets.encoder(sources))

    def decoder_log_weight(self, side_information: Tensor) -> EstimatorLogRatio:
        return EstimatorLogRatio(self.nets.estimator, self.nets.estimator.crop_bias(side_information))

    def side_features(self, side_information: Tensor) -> Tensor:
        """The decoder's projection of each side information ``[B, K', C_s, h, w]`` -> ``[B, K', features]``."""
        features = self.nets.projection(side_information.flatten(0, 1))
        return features.view(*side_information.shape[:2], -1)
