"""The MNIST networks (paper Table 12): encoder, side-information projection, decoder, estimator.

Shapes: source (right half) ``[B, 1, 28, 14]`` in [-1, 1]; side information (crop)
``[B, 1, c, c]``; latent ``[B, latent_dim]``. The encoder sees the half placed on the right of a
28x28 canvas filled with -1 (the background), so its layers are the paper's; the decoder draws
a 28x28 canvas and its right half is the reconstruction.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dsc.coding.validation import check_positive_int
from dsc.errors import ConfigError
from dsc.models.network_model import EstimatorLogRatio, NetworkCodingModel
from dsc.models.posterior import INITIAL_LOG_VAR, Posterior, PosteriorLogRatio  # noqa: F401  (re-exported)

HALF = 14


def to_canvas(source: Tensor) -> Tensor:
    """``[B, 1, 28, 14]`` -> ``[B, 1, 28, 28]`` with the half on the right, -1 on the left."""
    return torch.cat([torch.full_like(source, -1.0), source], dim=-1)




class Encoder(nn.Module):
    """Right half ``[B, 1, 28, 14]`` -> :class:`Posterior` over ``latent_dim`` dims."""

    def __init__(self, latent_dim: int = 4, channels: int = 128, hidden: int = 512) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(1, channels, 3, 1, 1), nn.ReLU(),
            nn.Conv2d(channels, channels, 3, 2, 1), nn.ReLU(),
            nn.Conv2d(channels, channels, 3, 2, 1), nn.ReLU(),
            nn.Flatten(), nn.Linear(channels * 7 * 7, hidden), nn.ReLU(),
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
    """Side-information crop ``[B, 1, c, c]`` -> features ``[B, features]``."""

    def __init__(self, crop_size: int = 7, features: int = 128, channels: int = 32) -> None:
        super().__init__()
        side = (crop_size + 1) // 2
        self.net = nn.Sequential(
            nn.Conv2d(1, channels, 3, 1, 1), nn.ReLU(),
            nn.Conv2d(channels, 2 * channels, 3, 2, 1), nn.ReLU(),
            nn.Flatten(), nn.Linear(2 * channels * side * side, features), nn.ReLU(),
        )

    def forward(self, side_info: Tensor) -> Tensor:
        return self.net(side_info)


class Decoder(nn.Module):
    """``w`` ``[B, latent_dim]`` and projected side information ``[B, features]`` -> right
    half ``[B, 1, 28, 14]`` in [-1, 1]."""

    def __init__(self, latent_dim: int = 4, features: int = 128, channels: int = 128, hidden: int = 512,
                 dropout: float = 0.5) -> None:
        super().__init__()
        self.channels = channels
        self.fc = nn.Sequential(
            nn.Linear(latent_dim + features, hidden), nn.ReLU(), nn.Linear(hidden, channels * 7 * 7), nn.ReLU()
        )
        self.up = nn.Sequential(
            nn.ConvTranspose2d(channels, channels // 2, 3, 2, 1, 1), nn.ReLU(),
            nn.ConvTranspose2d(channels // 2, channels // 4, 3, 2, 1, 1), nn.Dropout(dropout), nn.ReLU(),
            nn.ConvTranspose2d(channels // 4, 1, 3, 1, 1, 0), nn.Tanh(),
        )

    def forward(self, w: Tensor, features: Tensor) -> Tensor:
        x = self.fc(torch.cat([w, features], dim=-1)).view(-1, self.channels, 7, 7)
        if x.device.type == "cpu" and not torch.is_grad_enabled():
            # CPU inference: transposed convolutions run about 1.7x faster channels-last (the
            # same values up to rounding); training's backward pass is slower that way
            x = x.contiguous(memory_format=torch.channels_last)
        return self.up(x)[..., HALF:]


class Estimator(nn.Module):
    """Classifier of joint vs product pairs (w, side information): its logit
    ``log h / (1 - h)`` estimates ``log p(w | t) / p(w)``, the decoder's log importance weight.

    ``forward`` takes ``w`` ``[B, n, latent_dim]`` and a crop ``[B, 1, c, c]`` -> ``[B, n]``. The
    first layer is split so that a crop's share of it, :meth:`crop_bias`, is computed once and
    reused for every candidate scored against that crop (:meth:`logits`).
    """

    def __init__(self, latent_dim: int = 4, crop_size: int = 7, features: int = 128, hidden: int = 256) -> None:
        super().__init__()
        self.latent_dim = latent_dim
        self.projection = Projection(crop_size, features)
        self.net = nn.Sequential(
            nn.Linear(latent_dim + features, hidden), nn.ReLU(),
            nn.Linear(hidden, hidden), nn.ReLU(),
            nn.Linear(hidden, 1),
        )

    def crop_bias(self, side_info: Tensor) -> Tensor:
        """Crops ``[..., 1, c, c]`` -> their first-layer pre-activation share ``[..., hidden]``."""
        lead = side_info.shape[:-3]
        features = self.projection(side_info.reshape(-1, *side_info.shape[-3:]))
        first = self.net[0]
        return F.linear(features, first.weight[:, self.latent_dim:], first.bias).view(*lead, -1)

    def logits(self, w: Tensor, crop_bias: Tensor) -> Tensor:
        """``w`` ``[B, n, latent_dim]`` against crop biases ``[B, hidden]`` -> ``[B, n]``, or
        against ``[B, K, hidden]`` (K crops per digit) -> ``[B, K, n]``."""
        pre = F.linear(w, self.net[0].weight[:, : self.latent_dim])  # [B, n, hidden]
        if crop_bias.dim() == 3:
            pre = pre[:, None] + crop_bias[:, :, None, :]
        else:
            pre = pre + crop_bias[:, None, :]
        return self.net[1:](pre).squeeze(-1)

    def forward(self, w: Tensor, side_info: Tensor) -> Tensor:
        return self.logits(w, self.crop_bias(side_info))


class MnistCodecNetworks(nn.Module):
    """All networks of the MNIST codec, built from config values."""

    def __init__(self, latent_dim: int = 4, crop_size: int = 7, features: int = 128, channels: int = 128,
                 hidden: int = 512, estimator_hidden: int = 256, dropout: float = 0.5) -> None:
        super().__init__()
        for name, value in (("latent_dim", latent_dim), ("features", features), ("hidden", hidden),
                            ("estimator_hidden", estimator_hidden)):
            check_positive_int(value, f"model.{name}")
        if not (isinstance(channels, int) and channels >= 4 and channels % 4 == 0):
            raise ConfigError(f"model.channels must be a positive multiple of 4, got {channels!r}")
        if not 1 <= crop_size <= HALF:
            raise ConfigError(f"crop_size must be in [1, 14] (the left half is 28x14), got {crop_size}")
        self.latent_dim = latent_dim
        self.encoder = Encoder(latent_dim, channels, hidden)
        self.projection = Projection(crop_size, features)
        self.decoder = Decoder(latent_dim, features, channels, hidden, dropout)
        self.estimator = Estimator(latent_dim, crop_size, features, estimator_hidden)


class MnistModel(NetworkCodingModel):
    """A trained MNIST codec's networks as a :class:`dsc.pipeline.CodingModel`: sources are
    right halves ``[B, 1, 28, 14]`` in [-1, 1], side information the decoders' crops
    ``[B, K', 1, c, c]``, reconstructions ``[B, K', 1, 28, 14]``; the fallback decodes the prior
    mean (w = 0) with each crop."""

    def identity(self) -> dict:
        return {"model": "mnist", "latent_dim": self.prior.dim, "weights_sha256": self.weights_sha256}

    def encoder_log_weight(self, sources: Tensor) -> PosteriorLogRatio:
        return PosteriorLogRatio(self.nets.encoder(sources))

    def decoder_log_weight(self, side_information: Tensor) -> EstimatorLogRatio:
        return EstimatorLogRatio(self.nets.estimator, self.nets.estimator.crop_bias(side_information))

    def reconstruct(self, candidates: Tensor, side_information: Tensor) -> Tensor:
        features = self.nets.projection(side_information.flatten(0, 1))
        recon = self.nets.decoder(candidates.flatten(0, 1).float(), features)
        return recon.view(*candidates.shape[:2], *recon.shape[1:])

    def fallback(self, side_information: Tensor) -> Tensor:
        zeros = torch.zeros(*side_information.shape[:2], self.prior.dim, device=side_information.device)
        return self.reconstruct(zeros, side_information)
