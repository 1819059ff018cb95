"""LightningModule of the learned baseline codecs: rate + lambda * distortion, CompressAI style.

Loss per batch: ``bits per pixel + lmbda * 255^2 * MSE`` (pixels in [0, 1]), with the rate
from the entropy bottleneck's likelihoods under noisy quantisation; the bottleneck's quantiles
are fitted by its auxiliary loss with a second optimiser (manual optimisation). Metrics:
``{split}/loss``, ``/bits`` (estimated bits per image half), ``/mse``, ``/aux_loss``.
"""

from __future__ import annotations

import math

import lightning as L
import torch
from torch import Tensor

from dsc.baselines.learned import LearnedImageCodec
from dsc.errors import ConfigError
from dsc.lit.divergence import FiniteLossGuard
from dsc.lit.metrics import EpochMeanLogging
from dsc.sources.images import ImageItem

PIXELS = 28 * 14


class LearnedCodecModule(EpochMeanLogging, FiniteLossGuard, L.LightningModule):
    """Trains a :class:`LearnedImageCodec` for one rate-distortion trade-off ``lmbda``."""

    def __init__(self, side_info: str = "none", lmbda: float = 0.01, latent_channels: int = 16, channels: int = 64,
                 crop_size: int = 7, features: int = 64, lr: float = 1e-3, aux_lr: float = 1e-3) -> None:
        super().__init__()
        if not (isinstance(lmbda, (int, float)) and 0 < lmbda <= 100):
            raise ConfigError(f"model.lmbda must be in (0, 100], got {lmbda!r}")
        if not lr > 0 or not aux_lr > 0:
            raise ConfigError(f"model.lr and model.aux_lr must be > 0, got {lr}, {aux_lr}")
        self.save_hyperparameters()
        self.automatic_optimization = False
        self.codec = LearnedImageCodec(side_info, latent_channels, channels, crop_size, features)

    def losses(self, batch: ImageItem) -> dict[str, Tensor]:
        source, crop = batch[0], batch[1][:, 0]  # the batch contract: (source, side_info, ...)
        reconstruction, likelihoods = self.codec(source, crop)
        bits = rate_in_bits(likelihoods).mean()
        mse = ((reconstruction - source) / 2).pow(2).mean()  # the data are on [-1, 1]
        return {"loss": bits / PIXELS + self.hparams.lmbda * 255**2 * mse, "bits": bits, "mse": mse,
                "aux_loss": self.codec.entropy_bottleneck.loss()}

    def _log(self, losses: dict[str, Tensor], split: str, batch_size: int) -> None:
        self.check_loss(losses["loss"], split)
        self.log_losses(losses, split, batch_size)

    def training_step(self, batch: ImageItem, batch_idx: int) -> None:
        main, aux = self.optimizers()
        losses = self.losses(batch)
        self._log(losses, "train", batch[0].shape[0])
        main.zero_grad()
        self.manual_backward(losses["loss"])
        main.step()
        aux.zero_grad()
        self.manual_backward(self.codec.entropy_bottleneck.loss())
        aux.step()

    def validation_step(self, batch: ImageItem, batch_idx: int) -> None:
        self._log(self.losses(batch), "val", batch[0].shape[0])

    def configure_optimizers(self):
        quantiles = [p for n, p in self.codec.named_parameters() if n.endswith(".quantiles")]
        main = [p for n, p in self.codec.named_parameters() if not n.endswith(".quantiles")]
        return (torch.optim.Adam(main, lr=self.hparams.lr), torch.optim.Adam(quantiles, lr=self.hparams.aux_lr))


def rate_in_bits(likelihoods: Tensor) -> Tensor:
    """Estimated bits per image ``[B]`` from latent likelihoods ``[B, ...]``."""
    return -torch.log(likelihoods).flatten(1).sum(1) / math.log(2)
