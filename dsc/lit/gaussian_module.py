"""LightningModule of the learned Gaussian codec (the shared rate-distortion loss on vectors),
and a trained one as a coding model (:func:`trained_codec`), for any source of Gaussian-like
vectors ``[B, d]`` with side information ``[B, K, d]``."""

from __future__ import annotations

from functools import lru_cache
from typing import Sequence

from torch import Tensor

from dsc.lit.checkpoint import CheckpointMismatchError, load_module
from dsc.lit.latent_module import LatentCodecModule
from dsc.models.gaussian_mlp import GaussianCodecNetworks, GaussianMlpModel


class GaussianCodecModule(LatentCodecModule):
    """Trains the MLP encoder, decoder and estimator of :mod:`dsc.models.gaussian_mlp` with the
    loss of :class:`dsc.lit.latent_module.LatentCodecModule`. The distortion is the squared
    error summed over the d components (per source vector, mean over the batch); the reported
    ``mse`` is per component. ``noise_var``, the side information's noise the codec was trained
    for, is recorded so that an evaluation on another source is refused."""

    def __init__(self, dim: int = 1, latent_dim: int = 1, hidden: int = 128, estimator_hidden: int = 128,
                 beta: float = 0.05, kl_warmup_steps: int = 500, lr: float = 1e-3,
                 betas: Sequence[float] = (0.9, 0.99), noise_var: float = 0.5) -> None:
        super().__init__(beta, kl_warmup_steps, lr, betas)
        self.save_hyperparameters()
        self.nets = GaussianCodecNetworks(dim, latent_dim, hidden, estimator_hidden)

    def distortion_terms(self, reconstruction: Tensor, source: Tensor) -> tuple[Tensor, Tensor]:
        squared = (reconstruction - source.float()) ** 2
        return squared.sum(-1).mean(), squared.mean()


@lru_cache(maxsize=8)
def trained_codec(ckpt: str, noise_var: float,
                  train_command: str = "python train.py source=gaussian") -> GaussianMlpModel:
    """The codec of :class:`GaussianCodecModule` trained at ``ckpt``, as a coding model; refused
    when it was trained for side-information noise other than ``noise_var``. ``train_command``
    (named in the errors) is how such a checkpoint is made."""
    module = load_module(GaussianCodecModule, ckpt, "a learned Gaussian codec (GaussianCodecModule)", train_command)
    if abs(module.hparams.noise_var - noise_var) > 1e-12:
        raise CheckpointMismatchError(f"{ckpt} was trained for side-information noise {module.hparams.noise_var:g}, "
                                      f"not {noise_var:g}: evaluate it with noise {module.hparams.noise_var:g}")
    return GaussianMlpModel(module.nets)
