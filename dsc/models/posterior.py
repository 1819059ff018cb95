"""Diagonal Gaussian posteriors p(w | a) over a latent, and their importance log-weights
against the N(0, I) prior: what every learned encoder (MNIST, vector Gaussian) outputs."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import Tensor

# Encoders start with small posterior variances (log-variance about -6), so that w carries the
# source from the first step: with unit variances w starts as noise, the decoder learns to
# ignore it and the posterior can collapse onto the prior for good.
INITIAL_LOG_VAR = -6.0


class Posterior(NamedTuple):
    """Diagonal Gaussian p(w | a): ``mean`` and ``log_var``, each ``[B, latent_dim]``."""

    mean: Tensor
    log_var: Tensor

    def sample(self) -> Tensor:
        return self.mean + torch.exp(0.5 * self.log_var) * torch.randn_like(self.mean)

    def kl_to_standard_normal(self) -> Tensor:
        """KL(N(mean, var) || N(0, I)) per example, ``[B]`` (nats)."""
        return 0.5 * (self.mean**2 + self.log_var.exp() - 1 - self.log_var).sum(-1)

    def log_prob(self, w: Tensor) -> Tensor:
        """log p(w | a) for candidates ``[B, n, latent_dim]`` -> ``[B, n]``."""
        var = self.log_var.exp()[:, None, :]
        z = (w - self.mean[:, None, :]) ** 2 / var
        return -0.5 * (z + self.log_var[:, None, :] + 1.8378770664093453).sum(-1)


@dataclass(frozen=True)
class PosteriorLogRatio:
    """``log N(w; mean, var) - log N(w; 0, I)`` for candidates ``[B, n, d]`` -> ``[B, n]``;
    ``maximum()`` is finite where every var < 1 and +inf elsewhere (then no early stop)."""

    posterior: Posterior

    def __call__(self, w: Tensor) -> Tensor:
        return self.posterior.log_prob(w) + 0.5 * (w**2 + math.log(2 * math.pi)).sum(-1)

    def subset(self, rows: Tensor) -> "PosteriorLogRatio":
        return PosteriorLogRatio(Posterior(self.posterior.mean[rows], self.posterior.log_var[rows]))

    def maximum(self) -> Tensor:
        var = self.posterior.log_var.exp()
        per_dim = self.posterior.mean**2 / (2 * (1 - var)) - 0.5 * self.posterior.log_var
        return torch.where(var < 1, per_dim, torch.full_like(per_dim, float("inf"))).sum(-1).double()
