"""The analytic model of the Gaussian experiment: test channel, decoder target, MMSE decoder.

With A ~ N(0, 1), T = A + N(0, noise_var) and the test channel W | A ~ N(A, s2):

- prior p_W = N(0, 1 + s2) (the candidates' law);
- encoder weight p(w | a) / p(w);
- decoder target p(w | t) = N(t / (1 + noise_var), noise_var / (1 + noise_var) + s2) and
  weight p(w | t) / p(w);
- reconstruction E[A | W, T] = (W / s2 + T / noise_var) / (1 + 1 / s2 + 1 / noise_var).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from torch import Tensor

from dsc.coding.importance import GaussianPrior
from dsc.errors import InvalidArgumentError, ShapeMismatchError


def _log_normal(x: Tensor, mean: Tensor | float, var: float) -> Tensor:
    return -0.5 * (x - mean) ** 2 / var - 0.5 * math.log(2 * math.pi * var)


def _log_ratio_max(mean: Tensor, var: float, prior_var: float) -> Tensor:
    """max_u log N(u; mean, var) / N(u; 0, prior_var) = mean^2 / (2 (prior_var - var)) +
    log(prior_var / var) / 2, attained at u = mean * prior_var / (prior_var - var)."""
    return mean**2 / (2 * (prior_var - var)) + 0.5 * math.log(prior_var / var)


@dataclass(frozen=True)
class GaussianLogRatio:
    """Log importance weight ``log N(u; mean, var) - log N(u; 0, prior_var)`` of scalar
    candidates ``[B, n, 1]``: ``[B, n]`` for ``mean`` ``[B]``, ``[B, R, n]`` for ``[B, R]``.

    ``subset(rows)`` restricts it to some messages (the coder drops finished ones) and
    ``maximum()`` is its closed-form upper bound, shaped like ``mean``.
    """

    mean: Tensor
    var: float
    prior_var: float

    def __call__(self, u: Tensor) -> Tensor:
        u = u[..., 0] if self.mean.dim() == 1 else u[..., 0][:, None, :]
        mean = self.mean[..., None].to(u.dtype)
        return _log_normal(u, mean, self.var) - _log_normal(u, 0.0, self.prior_var)

    def subset(self, rows: Tensor) -> "GaussianLogRatio":
        return GaussianLogRatio(self.mean[rows], self.var, self.prior_var)

    def maximum(self) -> Tensor:
        return _log_ratio_max(self.mean, self.var, self.prior_var)


@dataclass(frozen=True)
class AnalyticGaussianModel:
    """Closed-form encoder / decoder weights and reconstruction for one test-channel variance."""

    test_channel_var: float
    noise_var: float = 0.5

    def __post_init__(self) -> None:
        for name in ("test_channel_var", "noise_var"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and value > 0):
                raise InvalidArgumentError(f"{name} must be > 0, got {value!r}")

    @property
    def prior_var(self) -> float:
        return 1 + self.test_channel_var

    @property
    def prior(self) -> GaussianPrior:
        return GaussianPrior(dim=1, std=math.sqrt(self.prior_var))

    @property
    def decoder_var(self) -> float:
        """var(W | T)."""
        return self.noise_var / (1 + self.noise_var) + self.test_channel_var

    def decoder_mean(self, side_info: Tensor) -> Tensor:
        """E[W | T] = T / (1 + noise_var), same shape as ``side_info``."""
        return side_info / (1 + self.noise_var)

    def encoder_log_weight(self, source: Tensor) -> GaussianLogRatio:
        """For sources ``[B]``: candidates ``[B, n, 1]`` -> log p(u|a) - log p(u), ``[B, n]``."""
        return GaussianLogRatio(source, self.test_channel_var, self.prior_var)

    def decoder_log_weight(self, side_info: Tensor) -> GaussianLogRatio:
        """For side information ``[B, R]``: candidates ``[B, n, 1]`` -> log p(u|t) - log p(u),
        ``[B, R, n]``."""
        return GaussianLogRatio(self.decoder_mean(side_info), self.decoder_var, self.prior_var)

    def reconstruct(self, w: Tensor, side_info: Tensor) -> Tensor:
        """MMSE estimate of A from W and T (broadcasting shapes, e.g. ``[B, K]``)."""
        precision = 1 + 1 / self.test_channel_var + 1 / self.noise_var
        return (w / self.test_channel_var + side_info / self.noise_var) / precision

    def info_density_bits(self, source: Tensor, side_info: Tensor, w: Tensor) -> Tensor:
        """i(w; a | t) = log2 p(w|a) / p(w|t), elementwise."""
        log_ratio = _log_normal(w, source, self.test_channel_var) - _log_normal(
            w, self.decoder_mean(side_info), self.decoder_var
        )
        return log_ratio / math.log(2)


@dataclass(frozen=True)
class GaussianModel:
    """The quadratic-Gaussian source A ~ N(0, 1), T_k = A + N(0, noise_var) as a
    :class:`dsc.pipeline.CodingModel`: sources ``[B]``, side information ``[B, K']``, scalar
    candidates ``[B, n, 1]``, reconstructions E[A | W, T_k] and fallbacks E[A | T_k] ``[B, K']``
    (float64). ``estimate``: how decoders turn picks into outputs (:mod:`dsc.estimates`; None:
    the pick's reconstruction); decoder-side only, so not part of :meth:`identity`."""

    test_channel_var: float = 0.005
    noise_var: float = 0.5
    estimate: Any = field(default=None, compare=False)

    def __post_init__(self) -> None:
        self.analytic  # validates both variances  # noqa: B018

    @property
    def analytic(self) -> AnalyticGaussianModel:
        return AnalyticGaussianModel(self.test_channel_var, self.noise_var)

    @property
    def prior(self) -> GaussianPrior:
        return self.analytic.prior

    def identity(self) -> dict:
        return {"model": "gaussian", "test_channel_var": self.test_channel_var, "noise_var": self.noise_var}

    def to(self, device) -> "GaussianModel":
        return self  # closed form: nothing to move

    def encoder_log_weight(self, sources: Tensor) -> GaussianLogRatio:
        return self.analytic.encoder_log_weight(_shaped(sources, 1, "sources [B]"))

    def decoder_log_weight(self, side_information: Tensor) -> GaussianLogRatio:
        return self.analytic.decoder_log_weight(_shaped(side_information, 2, "side information [B, K]"))

    def reconstruct(self, candidates: Tensor, side_information: Tensor) -> Tensor:
        return self.analytic.reconstruct(candidates[..., 0].double(), side_information.double())

    def fallback(self, side_information: Tensor) -> Tensor:
        return self.analytic.decoder_mean(side_information.double())  # E[A | T_k]: w at its mean

    def source_log_weights(self, sources: Tensor) -> GaussianLogRatio:
        """The encoder's log-weights of S sources per message ``[B, S]``: candidates
        ``[B, n, 1]`` -> ``[B, S, n]`` (decoder-side re-encoding, :mod:`dsc.estimates`)."""
        return self.analytic.encoder_log_weight(_shaped(sources, 2, "sources [B, S]"))

    def source_posterior(self, side_information: Tensor) -> tuple[Tensor, float]:
        """A | T_k: mean ``[B, K']`` T_k / (1 + noise_var) and variance noise_var / (1 + noise_var)."""
        return self.fallback(side_information), self.noise_var / (1 + self.noise_var)

    def pick_posterior(self, candidates: Tensor, side_information: Tensor) -> tuple[Tensor, float]:
        """A | W = pick, T_k: mean ``[B, K']`` (the pick's reconstruction) and variance
        1 / (1 + 1 / s2 + 1 / noise_var)."""
        precision = 1 + 1 / self.test_channel_var + 1 / self.noise_var
        return self.reconstruct(candidates, side_information), 1 / precision


def _shaped(x: Tensor, dims: int, what: str) -> Tensor:
    if not isinstance(x, Tensor) or x.dim() != dims:
        raise ShapeMismatchError(f"the Gaussian model needs {what}, got {getattr(x, 'shape', type(x).__name__)}")
    return x.double()
