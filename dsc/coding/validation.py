"""Argument checks shared by the coding core; each failure is a DscError saying what to fix."""

from __future__ import annotations

import torch
from torch import Tensor

from dsc.errors import InvalidArgumentError, InvalidProbabilityError, ShapeMismatchError


def check_positive_int(value: object, name: str, hint: str = "") -> int:
    """Return ``value`` if it is an integer >= 1, else raise InvalidArgumentError."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidArgumentError(f"{name} must be an integer >= 1, got {value!r}. {hint}".strip())
    return value


def check_probs(p: Tensor, name: str, atol: float | None = None) -> Tensor:
    """Validate probabilities over the last dimension ``[..., N]``.

    NaN, infinite or negative entries and rows that are all zero are rejected. When ``atol`` is
    given, each row must also sum to 1 within ``atol``.
    """
    if not isinstance(p, Tensor) or not p.is_floating_point():
        raise InvalidProbabilityError(f"{name} must be a floating-point tensor [..., N]")
    if p.dim() < 1 or p.shape[-1] < 1:
        raise ShapeMismatchError(f"{name} must have a non-empty last dimension, got {tuple(p.shape)}")
    if torch.isnan(p).any():
        raise InvalidProbabilityError(f"{name} contains NaN; check the model that produced it")
    if torch.isinf(p).any():
        raise InvalidProbabilityError(f"{name} contains inf; pass normalised probabilities")
    if (p < 0).any():
        raise InvalidProbabilityError(
            f"{name} has negative entries (min {p.min().item():.3g}); probabilities must be >= 0"
        )
    total = p.sum(-1)
    if (total <= 0).any():
        raise InvalidProbabilityError(f"{name} has a row that is all zero; no outcome is possible")
    if atol is not None and ((total - 1).abs() > atol).any():
        worst = (total - 1).abs().max().item()
        raise InvalidProbabilityError(
            f"{name} rows must sum to 1 (within {atol:g}); the worst is off by {worst:.3g}"
        )
    return p


def check_noise(noise: Tensor, name: str = "noise") -> Tensor:
    """Validate Exp(1) noise: finite and strictly positive."""
    if not isinstance(noise, Tensor) or not noise.is_floating_point():
        raise InvalidArgumentError(f"{name} must be a floating-point tensor of Exp(1) values")
    if not torch.isfinite(noise).all() or (noise <= 0).any():
        raise InvalidArgumentError(f"{name} must be finite and > 0 (Exp(1) samples)")
    return noise
