"""The rate-distortion training every learned GLS codec shares (MNIST, vector Gaussian).

A codec's networks (``self.nets``) are an encoder (source -> :class:`Posterior` over the
latent w), a projection of the side information, a decoder (w, projected side information ->
reconstruction) and an estimator (w, side information -> logit of "joint pair"). Loss per
batch, means over the batch: ``distortion + beta * KL(p(w|a) || N(0, I)) + BCE``, where the
BCE trains the estimator on joint (w, t) pairs against pairs with t from another example (w is
detached, so the estimator does not shape the encoder): its logit is the decoders' log
importance weight. The loss terms are computed in float32 also under mixed precision.

``kl_warmup_steps``: the KL weight in training rises linearly from 0 to ``beta`` over the
first steps. Without it the posterior can collapse onto the prior in the first hundred steps
(KL near 0, the decoder working from the side information alone) and, depending on the seed and
the order of the data, never recover; validation always uses the full beta.
"""

from __future__ import annotations

from typing import Sequence

import lightning as L
import torch
import torch.nn.functional as F
from torch import Tensor

from dsc.errors import ConfigError
from dsc.lit.divergence import FiniteLossGuard
from dsc.lit.metrics import EpochMeanLogging
from dsc.models.posterior import Posterior


class LatentCodecModule(EpochMeanLogging, FiniteLossGuard, L.LightningModule):
    """Shared training of a learned codec; a subclass builds ``self.nets`` and defines
    :meth:`distortion_terms`. A batch is a sequence (tuple, list or NamedTuple) whose first two
    entries are ``source`` ``[B, ...]`` and ``side_info`` ``[B, K, ...]`` (decoder 0's is trained
    on); later entries (e.g. message ids) are not read. Metrics: ``{split}/loss``, ``/distortion``,
    ``/mse``, ``/kl``, ``/bce``, ``/estimator_accuracy`` and ``train/beta``."""

    def __init__(self, beta: float, kl_warmup_steps: int, lr: float, betas: Sequence[float]) -> None:
        super().__init__()
        if not beta >= 0:
            raise ConfigError(f"model.beta must be >= 0, got {beta}")
        if not (isinstance(kl_warmup_steps, int) and kl_warmup_steps >= 0):
            raise ConfigError(f"model.kl_warmup_steps must be an integer >= 0, got {kl_warmup_steps!r}")
        if not lr > 0:
            raise ConfigError(f"model.lr must be > 0, got {lr}")

    def distortion_terms(self, reconstruction: Tensor, source: Tensor) -> tuple[Tensor, Tensor]:
        """(the loss's distortion, the reported ``mse``): scalars for a batch (float32)."""
        raise NotImplementedError

    def kl_weight(self, split: str) -> float:
        """beta, ramped up linearly over the first ``kl_warmup_steps`` training steps."""
        warmup = self.hparams.kl_warmup_steps
        if split != "train" or warmup == 0:
            return self.hparams.beta
        return self.hparams.beta * min(1.0, (self.global_step + 1) / warmup)

    def losses(self, batch, beta: float | None = None) -> dict[str, Tensor]:
        """The loss terms of one batch with KL weight ``beta`` (default: the full beta)."""
        source, side_info = batch[0], batch[1][:, 0]  # decoder 0's side information
        posterior = self.nets.encoder(source)
        posterior = Posterior(posterior.mean.float(), posterior.log_var.float())
        w = posterior.sample()
        reconstruction = self.nets.decoder(w, self.nets.projection(side_info)).float()
        distortion, mse = self.distortion_terms(reconstruction, source)
        kl = posterior.kl_to_standard_normal().mean()
        bce, accuracy = self.estimator_bce(w.detach(), side_info)
        return {
            "loss": distortion + (self.hparams.beta if beta is None else beta) * kl + bce,
            "distortion": distortion,
            "mse": mse,
            "kl": kl,
            "bce": bce,
            "estimator_accuracy": accuracy,
        }

    def estimator_bce(self, w: Tensor, side_info: Tensor) -> tuple[Tensor, Tensor]:
        """BCE and accuracy of the estimator on joint pairs (``w`` ``[B, latent]`` with its own
        side information) against product pairs (each side information with another w)."""
        shift = torch.roll(torch.arange(w.shape[0], device=w.device), 1)
        joint = self.nets.estimator(w[:, None, :], side_info)[:, 0].float()
        product = self.nets.estimator(w[shift][:, None, :], side_info)[:, 0].float()
        bce = 0.5 * (F.binary_cross_entropy_with_logits(joint, torch.ones_like(joint))
                     + F.binary_cross_entropy_with_logits(product, torch.zeros_like(product)))
        accuracy = 0.5 * ((joint > 0).float().mean() + (product < 0).float().mean())
        return bce, accuracy

    def _step(self, batch, split: str) -> Tensor:
        beta = self.kl_weight(split)
        losses = self.losses(batch, beta)
        self.check_loss(losses["loss"], split)
        self.log_losses(losses, split, batch[0].shape[0], step_extras={"beta": beta})
        return losses["loss"]

    def training_step(self, batch, batch_idx: int) -> Tensor:
        return self._step(batch, "train")

    def validation_step(self, batch, batch_idx: int) -> Tensor:
        return self._step(batch, "val")

    def test_step(self, batch, batch_idx: int) -> Tensor:
        return self._step(batch, "test")

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=self.hparams.lr, betas=tuple(self.hparams.betas))
