"""LightningModule of the MNIST codec: beta-VAE rate-distortion loss plus the estimator's BCE."""

from __future__ import annotations

from typing import Sequence

import lightning as L
import torch
import torch.nn.functional as F
from torch import Tensor

from dsc.errors import ConfigError
from dsc.lit.divergence import FiniteLossGuard
from dsc.lit.metrics import EpochMeanLogging
from dsc.models.distortion import DEFAULT, LEGACY, check_normalisation
from dsc.models.distortion import distortion as normalised_distortion
from dsc.models.mnist import MnistCodecNetworks, Posterior
from dsc.sources.mnist import MnistItem


class MnistCodecModule(EpochMeanLogging, FiniteLossGuard, L.LightningModule):
    """Trains encoder, projection, decoder and estimator jointly (paper App. D.4).

    Loss per batch: ``distortion + beta * KL(p(w|a) || N(0, I)) + BCE`` (means over the batch),
    where the distortion is the squared error of the half normalised as ``distortion`` says
    (:mod:`dsc.models.distortion`; default ``sum_01``, summed over the 392 pixels on the [0, 1]
    scale), and the BCE trains the estimator on joint (w, t) pairs against pairs with t from
    another digit (w is detached, so the estimator does not shape the encoder). The loss terms
    are computed in float32 also under mixed precision. Metrics: ``{split}/loss``,
    ``/distortion``, ``/mse`` (per pixel, pixels in [0, 1]), ``/kl``, ``/bce``,
    ``/estimator_accuracy``, and ``train/beta`` (:class:`dsc.lit.metrics.EpochMeanLogging`).

    ``kl_warmup_steps``: the KL weight in training rises linearly from 0 to ``beta`` over the
    first steps. Without it the posterior can collapse onto the prior in the first hundred
    steps (KL near 0, the decoder working from the side information alone) and, depending on
    the seed and the order of the data, never recover; validation always uses the full beta.
    """

    # Hyper-parameters that checkpoints written before they existed were trained with.
    LEGACY_HPARAMS = {"distortion": LEGACY}

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
        kl_warmup_steps: int = 500,
        lr: float = 1e-3,
        betas: Sequence[float] = (0.9, 0.99),
        distortion: str = DEFAULT,
    ) -> None:
        super().__init__()
        check_normalisation(distortion)
        if not beta >= 0:
            raise ConfigError(f"model.beta must be >= 0, got {beta}")
        if not (isinstance(kl_warmup_steps, int) and kl_warmup_steps >= 0):
            raise ConfigError(f"model.kl_warmup_steps must be an integer >= 0, got {kl_warmup_steps!r}")
        if not lr > 0:
            raise ConfigError(f"model.lr must be > 0, got {lr}")
        self.save_hyperparameters()
        self.nets = MnistCodecNetworks(latent_dim, crop_size, features, channels, hidden, estimator_hidden, dropout)

    def kl_weight(self, split: str) -> float:
        """beta, ramped up linearly over the first ``kl_warmup_steps`` training steps."""
        warmup = self.hparams.kl_warmup_steps
        if split != "train" or warmup == 0:
            return self.hparams.beta
        return self.hparams.beta * min(1.0, (self.global_step + 1) / warmup)

    def losses(self, batch: MnistItem, beta: float | None = None) -> dict[str, Tensor]:
        """The loss terms of one batch with KL weight ``beta`` (default: the full beta)."""
        source, side_info = batch.source, batch.side_info[:, 0]  # decoder 0's crop
        posterior = self.nets.encoder(source)
        posterior = Posterior(posterior.mean.float(), posterior.log_var.float())
        w = posterior.sample()
        reconstruction = self.nets.decoder(w, self.nets.projection(side_info)).float()
        distortion = normalised_distortion(reconstruction, source, self.hparams.distortion).mean()
        kl = posterior.kl_to_standard_normal().mean()
        bce, accuracy = self.estimator_bce(w.detach(), side_info)
        return {
            "loss": distortion + (self.hparams.beta if beta is None else beta) * kl + bce,
            "distortion": distortion,
            "mse": ((reconstruction - source) ** 2).mean() / 4,  # data on [-1, 1]; reported on [0, 1]
            "kl": kl,
            "bce": bce,
            "estimator_accuracy": accuracy,
        }

    def estimator_bce(self, w: Tensor, side_info: Tensor) -> tuple[Tensor, Tensor]:
        """BCE and accuracy of the estimator on joint pairs (``w`` ``[B, latent]`` with its own
        crop ``[B, 1, c, c]``) against product pairs (each crop with another digit's w)."""
        shift = torch.roll(torch.arange(w.shape[0], device=w.device), 1)
        joint = self.nets.estimator(w[:, None, :], side_info)[:, 0].float()
        product = self.nets.estimator(w[shift][:, None, :], side_info)[:, 0].float()
        bce = 0.5 * (F.binary_cross_entropy_with_logits(joint, torch.ones_like(joint))
                     + F.binary_cross_entropy_with_logits(product, torch.zeros_like(product)))
        accuracy = 0.5 * ((joint > 0).float().mean() + (product < 0).float().mean())
        return bce, accuracy

    def _step(self, batch: MnistItem, split: str) -> Tensor:
        beta = self.kl_weight(split)
        losses = self.losses(batch, beta)
        self.check_loss(losses["loss"], split)
        self.log_losses(losses, split, batch.source.shape[0], step_extras={"beta": beta})
        return losses["loss"]

    def training_step(self, batch: MnistItem, batch_idx: int) -> Tensor:
        return self._step(batch, "train")

    def validation_step(self, batch: MnistItem, batch_idx: int) -> Tensor:
        return self._step(batch, "val")

    def test_step(self, batch: MnistItem, batch_idx: int) -> Tensor:
        return self._step(batch, "test")

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=self.hparams.lr, betas=tuple(self.hparams.betas))
