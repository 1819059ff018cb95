"""Nested scalar quantisation: the classical practical Wyner-Ziv scheme for a scalar source.

The encoder quantises A with a uniform scalar quantiser of step ``step`` (index
``i = round(A / step)``) and sends ``i mod 2^R`` (exactly R bits). Decoder k knows its side
information's posterior A | T_k ~ N(mu_k, v); it picks the index ``i_k`` congruent to the
received label that lies nearest to ``mu_k / step``, then reconstructs with the MMSE estimate
``E[A | A in cell(i_k), T_k]``, the mean of N(mu_k, v) truncated to the cell
``[(i_k - 1/2) step, (i_k + 1/2) step]``. A coarse step makes the bins far apart (few decoding
errors) but the cells wide; the best step for each rate is found by search.

Pure torch, float64, batched over messages ``[B]`` and decoders ``[B, K]``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import Tensor

from dsc.coding.validation import check_positive_int
from dsc.errors import InvalidArgumentError, ShapeMismatchError

MAX_RATE_BITS = 31


def truncated_normal_mean(mean: Tensor, var: float, low: Tensor, high: Tensor) -> Tensor:
    """Mean of N(mean, var) restricted to [low, high] (same shapes, low < high), accurate far in
    the tails: an interval right of the mean is mirrored to the left, and an interval left of
    the mean is handled in log space (``log_ndtr``), where the normal CDF keeps its relative
    precision. A non-finite result (infinite inputs) falls back to the endpoint nearest the mean."""
    sd = math.sqrt(var)
    alpha, beta = (low - mean) / sd, (high - mean) / sd
    mirror = alpha > 0  # the whole interval lies right of the mean
    a = torch.where(mirror, -beta, alpha)
    b = torch.where(mirror, -alpha, beta)
    # E[Z | a <= Z <= b] for Z ~ N(0, 1) is (phi(a) - phi(b)) / (Phi(b) - Phi(a))
    direct = (torch.exp(-0.5 * a**2) - torch.exp(-0.5 * b**2)) / (
        math.sqrt(2 * math.pi) * (torch.special.ndtr(b) - torch.special.ndtr(a)))
    # left tail (b <= 0): phi(b) >= phi(a), so the numerator is -phi(b) (1 - phi(a) / phi(b))
    log_numerator = -0.5 * b**2 + torch.log1p(-torch.exp(-0.5 * (a**2 - b**2)))
    log_cdf_b = torch.special.log_ndtr(b)
    log_mass = log_cdf_b + torch.log1p(-torch.exp(torch.special.log_ndtr(a) - log_cdf_b))
    tail = -torch.exp(log_numerator - log_mass - 0.5 * math.log(2 * math.pi))
    shift = torch.where(b <= 0, tail, direct)
    shift = torch.where(mirror, -shift, shift)
    result = mean + sd * shift
    nearest = torch.where(mirror, low, high)
    return torch.where(torch.isfinite(result), result, nearest)


class NestedDecoded(NamedTuple):
    """``index`` ``[B, K]`` (each decoder's quantiser index) and ``reconstruction`` ``[B, K]``."""

    index: Tensor
    reconstruction: Tensor


@dataclass(frozen=True)
class NestedScalarQuantizer:
    """A nested scalar quantiser with ``step`` and ``rate_bits`` R (labels in [0, 2^R))."""

    step: float
    rate_bits: int

    def __post_init__(self) -> None:
        if not (isinstance(self.step, (int, float)) and math.isfinite(self.step) and self.step > 0):
            raise InvalidArgumentError(f"quantiser step must be a finite number > 0, got {self.step!r}")
        check_positive_int(self.rate_bits, "rate_bits")
        if self.rate_bits > MAX_RATE_BITS:
            raise InvalidArgumentError(f"rate_bits must be at most {MAX_RATE_BITS}, got {self.rate_bits}")

    @property
    def num_labels(self) -> int:
        return 2**self.rate_bits

    def quantize(self, source: Tensor) -> Tensor:
        """Quantiser indices ``[B]`` (int64) of sources ``[B]``."""
        if not isinstance(source, Tensor) or not source.is_floating_point():
            raise InvalidArgumentError("the source must be a floating-point tensor")
        return torch.round(source.double() / self.step).long()

    def encode(self, source: Tensor) -> Tensor:
        """Labels ``[B]`` in [0, 2^R): the quantiser index modulo 2^R."""
        return torch.remainder(self.quantize(source), self.num_labels)

    def decode(self, labels: Tensor, posterior_mean: Tensor, posterior_var: float) -> NestedDecoded:
        """Decode labels ``[B]`` at K decoders whose side information gives A | T_k ~
        N(``posterior_mean`` ``[B, K]``, ``posterior_var``)."""
        if not isinstance(labels, Tensor) or labels.is_floating_point():
            raise InvalidArgumentError("labels must be an integer tensor [B]")
        if posterior_mean.dim() != 2 or posterior_mean.shape[0] != labels.shape[0]:
            raise ShapeMismatchError(f"posterior_mean must be [B, K] with B = {labels.shape[0]}, got "
                                     f"{tuple(posterior_mean.shape)}")
        if labels.numel() and (int(labels.min()) < 0 or int(labels.max()) >= self.num_labels):
            raise InvalidArgumentError(f"labels must be in [0, {self.num_labels})")
        if not posterior_var > 0:
            raise InvalidArgumentError(f"posterior_var must be > 0, got {posterior_var}")
        mean = posterior_mean.double()
        period = self.num_labels
        # the member of {label + j * 2^R} nearest mean / step
        j = torch.round((mean / self.step - labels[:, None]) / period)
        index = (labels[:, None] + j * period).long()
        center = index.double() * self.step
        recon = truncated_normal_mean(mean, posterior_var, center - self.step / 2, center + self.step / 2)
        return NestedDecoded(index, recon)
