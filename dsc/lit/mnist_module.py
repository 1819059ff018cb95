"""LightningModule of the MNIST codec: the shared beta-VAE rate-distortion loss on image halves."""

from __future__ import annotations

from typing import Sequence

from torch import Tensor

from dsc.lit.latent_module import LatentCodecModule
from dsc.models.distortion import DEFAULT, LEGACY, check_normalisation
from dsc.models.distortion import distortion as normalised_distortion
from dsc.models.mnist import MnistCodecNetworks


class MnistCodecModule(LatentCodecModule):
    """Trains the MNIST encoder, projection, decoder and estimator jointly (paper App. D.4)
    with the loss of :class:`dsc.lit.latent_module.LatentCodecModule`. The distortion is the
    squared error of the half normalised as ``distortion`` says (:mod:`dsc.models.distortion`;
    default ``sum_01``, summed over the 392 pixels on the [0, 1] scale); the reported ``mse``
    is per pixel on the [0, 1] scale."""

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
        super().__init__(beta, kl_warmup_steps, lr, betas)
        check_normalisation(distortion)
        self.save_hyperparameters()
        self.nets = MnistCodecNetworks(latent_dim, crop_size, features, channels, hidden, estimator_hidden, dropout)

    def distortion_terms(self, reconstruction: Tensor, source: Tensor) -> tuple[Tensor, Tensor]:
        distortion = normalised_distortion(reconstruction, source, self.hparams.distortion).mean()
        return distortion, ((reconstruction - source) ** 2).mean() / 4  # data on [-1, 1]; mse on [0, 1]
