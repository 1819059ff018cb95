"""A learned GLS codec for d-dimensional Gaussian sources: MLP encoder, estimator and decoder.

Shapes: source ``[B, d]``, one decoder's side information ``[B, d]`` (``[B, K, d]`` for K),
latent ``[B, latent_dim]``, reconstruction ``[B, d]``. The networks mirror the MNIST codec's
roles (:mod:`dsc.models.image_codec`): the encoder outputs a diagonal Gaussian posterior p(w | a); the
decoder maps (w, t) to an estimate of a; the estimator classifies joint against product pairs
(w, t), and its logit is the decoders' log importance weight log p(w | t) / p(w).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dsc.coding.validation import check_positive_int
from dsc.models.network_model import EstimatorLogRatio, NetworkCodingModel
from dsc.models.posterior import INITIAL_LOG_VAR, Posterior, PosteriorLogRatio


def _mlp(sizes: list[int]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


class MlpEncoder(nn.Module):
    """Source ``[B, d]`` -> :class:`Posterior` over ``latent_dim`` dims."""

    def __init__(self, dim: int, latent_dim: int, hidden: int) -> None:
        super().__init__()
        self.net = _mlp([dim, hidden, hidden, 2 * latent_dim])
        with torch.no_grad():  # small initial variances: w carries the source from the first step
            self.net[-1].bias[latent_dim:].fill_(INITIAL_LOG_VAR)

    def forward(self, source: Tensor) -> Posterior:
        mean, log_var = self.net(source).chunk(2, dim=-1)
        return Posterior(mean, log_var.clamp(-12.0, 6.0))


class MlpDecoder(nn.Module):
    """``w`` ``[B, latent_dim]`` and side information ``[B, d]`` -> reconstruction ``[B, d]``."""

    def __init__(self, dim: int, latent_dim: int, hidden: int) -> None:
        super().__init__()
        self.net = _mlp([latent_dim + dim, hidden, hidden, dim])

    def forward(self, w: Tensor, side_info: Tensor) -> Tensor:
        return self.net(torch.cat([w, side_info.to(w.dtype)], dim=-1))


class MlpEstimator(nn.Module):
    """Logit of "(w, t) is a joint pair" for candidates ``w`` ``[B, n, latent_dim]``; the first
    layer is split so that a side information's share, :meth:`side_bias`, is computed once."""

    def __init__(self, dim: int, latent_dim: int, hidden: int) -> None:
        super().__init__()
        self.latent_dim = latent_dim
        self.net = _mlp([latent_dim + dim, hidden, hidden, 1])

    def side_bias(self, side_info: Tensor) -> Tensor:
        """Side information ``[..., d]`` -> its first-layer share ``[..., hidden]``."""
        first = self.net[0]
        return F.linear(side_info.to(first.weight.dtype), first.weight[:, self.latent_dim:], first.bias)

    def logits(self, w: Tensor, side_bias: Tensor) -> Tensor:
        """``w`` ``[B, n, latent]`` against ``[B, hidden]`` -> ``[B, n]``, or ``[B, K, hidden]`` -> ``[B, K, n]``."""
        pre = F.linear(w.to(side_bias.dtype), self.net[0].weight[:, : self.latent_dim])  # [B, n, hidden]
        pre = pre[:, None] + side_bias[:, :, None, :] if side_bias.dim() == 3 else pre + side_bias[:, None, :]
        return self.net[1:](pre).squeeze(-1)

    def forward(self, w: Tensor, side_info: Tensor) -> Tensor:
        return self.logits(w, self.side_bias(side_info))


class GaussianCodecNetworks(nn.Module):
    """The codec's networks; ``projection`` is the identity (the side information is used as is)."""

    def __init__(self, dim: int = 1, latent_dim: int = 1, hidden: int = 128, estimator_hidden: int = 128) -> None:
        super().__init__()
        for name, value in (("dim", dim), ("latent_dim", latent_dim), ("hidden", hidden),
                            ("estimator_hidden", estimator_hidden)):
            check_positive_int(value, f"model.{name}")
        self.dim, self.latent_dim = dim, latent_dim
        self.encoder = MlpEncoder(dim, latent_dim, hidden)
        self.projection = nn.Identity()
        self.decoder = MlpDecoder(dim, latent_dim, hidden)
        self.estimator = MlpEstimator(dim, latent_dim, estimator_hidden)


class GaussianMlpModel(NetworkCodingModel):
    """A trained Gaussian codec as a :class:`dsc.pipeline.CodingModel`: sources ``[B, d]``, side
    information ``[B, K', d]``, reconstructions ``[B, K', d]``; the fallback decodes w = 0 (the
    prior mean) with the side information."""

    def identity(self) -> dict:
        return {"model": "gaussian_mlp", "dim": self.nets.dim, "latent_dim": self.prior.dim,
                "weights_sha256": self.weights_sha256}

    def encoder_log_weight(self, sources: Tensor) -> PosteriorLogRatio:
        return PosteriorLogRatio(self.nets.encoder(sources.float()))

    def decoder_log_weight(self, side_information: Tensor) -> EstimatorLogRatio:
        return EstimatorLogRatio(self.nets.estimator, self.nets.estimator.side_bias(side_information.float()))

    def reconstruct(self, candidates: Tensor, side_information: Tensor) -> Tensor:
        recon = self.nets.decoder(candidates.flatten(0, 1).float(), side_information.flatten(0, 1).float())
        return recon.view(*candidates.shape[:2], -1)

    def fallback(self, side_information: Tensor) -> Tensor:
        zeros = torch.zeros(*side_information.shape[:2], self.prior.dim, device=side_information.device)
        return self.reconstruct(zeros, side_information)
