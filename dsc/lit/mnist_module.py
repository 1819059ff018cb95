"""LightningModule of the MNIST codec: beta-VAE rate-distortion loss plus the estimator's BCE."""

from __future__ import annotations

from typing import Sequence

import lightning as L
import torch
import torch.nn.functional as F
from torch import Tensor

from dsc.errors import ConfigError, TrainingDivergedError
from dsc.models.mnist import MnistCodecNetworks
from dsc.sources.mnist import MnistItem


class MnistCodecModule(L.LightningModule):
    """Trains encoder, projection, decoder and estimator jointly (paper App. D.4).

    Loss per batch: ``distortion + beta * KL(p(w|a) || N(0, I)) + BCE``, where the distortion is
    the squared error summed over the 392 pixels of the half (mean over the batch), and the BCE
    trains the estimator on joint (w, t) pairs against pairs with t from another digit (w is
    detached, so the estimator does not shape the encoder). Metrics: ``{split}/loss``,
    ``/distortion``, ``/mse`` (per pixel, pixels in [0, 1]), ``/kl``, ``/bce``,
    ``/estimator_accuracy``.
    """

    def __init__(
        self,
        latent_dim: int = 4,
        crop_size: int = 7,
        features: int = 128,
        channels: int = 128,
        hidden: int = 512,
        estimator_hidden: int = 256,
        dropout: float = 0.5,
        beta: float = 0.15,
        lr: float = 1e-3,
        betas: Sequence[float] = (0.9, 0.99),
    ) -> None:
        super().__init__()
        if not beta >= 0:
            raise ConfigError(f"model.beta must be >= 0, got {beta}")
        if not lr > 0:
            raise ConfigError(f"model.lr must be > 0, got {lr}")
        self.save_hyperparameters()
        self.nets = MnistCodecNetworks(latent_dim, crop_size, features, channels, hidden, estimator_hidden, dropout)

    def losses(self, batch: MnistItem) -> dict[str, Tensor]:
        source, side_info = batch.source, batch.side_info[:, 0]  # decoder 0's crop
        posterior = self.nets.encoder(source)
        w = posterior.sample()
        reconstruction = self.nets.decoder(w, self.nets.projection(side_info))
        squared = (reconstruction - source) ** 2
        distortion = squared.flatten(1).sum(1).mean()
        kl = posterior.kl_to_standard_normal().mean()
        bce, accuracy = self.estimator_bce(w.detach(), side_info)
        return {
            "loss": distortion + self.hparams.beta * kl + bce,
            "distortion": distortion,
            "mse": squared.mean() / 4,  # the data are on [-1, 1]; report on the [0, 1] scale
            "kl": kl,
            "bce": bce,
            "estimator_accuracy": accuracy,
        }

    def estimator_bce(self, w: Tensor, side_info: Tensor) -> tuple[Tensor, Tensor]:
        """BCE and accuracy of the estimator on joint pairs (``w`` ``[B, latent]`` with its own
        crop ``[B, 1, c, c]``) against product pairs (each crop with another digit's w)."""
        shift = torch.roll(torch.arange(w.shape[0], device=w.device), 1)
        joint = self.nets.estimator(w[:, None, :], side_info)[:, 0]
        product = self.nets.estimator(w[shift][:, None, :], side_info)[:, 0]
        bce = 0.5 * (F.binary_cross_entropy_with_logits(joint, torch.ones_like(joint))
                     + F.binary_cross_entropy_with_logits(product, torch.zeros_like(product)))
        accuracy = 0.5 * ((joint > 0).float().mean() + (product < 0).float().mean())
        return bce, accuracy

    def _step(self, batch: MnistItem, split: str) -> Tensor:
        losses = self.losses(batch)
        if not torch.isfinite(losses["loss"]):
            raise TrainingDivergedError(f"{split} loss is not finite; lower model.lr or check the data")
        self.log_dict({f"{split}/{k}": v for k, v in losses.items()}, prog_bar=split == "val",
                      batch_size=batch.source.shape[0], on_epoch=True, on_step=split == "train")
        return losses["loss"]

    def training_step(self, batch: MnistItem, batch_idx: int) -> Tensor:
        return self._step(batch, "train")

    def validation_step(self, batch: MnistItem, batch_idx: int) -> Tensor:
        return self._step(batch, "val")

    def test_step(self, batch: MnistItem, batch_idx: int) -> Tensor:
        return self._step(batch, "test")

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=self.hparams.lr, betas=tuple(self.hparams.betas))
