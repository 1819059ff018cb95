"""Next-token distributions for verification: logits -> probabilities (temperature, top-k),
and the checks every verifier runs on its inputs."""

from __future__ import annotations

import torch
from torch import Tensor

from dsc.errors import InvalidArgumentError, InvalidProbabilityError, ShapeMismatchError

SUM_TOLERANCE = 1e-4  # |sum - 1| allowed for given probabilities (float32 softmax outputs pass)


def probabilities(logits: Tensor, temperature: float = 1.0, top_k: int | None = None) -> Tensor:
    """softmax(logits / temperature) over the last dim, keeping only the ``top_k`` largest
    logits (ties at the k-th value are kept); float64 ``[..., V]``."""
    if not isinstance(logits, Tensor) or logits.dim() < 1 or logits.shape[-1] < 1:
        raise ShapeMismatchError("logits must be a tensor [..., V] with V >= 1")
    if not (isinstance(temperature, (int, float)) and temperature > 0):
        raise InvalidArgumentError(f"temperature must be > 0, got {temperature!r}")
    if torch.isnan(logits).any():
        raise InvalidProbabilityError("logits contain NaN")
    scaled = logits.double() / temperature
    if top_k is not None:
        if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1:
            raise InvalidArgumentError(f"top_k must be an integer >= 1 (or None), got {top_k!r}")
        if top_k < scaled.shape[-1]:
            kth = scaled.topk(top_k, dim=-1).values[..., -1:]
            scaled = scaled.masked_fill(scaled < kth, float("-inf"))
    return torch.softmax(scaled, dim=-1)


def check_distribution(probs: Tensor, name: str) -> Tensor:
    """``probs`` ``[..., V]``: finite, non-negative, summing to 1 within SUM_TOLERANCE -> float64."""
    if not isinstance(probs, Tensor) or probs.dim() < 1:
        raise ShapeMismatchError(f"{name} must be a tensor [..., V]")
    probs = probs.double()
    if not torch.isfinite(probs).all() or (probs < 0).any():
        raise InvalidProbabilityError(f"{name} must be finite and non-negative")
    error = (probs.sum(-1) - 1).abs().max().item() if probs.numel() else 0.0
    if error > SUM_TOLERANCE:
        raise InvalidProbabilityError(f"{name} must sum to 1 over the vocabulary (off by {error:.2e})")
    return probs


def check_block(draft_tokens: Tensor, draft_probs: Tensor, target_probs: Tensor) -> tuple[int, int, int, int]:
    """Shapes of a block verification: drafts ``[B, K, L]`` (int), their probabilities
    ``[B, K, L, V]``, the target's ``[B, K, L + 1, V]`` (position j of draft k conditioned on
    that draft's first j tokens) -> (B, K, L, V)."""
    if not isinstance(draft_tokens, Tensor) or draft_tokens.dim() != 3 or draft_tokens.is_floating_point():
        raise ShapeMismatchError("draft tokens must be an integer tensor [B, K, L]")
    b, k, length = draft_tokens.shape
    if k < 1 or length < 1:
        raise InvalidArgumentError(f"need K >= 1 drafts of L >= 1 tokens, got K = {k}, L = {length}")
    if draft_probs.dim() != 4 or tuple(draft_probs.shape[:3]) != (b, k, length):
        raise ShapeMismatchError(f"draft probabilities must be [B, K, L, V] = [{b}, {k}, {length}, V], "
                                 f"got {tuple(draft_probs.shape)}")
    v = draft_probs.shape[-1]
    if tuple(target_probs.shape) != (b, k, length + 1, v):
        raise ShapeMismatchError(f"target probabilities must be [B, K, L + 1, V] = [{b}, {k}, {length + 1}, {v}] "
                                 f"(same vocabulary as the drafts), got {tuple(target_probs.shape)}")
    if draft_tokens.numel() and (int(draft_tokens.min()) < 0 or int(draft_tokens.max()) >= v):
        raise InvalidArgumentError(f"draft tokens must be in [0, {v})")
    return b, k, length, v
