"""LightningModule of the image codec: the shared beta-VAE rate-distortion loss on image halves."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from torch import Tensor

from dsc.lit.checkpoint import CheckpointMismatchError, load_module
from dsc.lit.latent_module import LatentCodecModule
from dsc.models.distortion import DEFAULT, LEGACY, check_normalisation
from dsc.models.distortion import distortion as normalised_distortion
from dsc.models.image_codec import MNIST_IMAGE, ImageCodecNetworks
from dsc.sources.images import SideInfo


class ImageCodecModule(LatentCodecModule):
    """Trains the encoder, projection, decoder and estimator jointly (paper App. D.4) with the
    loss of :class:`dsc.lit.latent_module.LatentCodecModule`, for images ``image_shape``
    ``(C, H, W)`` and the side information ``side_info`` (``crop`` of ``crop_size``, ``noisy``
    with ``noise_std``, ``lowres`` by ``lowres_factor``: :class:`dsc.sources.images.SideInfo`).
    The distortion is the squared error of the half normalised as ``distortion`` says
    (:mod:`dsc.models.distortion`; default ``sum_01``, summed over the half's pixels on the
    [0, 1] scale); the reported ``mse`` is per pixel on the [0, 1] scale. The defaults are the
    paper's MNIST codec."""

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
        image_shape: Sequence[int] = MNIST_IMAGE,
        side_info: str = "crop",
        noise_std: float = 0.5,
        lowres_factor: int = 4,
    ) -> None:
        super().__init__(beta, kl_warmup_steps, lr, betas)
        check_normalisation(distortion)
        self.save_hyperparameters()
        image_shape = tuple(int(s) for s in image_shape)
        self.side = SideInfo(side_info, crop_size, noise_std, lowres_factor)
        self.nets = ImageCodecNetworks(latent_dim, image_shape, self.side.shape(image_shape), features, channels,
                                       hidden, estimator_hidden, dropout)

    def distortion_terms(self, reconstruction: Tensor, source: Tensor) -> tuple[Tensor, Tensor]:
        distortion = normalised_distortion(reconstruction, source, self.hparams.distortion).mean()
        return distortion, ((reconstruction - source) ** 2).mean() / 4  # data on [-1, 1]; mse on [0, 1]


def load_codec(ckpt_path: str | Path | None, distortion: str | None = None) -> ImageCodecModule:
    """Load a trained image codec (its saved hyper-parameters rebuild the networks).
    ``distortion``, when given, is the loss normalisation the caller means the codec's beta in
    (:mod:`dsc.models.distortion`): a codec trained with another raises CheckpointMismatchError."""
    codec = load_module(ImageCodecModule, ckpt_path, "the image codec (model=image_vae)",
                        "python train.py source=mnist model=image_vae")
    trained = codec.hparams.distortion
    if distortion is not None and check_normalisation(distortion) != trained:
        raise CheckpointMismatchError(
            f"{ckpt_path} was trained with distortion normalisation {trained!r}, not {distortion!r}, so its beta "
            f"means something else: evaluate it with distortion={trained}, or retrain it with "
            f"model.distortion={distortion}")
    return codec
